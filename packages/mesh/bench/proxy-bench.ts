// Micro-benchmark of the mesh's data path (not the wrk benchmark): HTTP requests per
// second over keep-alive connections and bulk MB/s, directly to a backend, through a mesh whose
// node runs the backend (one hop), and through a mesh on another node (two hops). The backend,
// each mesh node and the load generator run in separate processes.
//
//   node packages/mesh/dist/bench/proxy-bench.js [--connections 32] [--duration 5] [--mb 200] [--transport h2|tcp]
//
// Prints one JSON line.

import { fork, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Mesh, type MeshOptions, type MeshTable } from '../src/index.js';

const BACKEND_HOST = '127.0.0.3';
const BODY = Buffer.alloc(612, 'x'); // about busybox httpd's index page

type Msg = { ready: true; port?: number; httpPort?: number; bulkPort?: number; forwardPort?: number } | { table: MeshTable };

async function listen(server: net.Server, host: string, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => resolve());
  });
  return (server.address() as net.AddressInfo).port;
}

async function roleBackend(): Promise<void> {
  const web = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html', 'content-length': BODY.length });
    res.end(BODY);
  });
  web.keepAliveTimeout = 60_000;
  const httpPort = await listen(web, BACKEND_HOST);
  // Bulk: sends N MB (the first 4 bytes a client writes, big-endian) then ends.
  const chunk = Buffer.alloc(64 * 1024, 7);
  const bulk = net.createServer((s) => {
    s.once('data', (d: Buffer) => {
      let left = d.readUInt32BE(0) * 16;
      const pump = (): void => {
        while (left > 0) {
          left--;
          if (!s.write(chunk)) {
            s.once('drain', pump);
            return;
          }
        }
        s.end();
      };
      pump();
    });
    s.on('error', () => {});
  });
  const bulkPort = await listen(bulk, BACKEND_HOST);
  process.send!({ ready: true, httpPort, bulkPort } satisfies Msg);
}

async function roleMesh(bindHost: string, transport: MeshOptions['forwardTransport']): Promise<void> {
  const mesh = new Mesh({ bindHost, ...(transport ? { forwardTransport: transport } : {}) });
  await mesh.start();
  process.on('message', (m: Msg) => {
    if ('table' in m) void mesh.update(m.table).then(() => process.send!({ ready: true } satisfies Msg));
  });
  process.send!({ ready: true, forwardPort: mesh.forwardPort } satisfies Msg);
}

function spawn(role: string, ...args: string[]): Promise<{ child: ChildProcess; first: Extract<Msg, { ready: true }> }> {
  const child = fork(new URL(import.meta.url).pathname, [role, ...args], { stdio: 'inherit' });
  return new Promise((resolve) => child.once('message', (first: Extract<Msg, { ready: true }>) => resolve({ child, first })));
}

function send(child: ChildProcess, m: Msg): Promise<void> {
  return new Promise((resolve) => {
    child.once('message', () => resolve());
    child.send(m);
  });
}

async function rps(host: string, port: number, connections: number, durationS: number): Promise<{ rps: number; p99_ms: number }> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  const lat: number[] = [];
  const end = Date.now() + durationS * 1000;
  let n = 0;
  const one = (): Promise<void> =>
    new Promise((resolve, reject) => {
      const t0 = process.hrtime.bigint();
      http
        .get({ host, port, agent, path: '/' }, (res) => {
          res.resume();
          res.on('end', () => {
            lat.push(Number(process.hrtime.bigint() - t0) / 1e6);
            n++;
            resolve();
          });
        })
        .on('error', reject);
    });
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < end) await one();
    }),
  );
  agent.destroy();
  lat.sort((a, b) => a - b);
  return { rps: Math.round(n / durationS), p99_ms: Number(lat[Math.floor(lat.length * 0.99)]!.toFixed(2)) };
}

async function bulkMBps(host: string, port: number, mb: number): Promise<number> {
  const t0 = process.hrtime.bigint();
  let got = 0;
  await new Promise<void>((resolve, reject) => {
    const s = net.connect({ host, port });
    const req = Buffer.alloc(4);
    req.writeUInt32BE(mb);
    s.on('connect', () => s.write(req));
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('end', () => resolve());
    s.on('error', reject);
  });
  if (got !== mb * 1024 * 1024) throw new Error(`bulk: got ${got} bytes`);
  return Math.round(mb / (Number(process.hrtime.bigint() - t0) / 1e9));
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      connections: { type: 'string', default: '32' },
      duration: { type: 'string', default: '5' },
      mb: { type: 'string', default: '200' },
      transport: { type: 'string' },
    },
  });
  const conns = Number(values.connections);
  const dur = Number(values.duration);
  const mb = Number(values.mb);
  const backend = await spawn('backend');
  const transport = values.transport ? [values.transport] : [];
  const a = await spawn('mesh', '127.0.0.1', ...transport);
  const b = await spawn('mesh', '127.0.0.2', ...transport);
  const { httpPort, bulkPort } = backend.first;
  const webPort = 30000 + Math.floor(Math.random() * 20000);
  const bigPort = webPort + 1;
  const tables = (self: 'a' | 'b'): MeshTable => {
    const be = (taskId: string, port: number) =>
      self === 'b'
        ? { taskId, nodeId: 'b', local: true, addr: `${BACKEND_HOST}:${port}`, targetPort: port }
        : { taskId, nodeId: 'b', local: false, via: `127.0.0.2:${b.first.forwardPort}`, targetPort: port };
    return {
      ports: [
        { port: webPort, serviceId: 'web', serviceName: 'web', proxyProtocol: false, backends: [be('web1', httpPort!)] },
        { port: bigPort, serviceId: 'bulk', serviceName: 'bulk', proxyProtocol: false, backends: [be('bulk1', bulkPort!)] },
      ],
    };
  };
  await send(a.child, { table: tables('a') });
  await send(b.child, { table: tables('b') });
  try {
    const direct = await rps(BACKEND_HOST, httpPort!, conns, dur);
    const local = await rps('127.0.0.2', webPort, conns, dur);
    const remote = await rps('127.0.0.1', webPort, conns, dur);
    const out = {
      transport: values.transport ?? 'default',
      connections: conns,
      duration_s: dur,
      direct_rps: direct.rps,
      mesh_local_rps: local.rps,
      mesh_remote_rps: remote.rps,
      direct_p99_ms: direct.p99_ms,
      mesh_local_p99_ms: local.p99_ms,
      mesh_remote_p99_ms: remote.p99_ms,
      direct_MBps: await bulkMBps(BACKEND_HOST, bulkPort!, mb),
      mesh_local_MBps: await bulkMBps('127.0.0.2', bigPort, mb),
      mesh_remote_MBps: await bulkMBps('127.0.0.1', bigPort, mb),
    };
    console.log(JSON.stringify(out));
  } finally {
    for (const c of [backend.child, a.child, b.child]) c.kill();
  }
}

const role = process.argv[2];
if (role === 'backend') void roleBackend();
else if (role === 'mesh') void roleMesh(process.argv[3]!, process.argv[4] as MeshOptions['forwardTransport']);
else
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
