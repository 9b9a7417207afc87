// The routing mesh's data plane on one node: a listener per published port that spreads client
// connections over the service's running tasks (local ones directly, remote ones through the
// forwarding listener of the node that runs them), and this node's forwarding listener.
//
// Data path: sockets are piped (both ways); no per-byte JavaScript work, no
// buffering of our own, no idle timeout. Per connection: one backend pick, one connect (retried
// elsewhere on failure), two pipes.
//
// With `tls`, node-to-node forwarding runs over mutual TLS 1.3 (the published ports and the
// connections to containers stay plain TCP: they are the node's own traffic).
//
// Forwarding transports: `h2` (default under TLS) carries every forwarded connection as a CONNECT
// stream on one long-lived HTTP/2 session per peer node, so a client connection costs the
// forwarding hop no TCP or TLS handshake; `tcp` (default in plain TCP) opens one connection per
// client connection (the `SHOALFWD1` line protocol). The forwarding listener serves both.

import { X509Certificate } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { formatHostPort, parseHostPort, unmapIPv4, type HostPort } from './addr.js';
import {
  FORWARD_ACK,
  FORWARD_HEADER_MAX,
  H2_HEADER_ERROR,
  encodeForwardH2,
  encodeForwardHeader,
  isValidTaskId,
  parseForwardH2,
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
  MeshTls,
  PortStats,
  PublishedPort,
} from './types.js';

const NOOP = (): void => {};
const NOOP_LOGGER: MeshLogger = { debug: NOOP, info: NOOP, warn: NOOP, error: NOOP };
const ACK_BYTE = Buffer.from([FORWARD_ACK]);
/** The forwarder's answer for a task that is not one of its node's (both protocols). */
const UNKNOWN_TASK_REASON = 'not a local backend';

/**
 * The DNS name every node certificate carries: nodes are reached by IP addresses that are not in
 * their certificates (they change, and one certificate serves every address of a node).
 */
export const NODE_SERVER_NAME = 'shoal-node';
const TLS_MIN_VERSION = 'TLSv1.3';
/** Bound on remembered TLS sessions (one per peer forwarding address, so normally the node count). */
const MAX_TLS_SESSIONS = 4096;

const { NGHTTP2_NO_ERROR, NGHTTP2_REFUSED_STREAM } = http2.constants;
/** The HTTP/2 client preface (RFC 9113 §3.4): how the plain-TCP listener tells h2c from the line protocol. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/**
 * Receive windows. HTTP/2's default (64 KiB per stream and per session) would cap one forwarded
 * connection at 64 KiB per round trip; the session window bounds what a peer can have in flight
 * toward this node over all its streams.
 */
const H2_STREAM_WINDOW = 4 << 20;
const H2_SESSION_WINDOW = 32 << 20;
/**
 * A CONNECT request is ~100 bytes in a handful of headers: larger ones are refused (431, logged).
 * Beyond Node's own limits (64 KiB, 128 headers) Node resets the stream before the mesh sees it.
 */
const H2_MAX_HEADER_BYTES = 4096;
const H2_MAX_HEADERS = 16;
/**
 * Node's per-session memory cap (MB; it refuses new streams beyond it): the default 10 MB is below
 * what the windows above let a busy session buffer.
 */
const H2_MAX_SESSION_MEMORY = 128;
/** An outbound session without streams for this long is closed (its node may be gone for good). */
const H2_IDLE_MS = 300_000;
/** A peer found not to speak h2 (an older node) gets the line protocol for this long, then h2 is tried again. */
const LEGACY_RETRY_MS = 60_000;
/** Attempts for one forwarded connection whose stream a closing session refused unprocessed (GOAWAY race). */
const H2_STREAM_ATTEMPTS = 3;

/** The TLS material in force; replaced as a whole by setTls, so a connection uses one consistent set. */
interface TlsState {
  readonly opts: MeshTls;
  /** Client side: built once per material, not per connection (building one parses the PEMs). */
  readonly client: tls.SecureContext;
}

interface TlsSession {
  readonly session: Buffer;
  /** The peer's certificate from the full handshake the session began with (a resumed connection has none). */
  readonly cert: tls.PeerCertificate;
}

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

/** A connected backend: a socket (a container, or a remote node's line-protocol connection), or an h2 stream to a remote node. */
type Upstream = net.Socket | http2.ClientHttp2Stream;

/**
 * How a connect ended: with an upstream, or an error and how far it reaches: `viaDown`, the remote
 * node itself failed; `unknownTask`, the node answered that the task is not one of its own (yet).
 */
type ConnectResult = (up: Upstream | null, err?: Error, extra?: Buffer, viaDown?: boolean, unknownTask?: boolean) => void;

/** One outbound HTTP/2 session to a peer node's forwarding listener, shared by forwarded connections. */
interface H2Link {
  /** The peer's forwarding address (`via`). */
  readonly peer: string;
  readonly sock: net.Socket;
  session: http2.ClientHttp2Session | undefined;
  /** The peer's SETTINGS arrived: streams can be opened. */
  ready: boolean;
  /** Takes no new streams (GOAWAY, setTls, idle, peer refused); closes once its streams end. */
  draining: boolean;
  closed: boolean;
  /** Streams reserved on it: open, or waiting for the session to be ready. */
  streams: number;
  maxStreams: number;
  /** Forwarded connections waiting for the session to be ready. */
  readonly waiters: Set<H2Waiter>;
  /** TLS: the peer's certificate, for verifyPeer on every stream. */
  cert: tls.PeerCertificate | undefined;
  probing: boolean;
}

