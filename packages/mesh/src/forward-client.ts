// Reaching a task on another node through that node's forwarding listener. Transports: `h2`
// (default under TLS) carries every forwarded connection as a CONNECT stream on a pooled HTTP/2
// session to the node, so a client connection costs the forwarding hop no TCP or TLS handshake;
// `tcp` (default in plain TCP, and h2's fallback for older nodes) opens one connection per client
// connection, which starts with the `SHOALFWD1` line and succeeds on the ACK byte.

import http2 from 'node:http2';
import { formatHostPort, type HostPort } from './addr.js';
import { FORWARD_ACK, H2_HEADER_ERROR, UNKNOWN_TASK_REASON, encodeForwardH2, encodeForwardHeader, type ForwardRequest } from './forward-header.js';
import type { H2Link, H2Waiter, LinkPool } from './link-pool.js';
import { isTlsError, type NodeTls } from './mesh-tls.js';
import type { DialNode } from './node-dialer.js';
import { NOOP, abortStream, type ConnectResult } from './sockets.js';

const { NGHTTP2_REFUSED_STREAM } = http2.constants;
/** Attempts for one forwarded connection whose stream a closing session refused unprocessed (GOAWAY race). */
const H2_STREAM_ATTEMPTS = 3;

export interface ForwardClientOptions {
  transport: 'h2' | 'tcp';
  dial: DialNode;
  /** The h2 transport's sessions. */
  links: LinkPool;
  /** Under mutual TLS: asked about the peer before every stream. */
  tls: NodeTls | undefined;
}

export class ForwardClient {

  constructor(private readonly opts: ForwardClientOptions) {}

  /**
   * Connects to `req`'s task through the node whose forwarding listener is `target`; `done` gets
   * the upstream, or the failure and whether it is the node's (`viaDown`) or an unknown task.
   */
  connect(target: HostPort, req: ForwardRequest, done: ConnectResult, timeoutMs: number): void {
    if (this.opts.transport === 'h2') this.connectH2(target, req, done, timeoutMs);
    else this.connectLine(target, encodeForwardHeader(req), done, timeoutMs);
  }

  /**
   * Connects to a remote node's forwarding listener, sends the header, and succeeds on the ACK
   * byte (bytes after it are the backend's: handed on as `extra`). A failure to reach the node
   * itself is flagged `viaDown`.
   */
  private connectLine(target: HostPort, header: string, done: ConnectResult, timeoutMs: number): void {
    const peer = formatHostPort(target.host, target.port);
    const conn = this.opts.dial(target, peer, false);
    const { sock, secure } = conn;
    let settled = false;
    let connected = false;
    const finish = (err?: Error, extra?: Buffer, nodeLevel = !connected, unknownTask = false): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.removeListener('data', onData);
      if (err) {
        sock.destroy();
        if (nodeLevel) conn.forget();
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
    const onClosed = (): void => finish(new Error(secure ? 'forward closed before ack (TLS peer refused?)' : 'forward closed before ack'), undefined, !connected || secure);
    let timer = setTimeout(() => finish(new Error('connect timeout (node)')), timeoutMs);
    sock.once(secure ? 'secureConnect' : 'connect', () => {
      if (settled) return;
      const err = conn.accept().err;
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
    sock.on('error', (err) => finish(err, undefined, !connected || (secure && isTlsError(err))));
    sock.on('end', onClosed);
    sock.on('close', onClosed);
  }

  /**
   * Opens a CONNECT stream for `req` on a session to the node at `target` and succeeds on its
   * `:status 200` (the far node connected its local task), with the stream as the upstream. A
   * session that cannot be set up, a 403 (the node refuses us) or 503 (it is shutting down) are
   * failures of the node (`viaDown`); other statuses (502: its local connect failed) of the task,
   * 404 (not one of its tasks) flagged `unknownTask`.
   * A peer that does not speak h2 gets the line protocol.
   */
  private connectH2(target: HostPort, req: ForwardRequest, done: ConnectResult, timeoutMs: number, attempt = 1): void {
    const peer = formatHostPort(target.host, target.port);
    if (this.opts.links.isLegacy(peer)) {
      this.connectLine(target, encodeForwardHeader(req), done, timeoutMs);
      return;
    }
    const link = this.opts.links.reserve(peer, target);
    let settled = false;
    /** The reserved stream slot is ours to give back (no stream opened on it yet). */
    let holding = true;
    let stream: http2.ClientHttp2Stream | undefined;
    const release = (): void => {
      if (!holding) return;
      holding = false;
      link.waiters.delete(onLink);
      this.opts.links.release(link);
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
      if (legacy) this.connectLine(target, encodeForwardHeader(req), done, timeoutMs);
      else if (attempt >= H2_STREAM_ATTEMPTS) done(null, err, undefined, true);
      else this.connectH2(target, req, done, timeoutMs, attempt + 1);
    };
    let timer = setTimeout(() => finish(new Error('connect timeout (node)'), true), timeoutMs);
    const open = (session: http2.ClientHttp2Session): void => {
      if (link.cert && this.opts.tls) {
        const reason = this.opts.tls.peerRefusal(link.cert);
        if (reason !== null) {
          this.opts.links.drain(link);
          finish(Object.assign(new Error(`peer refused: ${reason}`), { code: 'PEER_REFUSED' }), true);
          return;
        }
      }
      try {
        stream = session.request(encodeForwardH2(req), { endStream: false });
      } catch (err) {
        // Closing since a GOAWAY we have not handled yet, or destroyed (without a 'close' yet).
        if (session.destroyed) this.opts.links.drop(link);
        else this.opts.links.drain(link);
        again(err as Error);
        return;
      }
      // From here the stream's close gives the slot back.
      holding = false;
      link.waiters.delete(onLink);
      const s = stream;
      s.on('error', NOOP); // the outcome is read from 'response' and 'close'
      s.once('close', () => {
        this.opts.links.release(link);
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
        this.opts.links.probe(link);
        finish(new Error('forward timeout'));
      }, timeoutMs + 1000);
    };
    const onLink: H2Waiter = (l: H2Link | null, err, how) => {
      if (settled) return;
      if (l) open(l.session!);
      else if (how) again(err!, how === 'legacy');
      else finish(err, true);
    };
    if (link.ready) open(link.session!);
    else link.waiters.add(onLink);
  }
}
