#!/usr/bin/env node
// npm run bench:tls-cost [-- --baseline REF] [--benches control,converge,mesh]
// What mutual TLS costs: runs the earlier issues' benchmarks on this checkout (TLS everywhere) and
// on a baseline commit from before TLS (plaintext gRPC and forwarding), one after the other on
// this machine, and prints one JSON line with both figures and their ratio per benchmark.
// The baseline is built once in a git worktree under $TMPDIR (npm ci from the local npm cache).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

// The last commit of main before TLS (2026-11-25): gRPC and mesh forwarding in plaintext.
const DEFAULT_BASELINE = 'a1a3c29';
const root = new URL('..', import.meta.url).pathname;
const { values } = parseArgs({
  options: {
    baseline: { type: 'string', default: DEFAULT_BASELINE },
    benches: { type: 'string', default: 'control,converge,mesh' },
  },
});

const sh = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
const sha = sh('git', ['rev-parse', '--short', `${values.baseline}^{commit}`], root).trim();
const base = join(tmpdir(), `shoal-baseline-${sha}`);
if (!existsSync(join(base, 'package.json'))) {
  spawnSync('git', ['worktree', 'prune'], { cwd: root });
  sh('git', ['worktree', 'add', '--detach', base, sha], root);
}
if (!existsSync(join(base, 'node_modules'))) sh('npm', ['ci', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error'], base);
sh('npx', ['tsc', '-b'], base);
sh('npx', ['tsc', '-b'], root);

/** Runs one benchmark script in a tree; its last stdout line is its JSON result. */
function bench(tree, script, args) {
  const out = sh(process.execPath, [join(tree, 'test/dist/bench', script), ...args], tree);
  return JSON.parse(out.trim().split('\n').pop());
}

const ratio = (a, b) => Math.round((a / b) * 100) / 100;
const result = { baseline: sha };
const wanted = new Set(values.benches.split(','));
if (wanted.has('control')) {
  const args = ['--managers', '1', '--clients', '32', '--duration', '10', '--ceiling', 'false'];
  const plain = bench(base, 'control-bench.js', args);
  const tls = bench(root, 'control-bench.js', args);
  result.control = { plain_ops_per_s: plain.ops_per_s, tls_ops_per_s: tls.ops_per_s, tls_over_plain: ratio(tls.ops_per_s, plain.ops_per_s) };
}
if (wanted.has('converge')) {
  const plain = bench(base, 'converge-bench.js', []);
  const tls = bench(root, 'converge-bench.js', []);
  // Times: the ratio is plain / TLS, so 1.0 is "as fast", below is slower.
  result.converge = {
    plain_converge_10_s: plain.converge_10_s,
    tls_converge_10_s: tls.converge_10_s,
    plain_scale_to_20_s: plain.scale_to_20_s,
    tls_scale_to_20_s: tls.scale_to_20_s,
    tls_speed_over_plain: ratio(plain.converge_10_s + plain.scale_to_20_s, tls.converge_10_s + tls.scale_to_20_s),
  };
}
if (wanted.has('mesh')) {
  const meshArgs = ['--mesh-mode', 'userland', '--rounds', '3'];
  const plain = bench(base, 'mesh-bench.js', meshArgs);
  const tls = bench(root, 'mesh-bench.js', meshArgs);
  result.mesh = {
    plain_remote_rps: plain.mesh_remote_rps,
    tls_remote_rps: tls.mesh_remote_rps,
    plain_local_rps: plain.mesh_local_rps,
    tls_local_rps: tls.mesh_local_rps,
    remote_tls_over_plain: ratio(tls.mesh_remote_rps, plain.mesh_remote_rps),
    local_tls_over_plain: ratio(tls.mesh_local_rps, plain.mesh_local_rps),
  };
}
console.log(JSON.stringify(result));
