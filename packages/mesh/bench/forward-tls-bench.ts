// The cost of the forwarding hop for busybox-httpd-like traffic: every request is a new client
// connection (the backend answers and closes). Connections per second through
// client → mesh A (127.0.0.1) → mesh B's forwarding listener (127.0.0.2) → backend (127.0.0.3),
// with the hop as the `tcp` transport (a connection per client connection) in plain TCP, in TLS
// (sessions resumed) and in TLS with a full handshake every time, and as the `h2` transport (one
// long-lived HTTP/2 session, a stream per client connection) in h2c and over TLS. Backend, each
// mesh and the load generator run in separate processes.
//
//   node packages/mesh/dist/bench/forward-tls-bench.js [--connections 32] [--duration 5] [--rounds 1]
//     [--modes plain,tls,tls_no_resume,h2c,tls_h2]
//
// Prints one JSON line; with several rounds, the medians (modes alternate within a round, so a
// slow spell on a shared machine does not hit one mode only).

import { fork, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import { parseArgs } from 'node:util';
import { Mesh, type MeshStats, type MeshTable, type MeshTls } from '../src/index.js';
import { freePort } from '../test/helpers.js';
import { makeCa } from '../test/tls-certs.js';

const HOST_A = '127.0.0.1';
const HOST_B = '127.0.0.2';
const BACKEND_HOST = '127.0.0.3';
const REQUEST = 'GET / HTTP/1.0\r\nHost: bench\r\n\r\n';
const BODY = 'x'.repeat(612); // about busybox httpd's index page
const RESPONSE = `HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nContent-Length: ${BODY.length}\r\n\r\n${BODY}`;

type Mode = 'plain' | 'tls' | 'tls_no_resume' | 'h2c' | 'tls_h2';
const MODES: Mode[] = ['plain', 'tls', 'tls_no_resume', 'h2c', 'tls_h2'];
type MeshConfig = { bindHost: string; tls?: MeshTls; reuse: boolean; transport: 'h2' | 'tcp' };
type ToChild = { config: MeshConfig } | { table: MeshTable } | { stats: true };
type FromChild = { ready: true; port?: number; forwardAddress?: string; stats?: MeshStats; cpuUs?: number };

async function roleBackend(): Promise<void> {
  // Like busybox httpd: read the request, answer, close.
  const server = net.createServer((s) => {
    s.on('error', () => {});
    s.once('data', () => s.end(RESPONSE));
  });
  await new Promise<void>((resolve) => server.listen({ host: BACKEND_HOST, port: 0, backlog: 4096 }, resolve));
  process.send!({ ready: true, port: (server.address() as net.AddressInfo).port } satisfies FromChild);
}

function roleMesh(): void {
  let mesh: Mesh | undefined;
  process.on('message', (m: ToChild) => {
    if ('config' in m) {
      const c = m.config;
      mesh = new Mesh({ bindHost: c.bindHost, tlsSessionReuse: c.reuse, forwardTransport: c.transport, ...(c.tls ? { tls: c.tls } : {}) });
      void mesh.start().then(() => process.send!({ ready: true, forwardAddress: mesh!.forwardAddress } satisfies FromChild));
    } else if ('table' in m) {
      void mesh!.update(m.table).then(() => process.send!({ ready: true } satisfies FromChild));
    } else {
      const cpu = process.cpuUsage();
      process.send!({ ready: true, stats: mesh!.stats(), cpuUs: cpu.user + cpu.system } satisfies FromChild);
    }
  });
}

function spawn(role: string): ChildProcess {
  return fork(new URL(import.meta.url).pathname, [role], { stdio: 'inherit' });
}

function ask(child: ChildProcess, m?: ToChild): Promise<FromChild> {
  return new Promise((resolve) => {
    child.once('message', (r: FromChild) => resolve(r));
    if (m) child.send(m);
  });
}

/** One request on a new connection; true if the whole response came back. */
function oneRequest(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: HOST_A, port, noDelay: true });
    let got = 0;
    s.on('connect', () => s.write(REQUEST));
    s.on('data', (d: Buffer) => (got += d.length));
    s.on('error', () => {});
    s.on('close', () => resolve(got === RESPONSE.length));
    s.setTimeout(10_000, () => s.destroy());
  });
}

async function load(port: number, connections: number, durationMs: number): Promise<{ ok: number; errors: number }> {
  const end = Date.now() + durationMs;
  let ok = 0;
  let errors = 0;
  await Promise.all(
    Array.from({ length: connections }, async () => {
      while (Date.now() < end) {
        if (await oneRequest(port)) ok++;
        else errors++;
      }
    }),
  );
  return { ok, errors };
}

