#!/usr/bin/env node
// Starts a local Shoal cluster in the foreground: three managers (shoald processes), each on its
// own loopback address (127.0.0.1-3, port 4242), data under .shoal/cluster/. The first run
// initializes it; later runs restart the same cluster (`shoald run`). Ctrl-C stops it
// (gracefully: the leader hands over first).
//   npm run cluster                       # then, in another shell:
//   SHOAL_HOST=unix://$PWD/.shoal/cluster/m1/control.sock npx shoal cluster status
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const shoald = join(root, 'packages/daemon/dist/src/bin.js');
const shoal = join(root, 'packages/cli/bin/shoal.js');
const base = join(root, '.shoal/cluster');
const managers = [1, 2, 3].map((i) => ({ name: `m${i}`, addr: `127.0.0.${i}:4242`, dir: join(base, `m${i}`) }));
mkdirSync(base, { recursive: true });
const children = [];

function start(m, args) {
  const child = spawn(process.execPath, [shoald, ...args], { stdio: ['ignore', 'inherit', 'pipe'] });
  createInterface({ input: child.stderr }).on('line', (line) => process.stderr.write(`[${m.name}] ${line}\n`));
  child.on('exit', (code) => console.error(`[${m.name}] exited (${code})`));
  children.push(child);
  return child;
}

function run(args) {
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [shoal, '--host', `unix://${managers[0].dir}/control.sock`, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    c.stdout.on('data', (d) => (out += d));
    c.stderr.on('data', (d) => (err += d));
    c.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(err.trim()))));
  });
}

async function retry(fn, ms = 20_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      if (Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

const fresh = !existsSync(join(managers[0].dir, 'node.json'));
if (fresh) {
  const [m1, ...rest] = managers;
  start(m1, ['init', '--data-dir', m1.dir, '--listen-addr', m1.addr, '--hostname', m1.name]);
  const token = await retry(() => run(['swarm', 'join-token', 'manager', '-q']));
  for (const m of rest) {
    start(m, ['join', '--data-dir', m.dir, '--listen-addr', m.addr, '--join-addr', m1.addr, '--token', token, '--hostname', m.name]);
    await retry(() => run(['node', 'ls']));
  }
} else {
  for (const m of managers) start(m, ['run', '--data-dir', m.dir]);
}
console.log(await retry(() => run(['node', 'ls'])));
console.log(`\ncluster up. Try:\n  export SHOAL_HOST=unix://${managers[0].dir}/control.sock\n  npx shoal cluster status\n(Ctrl-C stops the cluster)`);

let stopping = false;
function stop() {
  if (stopping) return;
  stopping = true;
  for (const c of children) c.kill('SIGTERM');
  setTimeout(() => process.exit(0), 5_000).unref();
  Promise.all(children.map((c) => new Promise((r) => (c.exitCode !== null ? r() : c.once('exit', r))))).then(() => process.exit(0));
}
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
