// npm run bench:cli [-- --rounds 15] [-- --cli PATH]
// How long the `shoal` CLI takes as a whole process, next to `node -e 0` (the floor of any Node
// program) measured in the same rounds: `shoal --help`, `shoal --version`, and `shoal service ls`
// against a one-manager cluster this script starts (shoald on 127.0.0.1, its unix control socket).
// The commands run in turn (node, help, version, ls, node, ...) so that a drift of the machine's
// speed touches them all alike. Prints ONE JSON line: medians in ms and each median's ratio over
// `node -e 0`'s. --cli points at another build's entry (e.g. a checkout of main) to compare.
// Two floors of `service ls` under any CLI code (cli-floor.cts, from this checkout's bundle):
// grpc_load (Node, then the bundle's gRPC client chunk loaded: grpc-js, protobufjs) and grpc_call
// (that, then one ListServices answered, without yargs or output).
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { ROOT, TestCluster } from '../helpers/shoald.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '15' },
    cli: { type: 'string', default: join(ROOT, 'packages/cli/bin/shoal.js') },
  },
});
const rounds = Math.max(1, Number(values.rounds));
const FLOOR = join(ROOT, 'test/dist/bench/cli-floor.cjs');
const cli = values.cli!;
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;

/** Wall time of one process from spawn to exit (ms); a failed command fails the bench. */
function timed(args: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`node ${args.join(' ')} exited ${code}: ${stderr.trim()}`));
    });
  });
}

const c = new TestCluster();
try {
  const [m1] = await c.managers(1);
  // One service in the list, so that `ls` formats a row (0 replicas: no container to wait for).
  await m1!.call('CreateService', {
    spec: { name: 'bench', image: 'shoal/busybox:latest', replicas: 0 },
  });
  // No SHOAL_HOST from the caller's shell: --host names the manager.
  const env = { ...process.env };
  delete env.SHOAL_HOST;
  const cases: Record<string, string[]> = {
    node_e0: ['-e', '0'],
    help: [cli, '--help'],
    version: [cli, '--version'],
    service_ls: [cli, '--host', `unix://${m1!.socket}`, 'service', 'ls'],
    grpc_load: [FLOOR, 'load'],
    grpc_call: [FLOOR, 'call', m1!.socket],
  };
  const times: Record<string, number[]> = Object.fromEntries(Object.keys(cases).map((k) => [k, []]));
  // One warm-up round (the file cache), not counted.
  for (const args of Object.values(cases)) await timed(args, env);
  for (let r = 0; r < rounds; r++) {
    for (const [k, args] of Object.entries(cases)) times[k]!.push(await timed(args, env));
  }
  const base = median(times.node_e0!);
  const out: Record<string, unknown> = { bench: 'cli', rounds, cli };
  for (const k of Object.keys(cases)) out[`${k}_ms`] = Math.round(median(times[k]!) * 10) / 10;
  for (const k of Object.keys(cases).filter((k) => k !== 'node_e0')) out[`${k}_ratio`] = Math.round((median(times[k]!) / base) * 100) / 100;
  console.log(JSON.stringify(out));
} finally {
  await c.stop();
}