async function runMode(
  mode: Mode,
  material: { a: MeshTls; b: MeshTls },
  backendPort: number,
  connections: number,
  durationS: number,
): Promise<{ cps: number; errors: number; cpuMsA: number; cpuMsB: number; resumed?: number; sessions?: number }> {
  const a = spawn('mesh');
  const b = spawn('mesh');
  try {
    const tlsOn = mode !== 'plain' && mode !== 'h2c';
    const reuse = mode !== 'tls_no_resume';
    const transport = mode === 'h2c' || mode === 'tls_h2' ? 'h2' : 'tcp';
    const [, bReady] = await Promise.all([
      ask(a, { config: { bindHost: HOST_A, reuse, transport, ...(tlsOn ? { tls: material.a } : {}) } }),
      ask(b, { config: { bindHost: HOST_B, reuse, transport, ...(tlsOn ? { tls: material.b } : {}) } }),
    ]);
    // Checked free: a port someone else holds would fail a whole run with instant resets.
    const port = await freePort([HOST_A]);
    const spec = (backend: MeshTable['ports'][number]['backends'][number]): MeshTable => ({
      ports: [{ port, serviceId: 'web', serviceName: 'web', proxyProtocol: false, backends: [backend] }],
    });
    await ask(b, { table: spec({ taskId: 'web1', nodeId: 'b', local: true, addr: `${BACKEND_HOST}:${backendPort}`, targetPort: backendPort }) });
    await ask(a, { table: spec({ taskId: 'web1', nodeId: 'b', local: false, via: bReady.forwardAddress!, targetPort: backendPort }) });
    await load(port, connections, 1000); // warm-up: JIT, first handshakes
    const [a0, b0] = await Promise.all([ask(a, { stats: true }), ask(b, { stats: true })]);
    const r = await load(port, connections, durationS * 1000);
    const [a1, b1] = await Promise.all([ask(a, { stats: true }), ask(b, { stats: true })]);
    const [before, after] = [a0.stats!.forwarder, a1.stats!.forwarder];
    // CPU per connection of each node: what TLS costs, less dependent than connections/s on what
    // else the machine runs.
    const perConn = (x: FromChild, y: FromChild) => Number(((y.cpuUs! - x.cpuUs!) / 1000 / Math.max(1, r.ok)).toFixed(3));
    const out: { cps: number; errors: number; cpuMsA: number; cpuMsB: number; resumed?: number; sessions?: number } = {
      cps: Math.round(r.ok / durationS),
      errors: r.errors,
      cpuMsA: perConn(a0, a1),
      cpuMsB: perConn(b0, b1),
    };
    if (tlsOn && transport === 'tcp') {
      const connects = after.tlsConnects - before.tlsConnects;
      out.resumed = connects > 0 ? Number(((after.tlsResumed - before.tlsResumed) / connects).toFixed(3)) : 0;
    }
    // h2: how many sessions carried the whole run (1 expected: nothing is re-established).
    if (transport === 'h2') out.sessions = after.h2SessionsOpened;
    return out;
  } finally {
    a.kill();
    b.kill();
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((x, y) => x - y);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    args: process.argv.slice(2),
    options: {
      connections: { type: 'string', default: '32' },
      duration: { type: 'string', default: '5' },
      rounds: { type: 'string', default: '1' },
      modes: { type: 'string' },
    },
  });
  const connections = Number(values.connections);
  const durationS = Number(values.duration);
  const rounds = Number(values.rounds);
  const ca = await makeCa('Shoal bench CA');
  const backend = spawn('backend');
  const backendReady = ask(backend);
  try {
    const material = { a: ca.tls(await ca.issue('node-a')), b: ca.tls(await ca.issue('node-b')) };
    const backendPort = (await backendReady).port!;
    const modes = values.modes ? (values.modes.split(',') as Mode[]) : MODES;
    for (const m of modes) if (!MODES.includes(m)) throw new Error(`unknown mode ${m}`);
    const perMode = <T>(v: () => T) => Object.fromEntries(MODES.map((m) => [m, v()])) as Record<Mode, T>;
    const cps = perMode<number[]>(() => []);
    const errors = perMode(() => 0);
    const resumed = perMode<number[]>(() => []);
    const sessions = perMode<number[]>(() => []);
    const cpuA = perMode<number[]>(() => []);
    const cpuB = perMode<number[]>(() => []);
    for (let round = 0; round < rounds; round++) {
      for (const mode of modes) {
        const r = await runMode(mode, material, backendPort, connections, durationS);
        cps[mode].push(r.cps);
        errors[mode] += r.errors;
        cpuA[mode].push(r.cpuMsA);
        cpuB[mode].push(r.cpuMsB);
        if (r.resumed !== undefined) resumed[mode].push(r.resumed);
        if (r.sessions !== undefined) sessions[mode].push(r.sessions);
      }
    }
    const med = (m: Mode) => (cps[m].length ? Math.round(median(cps[m])) : null);
    const ratio = (m: Mode) => {
      const x = med(m);
      const p = med('plain');
      return x !== null && p ? Number((x / p).toFixed(2)) : null;
    };
    const cpuMs = Object.fromEntries(modes.map((m) => [m, { a: median(cpuA[m]), b: median(cpuB[m]) }]));
    console.log(
      JSON.stringify({
        plain_cps: med('plain'),
        tls_cps: med('tls'),
        tls_no_resume_cps: med('tls_no_resume'),
        h2c_cps: med('h2c'),
        tls_h2_cps: med('tls_h2'),
        tls_over_plain: ratio('tls'),
        tls_no_resume_over_plain: ratio('tls_no_resume'),
        h2c_over_plain: ratio('h2c'),
        tls_h2_over_plain: ratio('tls_h2'),
        tls_resumed_share: resumed.tls.length ? Math.min(...resumed.tls) : null,
        tls_no_resume_resumed_share: resumed.tls_no_resume.length ? Math.max(...resumed.tls_no_resume) : null,
        h2_sessions: { h2c: sessions.h2c, tls_h2: sessions.tls_h2 },
        cpu_ms_per_conn: cpuMs,
        errors,
        connections,
        duration_s: durationS,
        rounds,
        runs: cps,
      }),
    );
  } finally {
    backend.kill();
    await ca.remove();
  }
}

const role = process.argv[2];
if (role === 'backend') void roleBackend();
else if (role === 'mesh') roleMesh();
else
  main().catch((err) => {
    console.error(err);
    process.exit(1);
  });
