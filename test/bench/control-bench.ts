// npm run bench:control -- --managers 3 --clients 32 --duration 10
// Starts real shoald managers on loopback, then closed-loop clients in this process create
// services (0 replicas) and update them (a scale request, still 0 replicas: the benchmark measures
// the control path, not containers) through the control API over gRPC (the leader's TCP
// address, as a remote `shoal` would). Prints one JSON line.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { parseArgs } from 'node:util';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
  parentPort!.postMessage({ lat, errors });
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
  },
});
const workers = Number(values['client-threads']);
const managers = Number(values.managers);
const clients = Number(values.clients);
const durationMs = Number(values.duration) * 1000;

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
        return new Promise<{ lat: number[]; errors: number }>((resolve, reject) => {
          const wk = new Worker(new URL(import.meta.url), { workerData: { addr, clients: n, ms, tag: `${tag}${w}`, client: values.client, tls: tls ?? undefined } });
          wk.once('message', resolve);
          wk.once('error', reject);
        });
      }),
    );
  await spawnRun(Number(values.warmup) * 1000, 'warm');
  const t0 = Date.now();
  const parts = await spawnRun(durationMs, 'b');
  const elapsed = (Date.now() - t0) / 1000;
  const r = { lat: parts.flatMap((p) => p.lat), errors: parts.reduce((a, p) => a + p.errors, 0) };
  // The ceilings: the same clients against a server that answers at once, with mutual TLS (as
  // Shoal serves) and in plaintext (what TLS itself costs the transport).
  const ceilingOf = async (tls: boolean): Promise<number> => {
    const args = [new URL('./noop-control-server.js', import.meta.url).pathname, ...(tls ? [m1.dataDir] : [])];
    const noop = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    try {
      const [chunk] = (await once(noop.stdout!, 'data')) as [Buffer];
      const addr = `127.0.0.1:${chunk.toString().trim()}`;
      await spawnRun(Number(values.warmup) * 1000, 'warm', addr, tls ? adminTls : null);
      const t1 = Date.now();
      const p2 = await spawnRun(durationMs, 'n', addr, tls ? adminTls : null);
      return Math.round(p2.reduce((a, p) => a + p.lat.length, 0) / ((Date.now() - t1) / 1000));
    } finally {
      noop.kill('SIGTERM');
    }
  };
  let ceiling: number | undefined;
  let ceilingPlain: number | undefined;
  if (values.ceiling !== 'false') {
    ceiling = await ceilingOf(true);
    ceilingPlain = await ceilingOf(false);
  }
  console.log(
    JSON.stringify({
      managers,
      clients,
      ops_per_s: Math.round(r.lat.length / elapsed),
      p50_ms: Math.round(quantile(r.lat, 0.5) * 100) / 100,
      p99_ms: Math.round(quantile(r.lat, 0.99) * 100) / 100,
      errors: r.errors,
      noop_server_ops_per_s: ceiling,
      noop_server_plain_ops_per_s: ceilingPlain,
      tls: true,
      ops: 'create+scale',
      client: values.client,
      client_threads: workers,
    }),
  );
} finally {
  await c.stop();
}
