// Test helpers: a two-node mesh on loopback (127.0.0.1, 127.0.0.2), fake backends on 127.0.0.3+,
// free ports, raw TCP and HTTP clients.

import { createHash } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { NOOP_LOGGER, type Logger } from '@shoal/api';
import {
  FORWARD_ACK,
  FORWARD_HEADER_MAX,
  Mesh,
  parseForwardHeader,
  parseProxyV2,
  type MeshOptions,
  type MeshTable,
  type ProxyV2Header,
} from '../src/index.js';

export const HOST_A = '127.0.0.1';
export const HOST_B = '127.0.0.2';
export const BACKEND_HOST = '127.0.0.3';
export const BACKEND_HOST2 = '127.0.0.4';

export const quietLogger: Logger = NOOP_LOGGER;

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  obj: Record<string, unknown>;
  msg: string;
}

export function recordingLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const rec = (level: LogEntry['level']) => (obj: object, msg: string) => entries.push({ level, obj: obj as Record<string, unknown>, msg });
  return { logger: { debug: rec('debug'), info: rec('info'), warn: rec('warn'), error: rec('error') }, entries };
}

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

/** A connection that stays open: each ping writes and reads back its echo. */
export async function openEcho(host: string, port: number): Promise<{ s: net.Socket; ping(msg: string): Promise<string> }> {
  const s = net.connect({ host, port });
  await new Promise<void>((resolve, reject) => {
    s.once('connect', resolve);
    s.once('error', reject);
  });
  s.on('error', () => {});
  return {
    s,
    ping(msg) {
      return new Promise<string>((resolve, reject) => {
        let got = '';
        const onData = (c: Buffer) => {
          got += c.toString();
          if (got.length >= msg.length) {
            s.removeListener('data', onData);
            s.removeListener('close', onClose);
            clearTimeout(timer);
            resolve(got);
          }
        };
        const onClose = () => reject(new Error(`closed; got '${got}'`));
        const timer = setTimeout(() => reject(new Error(`no echo; got '${got}'`)), 5000);
        s.on('data', onData);
        s.once('close', onClose);
        s.write(msg);
      });
    },
  };
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

/** `perNode`: options for one node only (e.g. its TLS certificate), over `opts`. */
export async function makeCluster(
  opts: Partial<MeshOptions> = {},
  perNode: { a?: Partial<MeshOptions>; b?: Partial<MeshOptions> } = {},
): Promise<Cluster> {
  const portErrors: Cluster['portErrors'] = [];
  const mk = (node: 'a' | 'b', bindHost: string) =>
    new Mesh({
      bindHost,
      logger: quietLogger,
      bindRetryMs: 300,
      forwardHeaderTimeoutMs: 500,
      onPortError: (port, err) => portErrors.push({ node, port, err: err ? ((err as NodeJS.ErrnoException).code ?? err.message) : null }),
      ...opts,
      ...perNode[node],
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

export interface Relay {
  /** `HOST:PORT` to put in a table's `via` instead of the node's forwarding address. */
  addr: string;
  /** Connections relayed so far (an h2 session is one). */
  connections: number;
  /** Cuts every relayed connection open now (both sides destroyed): a network failure. */
  cutAll(): void;
  /** Stops relaying bytes on every connection open now, without closing them: a peer that hangs. */
  freeze(): void;
  close(): Promise<void>;
}

/**
 * A TCP relay in front of a node's forwarding listener: a's table names it as b's `via`, so a
 * test can count a's connections to b and cut them (killing the h2 session they carry).
 */
export async function tcpRelay(host: string, target: string): Promise<Relay> {
  const t = target.lastIndexOf(':');
  const pairs = new Set<[net.Socket, net.Socket]>();
  const server = net.createServer({ allowHalfOpen: true }, (front) => {
    relay.connections++;
    const back = net.connect({ host: target.slice(0, t), port: Number(target.slice(t + 1)), allowHalfOpen: true });
    const pair: [net.Socket, net.Socket] = [front, back];
    pairs.add(pair);
    const kill = () => {
      front.destroy();
      back.destroy();
      pairs.delete(pair);
    };
    front.on('error', kill);
    back.on('error', kill);
    front.on('close', kill);
    back.on('close', kill);
    front.pipe(back);
    back.pipe(front);
  });
  const port = await listen(server, host);
  const relay: Relay = {
    addr: `${host}:${port}`,
    connections: 0,
    cutAll() {
      for (const [f, b] of [...pairs]) {
        f.destroy();
        b.destroy();
      }
      pairs.clear();
    },
    freeze() {
      for (const [f, b] of pairs) {
        f.unpipe(b);
        b.unpipe(f);
        f.pause();
        b.pause();
      }
    },
    async close() {
      relay.cutAll();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return relay;
}

export interface LegacyForwarder {
  addr: string;
  /** Forwarded connections it served (valid header, backend connected). */
  served: number;
  /** Connections it refused (anything but a valid header: e.g. an HTTP/2 preface). */
  refused: number;
  close(): Promise<void>;
}

/**
 * The forwarding listener of an older node: the `SHOALFWD1` line protocol only (under `tlsOpts`,
 * TLS without ALPN), connecting task `taskId` to `backends[taskId]`.
 */
export async function legacyForwarder(host: string, backends: Record<string, string>, tlsOpts?: tls.TlsOptions): Promise<LegacyForwarder> {
  const socks = new Set<net.Socket>();
  const onConn = (s: net.Socket) => {
    socks.add(s);
    s.on('close', () => socks.delete(s));
    s.on('error', () => {});
    let buf = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = Buffer.concat([buf, c]);
      const nl = buf.indexOf(0x0a);
      if (nl < 0 && buf.length < FORWARD_HEADER_MAX) return;
      s.removeListener('data', onData);
      s.pause();
      const req = nl >= 0 ? parseForwardHeader(buf.toString('latin1', 0, nl)) : undefined;
      const to = req ? backends[req.taskId] : undefined;
      if (!to) {
        fwd.refused++;
        s.end('ERR bad header\n');
        return;
      }
      const i = to.lastIndexOf(':');
      const back = net.connect({ host: to.slice(0, i), port: Number(to.slice(i + 1)), allowHalfOpen: true });
      socks.add(back);
      back.on('close', () => socks.delete(back));
      back.on('error', () => s.destroy());
      s.on('error', () => back.destroy());
      back.on('connect', () => {
        fwd.served++;
        s.write(Buffer.from([FORWARD_ACK]));
        if (nl + 1 < buf.length) back.write(buf.subarray(nl + 1));
        s.pipe(back);
        back.pipe(s);
      });
    };
    s.on('data', onData);
  };
  const server = tlsOpts ? tls.createServer({ ...tlsOpts, allowHalfOpen: true } as tls.TlsOptions, onConn) : net.createServer({ allowHalfOpen: true }, onConn);
  // Under TLS, connections still in their handshake are only reachable as the raw sockets.
  server.on('connection', (raw: net.Socket) => {
    socks.add(raw);
    raw.on('close', () => socks.delete(raw));
  });
  const port = await listen(server, host);
  const fwd: LegacyForwarder = {
    addr: `${host}:${port}`,
    served: 0,
    refused: 0,
    async close() {
      for (const x of socks) x.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  return fwd;
}
