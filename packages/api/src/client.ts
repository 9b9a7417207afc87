// Calling the services of proto/ as a client.

import * as grpc from '@grpc/grpc-js';
import { ERROR_CODE_KEY, ShoalError } from './errors.js';
import { type ServiceName, getClientConstructor } from './proto.js';

/**
 * How a channel is secured: TLS credentials and the channel options that go with them (the TLS
 * server name to ask for). Absent: plaintext (unix sockets, tests of the plain transport).
 */
export interface ChannelSecurity {
  credentials: grpc.ChannelCredentials;
  options?: grpc.ChannelOptions;
}

/** The security to use now (it changes when a certificate is renewed). */
export type SecuritySource = ChannelSecurity | (() => ChannelSecurity) | undefined;

function current(s: SecuritySource): ChannelSecurity | undefined {
  return typeof s === 'function' ? s() : s;
}

/**
 * Calls one unary method on a remote service (a channel of its own, closed after the answer),
 * with a deadline; errors come back as ShoalErrors.
 */
export function callUnary<T>(name: ServiceName, addr: string, method: string, req: unknown, timeoutMs: number, security?: SecuritySource): Promise<T> {
  const Ctor = getClientConstructor(name);
  const sec = current(security);
  const client = new Ctor(addr, sec?.credentials ?? grpc.credentials.createInsecure(), sec?.options ?? {});
  return new Promise<T>((resolve, reject) => {
    const c = client as unknown as Record<string, Function>;
    const fn = c[method[0].toLowerCase() + method.slice(1)] ?? c[method];
    fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) => {
      client.close();
      if (err) reject(ShoalError.fromGrpcError(err));
      else resolve(res);
    });
  });
}

function isConnecting(client: grpc.Client): boolean {
  return client.getChannel().getConnectivityState(false) === grpc.connectivityState.CONNECTING;
}

/** Connected, or a connection under way. */
function isLive(client: grpc.Client): boolean {
  const state = client.getChannel().getConnectivityState(false);
  return state === grpc.connectivityState.READY || state === grpc.connectivityState.CONNECTING;
}

/**
 * Unary calls over kept-open channels, one per (service, address): for a caller that talks to the
 * same peers again and again (an agent's heartbeats, reports and long polls), a channel per call
 * would cost a TCP and HTTP/2 handshake on both sides every time. A channel that fails with
 * UNAVAILABLE is dropped, so the next call starts afresh instead of waiting out grpc-js's
 * reconnect backoff (a deadline alone keeps it: see call()); idle channels close after a while.
 * A peer that answered (a Shoal error: NOT_LEADER, a busy dispatcher's "retry later") keeps its
 * channel: dropping it would cost that peer a TLS handshake per refusal, thousands at once after
 * a leader change.
 */
export class UnaryClientPool {
  private readonly clients = new Map<string, { client: grpc.Client; timer: NodeJS.Timeout; inflight: number; sec?: ChannelSecurity }>();
  /** `security`: read on every call; a channel opened with older credentials is replaced. */
  constructor(
    private readonly idleMs = 30_000,
    private readonly security?: SecuritySource,
  ) {}

  call<T>(name: ServiceName, addr: string, method: string, req: unknown, timeoutMs: number): Promise<T> {
    const key = `${name} ${addr}`;
    const sec = current(this.security);
    let e = this.clients.get(key);
    if (e && e.sec !== sec) {
      this.drop(key, e);
      e = undefined;
    }
    if (!e) {
      const Ctor = getClientConstructor(name);
      const client = new Ctor(addr, sec?.credentials ?? grpc.credentials.createInsecure(), {
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
        // A peer gone silent for good (a host powered off) fails the channel within a minute while
        // calls are open (an agent always has a long poll open). Not sooner: a ping's answer read
        // late by a busy process (seen with 5 s, at 1,000 nodes) would drop a live connection.
        'grpc.keepalive_time_ms': 30_000,
        'grpc.keepalive_timeout_ms': 20_000,
        ...sec?.options,
      });
      e = { client, timer: setTimeout(() => undefined, 0), inflight: 0, sec };
      this.clients.set(key, e);
    }
    const entry = e;
    clearTimeout(entry.timer);
    entry.inflight++;
    return new Promise<T>((resolve, reject) => {
      const c = entry.client as unknown as Record<string, Function>;
      const fn = c[method[0].toLowerCase() + method.slice(1)] ?? c[method];
      fn.call(entry.client, req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) => {
        entry.inflight--;
        // A dead peer (UNAVAILABLE: refused, reset): the next call starts on a fresh connection.
        // A deadline alone drops nothing while the channel is connected or connecting: the peer
        // is busy (a leader with a thousand nodes' handshakes and reports), and a new connection
        // would cost both sides a handshake when they can least afford it; seen at 1,000 nodes,
        // where dropped channels kept 950 nodes out of a new leader for minutes. A silent peer
        // behind a live-looking connection is found by keepalive pings (the channel fails).
        const answered = (err?.metadata?.get(ERROR_CODE_KEY).length ?? 0) > 0;
        if (!answered && (err?.code === grpc.status.UNAVAILABLE || (err?.code === grpc.status.DEADLINE_EXCEEDED && !isLive(entry.client)))) this.drop(key, entry);
        else if (entry.inflight === 0 && this.clients.get(key) === entry) {
          entry.timer = setTimeout(() => this.drop(key, entry), this.idleMs);
          entry.timer.unref();
        }
        if (err) reject(ShoalError.fromGrpcError(err));
        else resolve(res);
      });
    });
  }

  /** True while the channel to `addr` is being connected (TCP or TLS handshake under way). */
  connecting(name: ServiceName, addr: string): boolean {
    const e = this.clients.get(`${name} ${addr}`);
    return e !== undefined && isConnecting(e.client);
  }

  private drop(key: string, entry: { client: grpc.Client; timer: NodeJS.Timeout }): void {
    clearTimeout(entry.timer);
    if (this.clients.get(key) === entry) this.clients.delete(key);
    // In-flight calls on it finish; new ones get a new channel.
    entry.client.close();
  }

  /** Closes every channel (calls under way finish); a later call opens a new one. */
  close(): void {
    for (const [key, e] of [...this.clients]) this.drop(key, e);
  }
}
