// npm run bench:control -- --managers 3 --clients 32 --duration 10
// Starts real shoald managers on loopback, then closed-loop clients in this process create
// services (0 replicas) and update them (a scale request, still 0 replicas: the benchmark measures
// the control path, not containers) through the control API over gRPC (the leader's TCP
// address, as a remote `shoal` would). Prints one JSON line.
//
// The ceiling (the same clients against a no-op grpc-js server) is measured in the same run. On a
// shared machine the load changes from second to second: --rounds N alternates Shoal and the
// ceilings N times (each for --duration / N seconds) so that both see the same load, and the
// servers' CPU time per call (from /proc) is given too, which the load disturbs far less.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { loadavg } from 'node:os';
import { getClientConstructor } from '@shoal/api';
import { managerChannel } from '@shoal/pki';
import { TestCluster } from '../helpers/shoald.js';
import { H2GrpcClient } from './h2-grpc-client.js';

if (!isMainThread) {
  const { addr, clients: n, ms, tag, client, tls } = workerData as {
    addr: string;
    clients: number;
    ms: number;
    tag: string;
    client: string;
    tls?: { ca: string; cert: string; key: string };
  };
  const Ctor = getClientConstructor('shoal.control.Control');
  const sec = tls ? managerChannel({ caPem: tls.ca, certPem: tls.cert, keyPem: tls.key }) : { credentials: grpc.credentials.createInsecure(), options: {} };
  // One channel per client, as separate CLI processes would have; mutual TLS with the admin
  // certificate, as a remote `shoal` has.
  const stubs: any[] = Array.from({ length: n }, () =>
    client === 'h2' ? new H2GrpcClient(addr, 'shoal.control.Control', tls) : new Ctor(addr, sec.credentials, sec.options),
  );
  const call = (stub: any, method: string, req: unknown) =>
    stub instanceof H2GrpcClient
      ? stub.call(method, req)
      : new Promise<unknown>((resolve, reject) =>
          stub[method](req, { deadline: Date.now() + 10_000 }, (err: Error | null, res: unknown) => (err ? reject(err) : resolve(res))),
        );
  const lat: number[] = [];
  let errors = 0;
  // The window is timed here, once the worker is up: starting a worker thread (loading modules)
  // takes a second or more on a loaded machine and must not count.
  const begin = performance.now();
  const end = Date.now() + ms;
  await Promise.all(
    stubs.map(async (stub, k) => {
      let i = 0;
      while (Date.now() < end) {
        const name = `${tag}-${k}-${i++}`;
        for (const [method, req] of [
          ['CreateService', { spec: { name, image: 'busybox', replicas: 0 } }],
          ['ScaleService', { service: name, replicas: 0 }],
        ] as const) {
          const t0 = performance.now();
          try {
            await call(stub, method, req);
            lat.push(performance.now() - t0);
          } catch {
            errors++;
          }
        }
      }
    }),
  );
  for (const s of stubs) s.close();
  parentPort!.postMessage({ lat, errors, s: (performance.now() - begin) / 1000 });
  process.exit(0);
}

const { values } = parseArgs({
  options: {
    managers: { type: 'string', default: '3' },
    clients: { type: 'string', default: '32' },
    duration: { type: 'string', default: '10' },
    warmup: { type: 'string', default: '1' },
    'client-threads': { type: 'string', default: '1' },
    // h2: a lean gRPC client on node:http2, so the clients do not eat the CPU the server needs;
    // grpc-js: the client `shoal` uses.
    client: { type: 'string', default: 'h2' },
    // Also measure the same clients against a no-op grpc-js server (the ceiling on this machine).
    ceiling: { type: 'string', default: 'true' },
    rounds: { type: 'string', default: '1' },
    // Also measure the replicated floor (replicated-floor-server.ts), with the ceilings.
    floor: { type: 'string', default: 'true' },
  },
});
const workers = Number(values['client-threads']);
const managers = Number(values.managers);
const clients = Number(values.clients);
const durationMs = Number(values.duration) * 1000;
const rounds = Math.max(1, Number(values.rounds));
const sliceMs = Math.max(1000, Math.round(durationMs / rounds));

