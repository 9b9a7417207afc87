// The routing mesh's data plane on one node: a listener per published port that spreads client
// connections over the service's running tasks (local ones directly, remote ones through the
// forwarding listener of the node that runs them), and this node's forwarding listener.
//
// Data path: sockets are piped (both ways); no per-byte JavaScript work, no
// buffering of our own, no idle timeout. Per connection: one backend pick, one connect (retried
// elsewhere on failure), two pipes.

import net from 'node:net';
import { formatHostPort, parseHostPort, unmapIPv4, type HostPort } from './addr.js';
import {
  FORWARD_ACK,
  FORWARD_HEADER_MAX,
  encodeForwardHeader,
  isValidTaskId,
  parseForwardHeader,
  type ForwardRequest,
} from './forward-header.js';
import { encodeProxyV2 } from './proxy-protocol.js';
import type {
  Backend,
  BackendStats,
  MeshLogger,
  MeshOptions,
  MeshStats,
  MeshTable,
  PortStats,
  PublishedPort,
} from './types.js';

const NOOP = (): void => {};
const NOOP_LOGGER: MeshLogger = { debug: NOOP, info: NOOP, warn: NOOP, error: NOOP };
const ACK_BYTE = Buffer.from([FORWARD_ACK]);

/** A backend as the mesh tracks it: the table's entry plus counters and its failure backoff. */
interface BackendState {
  /** Identity across table updates: a change of any of these makes it a new backend. */
  readonly key: string;
  backend: Backend;
  /** Where to connect: the container (local) or the remote node's forwarding listener. */
  readonly target: HostPort;
  active: number;
  total: number;
  failed: number;
  failingUntil: number;
}

interface PortEntry {
  readonly port: number;
  spec: PublishedPort;
  backends: BackendState[];
  /** Round-robin cursor: where the next pick starts looking. */
  rr: number;
  server: net.Server | null;
  listening: boolean;
  binding: Promise<void> | undefined;
  retryTimer: NodeJS.Timeout | undefined;
  /** The last bind error (while not bound), and the code last reported to onPortError. */
  bindError: NodeJS.ErrnoException | undefined;
  reportedCode: string | undefined;
  removed: boolean;
  activeConnections: number;
  totalConnections: number;
  failedConnects: number;
  droppedConnections: number;
}

/** One client connection looking for a backend. */
interface Pending {
  readonly e: PortEntry;
  readonly client: net.Socket;
  readonly tried: BackendState[];
  /** The PROXY v2 endpoints, captured at accept when the port wants them. */
  readonly proxy: { src?: HostPort; dst?: HostPort } | undefined;
}

type ConnectResult = (sock: net.Socket | null, err?: Error, extra?: Buffer, viaDown?: boolean) => void;

function backendKey(b: Backend): string {
  return b.local ? `L|${b.taskId}|${b.targetPort}|${b.addr}` : `R|${b.taskId}|${b.targetPort}|${b.via}`;
}

function localKey(taskId: string, targetPort: number): string {
  return `${taskId}/${targetPort}`;
}

function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code ?? e?.message ?? String(err);
}

function endpoint(addr: string | undefined, port: number | undefined): HostPort | undefined {
  return addr !== undefined && port !== undefined ? { host: unmapIPv4(addr), port } : undefined;
}

export class Mesh {
  private readonly bindHost: string;
  private readonly forwardHost: string;
  private readonly wantForwardPort: number;
  private readonly log: MeshLogger;
  private readonly onPortError: (port: number, err: Error | null) => void;
  private readonly connectTimeoutMs: number;
  private readonly lastConnectTimeoutMs: number;
  private readonly failBackoffMs: number;
  private readonly bindRetryMs: number;
  private readonly forwardHeaderTimeoutMs: number;
  private readonly keepAliveDelayMs: number;

  private readonly ports = new Map<number, PortEntry>();
  /** This node's local backends by `taskId/targetPort`: the only targets the forwarder accepts. */
  private localTargets = new Map<string, BackendState>();
  private forwardServer: net.Server | null = null;
  private boundForwardPort = 0;
  /** Every open socket (clients, backends, forwarded), for close(). */
  private readonly sockets = new Set<net.Socket>();
  private closed = false;
  private readonly fwd = { activeConnections: 0, totalConnections: 0, rejected: 0, failedConnects: 0 };

