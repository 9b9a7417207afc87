// npm run bench:lab [-- --image shoal/lab-node:dev] [-- --managers 3 --workers 2]
// How long `shoal lab up` takes from nothing (the node image already built: scripts/build-lab-image.sh;
// LAB_IMAGE names another) until every node is Ready in the cluster's own view (what `up` waits
// for, its registry answering included), then how long `lab down` takes, and that down left
// nothing of the lab: no container, network, volume (the registry's included) or state directory.
// Both through the CLI as a user runs it. Prints ONE JSON line; exits 1 when something was left.
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CLI } from '../helpers/cli.js';

const { values } = parseArgs({
  options: {
    image: { type: 'string', default: process.env.LAB_IMAGE ?? 'shoal/lab-node:dev' },
    managers: { type: 'string', default: '3' },
    workers: { type: 'string', default: '2' },
  },
});
/** The target for a 3 + 2 lab on this machine. */
const TARGET_UP_MS = 60_000;
const lab = `bench-${randomBytes(3).toString('hex')}`;
const state = mkdtempSync(join(tmpdir(), 'shoal-lab-bench-'));
const env: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: state };
delete env.SHOAL_HOST;

/** Wall time of `shoal lab ARGS` (ms); a failed command fails the bench with its error. */
function timed(args: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, [CLI, 'lab', ...args, '--name', lab], { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`shoal lab ${args.join(' ')} exited ${code}: ${stderr.trim()}`))));
  });
}

/** How many objects of `kind` (container, network, volume) carry the lab's label. */
function leftOf(kind: string): number {
  const r = spawnSync('docker', [kind, 'ls', ...(kind === 'container' ? ['-a'] : []), '-q', '--filter', `label=org.shoal.lab=${lab}`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`docker ${kind} ls: ${r.stderr.trim()}`);
  return r.stdout.split('\n').filter(Boolean).length;
}

let upMs: number;
try {
  upMs = await timed(['up', '--managers', values.managers!, '--workers', values.workers!, '--image', values.image!]);
} catch (err) {
  // A lab that failed to get ready is left for a look by `up`; a bench cleans up after itself.
  await timed(['down']).catch(() => {});
  rmSync(state, { recursive: true, force: true });
  throw err;
}
const downMs = await timed(['down']);
const left = {
  containers: leftOf('container'),
  networks: leftOf('network'),
  volumes: leftOf('volume'),
  state_dirs: existsSync(join(state, 'shoal', 'labs', lab)) ? 1 : 0,
};
rmSync(state, { recursive: true, force: true });
const clean = Object.values(left).every((n) => n === 0);
console.log(JSON.stringify({
  bench: 'lab', managers: Number(values.managers), workers: Number(values.workers), image: values.image,
  up_ms: Math.round(upMs), target_up_ms: TARGET_UP_MS, up_within_target: upMs <= TARGET_UP_MS, down_ms: Math.round(downMs), left, clean,
}));
if (!clean) process.exitCode = 1;
