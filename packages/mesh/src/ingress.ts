// The published ports: the table's ports and their backends, a `PortListener` for each, and for
// each client connection a backend pick and a connect, retried on another backend when it fails,
// so the client (paused until then) never sees the failure. Local backends are connected
// directly, remote ones through the forwarding listener of the node that runs them (a
// `RemoteConnector`).

import net from 'node:net';
import { unmapIPv4, type HostPort } from './addr.js';
import { diffBackends, localKey, pickBackend, type BackendState } from './backends.js';
import type { ForwardRequest } from './forward-header.js';
import { PortListener } from './port-listener.js';
import { proxyHeader } from './proxy-protocol.js';
import { NOOP, SocketSet, abortUpstream, connectLocal, errCode, joinStream, splice, type ConnectResult } from './sockets.js';
import type { Logger } from '@shoal/api';
import type { BackendStats, MeshTable, PortStats, PublishedPort } from './types.js';

/** Reaches a task on another node (`ForwardClient`). */
export interface RemoteConnector {
  connect(target: HostPort, req: ForwardRequest, done: ConnectResult, timeoutMs: number): void;
}

export interface IngressOptions {
  /** Published ports listen on `bindHost:port`. */
  bindHost: string;
  remote: RemoteConnector;
  /** Connect deadline per attempt while other backends are left to try. */
  connectTimeoutMs: number;
  /** Connect deadline for the last backend left. */
  lastConnectTimeoutMs: number;
  failBackoffMs: number;
  /** The backoff of a remote backend its node does not know (yet). */
  unknownTaskBackoffMs: number;
  bindRetryMs: number;
  keepAliveDelayMs: number;
  /** Bind failures (`err`), and recoveries (`null`). */
  onPortError: (port: number, err: Error | null) => void;
  log: Logger;
}

interface PortEntry {
  readonly port: number;
  spec: PublishedPort;
  backends: BackendState[];
  /** Round-robin cursor: where the next pick starts looking. */
  rr: number;
  readonly listener: PortListener;
  activeConnections: number;
  totalConnections: number;
  failedConnects: number;
  droppedConnections: number;
  bytesFromClients: number;
  bytesToClients: number;
}

/** One client connection looking for a backend. */
interface Pending {
  readonly e: PortEntry;
  readonly client: net.Socket;
  readonly tried: BackendState[];
  /** The PROXY v2 endpoints, captured at accept when the port wants them. */
  readonly proxy: { src?: HostPort; dst?: HostPort } | undefined;
}

function endpoint(addr: string | undefined, port: number | undefined): HostPort | undefined {
  return addr !== undefined && port !== undefined ? { host: unmapIPv4(addr), port } : undefined;
}

export class Ingress {
  private readonly ports = new Map<number, PortEntry>();
  /** This node's local backends by `taskId/targetPort`: the only targets the forwarder accepts. */
  private localTargets = new Map<string, BackendState>();
  /** Every open socket (clients and their backends), for close(). */
  private readonly sockets = new SocketSet();
  private closed = false;

