// Test helpers: a two-node mesh on loopback (127.0.0.1, 127.0.0.2), fake backends on 127.0.0.3+,
// free ports, raw TCP and HTTP clients.

import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { Mesh, parseProxyV2, type MeshLogger, type MeshOptions, type MeshTable, type ProxyV2Header } from '../src/index.js';

export const HOST_A = '127.0.0.1';
export const HOST_B = '127.0.0.2';
export const BACKEND_HOST = '127.0.0.3';
export const BACKEND_HOST2 = '127.0.0.4';

export const quietLogger: MeshLogger = { debug() {}, info() {}, warn() {}, error() {} };

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A port in the high range that is free on every given host right now. */
export async function freePort(hosts: string[] = [HOST_A, HOST_B]): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = 20000 + Math.floor(Math.random() * 40000);
    let ok = true;
    for (const h of hosts) {
      if (!(await canBind(h, port))) {
        ok = false;
        break;
      }
    }
    if (ok) return port;
  }
  throw new Error('no free port found');
}

function canBind(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

export async function listen(server: net.Server, host: string, port = 0): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host, port }, () => {
      server.removeListener('error', reject);
      resolve();
    });
  });
  return (server.address() as net.AddressInfo).port;
}

export interface Backend {
  name: string;
  addr: string;
  port: number;
  connections: number;
  close(): Promise<void>;
}

function track(server: net.Server, b: { connections: number }): () => Promise<void> {
  const socks = new Set<net.Socket>();
  server.on('connection', (s) => {
    b.connections++;
    socks.add(s);
    s.on('close', () => socks.delete(s));
  });
  return () =>
    new Promise<void>((resolve) => {
      for (const s of socks) s.destroy();
      server.close(() => resolve());
    });
}

/** HTTP backend answering every request with its name. */
export async function httpBackend(name: string, host = BACKEND_HOST): Promise<Backend> {
  const server = http.createServer((req, res) => {
    req.resume();
    req.on('end', () => res.end(name));
  });
  const b = { name, addr: '', port: 0, connections: 0, close: async () => {} };
  b.close = track(server, b);
  b.port = await listen(server, host);
  b.addr = `${host}:${b.port}`;
  return b;
}

/**
 * Raw TCP backend. Modes:
 * - echo: echoes bytes back;
 * - halfclose: reads until the client ends its side, then answers `<name> got N bytes` and ends;
 * - proxy: parses a PROXY v2 header, reads until end, answers JSON {name, header, payload} and ends;
 * - sinkhash: reads until end, answers the sha256 hex of what it got, and ends;
 * - source: sends `data` and ends.
 */
export async function tcpBackend(
  name: string,
  mode: 'echo' | 'halfclose' | 'proxy' | 'sinkhash' | 'source',
  host = BACKEND_HOST,
  data?: Buffer,
): Promise<Backend> {
  const server = net.createServer({ allowHalfOpen: true }, (s) => {
    s.on('error', () => {});
    if (mode === 'echo') {
      s.pipe(s);
    } else if (mode === 'halfclose') {
      let n = 0;
      s.on('data', (c: Buffer) => (n += c.length));
      s.on('end', () => s.end(`${name} got ${n} bytes`));
    } else if (mode === 'proxy') {
      let buf = Buffer.alloc(0);
      s.on('data', (c: Buffer) => (buf = Buffer.concat([buf, c])));
      s.on('end', () => {
        let header: ProxyV2Header | undefined;
        let err: string | undefined;
        try {
          header = parseProxyV2(buf);
        } catch (e) {
          err = (e as Error).message;
        }
        const payload = header ? buf.subarray(header.length).toString() : buf.toString();
        s.end(JSON.stringify({ name, header, err, raw: buf.subarray(0, header?.length ?? 0).toString('hex'), payload }));
      });
    } else if (mode === 'sinkhash') {
      const h = createHash('sha256');
      s.on('data', (c: Buffer) => h.update(c));
      s.on('end', () => s.end(h.digest('hex')));
    } else {
      s.resume();
      s.end(data ?? Buffer.alloc(0));
    }
  });
  const b = { name, addr: '', port: 0, connections: 0, close: async () => {} };
  b.close = track(server, b);
  b.port = await listen(server, host);
  b.addr = `${host}:${b.port}`;
  return b;
}

