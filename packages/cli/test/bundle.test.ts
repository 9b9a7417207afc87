// The bundled CLI (scripts/bundle-cli.mjs) behaves as the unbundled one, and bin/shoal.js runs
// the bundle only while the files it was made from are unchanged.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url)); // packages/cli/dist/test → repository root
const CLI_DIR = path.join(ROOT, 'packages/cli');
const UNBUNDLED = path.join(CLI_DIR, 'dist/src/bin.js');
// A directory of the test's own (two levels under packages/cli, as dist/bundle is): a suite
// running at the same time keeps using dist/bundle undisturbed.
const OUT_NAME = `bundle-test-${process.pid}`;
const BUNDLED = path.join(CLI_DIR, 'dist', OUT_NAME, 'bin.js');

function run(entry: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, [entry, ...args], {
    encoding: 'utf8',
    env: { ...process.env, SHOAL_HOST: '', ...env },
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('the bundled CLI', () => {
  before(() => {
    const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/bundle-cli.mjs'), '--out', OUT_NAME], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
  });
  after(() => fs.rmSync(path.dirname(BUNDLED), { recursive: true, force: true }));

  const cases: [string, string[]][] = [
    ['--help', ['--help']],
    ['--version', ['--version']],
    ['service create --help', ['service', 'create', '--help']],
    ['a usage error', ['service', 'scale', 'web']],
    ['an unknown command', ['servce', 'ls']],
    ['a manager that is not there (the gRPC chunk)', ['--host', 'unix:///nonexistent/shoal.sock', 'service', 'ls']],
    ['a TCP manager without a certificate', ['--host', '127.0.0.1:1', '--cert-path', '/nonexistent', 'node', 'ls']],
    ['the completion script', ['completion']],
  ];
  for (const [what, args] of cases) {
    test(`${what}: the same output and exit code as unbundled`, () => {
      const a = run(BUNDLED, args);
      const b = run(UNBUNDLED, args);
      assert.deepEqual(a, b);
    });
  }
});

describe('bin/shoal.js', () => {
  // A copy of the package's layout: bin/shoal.js, a "bundle" and an "unbundled" program that say
  // which they are, and one input file of the bundle.
  let dir: string;
  let input: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-bin-'));
    fs.mkdirSync(path.join(dir, 'bin'));
    fs.mkdirSync(path.join(dir, 'dist/src'), { recursive: true });
    fs.mkdirSync(path.join(dir, 'dist/bundle'), { recursive: true });
    fs.copyFileSync(path.join(CLI_DIR, 'bin/shoal.js'), path.join(dir, 'bin/shoal.js'));
    fs.writeFileSync(path.join(dir, 'package.json'), '{"type":"module"}');
    fs.writeFileSync(path.join(dir, 'dist/src/bin.js'), "console.log('unbundled');");
    fs.writeFileSync(path.join(dir, 'dist/bundle/bin.js'), "console.log('bundle');");
    input = path.join(dir, 'dist/src/input.js');
    fs.writeFileSync(input, '');
    const manifest = { entry: 'bin.js', inputs: { [input]: fs.statSync(input).mtimeMs } };
    fs.writeFileSync(path.join(dir, 'dist/bundle/inputs.json'), JSON.stringify(manifest));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const which = () => run(path.join(dir, 'bin/shoal.js'), []).stdout.trim();

  test('runs the bundle while its inputs are unchanged, else the unbundled program', () => {
    assert.equal(which(), 'bundle');
    const later = new Date(Date.now() + 5_000);
    fs.utimesSync(input, later, later);
    assert.equal(which(), 'unbundled');
  });

  test('runs the unbundled program when an input is gone or there is no bundle', () => {
    fs.rmSync(input, { force: true });
    assert.equal(which(), 'unbundled');
    fs.rmSync(path.join(dir, 'dist/bundle'), { recursive: true });
    assert.equal(which(), 'unbundled');
  });
});