  constructor(opts: MeshOptions) {
    this.bindHost = opts.bindHost;
    this.forwardHost = opts.forwardHost ?? opts.bindHost;
    this.wantForwardPort = opts.forwardPort ?? 0;
    this.log = opts.logger ?? NOOP_LOGGER;
    this.onPortError = opts.onPortError ?? NOOP;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    this.lastConnectTimeoutMs = Math.max(this.connectTimeoutMs, opts.lastConnectTimeoutMs ?? 5000);
    this.failBackoffMs = opts.failBackoffMs ?? 2000;
    this.bindRetryMs = opts.bindRetryMs ?? 2000;
    this.forwardHeaderTimeoutMs = opts.forwardHeaderTimeoutMs ?? 2000;
    this.keepAliveDelayMs = opts.keepAliveDelayMs ?? 30_000;
  }

  /** The bound port of this node's forwarding listener (0 before `start()`). */
  get forwardPort(): number {
    return this.boundForwardPort;
  }

  /** `HOST:PORT` of the forwarding listener: what other nodes' tables put in `via` for this node. */
  get forwardAddress(): string {
    return formatHostPort(this.forwardHost, this.boundForwardPort);
  }

  /** Binds the forwarding listener on `forwardHost:forwardPort`; rejects if it cannot. */
  async start(): Promise<void> {
    if (this.closed) throw new Error('mesh closed');
    if (this.forwardServer) return;
    const server = net.createServer(
      { allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: this.keepAliveDelayMs },
      (sock) => this.onForwardConnection(sock),
    );
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen({ host: this.forwardHost, port: this.wantForwardPort, exclusive: true }, () => {
        server.removeListener('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.log.warn({ err }, 'mesh: forwarding listener error'));
    this.forwardServer = server;
    this.boundForwardPort = (server.address() as net.AddressInfo).port;
    this.log.info({ addr: this.forwardAddress }, 'mesh: forwarding listener bound');
  }

  /**
   * Applies a whole new table (idempotent; only differences act). Ports that appear (with
   * backends) start listening, ports that disappear stop accepting at once (their open
   * connections go on), backends that disappear get no new connections. The promise resolves
   * once every listener this table wants has been bound or has failed its first attempt.
   */
  update(table: MeshTable): Promise<void> {
    if (this.closed) return Promise.resolve();
    const seen = new Set<number>();
    const pending: Promise<void>[] = [];
    const localTargets = new Map<string, BackendState>();
    for (const spec of table.ports) {
      const port = spec.port;
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        this.log.warn({ port, service: spec.serviceName }, 'mesh: invalid published port ignored');
        continue;
      }
      if (seen.has(port)) {
        this.log.warn({ port, service: spec.serviceName }, 'mesh: port listed twice in the table; first entry kept');
        continue;
      }
      seen.add(port);
      let e = this.ports.get(port);
      if (!e) {
        e = {
          port,
          spec,
          backends: [],
          rr: 0,
          server: null,
          listening: false,
          binding: undefined,
          retryTimer: undefined,
          bindError: undefined,
          reportedCode: undefined,
          removed: false,
          activeConnections: 0,
          totalConnections: 0,
          failedConnects: 0,
          droppedConnections: 0,
        };
        this.ports.set(port, e);
      }
      e.spec = spec;
      e.backends = this.diffBackends(e, spec.backends);
      if (e.rr >= e.backends.length) e.rr = 0;
      for (const b of e.backends) {
        if (!b.backend.local) continue;
        const k = localKey(b.backend.taskId, b.backend.targetPort);
        if (!localTargets.has(k)) localTargets.set(k, b);
      }
      const p = this.reconcileListener(e);
      if (p) pending.push(p);
    }
    for (const [port, e] of this.ports) {
      if (seen.has(port)) continue;
      e.removed = true;
      e.backends = [];
      this.unbind(e, true);
      this.ports.delete(port);
    }
    this.localTargets = localTargets;
    return Promise.all(pending).then(NOOP);
  }

  stats(): MeshStats {
    const now = Date.now();
    const ports: PortStats[] = [];
    for (const e of this.ports.values()) {
      const backendStats: BackendStats[] = e.backends.map((b) => ({
        taskId: b.backend.taskId,
        nodeId: b.backend.nodeId,
        local: b.backend.local,
        active: b.active,
        total: b.total,
        failed: b.failed,
        failing: b.failingUntil > now,
      }));
      const s: PortStats = {
        port: e.port,
        serviceId: e.spec.serviceId,
        serviceName: e.spec.serviceName,
        proxyProtocol: e.spec.proxyProtocol,
        listening: e.listening,
        backends: e.backends.length,
        activeConnections: e.activeConnections,
        totalConnections: e.totalConnections,
        failedConnects: e.failedConnects,
        droppedConnections: e.droppedConnections,
        backendStats,
      };
      if (!e.listening && e.bindError) s.bindError = errCode(e.bindError);
      ports.push(s);
    }
    ports.sort((a, b) => a.port - b.port);
    return { ports, forwarder: { port: this.boundForwardPort, ...this.fwd } };
  }

  /** Closes every listener and every open connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const e of this.ports.values()) {
      e.removed = true;
      e.backends = [];
      this.unbind(e, false);
    }
    this.ports.clear();
    this.localTargets = new Map();
    const fs = this.forwardServer;
    this.forwardServer = null;
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    if (fs) await new Promise<void>((resolve) => fs.close(() => resolve()));
  }

  // ---- table -------------------------------------------------------------------------------

  private diffBackends(e: PortEntry, list: Backend[]): BackendState[] {
    const old = new Map<string, BackendState>();
    for (const b of e.backends) old.set(b.key, b);
    const out: BackendState[] = [];
    const keys = new Set<string>();
    for (const backend of list) {
      const key = backendKey(backend);
      if (keys.has(key)) continue;
      const prev = old.get(key);
      if (prev) {
        prev.backend = backend;
        keys.add(key);
        out.push(prev);
        continue;
      }
      const target = this.backendTarget(backend);
      if (!target) {
        this.log.warn({ port: e.port, backend }, 'mesh: invalid backend ignored');
        continue;
      }
      keys.add(key);
      out.push({ key, backend, target, active: 0, total: 0, failed: 0, failingUntil: 0 });
    }
    return out;
  }

  private backendTarget(b: Backend): HostPort | undefined {
    if (!isValidTaskId(b.taskId)) return undefined;
    if (!Number.isInteger(b.targetPort) || b.targetPort < 1 || b.targetPort > 65535) return undefined;
    const text = b.local ? b.addr : b.via;
    return text === undefined ? undefined : parseHostPort(text);
  }

  // ---- listeners ---------------------------------------------------------------------------

  /** Listens while the port has backends; closes the listener when it has none. */
  private reconcileListener(e: PortEntry): Promise<void> | undefined {
    const want = !e.removed && !this.closed && e.backends.length > 0;
    if (!want) {
      this.unbind(e, true);
      return undefined;
    }
    if (e.server) return e.binding;
    if (e.retryTimer) return undefined;
    return this.bind(e);
  }

  private bind(e: PortEntry): Promise<void> {
    const server = net.createServer(
      {
        allowHalfOpen: true,
        pauseOnConnect: true,
        noDelay: true,
        keepAlive: true,
        keepAliveInitialDelay: this.keepAliveDelayMs,
      },
      (client) => this.accept(e, client),
    );
    e.server = server;
    e.listening = false;
    const p = new Promise<void>((resolve) => {
      server.on('error', (err: NodeJS.ErrnoException) => {
        if (e.server !== server) {
          resolve();
          return;
        }
        if (e.listening) {
          // accept() errors (EMFILE...): the listener stays up.
          this.log.warn({ port: e.port, err }, 'mesh: listener error');
          return;
        }
        e.server = null;
        e.binding = undefined;
        e.bindError = err;
        this.log.warn({ port: e.port, host: this.bindHost, code: err.code, retryMs: this.bindRetryMs }, 'mesh: cannot bind published port; retrying');
        if (e.reportedCode !== errCode(err)) {
          e.reportedCode = errCode(err);
          this.report(e.port, err);
        }
        e.retryTimer = setTimeout(() => {
          e.retryTimer = undefined;
          this.reconcileListener(e);
        }, this.bindRetryMs);
        e.retryTimer.unref();
        resolve();
      });
      server.listen({ host: this.bindHost, port: e.port, exclusive: true }, () => {
        if (e.server !== server) {
          // Unbound while the listen was under way.
          server.close();
          resolve();
          return;
        }
        e.listening = true;
        e.binding = undefined;
        e.bindError = undefined;
        e.reportedCode = undefined;
        this.log.info({ port: e.port, host: this.bindHost, service: e.spec.serviceName }, 'mesh: published port listening');
        this.report(e.port, null);
        resolve();
      });
    });
    e.binding = p;
    return p;
  }

  /** Stops accepting at once (open connections go on) and cancels bind retries. */
  private unbind(e: PortEntry, report: boolean): void {
    if (e.retryTimer) {
      clearTimeout(e.retryTimer);
      e.retryTimer = undefined;
    }
    const s = e.server;
    e.server = null;
    e.binding = undefined;
    if (s) {
      const was = e.listening;
      e.listening = false;
      s.close();
      if (was) this.log.info({ port: e.port, service: e.spec.serviceName }, 'mesh: published port closed');
    }
    e.bindError = undefined;
    if (e.reportedCode !== undefined) {
      e.reportedCode = undefined;
      if (report) this.report(e.port, null);
    }
  }

  private report(port: number, err: Error | null): void {
    try {
      this.onPortError(port, err);
    } catch (cbErr) {
      this.log.error({ port, err: cbErr }, 'mesh: onPortError callback threw');
    }
  }

  // ---- client connections ------------------------------------------------------------------

  private accept(e: PortEntry, client: net.Socket): void {
    if (this.closed) {
      client.destroy();
      return;
    }
    e.totalConnections++;
    e.activeConnections++;
    this.sockets.add(client);
    client.on('error', NOOP); // errors act through 'close' and the pipes
    client.once('close', () => {
      e.activeConnections--;
      this.sockets.delete(client);
    });
    const proxy = e.spec.proxyProtocol
      ? { src: endpoint(client.remoteAddress, client.remotePort), dst: endpoint(client.localAddress, client.localPort) }
      : undefined;
    this.tryNext({ e, client, tried: [], proxy });
  }

  /**
   * Least connections among the backends not tried yet for this client, healthy ones before
   * those in failure backoff; ties go round-robin (the scan starts at the cursor). When the
   * kernel serves the port's local share (`localInKernel`), local backends come after the remote
   * ones of the same health: the listener only gets the remote share.
   */
  private pick(e: PortEntry, tried: BackendState[]): BackendState | undefined {
    const list = e.backends;
    const n = list.length;
    if (n === 0) return undefined;
    const now = Date.now();
    const demoteLocal = e.spec.localInKernel === true;
    let best: BackendState | undefined;
    let bestIdx = 0;
    let bestRank = 4;
    for (let k = 0; k < n; k++) {
      const i = (e.rr + k) % n;
      const b = list[i]!;
      if (tried.length > 0 && tried.includes(b)) continue;
      // 0: healthy, 1: healthy but served by the kernel, 2-3: the same in failure backoff.
      const rank = (b.failingUntil > now ? 2 : 0) + (demoteLocal && b.backend.local ? 1 : 0);
      if (best === undefined || rank < bestRank || (rank === bestRank && b.active < best.active)) {
        best = b;
        bestIdx = i;
        bestRank = rank;
      }
    }
    if (best) e.rr = (bestIdx + 1) % n;
    return best;
  }

  private tryNext(p: Pending): void {
    const { e, client } = p;
    if (client.destroyed) return;
    const b = this.pick(e, p.tried);
    if (!b) {
      // Nothing (left) to try: end the client's connection at once, with a reset.
      e.droppedConnections++;
      client.resetAndDestroy();
      return;
    }
    p.tried.push(b);
    b.active++;
    const done: ConnectResult = (sock, err, extra, viaDown) => {
      if (!sock) {
        b.active--;
        b.failed++;
        e.failedConnects++;
        const until = Date.now() + this.failBackoffMs;
        b.failingUntil = until;
        if (viaDown) {
          // The remote node itself did not answer: pass over its other tasks too.
          for (const o of e.backends) {
            if (!o.backend.local && o.backend.via === b.backend.via && !p.tried.includes(o)) {
              o.failingUntil = until;
              p.tried.push(o);
            }
          }
        }
        this.log.debug({ port: e.port, taskId: b.backend.taskId, nodeId: b.backend.nodeId, err: errCode(err) }, 'mesh: backend connect failed; trying another');
        this.tryNext(p);
        return;
      }
      if (client.destroyed) {
        b.active--;
        sock.destroy();
        return;
      }
      b.total++;
      const header = p.proxy && b.backend.local ? encodeProxyV2(proxyEnds(p.proxy.src, p.proxy.dst)) : undefined;
      this.splice(client, sock, b, header, undefined, extra);
    };
    // A silent backend is given up on quickly while others remain; the last one left gets time for
    // the kernel's SYN retry (a busy server's full accept queue drops SYNs for a second).
    const last = !e.backends.some((o) => !p.tried.includes(o));
    const timeoutMs = last ? this.lastConnectTimeoutMs : this.connectTimeoutMs;
    if (b.backend.local) {
      this.connectLocal(b.target, done, timeoutMs);
    } else {
      const req: ForwardRequest = { taskId: b.backend.taskId, targetPort: b.backend.targetPort, proxyProtocol: p.proxy !== undefined };
      if (p.proxy) {
        if (p.proxy.src) req.client = p.proxy.src;
        if (p.proxy.dst) req.dst = p.proxy.dst;
      }
      this.connectRemote(b.target, encodeForwardHeader(req), done, timeoutMs);
    }
  }

  private connectSocket(target: HostPort): net.Socket {
    return net.connect({
      host: target.host,
      port: target.port,
      allowHalfOpen: true,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: this.keepAliveDelayMs,
    });
  }

  /** Connects to a container; fails on error or after timeoutMs. */
  private connectLocal(target: HostPort, done: ConnectResult, timeoutMs: number): void {
    const sock = this.connectSocket(target);
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        sock.destroy();
        done(null, err);
      } else {
        done(sock);
      }
    };
    const timer = setTimeout(() => finish(new Error('connect timeout')), timeoutMs);
    sock.once('connect', () => finish());
    sock.on('error', (err) => finish(err)); // after the connect: a no-op, the pipes act
  }

