// Socket plumbing shared by the published ports and the forwarding listener: connecting to a
// container with a deadline, joining two sockets (or a socket and an HTTP/2 stream) both ways,
// resets, and the set of open sockets a component destroys when it closes.
//
// Data path: sockets are piped (both ways); no per-byte JavaScript work, no buffering of our own,
// no idle timeout.

import http2 from 'node:http2';
import net from 'node:net';
import type { HostPort } from './addr.js';

export const NOOP = (): void => {};

const { NGHTTP2_NO_ERROR } = http2.constants;

/** A connected backend: a socket (a container, or a remote node's line-protocol connection), or an h2 stream to a remote node. */
export type Upstream = net.Socket | http2.ClientHttp2Stream;

/**
 * How a connect ended: with an upstream, or an error and how far it reaches: `viaDown`, the remote
 * node itself failed; `unknownTask`, the node answered that the task is not one of its own (yet).
 */
export type ConnectResult = (up: Upstream | null, err?: Error, extra?: Buffer, viaDown?: boolean, unknownTask?: boolean) => void;

export function errCode(err: unknown): string {
  const e = err as NodeJS.ErrnoException | undefined;
  return e?.code ?? e?.message ?? String(err);
}

/** Every open socket of a component, for its close(). */
export class SocketSet {
  private readonly set = new Set<net.Socket>();

  has(sock: net.Socket): boolean {
    return this.set.has(sock);
  }

  /** Kept until it closes. */
  add(sock: net.Socket): void {
    this.set.add(sock);
    sock.once('close', () => this.set.delete(sock));
  }

  destroyAll(): void {
    for (const s of this.set) s.destroy();
    this.set.clear();
  }
}

/** `halfOpen`: false for a session's socket (a session ends with its connection, half-close is per stream). */
export function connectSocket(target: HostPort, keepAliveDelayMs: number, halfOpen = true): net.Socket {
  return net.connect({
    host: target.host,
    port: target.port,
    allowHalfOpen: halfOpen,
    noDelay: true,
    keepAlive: true,
    keepAliveInitialDelay: keepAliveDelayMs,
  });
}

/** Connects to a container; fails on error or after timeoutMs. */
export function connectLocal(
  target: HostPort,
  keepAliveDelayMs: number,
  timeoutMs: number,
  done: (sock: net.Socket | null, err?: Error) => void,
): void {
  const sock = connectSocket(target, keepAliveDelayMs);
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
 * Joins two connected sockets both ways. `toBack` (a PROXY header, then leftover bytes) is
 * written to the back side first, `toFront` to the front side. Either side's error or reset
 * destroys both; an end (half-close) is passed on.
 */
export function splice(front: net.Socket, back: net.Socket, header?: Buffer, toBack?: Buffer, toFront?: Buffer): void {
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

/**
 * Joins a socket and an HTTP/2 stream both ways (`first` is written to the socket first). An end
 * is passed on (half-close: END_STREAM one way, FIN the other). A reset or error on either side
 * resets the other: RST_STREAM to the peer node, a TCP RST to the socket's end, so a cut
 * connection never looks like a complete one.
 */
export function joinStream(sock: net.Socket, stream: http2.Http2Stream, first?: Buffer): void {
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
export function abortStream(stream: http2.Http2Stream): void {
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

export function abortUpstream(up: Upstream): void {
  if (up instanceof net.Socket) up.destroy();
  else abortStream(up);
}
