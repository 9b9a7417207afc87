// This node's forwarding listener: other nodes send it the connections for its local tasks. One
// port serves both transports: a connection that speaks HTTP/2 (ALPN `h2` under TLS, the h2c
// preface in plain TCP) becomes an inbound session whose CONNECT streams are forwarded
// connections; any other starts with the `SHOALFWD1` line. Either way the listener connects the
// named local task and answers (ACK byte / `:status 200`, or an error the sender retries on).

import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import { formatHostPort } from './addr.js';
import type { BackendState } from './backends.js';
import {
  FORWARD_ACK,
  FORWARD_HEADER_MAX,
  H2_HEADER_ERROR,
  UNKNOWN_TASK_REASON,
  parseForwardH2,
  parseForwardHeader,
} from './forward-header.js';
import { H2_IDLE_MS, H2_SESSION_WINDOW, h2SessionOptions } from './h2-session.js';
import type { NodeTls } from './mesh-tls.js';
import { proxyHeader } from './proxy-protocol.js';
import { NOOP, SocketSet, connectLocal, errCode, joinStream, splice } from './sockets.js';
import type { Logger } from '@shoal/api';

const ACK_BYTE = Buffer.from([FORWARD_ACK]);
/** The HTTP/2 client preface (RFC 9113 §3.4): how the plain-TCP listener tells h2c from the line protocol. */
const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/**
 * A CONNECT request is ~100 bytes in a handful of headers: larger ones are refused (431, logged).
 * Beyond Node's own limits (64 KiB, 128 headers) Node resets the stream before the mesh sees it.
 */
const H2_MAX_HEADER_BYTES = 4096;
const H2_MAX_HEADERS = 16;

/** An inbound HTTP/2 session on the forwarding listener. */
interface InboundSession {
  readonly from: string | undefined;
  streams: number;
  /** TLS: the peer's certificate, fetched at its first stream when verifyPeer is set. */
  cert: tls.PeerCertificate | undefined;
}

export interface ForwardServerOptions {
  host: string;
  /** 0: ephemeral. */
  port: number;
  /** Mutual TLS: the listener is a `tls.Server`; else plain TCP. */
  tls: NodeTls | undefined;
  /** This node's local backend that a peer names, if it is one. */
  localTarget: (taskId: string, targetPort: number) => BackendState | undefined;
  /** A peer's header (or TLS handshake) must complete within this. */
  headerTimeoutMs: number;
  /** Deadline of the connect to a local task: the sender waits for it. */
  connectTimeoutMs: number;
  /** A local task whose connect failed is passed over by this node's own listeners for this long. */
  failBackoffMs: number;
  keepAliveDelayMs: number;
  /** Streams per inbound session, announced to peers. */
  maxStreams: number;
  log: Logger;
}

export class ForwardServer {
  private server: net.Server | null = null;
  /** Never listens: the listener hands it the connections that speak HTTP/2. */
  private h2Server: http2.Http2Server | undefined;
  private readonly inbound = new Map<http2.ServerHttp2Session, InboundSession>();
  /** Every open socket (forwarded connections and their local ends), for close(). */
  private readonly sockets = new SocketSet();
  private boundPort = 0;
  private closed = false;
  private readonly counts = { activeConnections: 0, totalConnections: 0, rejected: 0, failedConnects: 0 };

  constructor(private readonly opts: ForwardServerOptions) {}

  /** The bound port (0 before `start()`). */
  get port(): number {
    return this.boundPort;
  }

  get address(): string {
    return formatHostPort(this.opts.host, this.boundPort);
  }

