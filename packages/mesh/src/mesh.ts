// The routing mesh's data plane on one node, as one object: it wires the published ports'
// listeners (`Ingress`), which spread client connections over the service's running tasks (local
// ones directly, remote ones through `ForwardClient` to the forwarding listener of the node that
// runs them, on the `LinkPool`'s HTTP/2 sessions or one connection each), this node's own
// forwarding listener (`ForwardServer`), and mutual TLS between nodes (`NodeTls`). It keeps the
// options' defaults and the public API; the components keep the behaviour.

import { NOOP_LOGGER, type Logger } from '@shoal/api';
import { ForwardClient } from './forward-client.js';
import { ForwardServer } from './forward-server.js';
import { Ingress } from './ingress.js';
import { UdpRelay } from './udp-relay.js';
import { LinkPool } from './link-pool.js';
import { NodeTls, certSubject } from './mesh-tls.js';
import { plainDialer, type DialNode } from './node-dialer.js';
import { NOOP } from './sockets.js';
import type { MeshOptions, MeshStats, MeshTable, MeshTls } from './types.js';

export class Mesh {
  private readonly log: Logger;
  private readonly tls: NodeTls | undefined;
  private readonly links: LinkPool;
  private readonly ingress: Ingress;
  private readonly udp: UdpRelay;
  private readonly forwardServer: ForwardServer;
  private closed = false;

  constructor(opts: MeshOptions) {
    this.log = opts.logger ?? NOOP_LOGGER;
    const connectTimeoutMs = opts.connectTimeoutMs ?? 1000;
    const lastConnectTimeoutMs = Math.max(connectTimeoutMs, opts.lastConnectTimeoutMs ?? 5000);
    const failBackoffMs = opts.failBackoffMs ?? 2000;
    const keepAliveDelayMs = opts.keepAliveDelayMs ?? 30_000;
    const maxStreams = Math.max(1, Math.floor(opts.forwardMaxStreams ?? 1000));
    const tls = opts.tls
      ? new NodeTls({ material: opts.tls, sessionReuse: opts.tlsSessionReuse ?? true, keepAliveDelayMs, log: this.log })
      : undefined;
    this.tls = tls;
    const dial: DialNode = tls ? (target, peer, h2) => tls.connect(target, peer, h2) : plainDialer(keepAliveDelayMs);
    this.links = new LinkPool({ dial, maxStreams, setupTimeoutMs: lastConnectTimeoutMs, pingTimeoutMs: connectTimeoutMs, log: this.log });
    const remote = new ForwardClient({
      // Measured (forward-tls-bench): under TLS, h2 is ~3x the connections/s of a TLS handshake per
      // connection; in plain TCP, a connection per client connection is as cheap as a stream.
      transport: opts.forwardTransport ?? (opts.tls ? 'h2' : 'tcp'),
      dial,
      links: this.links,
      tls,
    });
    this.ingress = new Ingress({
      bindHost: opts.bindHost,
      remote,
      connectTimeoutMs,
      lastConnectTimeoutMs,
      failBackoffMs,
      unknownTaskBackoffMs: Math.min(opts.unknownTaskBackoffMs ?? 250, failBackoffMs),
      bindRetryMs: opts.bindRetryMs ?? 2000,
      keepAliveDelayMs,
      onPortError: opts.onPortError ?? NOOP,
      log: this.log,
    });
    const onPortError = opts.onPortError ?? NOOP;
    this.udp = new UdpRelay({
      bindHost: opts.bindHost,
      idleMs: opts.udpIdleMs,
      bindRetryMs: opts.bindRetryMs ?? 2000,
      onPortError: (port, err) => onPortError(port, err, 'udp'),
      log: this.log,
    });
    this.forwardServer = new ForwardServer({
      host: opts.forwardHost ?? opts.bindHost,
      port: opts.forwardPort ?? 0,
      tls,
      localTarget: (taskId, targetPort) => this.ingress.localTarget(taskId, targetPort),
      headerTimeoutMs: opts.forwardHeaderTimeoutMs ?? 2000,
      connectTimeoutMs: lastConnectTimeoutMs,
      failBackoffMs,
      keepAliveDelayMs,
      maxStreams,
      log: this.log,
    });
  }

  /** The bound port of this node's forwarding listener (0 before `start()`). */
  get forwardPort(): number {
    return this.forwardServer.port;
  }

  /** `HOST:PORT` of the forwarding listener: what other nodes' tables put in `via` for this node. */
  get forwardAddress(): string {
    return this.forwardServer.address;
  }

  /** Binds the forwarding listener on `forwardHost:forwardPort`; rejects if it cannot. */
  async start(): Promise<void> {
    if (this.closed) throw new Error('mesh closed');
    await this.forwardServer.start();
  }

  /**
   * Replaces the TLS material (certificate renewal, a new CA bundle, a new `verifyPeer`). New
   * connections, inbound and outbound, use it; open ones are untouched. Remembered TLS sessions
   * are dropped, so this node presents its new certificate on its next connection to every peer.
   * Throws (and changes nothing) if the material is invalid, or if the mesh was created without
   * `tls`: switching the forwarding port between plain TCP and TLS takes a new Mesh.
   */
  setTls(material: MeshTls): void {
    if (!this.tls) throw new Error('mesh: created without tls; the forwarding listener is plain TCP');
    this.tls.replace(material);
    this.forwardServer.tlsReplaced();
    // Sessions outlive connections: drained (GOAWAY; their streams go on), so the next streams in
    // either direction go to new sessions, with the new certificates on both ends.
    this.links.drainAll();
    this.log.info({ subject: certSubject(material.cert) }, 'mesh: TLS material replaced');
  }

  /**
   * Applies a whole new table (idempotent; only differences act). Ports that appear (with
   * backends) start listening, ports that disappear stop accepting at once (their open
   * connections go on), backends that disappear get no new connections. The promise resolves
   * once every listener this table wants has been bound or has failed its first attempt.
   * UDP ports (`protocol: 'udp'`) are relayed to their local backends only (UdpRelay).
   */
  update(table: MeshTable): Promise<void> {
    this.udp.update(table.ports.filter((p) => p.protocol === 'udp'));
    return this.ingress.update({ ports: table.ports.filter((p) => p.protocol !== 'udp') });
  }

  stats(): MeshStats {
    const { port, ...served } = this.forwardServer.stats();
    const { h2SessionsOut, h2SessionsOpened } = this.links.stats();
    const handshakes = this.tls?.counts ?? { tlsConnects: 0, tlsResumed: 0 };
    return {
      ports: this.ingress.stats(),
      forwarder: { port, ...served, ...handshakes, h2SessionsOpened, h2SessionsOut },
    };
  }

  /** Closes every listener and every open connection. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.ingress.close();
    this.udp.close();
    this.tls?.close();
    // Their waiters fail through the sessions' close handlers (and find their clients gone).
    this.links.close();
    await this.forwardServer.close();
  }
}