/**
 * The session is ready (`link`), or it could not be set up (`err`); `how`: 'legacy' when the peer
 * does not speak h2 (use the line protocol), 'retry' when the session has no room for this stream
 * after all (the peer allows fewer streams than assumed).
 */
type H2Waiter = (link: H2Link | null, err?: Error, how?: 'legacy' | 'retry') => void;

/** An inbound HTTP/2 session on the forwarding listener. */
interface InboundSession {
  readonly from: string | undefined;
  streams: number;
  /** TLS: the peer's certificate, fetched at its first stream when verifyPeer is set. */
  cert: tls.PeerCertificate | undefined;
}

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
  private readonly unknownTaskBackoffMs: number;
  private readonly bindRetryMs: number;
  private readonly forwardHeaderTimeoutMs: number;
  private readonly keepAliveDelayMs: number;
  private readonly tlsSessionReuse: boolean;
  private readonly transport: 'h2' | 'tcp';
  private readonly maxStreams: number;
  private tlsState: TlsState | undefined;
  /** The last TLS session (ticket) per peer forwarding address, for abbreviated handshakes. */
  private readonly tlsSessions = new Map<string, TlsSession>();

  private readonly ports = new Map<number, PortEntry>();
  /** This node's local backends by `taskId/targetPort`: the only targets the forwarder accepts. */
  private localTargets = new Map<string, BackendState>();
  private forwardServer: net.Server | null = null;
  /** Never listens: the forwarding listener hands it the connections that speak HTTP/2. */
  private h2Server: http2.Http2Server | undefined;
  private readonly inbound = new Map<http2.ServerHttp2Session, InboundSession>();
  /** h2: the sessions to each peer (forwarding address) that take new streams. */
  private readonly h2Links = new Map<string, H2Link[]>();
  /** Every outbound session, draining ones included. */
  private readonly allLinks = new Set<H2Link>();
  /** Peers found not to speak h2 (older nodes), and until when they get the line protocol. */
  private readonly legacyPeers = new Map<string, number>();
  private boundForwardPort = 0;
  /** Every open socket (clients, backends, forwarded), for close(). */
  private readonly sockets = new Set<net.Socket>();
  private closed = false;
  private readonly fwd = { activeConnections: 0, totalConnections: 0, rejected: 0, failedConnects: 0, tlsConnects: 0, tlsResumed: 0, h2SessionsOpened: 0 };

  constructor(opts: MeshOptions) {
    this.bindHost = opts.bindHost;
    this.forwardHost = opts.forwardHost ?? opts.bindHost;
    this.wantForwardPort = opts.forwardPort ?? 0;
    this.log = opts.logger ?? NOOP_LOGGER;
    this.onPortError = opts.onPortError ?? NOOP;
    this.connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    this.lastConnectTimeoutMs = Math.max(this.connectTimeoutMs, opts.lastConnectTimeoutMs ?? 5000);
    this.failBackoffMs = opts.failBackoffMs ?? 2000;
    this.unknownTaskBackoffMs = Math.min(opts.unknownTaskBackoffMs ?? 250, this.failBackoffMs);
    this.bindRetryMs = opts.bindRetryMs ?? 2000;
    this.forwardHeaderTimeoutMs = opts.forwardHeaderTimeoutMs ?? 2000;
    this.keepAliveDelayMs = opts.keepAliveDelayMs ?? 30_000;
    this.tlsSessionReuse = opts.tlsSessionReuse ?? true;
    // Measured (forward-tls-bench): under TLS, h2 is ~3x the connections/s of a TLS handshake per
    // connection; in plain TCP, a connection per client connection is as cheap as a stream.
    this.transport = opts.forwardTransport ?? (opts.tls ? 'h2' : 'tcp');
    this.maxStreams = Math.max(1, Math.floor(opts.forwardMaxStreams ?? 1000));
    this.tlsState = opts.tls ? { opts: opts.tls, client: clientContext(opts.tls) } : undefined;
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
    this.h2Server ??= this.createH2Server();
    const server = this.createForwardServer();
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
    this.log.info({ addr: this.forwardAddress, tls: this.tlsState !== undefined }, 'mesh: forwarding listener bound');
  }

  /**
   * Replaces the TLS material (certificate renewal, a new CA bundle, a new `verifyPeer`). New
   * connections, inbound and outbound, use it; open ones are untouched. Remembered TLS sessions
   * are dropped, so this node presents its new certificate on its next connection to every peer.
   * Throws (and changes nothing) if the material is invalid, or if the mesh was created without
   * `tls`: switching the forwarding port between plain TCP and TLS takes a new Mesh.
   */
  setTls(material: MeshTls): void {
    if (!this.tlsState) throw new Error('mesh: created without tls; the forwarding listener is plain TCP');
    const client = clientContext(material);
    if (this.forwardServer instanceof tls.Server) this.forwardServer.setSecureContext(serverContextOptions(material));
    this.tlsState = { opts: material, client };
    this.tlsSessions.clear();
    // Sessions outlive connections: drained (GOAWAY; their streams go on), so the next streams in
    // either direction go to new sessions, with the new certificates on both ends.
    for (const l of [...this.allLinks]) this.drainLink(l);
    for (const s of this.inbound.keys()) if (!s.closed) s.close();
    this.log.info({ subject: certSubject(material.cert) }, 'mesh: TLS material replaced');
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
    let h2SessionsOut = 0;
    for (const l of this.allLinks) if (l.ready && !l.closed) h2SessionsOut++;
    return { ports, forwarder: { port: this.boundForwardPort, ...this.fwd, h2SessionsOut, h2SessionsIn: this.inbound.size } };
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
    this.tlsSessions.clear();
    const fs = this.forwardServer;
    this.forwardServer = null;
    // Their waiters fail through the sessions' close handlers (and find their clients gone).
    for (const l of [...this.allLinks]) {
      l.session?.destroy();
      l.sock.destroy();
    }
    for (const s of this.inbound.keys()) s.destroy();
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
    const done: ConnectResult = (up, err, extra, viaDown, unknownTask) => {
      if (!up) {
        b.active--;
        b.failed++;
        e.failedConnects++;
        const until = Date.now() + (unknownTask ? this.unknownTaskBackoffMs : this.failBackoffMs);
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
        abortUpstream(up);
        return;
      }
      b.total++;
      if (up instanceof net.Socket) {
        const header = p.proxy && b.backend.local ? encodeProxyV2(proxyEnds(p.proxy.src, p.proxy.dst)) : undefined;
        this.splice(client, up, b, header, undefined, extra);
      } else {
        up.once('close', () => b.active--);
        joinStream(client, up);
      }
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
      if (this.transport === 'h2') this.connectRemoteH2(b.target, req, done, timeoutMs);
      else this.connectRemote(b.target, encodeForwardHeader(req), done, timeoutMs);
    }
  }

  /**
   * A mutual-TLS connection to another node's forwarding listener, resuming `session` if given.
   * `onServerCert` gets the listener's certificate once accepted, on a full handshake.
   */
  private connectTls(
    target: HostPort,
    t: TlsState,
    session: Buffer | undefined,
    onServerCert: (cert: tls.PeerCertificate) => void,
    h2: boolean,
  ): tls.TLSSocket {
    // allowHalfOpen is honoured by tls.connect (it goes to the TLSSocket) but missing from its types.
    const opts: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
      host: target.host,
      port: target.port,
      allowHalfOpen: !h2,
      secureContext: t.client,
      servername: NODE_SERVER_NAME,
      checkServerIdentity: (_host, cert) => {
        const err = this.checkForwardServer(cert);
        if (!err) onServerCert(cert);
        return err;
      },
    };
    if (session) opts.session = session;
    // Only for sessions: a line-protocol connection offers no ALPN, as older nodes do.
    if (h2) opts.ALPNProtocols = ['h2'];
    const sock = tls.connect(opts);
    sock.setNoDelay(true);
    sock.setKeepAlive(true, this.keepAliveDelayMs);
    return sock;
  }

  private rememberSession(peer: string, entry: TlsSession): void {
    this.tlsSessions.delete(peer);
    if (this.tlsSessions.size >= MAX_TLS_SESSIONS) this.tlsSessions.delete(this.tlsSessions.keys().next().value!);
    this.tlsSessions.set(peer, entry);
  }

  /** The forwarding server's certificate (its chain already verified against the CA): its name, then verifyPeer. */
  private checkForwardServer(cert: tls.PeerCertificate): Error | undefined {
    const names = (cert.subjectaltname ?? '').split(', ');
    if (!names.includes(`DNS:${NODE_SERVER_NAME}`)) {
      return Object.assign(new Error(`peer certificate is not a node's (no DNS:${NODE_SERVER_NAME})`), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    }
    const reason = this.peerRefusal(cert);
    return reason === null ? undefined : Object.assign(new Error(`peer refused: ${reason}`), { code: 'PEER_REFUSED' });
  }

  /** verifyPeer's verdict: null to accept, else the reason (a throwing verifyPeer refuses). */
  private peerRefusal(cert: tls.PeerCertificate): string | null {
    const verify = this.tlsState?.opts.verifyPeer;
    if (!verify) return null;
    try {
      return verify(cert);
    } catch (err) {
      this.log.error({ err, peer: cert.subject?.CN }, 'mesh: verifyPeer threw; peer refused');
      return `verifyPeer threw: ${(err as Error)?.message ?? String(err)}`;
    }
  }

  /** `halfOpen`: false for a session's socket (a session ends with its connection, half-close is per stream). */
  private connectSocket(target: HostPort, halfOpen = true): net.Socket {
    return net.connect({
      host: target.host,
      port: target.port,
      allowHalfOpen: halfOpen,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: this.keepAliveDelayMs,
    });
  }

  /** Connects to a container; fails on error or after timeoutMs. */
  private connectLocal(target: HostPort, done: (sock: net.Socket | null, err?: Error) => void, timeoutMs: number): void {
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
   * A connection to a node's forwarding listener: plain TCP, or mutual TLS offering the peer's last
   * TLS session. Once it is connected, `accept()` counts the handshake and gives the listener's
   * certificate, or why it is refused: a resumed session skips `checkServerIdentity`, so the
   * certificate remembered from the session's full handshake is checked again (verifyPeer may
   * refuse the node now, e.g. removed from the cluster since).
   */
  private dialNode(target: HostPort, peer: string, t: TlsState | undefined, h2: boolean): { sock: net.Socket; accept(): { cert?: tls.PeerCertificate; err?: Error } } {
    if (!t) return { sock: this.connectSocket(target, !h2), accept: () => ({}) };
    const cached = this.tlsSessionReuse ? this.tlsSessions.get(peer) : undefined;
    /** The forwarding server's certificate, from this handshake or from the resumed session's. */
    let peerCert: tls.PeerCertificate | undefined;
    // Taken from checkServerIdentity: getPeerCertificate() would convert it again, a visible
    // share of a handshake's CPU (OpenSSL 3 decodes the public key each time).
    const sock = this.connectTls(target, t, cached?.session, (cert) => (peerCert = cert), h2);
    if (this.tlsSessionReuse) {
      sock.on('session', (session: Buffer) => {
        // A session made with replaced material would present this node's old certificate again.
        if (peerCert && this.tlsState === t && !this.closed) this.rememberSession(peer, { session, cert: peerCert });
      });
    }
    return {
      sock,
      accept: () => {
        this.fwd.tlsConnects++;
        if (!sock.isSessionReused()) return { cert: peerCert };
        this.fwd.tlsResumed++;
        peerCert = cached?.cert;
        const err = peerCert ? this.checkForwardServer(peerCert) : new Error('resumed an unknown TLS session');
        return err ? { err } : { cert: peerCert };
      },
    };
  }

  /**
   * Connects to a remote node's forwarding listener, sends the header, and succeeds on the ACK
   * byte (bytes after it are the backend's: handed on as `extra`). A failure to reach the node
   * itself is flagged `viaDown`.
   */
  private connectRemote(target: HostPort, header: string, done: ConnectResult, timeoutMs: number): void {
    const t = this.tlsState;
    const peer = formatHostPort(target.host, target.port);
    const dial = this.dialNode(target, peer, t, false);
    const sock = dial.sock;
    let settled = false;
    let connected = false;
    const finish = (err?: Error, extra?: Buffer, nodeLevel = !connected, unknownTask = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.removeListener('data', onData);
      if (err) {
        sock.destroy();
        if (t && nodeLevel) this.tlsSessions.delete(peer);
        done(null, err, undefined, nodeLevel, unknownTask);
      } else {
        done(sock, undefined, extra);
      }
    };
    const onData = (chunk: Buffer): void => {
      sock.pause();
      if (chunk[0] !== FORWARD_ACK) {
        const reason = chunk.toString('latin1', 0, Math.min(chunk.length, 120)).trim();
        finish(new Error(`forward refused: ${reason}`), undefined, false, reason === `ERR ${UNKNOWN_TASK_REASON}`);
        return;
      }
      finish(undefined, chunk.length > 1 ? chunk.subarray(1) : undefined);
    };
    // Under TLS, a node that closes before the ACK without an ERR line has refused us (our
    // certificate fails its checks: TLS 1.3 clients finish their handshake before the server
    // has checked them); it would do the same for every task there.
    const onClosed = (): void => finish(new Error(t ? 'forward closed before ack (TLS peer refused?)' : 'forward closed before ack'), undefined, !connected || t !== undefined);
    let timer = setTimeout(() => finish(new Error('connect timeout (node)')), timeoutMs);
    sock.once(t ? 'secureConnect' : 'connect', () => {
      if (settled) return;
      const err = dial.accept().err;
      if (err) {
        finish(err, undefined, true);
        return;
      }
      connected = true;
      clearTimeout(timer);
      // The remote node waits for the container up to lastConnectTimeoutMs; we give up sooner when
      // another backend is left to try.
      timer = setTimeout(() => finish(new Error('forward timeout')), timeoutMs + 1000);
      sock.write(header);
      sock.on('data', onData);
    });
    sock.on('error', (err) => finish(err, undefined, !connected || (t !== undefined && isTlsError(err))));
    sock.on('end', onClosed);
    sock.on('close', onClosed);
  }

  // ---- h2 transport: outbound sessions -----------------------------------------------------

  /**
   * Opens a CONNECT stream for `req` on a session to the node at `target` and succeeds on its
   * `:status 200` (the far node connected its local task), with the stream as the upstream. A
   * session that cannot be set up, a 403 (the node refuses us) or 503 (it is shutting down) are
   * failures of the node (`viaDown`); other statuses (502: its local connect failed) of the task,
   * 404 (not one of its tasks) flagged `unknownTask`.
   * A peer that does not speak h2 gets the line protocol.
   */
  private connectRemoteH2(target: HostPort, req: ForwardRequest, done: ConnectResult, timeoutMs: number, attempt = 1): void {
    const peer = formatHostPort(target.host, target.port);
    const legacyUntil = this.legacyPeers.get(peer);
    if (legacyUntil !== undefined) {
      if (legacyUntil > Date.now()) {
        this.connectRemote(target, encodeForwardHeader(req), done, timeoutMs);
        return;
      }
      this.legacyPeers.delete(peer);
    }
    const link = this.reserveStream(peer, target);
    let settled = false;
    /** The reserved stream slot is ours to give back (no stream opened on it yet). */
    let holding = true;
    let stream: http2.ClientHttp2Stream | undefined;
    const release = (): void => {
      if (!holding) return;
      holding = false;
      link.waiters.delete(onLink);
      this.releaseStream(link);
    };
    const finish = (err?: Error, nodeLevel = false, unknownTask = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      release();
      if (!err) {
        done(stream!);
        return;
      }
      if (stream) abortStream(stream);
      done(null, err, undefined, nodeLevel, unknownTask);
    };
    /** This connection again, on another session (or the line protocol); no failure of the node or task. */
    const again = (err: Error, legacy = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      release();
      if (legacy) this.connectRemote(target, encodeForwardHeader(req), done, timeoutMs);
      else if (attempt >= H2_STREAM_ATTEMPTS) done(null, err, undefined, true);
      else this.connectRemoteH2(target, req, done, timeoutMs, attempt + 1);
    };
    let timer = setTimeout(() => finish(new Error('connect timeout (node)'), true), timeoutMs);
    const open = (session: http2.ClientHttp2Session): void => {
      if (link.cert) {
        const reason = this.peerRefusal(link.cert);
        if (reason !== null) {
          this.drainLink(link);
          finish(Object.assign(new Error(`peer refused: ${reason}`), { code: 'PEER_REFUSED' }), true);
          return;
        }
      }
      try {
        stream = session.request(encodeForwardH2(req), { endStream: false });
      } catch (err) {
        // Closing since a GOAWAY we have not handled yet, or destroyed (without a 'close' yet).
        if (session.destroyed) this.dropLink(link);
        else this.drainLink(link);
        again(err as Error);
        return;
      }
      // From here the stream's close gives the slot back.
      holding = false;
      link.waiters.delete(onLink);
      const s = stream;
      s.on('error', NOOP); // the outcome is read from 'response' and 'close'
      s.once('close', () => {
        this.releaseStream(link);
        if (settled) return;
        // Streams above a GOAWAY's last stream id were never seen by the peer.
        if (s.rstCode === NGHTTP2_REFUSED_STREAM) again(new Error('stream refused by a closing session'));
        else finish(new Error(`forward stream closed before its response (code ${s.rstCode})`), link.closed || session.destroyed);
      });
      s.once('response', (headers) => {
        const status = headers[':status'];
        if (status === 200) {
          finish();
          return;
        }
        const reason = headers[H2_HEADER_ERROR];
        finish(new Error(`forward refused: ${status}${reason ? ` ${String(reason)}` : ''}`), status === 403 || status === 503, status === 404);
      });
      clearTimeout(timer);
      // As on the line protocol: the remote node may wait for its container longer than we do.
      timer = setTimeout(() => {
        this.probeLink(link);
        finish(new Error('forward timeout'));
      }, timeoutMs + 1000);
    };
    const onLink: H2Waiter = (l, err, how) => {
      if (settled) return;
      if (l) open(l.session!);
      else if (how) again(err!, how === 'legacy');
      else finish(err, true);
    };
    if (link.ready) open(link.session!);
    else link.waiters.add(onLink);
  }

  /** A session to `peer` with room for one more stream (a new one if none has), the slot taken. */
  private reserveStream(peer: string, target: HostPort): H2Link {
    const list = this.h2Links.get(peer);
    if (list) {
      for (const l of list) {
        if (l.streams < l.maxStreams) {
          l.streams++;
          return l;
        }
      }
    }
    const l = this.openLink(peer, target);
    l.streams++;
    return l;
  }

  private releaseStream(link: H2Link): void {
    link.streams--;
    if (link.streams > 0 || link.draining || link.closed) return;
    // Extra sessions opened under load are not kept idle: the first one stays warm.
    const list = this.h2Links.get(link.peer);
    if (list && list.length > 1 && list[0] !== link) this.drainLink(link);
  }

  private openLink(peer: string, target: HostPort): H2Link {
    const t = this.tlsState;
    const dial = this.dialNode(target, peer, t, true);
    const sock = dial.sock;
    const link: H2Link = {
      peer,
      sock,
      session: undefined,
      ready: false,
      draining: false,
      closed: false,
      streams: 0,
      maxStreams: this.maxStreams,
      waiters: new Set(),
      cert: undefined,
      probing: false,
    };
    let list = this.h2Links.get(peer);
    if (!list) {
      list = [];
      this.h2Links.set(peer, list);
    }
    list.push(link);
    this.allLinks.add(link);
    let connected = false;
    const fail = (err: Error, legacy: boolean): void => {
      if (link.closed) return;
      clearTimeout(timer);
      this.dropLink(link);
      link.session?.destroy();
      sock.destroy();
      if (legacy) {
        this.legacyPeers.set(peer, Date.now() + LEGACY_RETRY_MS);
        this.log.info({ peer, reason: err.message, retryMs: LEGACY_RETRY_MS }, 'mesh: peer does not speak h2; forwarding to it with the line protocol');
      } else {
        if (t) this.tlsSessions.delete(peer);
        this.log.debug({ peer, err: errCode(err) }, 'mesh: h2 session to peer failed');
      }
      const waiters = [...link.waiters];
      link.waiters.clear();
      for (const w of waiters) w(null, err, legacy ? 'legacy' : undefined);
    };
    // An older node answers the h2c preface with `ERR bad header`, which is an HTTP/2 protocol
    // error to the session (under TLS, ALPN tells). A reset or close is the node failing.
    const early = (err: Error): void => {
      if (!link.ready) fail(err, connected && !t && errCode(err) === 'ERR_HTTP2_ERROR');
    };
    // Waiters give up after their own connect timeout; the session gets as long as any connect.
    const timer = setTimeout(() => fail(new Error('session setup timeout'), false), this.lastConnectTimeoutMs);
    sock.on('error', early);
    sock.once('end', () => early(new Error('closed before the session started')));
    sock.once('close', () => early(new Error(connected ? 'closed before the session started' : 'closed')));
    sock.once(t ? 'secureConnect' : 'connect', () => {
      if (link.closed) return;
      connected = true;
      if (t) {
        const { cert, err } = dial.accept();
        if (err) {
          fail(err, false);
          return;
        }
        if ((sock as tls.TLSSocket).alpnProtocol !== 'h2') {
          fail(new Error('no ALPN h2'), true);
          return;
        }
        link.cert = cert;
      }
      const session = http2.connect(`${t ? 'https' : 'http'}://${peer}`, {
        ...this.h2SessionOptions(),
        peerMaxConcurrentStreams: this.maxStreams,
        createConnection: () => sock,
      });
      link.session = session;
      session.on('error', (err) => {
        if (link.ready) this.log.debug({ peer, err: errCode(err) }, 'mesh: h2 session to peer failed');
        else early(err);
      });
      session.once('connect', () => session.setLocalWindowSize(H2_SESSION_WINDOW));
      session.once('remoteSettings', (settings) => {
        if (link.closed) return;
        clearTimeout(timer);
        link.ready = true;
        this.fwd.h2SessionsOpened++;
        link.maxStreams = Math.max(1, Math.min(this.maxStreams, settings.maxConcurrentStreams ?? this.maxStreams));
        // Activity on any stream keeps it; idle long-lived client connections too (streams > 0).
        session.setTimeout(H2_IDLE_MS, () => {
          if (link.streams === 0) this.drainLink(link);
        });
        let room = link.maxStreams;
        for (const w of [...link.waiters]) {
          link.waiters.delete(w);
          if (room-- > 0) w(link);
          else w(null, new Error('session full'), 'retry');
        }
        if (link.draining) session.close();
      });
      session.on('goaway', () => this.drainLink(link));
      session.once('close', () => {
        if (link.ready) this.dropLink(link);
        else early(new Error('session closed before it started'));
      });
    });
    return link;
  }

  /** No new streams on it; it closes (GOAWAY) once its streams have ended. */
  private drainLink(link: H2Link): void {
    if (link.draining || link.closed) return;
    link.draining = true;
    this.unlist(link);
    if (link.ready && link.session && !link.session.closed) link.session.close();
  }

  private dropLink(link: H2Link): void {
    link.closed = true;
    this.unlist(link);
    this.allLinks.delete(link);
  }

  private unlist(link: H2Link): void {
    const list = this.h2Links.get(link.peer);
    if (!list) return;
    const i = list.indexOf(link);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.h2Links.delete(link.peer);
  }

  /**
   * A stream got no answer in time: is the session itself alive? One that does not answer a PING
   * within the connect timeout is destroyed (its streams reset), so that the next connections
   * open a new one (and find out whether the node is there) instead of waiting on a dead one
   * until TCP keepalive notices.
   */
  private probeLink(link: H2Link): void {
    const s = link.session;
    if (!s || link.probing || link.closed || s.destroyed) return;
    link.probing = true;
    const timer = setTimeout(() => {
      this.log.warn({ peer: link.peer }, 'mesh: h2 session to peer does not answer; closed');
      s.destroy(new Error('ping timeout'));
    }, this.connectTimeoutMs);
    const ok = s.ping((err) => {
      clearTimeout(timer);
      link.probing = false;
      if (err && !s.destroyed) s.destroy(err);
    });
    if (!ok) {
      clearTimeout(timer);
      link.probing = false;
    }
  }

  /** Options shared by inbound and outbound sessions. */
  private h2SessionOptions(): http2.SessionOptions {
    return {
      settings: {
        enablePush: false,
        initialWindowSize: H2_STREAM_WINDOW,
        maxConcurrentStreams: this.maxStreams,
      },
      maxSessionMemory: H2_MAX_SESSION_MEMORY,
    };
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

  private createForwardServer(): net.Server {
    const sockOpts = { allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: this.keepAliveDelayMs };
    const t = this.tlsState;
    if (!t) return net.createServer(sockOpts, (sock) => this.onForwardConnection(sock));
    const server = tls.createServer(
      {
        ...sockOpts,
        ...serverContextOptions(t.opts),
        requestCert: true,
        rejectUnauthorized: true,
        // A client offering no ALPN (older nodes, the line protocol) still gets the line protocol.
        ALPNProtocols: ['h2'],
        // A peer that connects and stalls the handshake gets no longer than one that stalls its header.
        handshakeTimeout: this.forwardHeaderTimeoutMs,
      },
      (sock) => this.onSecureForward(sock),
    );
    // Until their handshake completes, the TLS sockets are only reachable through the raw ones.
    server.on('connection', (raw: net.Socket) => {
      this.sockets.add(raw);
      raw.once('close', () => this.sockets.delete(raw));
    });
    server.on('tlsClientError', (err: NodeJS.ErrnoException, sock: tls.TLSSocket) => {
      this.fwd.rejected++;
      // A certificate that fails verification ends in a bare reset; the reason is on the socket.
      // That one (expired, another cluster's) is worth an operator's eye; scanners and plain-TCP
      // clients are not.
      if (sock.authorizationError) {
        this.log.warn({ from: sock.remoteAddress, reason: String(sock.authorizationError) }, 'mesh: forwarding peer certificate refused');
      } else {
        this.log.debug({ from: sock.remoteAddress, reason: errCode(err) }, 'mesh: forwarding TLS handshake failed');
      }
    });
    return server;
  }

  private onSecureForward(sock: tls.TLSSocket): void {
    if (this.tlsState?.opts.verifyPeer) {
      const cert = sock.getPeerCertificate();
      const reason = this.peerRefusal(cert);
      if (reason !== null) {
        this.fwd.rejected++;
        this.log.warn({ peer: cert.subject?.CN, from: sock.remoteAddress, reason }, 'mesh: forwarding peer refused');
        sock.destroy();
        return;
      }
    }
    if (sock.alpnProtocol === 'h2') this.acceptH2(sock);
    else this.onForwardConnection(sock);
  }

  private onForwardConnection(sock: net.Socket): void {
    if (this.closed) {
      sock.destroy();
      return;
    }
    this.track(sock);
    let buf: Buffer | undefined;
    let settled = false;
    const stop = (): void => {
      settled = true;
      clearTimeout(timer);
      sock.removeListener('data', onData);
      sock.removeListener('end', onEnd);
    };
    // On plain TCP, the HTTP/2 preface marks an h2c session (under TLS, ALPN does).
    const sniff = !(sock instanceof tls.TLSSocket);
    const onData = (chunk: Buffer): void => {
      if (settled) return;
      buf = buf ? Buffer.concat([buf, chunk]) : chunk;
      if (sniff && buf[0] === H2_PREFACE[0]) {
        const n = Math.min(buf.length, H2_PREFACE.length);
        if (buf.compare(H2_PREFACE, 0, n, 0, n) === 0) {
          if (n < H2_PREFACE.length) return;
          stop();
          sock.pause();
          sock.unshift(buf);
          this.acceptH2(sock);
          return;
        }
      }
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
      this.rejectForward(sock, UNKNOWN_TASK_REASON);
      return;
    }
    b.active++;
    this.connectLocal(b.target, (back, err) => {
      if (!back) {
        this.rejectForward(sock, this.forwardedConnectFailed(b, req.taskId, err));
        return;
      }
      if (!this.forwardedConnected(b, back, sock, sock.destroyed)) return;
      sock.write(ACK_BYTE);
      const header = req.proxyProtocol ? encodeProxyV2(proxyEnds(req.client, req.dst)) : undefined;
      this.splice(sock, back, b, header, rest);
    }, this.lastConnectTimeoutMs);
  }

  /**
   * A forwarded connection's local connect succeeded (either protocol): counted while the peer's
   * side (`from`) is open; false, and the local connection dropped, if that side is already gone.
   */
  private forwardedConnected(b: BackendState, back: net.Socket, from: { once(event: 'close', fn: () => void): unknown }, gone: boolean): boolean {
    if (gone) {
      b.active--;
      back.destroy();
      return false;
    }
    b.total++;
    this.fwd.totalConnections++;
    this.fwd.activeConnections++;
    from.once('close', () => this.fwd.activeConnections--);
    return true;
  }

  /** A forwarded connection's local connect failed (either protocol): the reason for the peer. */
  private forwardedConnectFailed(b: BackendState, taskId: string, err: Error | undefined): string {
    b.active--;
    b.failed++;
    b.failingUntil = Date.now() + this.failBackoffMs;
    this.fwd.failedConnects++;
    this.log.debug({ taskId, err: errCode(err) }, 'mesh: forwarded connect failed');
    return `connect failed ${errCode(err)}`;
  }

  private track(sock: net.Socket): void {
    if (this.sockets.has(sock)) return;
    this.sockets.add(sock);
    sock.on('error', NOOP);
    sock.once('close', () => this.sockets.delete(sock));
  }

  // ---- h2 transport: inbound sessions ------------------------------------------------------

  private createH2Server(): http2.Http2Server {
    const server = http2.createServer(this.h2SessionOptions());
    server.on('session', (session: http2.ServerHttp2Session) => this.onInboundSession(session));
    server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) =>
      this.onH2Stream(stream, headers, raw),
    );
    return server;
  }

  /** A connection that speaks HTTP/2 (ALPN h2, or the h2c preface, which it still holds unread). */
  private acceptH2(sock: net.Socket): void {
    if (this.closed || !this.h2Server) {
      sock.destroy();
      return;
    }
    this.track(sock);
    // The listener's sockets are half-open for the line protocol; a session ends with its connection.
    sock.allowHalfOpen = false;
    this.h2Server.emit('connection', sock);
  }

  private onInboundSession(session: http2.ServerHttp2Session): void {
    if (this.closed) {
      session.destroy();
      return;
    }
    const info: InboundSession = { from: session.socket?.remoteAddress, streams: 0, cert: undefined };
    this.inbound.set(session, info);
    session.on('error', (err: NodeJS.ErrnoException) => {
      // Protocol errors (garbage after the preface, flow-control violations...): the peer's fault.
      if (String(err.code).startsWith('ERR_HTTP2')) this.fwd.rejected++;
      this.log.debug({ from: info.from, err: errCode(err) }, 'mesh: inbound h2 session error');
    });
    session.once('close', () => this.inbound.delete(session));
    session.setLocalWindowSize(H2_SESSION_WINDOW);
    // A peer closes its idle sessions itself; this only reclaims those it forgot (or never used).
    session.setTimeout(2 * H2_IDLE_MS, () => {
      if (info.streams === 0) session.close();
    });
  }

  /** A forwarded connection on an inbound session: as `forward()`, with `:status` for the ACK/ERR. */
  private onH2Stream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, raw: string[]): void {
    stream.on('error', NOOP); // resets act through 'close'
    const session = stream.session;
    const info = session ? this.inbound.get(session as http2.ServerHttp2Session) : undefined;
    if (this.closed || !info || !session) {
      this.refuseStream(stream, undefined, 503, 'shutting down', false);
      return;
    }
    const verify = this.tlsState?.opts.verifyPeer;
    if (verify && session.encrypted) {
      // Once per session: the certificate does not change, verifyPeer's verdict may.
      info.cert ??= (session.socket as tls.TLSSocket).getPeerCertificate();
      const reason = this.peerRefusal(info.cert);
      if (reason !== null) {
        this.log.warn({ peer: info.cert.subject?.CN, from: info.from, reason }, 'mesh: forwarding peer refused');
        this.refuseStream(stream, info, 403, 'peer refused');
        session.close();
        return;
      }
    }
    let bytes = 0;
    for (const f of raw) bytes += f.length;
    if (raw.length > 2 * H2_MAX_HEADERS || bytes > H2_MAX_HEADER_BYTES) {
      this.refuseStream(stream, info, 431, `request headers too large (${raw.length / 2} headers, ${bytes} bytes)`);
      return;
    }
    const parsed = parseForwardH2(headers);
    if ('status' in parsed) {
      this.refuseStream(stream, info, parsed.status, parsed.reason);
      return;
    }
    const req = parsed.req;
    const b = this.localTargets.get(localKey(req.taskId, req.targetPort));
    if (!b) {
      this.refuseStream(stream, info, 404, UNKNOWN_TASK_REASON);
      return;
    }
    info.streams++;
    stream.once('close', () => info.streams--);
    b.active++;
    this.connectLocal(b.target, (back, err) => {
      if (!back) {
        this.refuseStream(stream, info, 502, this.forwardedConnectFailed(b, req.taskId, err), false);
        return;
      }
      if (!this.forwardedConnected(b, back, stream, stream.closed || stream.destroyed)) return;
      this.sockets.add(back);
      back.once('close', () => {
        b.active--;
        this.sockets.delete(back);
      });
      stream.respond({ ':status': 200 });
      const header = req.proxyProtocol ? encodeProxyV2(proxyEnds(req.client, req.dst)) : undefined;
      joinStream(back, stream, header);
    }, this.lastConnectTimeoutMs);
  }

  /** Answers a stream with an error status (the sender tries elsewhere) and ends it. */
  private refuseStream(stream: http2.ServerHttp2Stream, info: InboundSession | undefined, status: number, reason: string, counts = true): void {
    if (counts) this.fwd.rejected++;
    this.log.debug({ from: info?.from, status, reason }, 'mesh: forwarded stream refused');
    if (stream.closed || stream.destroyed || stream.headersSent) return;
    stream.respond({ ':status': status, [H2_HEADER_ERROR]: reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) }, { endStream: true });
    // Whatever the peer sends on it is dropped, so the stream can close.
    stream.resume();
  }
}

