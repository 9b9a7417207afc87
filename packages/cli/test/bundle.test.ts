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
const OUT = path.join(CLI_DIR, 'dist', OUT_NAME);
// The bundle as bin/shoal.js runs it: through bin/load-bundle.js, with its code caches.
const BUNDLED = path.join(OUT, 'run.mjs');
const LOADER = path.join(CLI_DIR, 'bin/load-bundle.js');

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
    fs.writeFileSync(
      BUNDLED,
      `import { BundleLoader } from ${JSON.stringify(LOADER)};\n` +
        'const loader = new BundleLoader();\n' +
        `loader.load(${JSON.stringify(path.join(OUT, 'bin.cjs'))});\n` +
        // Which files ran, and whether V8 took the cache of each (for the test below).
        "process.on('exit', () => process.env.SHOAL_TEST_CACHES && process.stderr.write(JSON.stringify([...loader.scripts].map(([f, s]) => [path.basename(f), s.cachedDataRejected]))));\n" +
        "import path from 'node:path';\n",
    );
  });
  after(() => fs.rmSync(OUT, { recursive: true, force: true }));

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

  test('the code cache made at build time is the one V8 takes for each file a command runs', () => {
    const r = run(BUNDLED, ['--host', 'unix:///nonexistent/shoal.sock', 'service', 'ls'], { SHOAL_TEST_CACHES: '1' });
    const loaded = JSON.parse(r.stderr.slice(r.stderr.indexOf('[['))) as [string, boolean | undefined][];
    // The entry and the gRPC client's chunk at least, each with a cache V8 did not reject.
    assert.ok(loaded.length >= 2 && loaded.some(([f]) => /^client-.*\.cjs$/.test(f)), JSON.stringify(loaded));
    for (const [file, rejected] of loaded) assert.equal(rejected, false, `${file}: its cache was ${rejected === undefined ? 'missing' : 'rejected'}`);
  });

  test('control.proto and what it imports are inputs: the bundle embeds their descriptor', () => {
    const { inputs } = JSON.parse(fs.readFileSync(path.join(OUT, 'inputs.json'), 'utf8')) as { inputs: Record<string, number> };
    for (const f of ['control.proto', 'types.proto']) assert.ok(path.join(ROOT, 'proto', f) in inputs, `${f} is not an input`);
  });
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
    for (const f of ['load-bundle.js', 'package.json']) fs.copyFileSync(path.join(CLI_DIR, 'bin', f), path.join(dir, 'bin', f));
    fs.writeFileSync(path.join(dir, 'dist/bundle/bin.cjs'), "console.log('bundle');");
    input = path.join(dir, 'dist/src/input.js');
    fs.writeFileSync(input, '');
    const manifest = { entry: 'bin.cjs', inputs: { [input]: fs.statSync(input).mtimeMs } };
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