  /**
   * Connects to a remote node's forwarding listener, sends the header, and succeeds on the ACK
   * byte (bytes after it are the backend's: handed on as `extra`). A failure to reach the node
   * itself is flagged `viaDown`.
   */
  private connectRemote(target: HostPort, header: string, done: ConnectResult, timeoutMs: number): void {
    const sock = this.connectSocket(target);
    let settled = false;
    let connected = false;
    const finish = (err?: Error, extra?: Buffer): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.removeListener('data', onData);
      if (err) {
        sock.destroy();
        done(null, err, undefined, !connected);
      } else {
        done(sock, undefined, extra);
      }
    };
    const onData = (chunk: Buffer): void => {
      sock.pause();
      if (chunk[0] !== FORWARD_ACK) {
        finish(new Error(`forward refused: ${chunk.toString('latin1', 0, Math.min(chunk.length, 120)).trim()}`));
        return;
      }
      finish(undefined, chunk.length > 1 ? chunk.subarray(1) : undefined);
    };
    let timer = setTimeout(() => finish(new Error('connect timeout (node)')), timeoutMs);
    sock.once('connect', () => {
      if (settled) return;
      connected = true;
      clearTimeout(timer);
      // The remote node waits for the container up to lastConnectTimeoutMs; we give up sooner when
      // another backend is left to try.
      timer = setTimeout(() => finish(new Error('forward timeout')), timeoutMs + 1000);
      sock.write(header);
      sock.on('data', onData);
    });
    sock.on('error', (err) => finish(err));
    sock.on('end', () => finish(new Error('forward closed before ack')));
    sock.on('close', () => finish(new Error('forward closed before ack')));
  }

  /**
   * Joins two connected sockets both ways. `toBack` (a PROXY header, then leftover bytes) is
   * written to the back side first, `toFront` to the front side. Either side's error or reset
   * destroys both; an end (half-close) is passed on.
   */
  private splice(front: net.Socket, back: net.Socket, b: BackendState, header?: Buffer, toBack?: Buffer, toFront?: Buffer): void {
    this.sockets.add(back);
    back.once('close', () => {
      b.active--;
      this.sockets.delete(back);
    });
    if (header) back.write(header);
    if (toBack) back.write(toBack);
    if (toFront) front.write(toFront);
    // pipe(), not stream.pipeline(): pipeline builds abort signals and errors per stream, a
    // cost paid on every connection (and busybox-like servers close after each request). An end
    // is passed on by pipe (half-close); an error (a reset) on either side destroys both.
    const kill = (): void => {
      front.destroy();
      back.destroy();
    };
    front.on('error', kill);
    back.on('error', kill);
    front.pipe(back);
    back.pipe(front);
  }

  // ---- forwarding listener -----------------------------------------------------------------

  private onForwardConnection(sock: net.Socket): void {
    if (this.closed) {
      sock.destroy();
      return;
    }
    this.sockets.add(sock);
    sock.on('error', NOOP);
    sock.once('close', () => this.sockets.delete(sock));
    let buf: Buffer | undefined;
    let settled = false;
    const stop = (): void => {
      settled = true;
      clearTimeout(timer);
      sock.removeListener('data', onData);
      sock.removeListener('end', onEnd);
    };
    const onData = (chunk: Buffer): void => {
      if (settled) return;
      buf = buf ? Buffer.concat([buf, chunk]) : chunk;
      const nl = buf.indexOf(0x0a);
      if (nl < 0 || nl >= FORWARD_HEADER_MAX) {
        if (nl >= 0 || buf.length >= FORWARD_HEADER_MAX) {
          stop();
          this.rejectForward(sock, 'header too long');
        }
        return;
      }
      stop();
      sock.pause();
      const line = buf.toString('latin1', 0, nl);
      const rest = nl + 1 < buf.length ? buf.subarray(nl + 1) : undefined;
      this.forward(sock, line, rest);
    };
    const onEnd = (): void => {
      stop();
      this.rejectForward(sock, 'closed before header');
    };
    const timer = setTimeout(() => {
      stop();
      this.rejectForward(sock, 'header timeout');
    }, this.forwardHeaderTimeoutMs);
    sock.on('data', onData);
    sock.on('end', onEnd);
  }

  private rejectForward(sock: net.Socket, reason: string): void {
    this.fwd.rejected++;
    this.log.debug({ from: sock.remoteAddress, reason }, 'mesh: forwarded connection rejected');
    if (sock.destroyed) return;
    sock.end(`ERR ${reason}\n`, () => sock.destroy());
    // If the peer never reads the line, do not keep the socket.
    setTimeout(() => sock.destroy(), 1000).unref();
  }

  private forward(sock: net.Socket, line: string, rest: Buffer | undefined): void {
    const req = parseForwardHeader(line);
    if (!req) {
      this.rejectForward(sock, 'bad header');
      return;
    }
    const b = this.localTargets.get(localKey(req.taskId, req.targetPort));
    if (!b) {
      this.rejectForward(sock, 'not a local backend');
      return;
    }
    b.active++;
    this.connectLocal(b.target, (back, err) => {
      if (!back) {
        b.active--;
        b.failed++;
        b.failingUntil = Date.now() + this.failBackoffMs;
        this.fwd.failedConnects++;
        this.log.debug({ taskId: req.taskId, err: errCode(err) }, 'mesh: forwarded connect failed');
        this.rejectForward(sock, `connect failed ${errCode(err)}`);
        return;
      }
      if (sock.destroyed) {
        b.active--;
        back.destroy();
        return;
      }
      b.total++;
      this.fwd.totalConnections++;
      this.fwd.activeConnections++;
      sock.once('close', () => this.fwd.activeConnections--);
      sock.write(ACK_BYTE);
      const header = req.proxyProtocol ? encodeProxyV2(proxyEnds(req.client, req.dst)) : undefined;
      this.splice(sock, back, b, header, rest);
    }, this.lastConnectTimeoutMs);
  }
}

function proxyEnds(src: HostPort | undefined, dst: HostPort | undefined) {
  return { srcAddr: src?.host, srcPort: src?.port, dstAddr: dst?.host, dstPort: dst?.port };
}