  constructor(private readonly opts: IngressOptions) {}

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
        this.opts.log.warn({ port, service: spec.serviceName }, 'mesh: invalid published port ignored');
        continue;
      }
      if (seen.has(port)) {
        this.opts.log.warn({ port, service: spec.serviceName }, 'mesh: port listed twice in the table; first entry kept');
        continue;
      }
      seen.add(port);
      let e = this.ports.get(port);
      if (!e) {
        const entry: PortEntry = {
          port,
          spec,
          backends: [],
          rr: 0,
          listener: new PortListener({
            port,
            host: this.opts.bindHost,
            bindRetryMs: this.opts.bindRetryMs,
            keepAliveDelayMs: this.opts.keepAliveDelayMs,
            onConnection: (client) => this.accept(entry, client),
            onError: this.opts.onPortError,
            service: () => entry.spec.serviceName,
            log: this.opts.log,
          }),
          activeConnections: 0,
          totalConnections: 0,
          failedConnects: 0,
          droppedConnections: 0,
          bytesFromClients: 0,
          bytesToClients: 0,
        };
        e = entry;
        this.ports.set(port, e);
      }
      e.spec = spec;
      e.backends = diffBackends(e.backends, spec.backends, (backend) => this.opts.log.warn({ port, backend }, 'mesh: invalid backend ignored'));
      if (e.rr >= e.backends.length) e.rr = 0;
      for (const b of e.backends) {
        if (!b.backend.local) continue;
        const k = localKey(b.backend.taskId, b.backend.targetPort);
        if (!localTargets.has(k)) localTargets.set(k, b);
      }
      // Listening while the port has backends: with none, connections are refused at once.
      const p = e.listener.want(e.backends.length > 0);
      if (p) pending.push(p);
    }
    for (const [port, e] of this.ports) {
      if (seen.has(port)) continue;
      e.backends = [];
      e.listener.close(true);
      this.ports.delete(port);
    }
    this.localTargets = localTargets;
    return Promise.all(pending).then(NOOP);
  }

  /** The local backend `taskId` serving `targetPort`, if the table has one. */
  localTarget(taskId: string, targetPort: number): BackendState | undefined {
    return this.localTargets.get(localKey(taskId, targetPort));
  }

  stats(): PortStats[] {
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
        listening: e.listener.listening,
        backends: e.backends.length,
        activeConnections: e.activeConnections,
        totalConnections: e.totalConnections,
        failedConnects: e.failedConnects,
        droppedConnections: e.droppedConnections,
        bytesFromClients: e.bytesFromClients,
        bytesToClients: e.bytesToClients,
        backendStats,
      };
      const bindError = e.listener.bindError;
      if (bindError) s.bindError = bindError;
      ports.push(s);
    }
    ports.sort((a, b) => a.port - b.port);
    return ports;
  }

  /** Closes every listener and every open connection. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const e of this.ports.values()) {
      e.backends = [];
      e.listener.close(false);
    }
    this.ports.clear();
    this.localTargets = new Map();
    this.sockets.destroyAll();
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
      e.bytesFromClients += client.bytesRead;
      e.bytesToClients += client.bytesWritten;
    });
    const proxy = e.spec.proxyProtocol
      ? { src: endpoint(client.remoteAddress, client.remotePort), dst: endpoint(client.localAddress, client.localPort) }
      : undefined;
    this.tryNext({ e, client, tried: [], proxy });
  }

  private tryNext(p: Pending): void {
    const { e, client } = p;
    if (client.destroyed) return;
    const i = pickBackend(e.backends, e.rr, p.tried, Date.now(), e.spec.localInKernel === true);
    if (i < 0) {
      // Nothing (left) to try: end the client's connection at once, with a reset.
      e.droppedConnections++;
      client.resetAndDestroy();
      return;
    }
    e.rr = (i + 1) % e.backends.length;
    const b = e.backends[i]!;
    p.tried.push(b);
    b.active++;
    const done: ConnectResult = (up, err, extra, viaDown, unknownTask) => {
      if (!up) {
        b.active--;
        b.failed++;
        e.failedConnects++;
        const until = Date.now() + (unknownTask ? this.opts.unknownTaskBackoffMs : this.opts.failBackoffMs);
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
        this.opts.log.debug({ port: e.port, taskId: b.backend.taskId, nodeId: b.backend.nodeId, err: errCode(err) }, 'mesh: backend connect failed; trying another');
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
        this.sockets.add(up);
        up.once('close', () => b.active--);
        const header = p.proxy && b.backend.local ? proxyHeader(p.proxy.src, p.proxy.dst) : undefined;
        splice(client, up, header, undefined, extra);
      } else {
        up.once('close', () => b.active--);
        joinStream(client, up);
      }
    };
    // A silent backend is given up on quickly while others remain; the last one left gets time for
    // the kernel's SYN retry (a busy server's full accept queue drops SYNs for a second).
    const last = !e.backends.some((o) => !p.tried.includes(o));
    const timeoutMs = last ? this.opts.lastConnectTimeoutMs : this.opts.connectTimeoutMs;
    if (b.backend.local) {
      connectLocal(b.target, this.opts.keepAliveDelayMs, timeoutMs, done);
    } else {
      const req: ForwardRequest = { taskId: b.backend.taskId, targetPort: b.backend.targetPort, proxyProtocol: p.proxy !== undefined };
      if (p.proxy) {
        if (p.proxy.src) req.client = p.proxy.src;
        if (p.proxy.dst) req.dst = p.proxy.dst;
      }
      this.opts.remote.connect(b.target, req, done, timeoutMs);
    }
  }
}