/**
 * Joins a socket and an HTTP/2 stream both ways (`first` is written to the socket first). An end
 * is passed on (half-close: END_STREAM one way, FIN the other). A reset or error on either side
 * resets the other: RST_STREAM to the peer node, a TCP RST to the socket's end, so a cut
 * connection never looks like a complete one.
 */
function joinStream(sock: net.Socket, stream: http2.Http2Stream, first?: Buffer): void {
  const abort = (): void => abortStream(stream);
  sock.on('error', abort);
  // A socket closes without an error once both of its sides ended: its end went into the stream.
  sock.once('close', () => {
    if (!stream.writableEnded) abort();
  });
  stream.on('error', NOOP);
  // Node also ends a stream's readable side when the stream is destroyed (its session died): only
  // a real END_STREAM ends the socket, else the FIN would pass a cut for a complete answer.
  stream.once('end', () => {
    if (!(stream.closed && stream.rstCode !== NGHTTP2_NO_ERROR)) sock.end();
  });
  stream.once('close', () => {
    if (stream.rstCode === NGHTTP2_NO_ERROR && stream.readableEnded && stream.writableFinished) return;
    resetSocket(sock);
  });
  if (first) sock.write(first);
  sock.pipe(stream);
  stream.pipe(sock, { end: false });
}

