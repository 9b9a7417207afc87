// The h2 transport's outbound side: long-lived HTTP/2 sessions ("links") to other nodes'
// forwarding listeners, shared by the forwarded connections (one CONNECT stream each). A link is
// opened on demand, another one when every link to the peer is full (never a queue behind
// unrelated long-lived streams), drained on GOAWAY, on TLS renewal or when idle, and probed with a
// PING when a stream gets no answer. A peer that does not speak HTTP/2 (an older node) is marked
// for the line protocol for a while.

import http2 from 'node:http2';
import type net from 'node:net';
import type tls from 'node:tls';
import type { HostPort } from './addr.js';
import { H2_IDLE_MS, H2_SESSION_WINDOW, h2SessionOptions } from './h2-session.js';
import type { DialNode } from './node-dialer.js';
import { errCode } from './sockets.js';
import type { Logger } from '@shoal/api';

/** A peer found not to speak h2 (an older node) gets the line protocol for this long, then h2 is tried again. */
const LEGACY_RETRY_MS = 60_000;

/** One outbound HTTP/2 session to a peer node's forwarding listener, shared by forwarded connections. */
export interface H2Link {
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
export type H2Waiter = (link: H2Link | null, err?: Error, how?: 'legacy' | 'retry') => void;

export interface LinkPoolOptions {
  dial: DialNode;
  /** Streams per session this node allows and opens at most (the peer may allow fewer). */
  maxStreams: number;
  /** A session not set up within this fails (its waiters have their own, shorter deadlines). */
  setupTimeoutMs: number;
  /** A probed session that does not answer its PING within this is destroyed. */
  pingTimeoutMs: number;
  log: Logger;
}

export class LinkPool {
  /** The sessions to each peer (forwarding address) that take new streams. */
  private readonly links = new Map<string, H2Link[]>();
  /** Every outbound session, draining ones included. */
  private readonly all = new Set<H2Link>();
  /** Peers found not to speak h2 (older nodes), and until when they get the line protocol. */
  private readonly legacyPeers = new Map<string, number>();
  /** Sessions established (peer's SETTINGS received) since start. */
  private opened = 0;

  constructor(private readonly opts: LinkPoolOptions) {}

  /** The peer was found not to speak h2 less than LEGACY_RETRY_MS ago: use the line protocol. */
  isLegacy(peer: string): boolean {
    const until = this.legacyPeers.get(peer);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.legacyPeers.delete(peer);
    return false;
  }

  /** A session to `peer` with room for one more stream (a new one if none has), the slot taken. */
  reserve(peer: string, target: HostPort): H2Link {
    const list = this.links.get(peer);
    if (list) {
      for (const l of list) {
        if (l.streams < l.maxStreams) {
          l.streams++;
          return l;
        }
      }
    }
    const l = this.open(peer, target);
    l.streams++;
    return l;
  }

  /** Gives a stream slot back (the stream closed, or was never opened). */
  release(link: H2Link): void {
    link.streams--;
    if (link.streams > 0 || link.draining || link.closed) return;
    // Extra sessions opened under load are not kept idle: the first one stays warm.
    const list = this.links.get(link.peer);
    if (list && list.length > 1 && list[0] !== link) this.drain(link);
  }

  /** No new streams on it; it closes (GOAWAY) once its streams have ended. */
  drain(link: H2Link): void {
    if (link.draining || link.closed) return;
    link.draining = true;
    this.unlist(link);
    if (link.ready && link.session && !link.session.closed) link.session.close();
  }

  /** Drains every session (TLS renewal: the next streams go to new sessions, with the new material). */
  drainAll(): void {
    for (const l of [...this.all]) this.drain(l);
  }

  /** Forgets a session that is gone (or going): it takes no more streams. */
  drop(link: H2Link): void {
    link.closed = true;
    this.unlist(link);
    this.all.delete(link);
  }

