#!/usr/bin/env node
// Runs the compiled test suites with Node's built-in runner.
//   unit:        packages/*/dist/test/**/*.test.js  (fast, in-process: real LevelDB, real gRPC on loopback)
//   integration: test/dist/**/*.test.js            (several OS processes; later, real Docker)
// Extra arguments are passed to `node --test` (e.g. --test-name-pattern).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const suite = process.argv[2];
const extra = process.argv.slice(3);
const root = new URL('..', import.meta.url).pathname;

function find(dir, out = []) {
  if (!existsSync(dir)) return out;
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) find(p, out);
    else if (name.endsWith('.test.js')) out.push(p);
  }
  return out;
}

let files = [];
if (suite === 'unit') {
  for (const pkg of readdirSync(join(root, 'packages'))) files.push(...find(join(root, 'packages', pkg, 'dist', 'test')));
} else if (suite === 'integration') {
  files = find(join(root, 'test', 'dist'));
} else {
  console.error('usage: run-tests.mjs unit|integration [node --test options]');
  process.exit(2);
}
if (files.length === 0) {
  console.error(`no ${suite} test files found: did the build run?`);
  process.exit(1);
}
// A hung test fails on its own after 5 minutes (the longest takes about 100 s), and a hung file
// (a handle left open keeps it alive) ends the suite after its budget: CI then reports which,
// instead of running out of time without a word.
const TEST_TIMEOUT_MS = 300_000;
const SUITE_BUDGET_MS = { unit: 20 * 60_000, integration: 50 * 60_000 }[suite];
const r = spawnSync(process.execPath, ['--test', '--test-reporter=spec', `--test-timeout=${TEST_TIMEOUT_MS}`, ...extra, ...files.sort()], {
  stdio: 'inherit',
  timeout: SUITE_BUDGET_MS,
  killSignal: 'SIGKILL',
});
if (r.error?.code === 'ETIMEDOUT') {
  console.error(`${suite} tests did not end within ${SUITE_BUDGET_MS / 60_000} minutes: stopped (the suite that hung is the last one named above without its end)`);
  process.exit(1);
}
process.exit(r.status ?? 1);