  /** Binds the listener; rejects if it cannot. */
  async start(): Promise<void> {
    if (this.server) return;
    this.h2Server ??= this.createH2Server();
    const server = this.createServer();
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      server.once('error', onError);
      server.listen({ host: this.opts.host, port: this.opts.port, exclusive: true }, () => {
        server.removeListener('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.opts.log.warn({ err }, 'mesh: forwarding listener error'));
    this.server = server;
    this.boundPort = (server.address() as net.AddressInfo).port;
    this.opts.log.info({ addr: this.address, tls: this.opts.tls !== undefined }, 'mesh: forwarding listener bound');
  }

  /**
   * The TLS material was replaced: new handshakes use it. Sessions outlive connections: the
   * inbound ones are closed (GOAWAY; their streams go on), so peers open new ones that present
   * their current certificates.
   */
  tlsReplaced(): void {
    if (this.opts.tls && this.server instanceof tls.Server) this.server.setSecureContext(this.opts.tls.serverOptions());
    for (const s of this.inbound.keys()) if (!s.closed) s.close();
  }

  stats(): { port: number; activeConnections: number; totalConnections: number; rejected: number; failedConnects: number; h2SessionsIn: number } {
    return { port: this.boundPort, ...this.counts, h2SessionsIn: this.inbound.size };
  }

  /** Stops the listener and destroys every session and connection. */
  async close(): Promise<void> {
    this.closed = true;
    const server = this.server;
    this.server = null;
    for (const s of this.inbound.keys()) s.destroy();
    this.sockets.destroyAll();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  private createServer(): net.Server {
    const sockOpts = { allowHalfOpen: true, noDelay: true, keepAlive: true, keepAliveInitialDelay: this.opts.keepAliveDelayMs };
    if (!this.opts.tls) return net.createServer(sockOpts, (sock) => this.onConnection(sock));
    const server = tls.createServer(
      {
        ...sockOpts,
        ...this.opts.tls.serverOptions(),
        requestCert: true,
        rejectUnauthorized: true,
        // A client offering no ALPN (older nodes, the line protocol) still gets the line protocol.
        ALPNProtocols: ['h2'],
        // A peer that connects and stalls the handshake gets no longer than one that stalls its header.
        handshakeTimeout: this.opts.headerTimeoutMs,
      },
      (sock) => this.onSecureConnection(sock),
    );
    // Until their handshake completes, the TLS sockets are only reachable through the raw ones.
    server.on('connection', (raw: net.Socket) => this.sockets.add(raw));
    server.on('tlsClientError', (err: NodeJS.ErrnoException, sock: tls.TLSSocket) => {
      this.counts.rejected++;
      // A certificate that fails verification ends in a bare reset; the reason is on the socket.
      // That one (expired, another cluster's) is worth an operator's eye; scanners and plain-TCP
      // clients are not.
      if (sock.authorizationError) {
        this.opts.log.warn({ from: sock.remoteAddress, reason: String(sock.authorizationError) }, 'mesh: forwarding peer certificate refused');
      } else {
        this.opts.log.debug({ from: sock.remoteAddress, reason: errCode(err) }, 'mesh: forwarding TLS handshake failed');
      }
    });
    return server;
  }

  private onSecureConnection(sock: tls.TLSSocket): void {
    if (this.opts.tls?.verifiesPeers) {
      const cert = sock.getPeerCertificate();
      const reason = this.opts.tls.peerRefusal(cert);
      if (reason !== null) {
        this.counts.rejected++;
        this.opts.log.warn({ peer: cert.subject?.CN, from: sock.remoteAddress, reason }, 'mesh: forwarding peer refused');
        sock.destroy();
        return;
      }
    }
    if (sock.alpnProtocol === 'h2') this.acceptH2(sock);
    else this.onConnection(sock);
  }

  private onConnection(sock: net.Socket): void {
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
          this.reject(sock, 'header too long');
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
      this.reject(sock, 'closed before header');
    };
    const timer = setTimeout(() => {
      stop();
      this.reject(sock, 'header timeout');
    }, this.opts.headerTimeoutMs);
    sock.on('data', onData);
    sock.on('end', onEnd);
  }

  private reject(sock: net.Socket, reason: string): void {
    this.counts.rejected++;
    this.opts.log.debug({ from: sock.remoteAddress, reason }, 'mesh: forwarded connection rejected');
    if (sock.destroyed) return;
    sock.end(`ERR ${reason}\n`, () => sock.destroy());
    // If the peer never reads the line, do not keep the socket.
    setTimeout(() => sock.destroy(), 1000).unref();
  }

  /** A line-protocol request: its local connect, then the ACK and the pipes. */
  private forward(sock: net.Socket, line: string, rest: Buffer | undefined): void {
    const req = parseForwardHeader(line);
    if (!req) {
      this.reject(sock, 'bad header');
      return;
    }
    const b = this.opts.localTarget(req.taskId, req.targetPort);
    if (!b) {
      this.reject(sock, UNKNOWN_TASK_REASON);
      return;
    }
    b.active++;
    connectLocal(b.target, this.opts.keepAliveDelayMs, this.opts.connectTimeoutMs, (back, err) => {
      if (!back) {
        this.reject(sock, this.connectFailed(b, req.taskId, err));
        return;
      }
      if (!this.connected(b, back, sock, sock.destroyed)) return;
      sock.write(ACK_BYTE);
      const header = req.proxyProtocol ? proxyHeader(req.client, req.dst) : undefined;
      splice(sock, back, header, rest);
    });
  }

  /**
   * A forwarded connection's local connect succeeded (either protocol): counted while the peer's
   * side (`from`) is open, `back` tracked and counted on `b` until it closes; false, and the local
   * connection dropped, if the peer's side is already gone.
   */
  private connected(b: BackendState, back: net.Socket, from: { once(event: 'close', fn: () => void): unknown }, gone: boolean): boolean {
    if (gone) {
      b.active--;
      back.destroy();
      return false;
    }
    b.total++;
    this.counts.totalConnections++;
    this.counts.activeConnections++;
    from.once('close', () => this.counts.activeConnections--);
    this.sockets.add(back);
    back.once('close', () => b.active--);
    return true;
  }

  /** A forwarded connection's local connect failed (either protocol): the reason for the peer. */
  private connectFailed(b: BackendState, taskId: string, err: Error | undefined): string {
    b.active--;
    b.failed++;
    b.failingUntil = Date.now() + this.opts.failBackoffMs;
    this.counts.failedConnects++;
    this.opts.log.debug({ taskId, err: errCode(err) }, 'mesh: forwarded connect failed');
    return `connect failed ${errCode(err)}`;
  }

  private track(sock: net.Socket): void {
    if (this.sockets.has(sock)) return;
    this.sockets.add(sock);
    sock.on('error', NOOP);
  }

  // ---- h2 transport: inbound sessions ------------------------------------------------------

  private createH2Server(): http2.Http2Server {
    const server = http2.createServer(h2SessionOptions(this.opts.maxStreams));
    server.on('session', (session: http2.ServerHttp2Session) => this.onInboundSession(session));
    server.on('stream', (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, _flags: number, raw: string[]) =>
      this.onStream(stream, headers, raw),
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
      if (String(err.code).startsWith('ERR_HTTP2')) this.counts.rejected++;
      this.opts.log.debug({ from: info.from, err: errCode(err) }, 'mesh: inbound h2 session error');
    });
    session.once('close', () => this.inbound.delete(session));
    session.setLocalWindowSize(H2_SESSION_WINDOW);
    // A peer closes its idle sessions itself; this only reclaims those it forgot (or never used).
    session.setTimeout(2 * H2_IDLE_MS, () => {
      if (info.streams === 0) session.close();
    });
  }

  /** A forwarded connection on an inbound session: as `forward()`, with `:status` for the ACK/ERR. */
  private onStream(stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, raw: string[]): void {
    stream.on('error', NOOP); // resets act through 'close'
    const session = stream.session;
    const info = session ? this.inbound.get(session as http2.ServerHttp2Session) : undefined;
    if (this.closed || !info || !session) {
      this.refuseStream(stream, undefined, 503, 'shutting down', false);
      return;
    }
    if (this.opts.tls?.verifiesPeers && session.encrypted) {
      // Once per session: the certificate does not change, verifyPeer's verdict may.
      info.cert ??= (session.socket as tls.TLSSocket).getPeerCertificate();
      const reason = this.opts.tls.peerRefusal(info.cert);
      if (reason !== null) {
        this.opts.log.warn({ peer: info.cert.subject?.CN, from: info.from, reason }, 'mesh: forwarding peer refused');
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
    const b = this.opts.localTarget(req.taskId, req.targetPort);
    if (!b) {
      this.refuseStream(stream, info, 404, UNKNOWN_TASK_REASON);
      return;
    }
    info.streams++;
    stream.once('close', () => info.streams--);
    b.active++;
    connectLocal(b.target, this.opts.keepAliveDelayMs, this.opts.connectTimeoutMs, (back, err) => {
      if (!back) {
        this.refuseStream(stream, info, 502, this.connectFailed(b, req.taskId, err), false);
        return;
      }
      if (!this.connected(b, back, stream, stream.closed || stream.destroyed)) return;
      stream.respond({ ':status': 200 });
      const header = req.proxyProtocol ? proxyHeader(req.client, req.dst) : undefined;
      joinStream(back, stream, header);
    });
  }

  /** Answers a stream with an error status (the sender tries elsewhere) and ends it. */
  private refuseStream(stream: http2.ServerHttp2Stream, info: InboundSession | undefined, status: number, reason: string, counts = true): void {
    if (counts) this.counts.rejected++;
    this.opts.log.debug({ from: info?.from, status, reason }, 'mesh: forwarded stream refused');
    if (stream.closed || stream.destroyed || stream.headersSent) return;
    stream.respond({ ':status': status, [H2_HEADER_ERROR]: reason.replace(/[^\x20-\x7e]/g, '?').slice(0, 200) }, { endStream: true });
    // Whatever the peer sends on it is dropped, so the stream can close.
    stream.resume();
  }
}