  /**
   * A stream got no answer in time: is the session itself alive? One that does not answer a PING
   * within the ping timeout is destroyed (its streams reset), so that the next connections
   * open a new one (and find out whether the node is there) instead of waiting on a dead one
   * until TCP keepalive notices.
   */
  probe(link: H2Link): void {
    const s = link.session;
    if (!s || link.probing || link.closed || s.destroyed) return;
    link.probing = true;
    const timer = setTimeout(() => {
      this.opts.log.warn({ peer: link.peer }, 'mesh: h2 session to peer does not answer; closed');
      s.destroy(new Error('ping timeout'));
    }, this.opts.pingTimeoutMs);
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

  stats(): { h2SessionsOut: number; h2SessionsOpened: number } {
    let open = 0;
    for (const l of this.all) if (l.ready && !l.closed) open++;
    return { h2SessionsOut: open, h2SessionsOpened: this.opened };
  }

  /** Destroys every session; their waiters fail through the sessions' close handlers. */
  close(): void {
    for (const l of [...this.all]) {
      l.session?.destroy();
      l.sock.destroy();
    }
  }

  private open(peer: string, target: HostPort): H2Link {
    const conn = this.opts.dial(target, peer, true);
    const sock = conn.sock;
    const secure = conn.secure;
    const link: H2Link = {
      peer,
      sock,
      session: undefined,
      ready: false,
      draining: false,
      closed: false,
      streams: 0,
      maxStreams: this.opts.maxStreams,
      waiters: new Set(),
      cert: undefined,
      probing: false,
    };
    let list = this.links.get(peer);
    if (!list) {
      list = [];
      this.links.set(peer, list);
    }
    list.push(link);
    this.all.add(link);
    let connected = false;
    const fail = (err: Error, legacy: boolean): void => {
      if (link.closed) return;
      clearTimeout(timer);
      this.drop(link);
      link.session?.destroy();
      sock.destroy();
      if (legacy) {
        this.legacyPeers.set(peer, Date.now() + LEGACY_RETRY_MS);
        this.opts.log.info({ peer, reason: err.message, retryMs: LEGACY_RETRY_MS }, 'mesh: peer does not speak h2; forwarding to it with the line protocol');
      } else {
        conn.forget();
        this.opts.log.debug({ peer, err: errCode(err) }, 'mesh: h2 session to peer failed');
      }
      const waiters = [...link.waiters];
      link.waiters.clear();
      for (const w of waiters) w(null, err, legacy ? 'legacy' : undefined);
    };
    // An older node answers the h2c preface with `ERR bad header`, which is an HTTP/2 protocol
    // error to the session (under TLS, ALPN tells). A reset or close is the node failing.
    const early = (err: Error): void => {
      if (!link.ready) fail(err, connected && !secure && errCode(err) === 'ERR_HTTP2_ERROR');
    };
    // Waiters give up after their own connect timeout; the session gets as long as any connect.
    const timer = setTimeout(() => fail(new Error('session setup timeout'), false), this.opts.setupTimeoutMs);
    sock.on('error', early);
    sock.once('end', () => early(new Error('closed before the session started')));
    sock.once('close', () => early(new Error(connected ? 'closed before the session started' : 'closed')));
    sock.once(secure ? 'secureConnect' : 'connect', () => {
      if (link.closed) return;
      connected = true;
      if (secure) {
        const { cert, err } = conn.accept();
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
      const session = http2.connect(`${secure ? 'https' : 'http'}://${peer}`, {
        ...h2SessionOptions(this.opts.maxStreams),
        peerMaxConcurrentStreams: this.opts.maxStreams,
        createConnection: () => sock,
      });
      link.session = session;
      session.on('error', (err) => {
        if (link.ready) this.opts.log.debug({ peer, err: errCode(err) }, 'mesh: h2 session to peer failed');
        else early(err);
      });
      session.once('connect', () => session.setLocalWindowSize(H2_SESSION_WINDOW));
      session.once('remoteSettings', (settings) => {
        if (link.closed) return;
        clearTimeout(timer);
        link.ready = true;
        this.opened++;
        link.maxStreams = Math.max(1, Math.min(this.opts.maxStreams, settings.maxConcurrentStreams ?? this.opts.maxStreams));
        // Activity on any stream keeps it; idle long-lived client connections too (streams > 0).
        session.setTimeout(H2_IDLE_MS, () => {
          if (link.streams === 0) this.drain(link);
        });
        let room = link.maxStreams;
        for (const w of [...link.waiters]) {
          link.waiters.delete(w);
          if (room-- > 0) w(link);
          else w(null, new Error('session full'), 'retry');
        }
        if (link.draining) session.close();
      });
      session.on('goaway', () => this.drain(link));
      session.once('close', () => {
        if (link.ready) this.drop(link);
        else early(new Error('session closed before it started'));
      });
    });
    return link;
  }

  private unlist(link: H2Link): void {
    const list = this.links.get(link.peer);
    if (!list) return;
    const i = list.indexOf(link);
    if (i >= 0) list.splice(i, 1);
    if (list.length === 0) this.links.delete(link.peer);
  }
}