/**
 * Resets a stream (RST_STREAM INTERNAL_ERROR). Not `stream.close(code)`: Node ends the stream
 * (END_STREAM) before it sends the RST_STREAM, and the far side would pass that end on as a FIN.
 */
function abortStream(stream: http2.Http2Stream): void {
  if (!stream.destroyed) stream.destroy(new Error('forwarded connection aborted'));
}

/**
 * Closes a socket with a TCP RST where possible. libuv refuses to reset a socket whose shutdown
 * (FIN) is still under way, and Node then never closes its handle (a leaked fd, and a busy event
 * loop): such a socket is closed normally.
 */
function resetSocket(sock: net.Socket): void {
  if (sock.destroyed) return;
  if (sock.writableEnded && !sock.writableFinished) sock.destroy();
  else sock.resetAndDestroy();
}

function abortUpstream(up: Upstream): void {
  if (up instanceof net.Socket) up.destroy();
  else abortStream(up);
}

function proxyEnds(src: HostPort | undefined, dst: HostPort | undefined) {
  return { srcAddr: src?.host, srcPort: src?.port, dstAddr: dst?.host, dstPort: dst?.port };
}

function serverContextOptions(m: MeshTls): tls.SecureContextOptions {
  return { ca: m.ca, cert: m.cert, key: m.key, minVersion: TLS_MIN_VERSION };
}

/** Throws on invalid material (unparsable PEM, a key that does not match the certificate). */
function clientContext(m: MeshTls): tls.SecureContext {
  return tls.createSecureContext(serverContextOptions(m));
}

function certSubject(pem: string | Buffer): string | undefined {
  try {
    return new X509Certificate(pem).subject.replace(/\n/g, ', ');
  } catch {
    return undefined;
  }
}

function isTlsError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'));
}