/** A port on `host` that refuses connections (bound once, then closed). */
export async function deadAddr(host = BACKEND_HOST): Promise<string> {
  const s = net.createServer();
  const port = await listen(s, host);
  await new Promise<void>((r) => s.close(() => r()));
  return `${host}:${port}`;
}

/** One HTTP GET on a new connection; resolves with the body. */
export function get(host: string, port: number, path = '/'): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('request timeout')));
  });
}

/** `n` GETs one after the other, each on a new connection; the bodies. */
export async function serialGet(n: number, host: string, port: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await get(host, port));
  return out;
}

/**
 * Raw TCP exchange: connect (optionally from `localAddress`), write `send`, end our side, and
 * collect everything until the other side ends. Resolves with the bytes, or rejects on error.
 */
export function exchange(host: string, port: number, send: Buffer | string, localAddress?: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host, port, allowHalfOpen: true, ...(localAddress ? { localAddress } : {}) });
    const chunks: Buffer[] = [];
    s.on('connect', () => s.end(send));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('end', () => resolve(Buffer.concat(chunks)));
    s.on('error', reject);
    s.setTimeout(15_000, () => s.destroy(new Error('exchange timeout')));
  });
}

/** How a connection attempt ended: 'refused' (ECONNREFUSED), or closed after connecting ('reset', 'closed'). */
export function connectOutcome(host: string, port: number): Promise<{ outcome: 'refused' | 'reset' | 'closed' | 'data'; ms: number }> {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let outcome: 'refused' | 'reset' | 'closed' | 'data' | undefined;
    s.on('data', () => {
      outcome = 'data';
      s.destroy();
    });
    s.on('error', (err: NodeJS.ErrnoException) => {
      outcome ??= err.code === 'ECONNREFUSED' ? 'refused' : 'reset';
    });
    s.on('close', () => resolve({ outcome: outcome ?? 'closed', ms: Date.now() - t0 }));
    s.setTimeout(10_000, () => s.destroy());
  });
}

export interface Task {
  taskId: string;
  node: 'a' | 'b';
  addr: string;
}

export interface PortSpec {
  port: number;
  proxyProtocol?: boolean;
  tasks: Task[];
}

export interface Cluster {
  a: Mesh;
  b: Mesh;
  portErrors: { node: 'a' | 'b'; port: number; err: string | null }[];
  /** Each node's table for the cluster-wide view `ports`. */
  tableFor(node: 'a' | 'b', ports: PortSpec[]): MeshTable;
  /** Feeds both meshes their tables. */
  apply(ports: PortSpec[]): Promise<void>;
  close(): Promise<void>;
}

export async function makeCluster(opts: Partial<MeshOptions> = {}): Promise<Cluster> {
  const portErrors: Cluster['portErrors'] = [];
  const mk = (node: 'a' | 'b', bindHost: string) =>
    new Mesh({
      bindHost,
      logger: quietLogger,
      bindRetryMs: 300,
      forwardHeaderTimeoutMs: 500,
      onPortError: (port, err) => portErrors.push({ node, port, err: err ? ((err as NodeJS.ErrnoException).code ?? err.message) : null }),
      ...opts,
    });
  const a = mk('a', HOST_A);
  const b = mk('b', HOST_B);
  await a.start();
  await b.start();
  const meshes = { a, b };
  const tableFor = (node: 'a' | 'b', ports: PortSpec[]): MeshTable => ({
    ports: ports.map((p) => ({
      port: p.port,
      serviceId: `svc-${p.port}`,
      serviceName: `web-${p.port}`,
      proxyProtocol: p.proxyProtocol ?? false,
      backends: p.tasks.map((t) => {
        const targetPort = Number(t.addr.slice(t.addr.lastIndexOf(':') + 1));
        return t.node === node
          ? { taskId: t.taskId, nodeId: t.node, local: true, addr: t.addr, targetPort }
          : { taskId: t.taskId, nodeId: t.node, local: false, via: meshes[t.node].forwardAddress, targetPort };
      }),
    })),
  });
  return {
    a,
    b,
    portErrors,
    tableFor,
    async apply(ports) {
      await Promise.all([a.update(tableFor('a', ports)), b.update(tableFor('b', ports))]);
    },
    async close() {
      await Promise.all([a.close(), b.close()]);
    },
  };
}

export async function waitFor(cond: () => boolean | Promise<boolean>, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await sleep(25);
  }
}

export function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