/** CPU seconds (user + system) a process has used so far, from /proc (Linux); 0 if unknown. */
function cpuSeconds(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
  } catch {
    return 0;
  }
}

const round2 = (x: number) => Math.round(x * 100) / 100;

function quantile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))];
}

const c = new TestCluster();
try {
  const [m1] = await c.managers(managers);
  const st = await m1.call<{ leader: string; members: { nodeId: string; addr: string }[] }>('ClusterStatus');
  const leaderAddr = st.members.find((m) => m.nodeId === st.leader)!.addr;
  // The admin certificate `shoald init` wrote: the control API over TCP is mutual TLS.
  const admin = (n: string) => readFileSync(join(m1.dataDir, 'admin', n), 'utf8');
  const adminTls = { ca: admin('ca.pem'), cert: admin('cert.pem'), key: admin('key.pem') };
  // The clients run in worker threads: one Node event loop cannot drive 32 gRPC channels fast
  // enough to measure the server (it saturates first).
  const perWorker = Math.ceil(clients / workers);
  // tls null: plaintext (the ceiling's baseline).
  const spawnRun = (ms: number, tag: string, addr = leaderAddr, tls: typeof adminTls | null = adminTls) =>
    Promise.all(
      Array.from({ length: workers }, (_, w) => {
        const n = Math.min(perWorker, clients - w * perWorker);
        return new Promise<{ lat: number[]; errors: number; s: number }>((resolve, reject) => {
          const wk = new Worker(new URL(import.meta.url), { workerData: { addr, clients: n, ms, tag: `${tag}${w}`, client: values.client, tls: tls ?? undefined } });
          wk.once('message', resolve);
          wk.once('error', reject);
        });
      }),
    );
  // The ceilings: the same clients against a server that answers at once, with mutual TLS (as
  // Shoal serves) and in plaintext (what TLS itself costs the transport).
  const startNoop = async (tls: boolean): Promise<{ proc: ChildProcess; addr: string }> => {
    const args = [new URL('./noop-control-server.js', import.meta.url).pathname, ...(tls ? [m1.dataDir] : [])];
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    const [chunk] = (await once(proc.stdout!, 'data')) as [Buffer];
    return { proc, addr: `127.0.0.1:${chunk.toString().trim()}` };
  };
  const ceilings = values.ceiling !== 'false' ? [await startNoop(true), await startNoop(false)] : [];
  // The floor: the same number of processes as managers, persisting and replicating each call's
  // request with nothing else (replicated-floor-server.ts). What Shoal reaches next to it is what
  // Raft, the store and the control API's own logic cost; what the floor reaches next to the no-op
  // ceiling is what any replicated, durable write costs on this machine.
  const startFloor = async (args: string[]): Promise<{ proc: ChildProcess; addr: string }> => {
    const proc = spawn(process.execPath, [new URL('./replicated-floor-server.js', import.meta.url).pathname, m1.dataDir, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [chunk] = (await once(proc.stdout!, 'data')) as [Buffer];
    return { proc, addr: `127.0.0.1:${chunk.toString().trim()}` };
  };
  const floorProcs: { proc: ChildProcess; addr: string }[] = [];
  if (values.ceiling !== 'false' && values.floor !== 'false') {
    for (let i = 1; i < managers; i++) floorProcs.push(await startFloor(['follower']));
    floorProcs.unshift(await startFloor(['leader', ...floorProcs.map((f) => f.addr)]));
  }
  const floor = { ops: 0, s: 0, cpu: 0 };
  try {
    await spawnRun(Number(values.warmup) * 1000, 'warm');
    for (const [i, n] of ceilings.entries()) await spawnRun(Number(values.warmup) * 1000, 'warm', n.addr, i === 0 ? adminTls : null);
    if (floorProcs[0]) await spawnRun(Number(values.warmup) * 1000, 'warm', floorProcs[0].addr);
    const lat: number[] = [];
    let errors = 0;
    let elapsed = 0;
    const noop = ceilings.map(() => ({ ops: 0, s: 0, cpu: 0 }));
    const leaderPid = c.daemons.find((d) => d.addr === leaderAddr)?.child?.pid;
    let cpuAll = 0;
    let cpuLeader = 0;
    const allPids = c.daemons.map((d) => d.child?.pid);
    for (let r = 0; r < rounds; r++) {
      const cpu0 = allPids.reduce<number>((a, p) => a + cpuSeconds(p), 0);
      const lead0 = cpuSeconds(leaderPid);
      const parts = await spawnRun(sliceMs, `b${r}-`);
      elapsed += Math.max(...parts.map((p) => p.s));
      cpuAll += allPids.reduce<number>((a, p) => a + cpuSeconds(p), 0) - cpu0;
      cpuLeader += cpuSeconds(leaderPid) - lead0;
      for (const p of parts) {
        for (const x of p.lat) lat.push(x);
        errors += p.errors;
      }
      for (const [i, n] of ceilings.entries()) {
        const c0 = cpuSeconds(n.proc.pid);
        const p2 = await spawnRun(sliceMs, `n${r}-`, n.addr, i === 0 ? adminTls : null);
        noop[i]!.s += Math.max(...p2.map((p) => p.s));
        noop[i]!.ops += p2.reduce((a, p) => a + p.lat.length, 0);
        noop[i]!.cpu += cpuSeconds(n.proc.pid) - c0;
      }
      if (floorProcs[0]) {
        const cpuFloor = () => floorProcs.reduce((a, f) => a + cpuSeconds(f.proc.pid), 0);
        const c0 = cpuFloor();
        const p3 = await spawnRun(sliceMs, `f${r}-`, floorProcs[0].addr);
        floor.s += Math.max(...p3.map((p) => p.s));
        floor.ops += p3.reduce((a, p) => a + p.lat.length, 0);
        floor.cpu += cpuFloor() - c0;
      }
    }
    const ops = lat.length;
    const ceiling = noop[0] ? Math.round(noop[0].ops / noop[0].s) : undefined;
    const ceilingPlain = noop[1] ? Math.round(noop[1].ops / noop[1].s) : undefined;
    const opsPerS = Math.round(ops / elapsed);
    const floorOps = floor.ops ? Math.round(floor.ops / floor.s) : undefined;
    console.log(
      JSON.stringify({
        managers,
        clients,
        ops_per_s: opsPerS,
        p50_ms: Math.round(quantile(lat, 0.5) * 100) / 100,
        p99_ms: Math.round(quantile(lat, 0.99) * 100) / 100,
        errors,
        noop_server_ops_per_s: ceiling,
        noop_server_plain_ops_per_s: ceilingPlain,
        ratio: ceiling ? round2(opsPerS / ceiling) : undefined,
        floor_ops_per_s: floorOps,
        // The most a replicated, durable write could reach against the no-op ceiling here, and
        // how much of that floor Shoal reaches.
        floor_ratio: floorOps && ceiling ? round2(floorOps / ceiling) : undefined,
        vs_floor: floorOps ? round2(opsPerS / floorOps) : undefined,
        // CPU per call: every manager together, the leader alone, and the no-op server with TLS.
        managers_cpu_ms_per_op: ops ? round2((1000 * cpuAll) / ops) : undefined,
        leader_cpu_ms_per_op: ops ? round2((1000 * cpuLeader) / ops) : undefined,
        noop_cpu_ms_per_op: noop[0]?.ops ? round2((1000 * noop[0].cpu) / noop[0].ops) : undefined,
        floor_cpu_ms_per_op: floor.ops ? round2((1000 * floor.cpu) / floor.ops) : undefined,
        rounds,
        duration_s: Math.round(elapsed),
        tls: true,
        ops: 'create+scale',
        client: values.client,
        client_threads: workers,
        load: loadavg().map((x) => round2(x)),
      }),
    );
  } finally {
    for (const n of [...ceilings, ...floorProcs]) n.proc.kill('SIGTERM');
  }
} finally {
  await c.stop();
}
