// UDP published ports in userland, as docker-proxy relays them: a socket bound on each port, and
// for each client (its address and port) a socket of its own connected to one local backend
// (round robin over them as clients come), closed after an idle period; the backend's datagrams
// go back to the client from the published port. Only this node's replicas are reached: the
// node-to-node forwarding carries streams, not datagrams (the kernel routes reach the others over
// the ingress overlay). A port with no local replica is not bound, and says why (onPortError).

import dgram from 'node:dgram';
import net from 'node:net';
import type { Logger } from '@shoal/api';
import { parseHostPort, type HostPort } from './addr.js';
import type { PublishedPort } from './types.js';

export interface UdpRelayOptions {
  bindHost: string;
  /** A client silent for this long loses its flow (its socket to the backend). Default 30000. */
  idleMs?: number;
  bindRetryMs: number;
  /** Why a port is not served (bind failure, no local replica), or `null` once it is (or is gone). */
  onPortError: (port: number, err: Error | null) => void;
  log: Logger;
}

interface Flow {
  readonly sock: dgram.Socket;
  readonly backend: string;
  timer: NodeJS.Timeout;
  /** Datagrams that came before the socket was connected. */
  queue: Buffer[] | undefined;
}

class RelayPort {
  backends: HostPort[] = [];
  private rr = 0;
  private socket: dgram.Socket | undefined;
  private retry: NodeJS.Timeout | undefined;
  private readonly flows = new Map<string, Flow>();
  private closed = false;
  private lastError = '';

  constructor(
    readonly port: number,
    private readonly opts: UdpRelayOptions,
  ) {}

  /** The local backends now: flows to one that left are closed. */
  setBackends(backends: HostPort[]): void {
    this.backends = backends;
    const keep = new Set(backends.map((b) => `${b.host}:${b.port}`));
    for (const [k, f] of this.flows) if (!keep.has(f.backend)) this.closeFlow(k, f);
    if (backends.length === 0) this.unbind(new Error('no replica on this node to relay UDP to (the userland proxy forwards no UDP to other nodes)'));
    else this.bind();
  }

  private bind(): void {
    if (this.socket || this.retry || this.closed) return;
    const family = net.isIPv6(this.opts.bindHost) ? 'udp6' : 'udp4';
    const s = dgram.createSocket({ type: family, reuseAddr: false });
    this.socket = s;
    s.on('message', (msg, rinfo) => this.fromClient(msg, rinfo));
    s.once('listening', () => this.report(null));
    s.on('error', (err) => {
      if (this.socket !== s) return;
      this.socket = undefined;
      s.close();
      this.report(err);
      this.retry = setTimeout(() => {
        this.retry = undefined;
        if (this.backends.length > 0) this.bind();
      }, this.opts.bindRetryMs);
      this.retry.unref();
    });
    s.bind(this.port, this.opts.bindHost);
  }

  private unbind(why: Error | null): void {
    if (this.retry) clearTimeout(this.retry);
    this.retry = undefined;
    this.socket?.close();
    this.socket = undefined;
    for (const [k, f] of this.flows) this.closeFlow(k, f);
    this.report(why);
  }

  private report(err: Error | null): void {
    const text = err?.message ?? '';
    if (text === this.lastError) return;
    this.lastError = text;
    this.opts.onPortError(this.port, err);
  }

  private fromClient(msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const key = `${rinfo.address}|${rinfo.port}`;
    let f = this.flows.get(key);
    if (!f) {
      if (this.backends.length === 0) return;
      const b = this.backends[this.rr++ % this.backends.length]!;
      f = this.openFlow(key, b, rinfo);
    }
    f.timer.refresh();
    if (f.queue) f.queue.push(msg);
    else f.sock.send(msg);
  }

  private openFlow(key: string, b: HostPort, client: dgram.RemoteInfo): Flow {
    const sock = dgram.createSocket(net.isIPv6(b.host) ? 'udp6' : 'udp4');
    const timer = setTimeout(() => this.closeFlow(key, flow), this.opts.idleMs ?? 30_000);
    timer.unref();
    const flow: Flow = { sock, backend: `${b.host}:${b.port}`, timer, queue: [] };
    this.flows.set(key, flow);
    sock.on('message', (reply) => {
      flow.timer.refresh();
      this.socket?.send(reply, client.port, client.address);
    });
    // A backend gone (ICMP port unreachable shows as ECONNREFUSED): its flow ends; the client's
    // next datagram opens another, on the next backend.
    sock.on('error', (err) => {
      this.opts.log.debug({ port: this.port, backend: flow.backend, err: err.message }, 'mesh: udp flow failed');
      this.closeFlow(key, flow);
    });
    sock.connect(b.port, b.host, () => {
      const q = flow.queue ?? [];
      flow.queue = undefined;
      for (const m of q) sock.send(m);
    });
    return flow;
  }

  private closeFlow(key: string, f: Flow): void {
    if (this.flows.get(key) !== f) return;
    this.flows.delete(key);
    clearTimeout(f.timer);
    try {
      f.sock.close();
    } catch {
      // already closed
    }
  }

  get flowCount(): number {
    return this.flows.size;
  }

  close(): void {
    this.closed = true;
    this.unbind(null);
  }
}

/** The node's UDP published ports (ingress mode). */
export class UdpRelay {
  private readonly ports = new Map<number, RelayPort>();

  constructor(private readonly opts: UdpRelayOptions) {}

  /** The table's UDP ports: each bound while it has local backends, the others closed. */
  update(ports: readonly PublishedPort[]): void {
    const wanted = new Map<number, HostPort[]>();
    for (const p of ports) {
      const locals = p.backends.flatMap((b) => (b.local && b.addr ? [parseHostPort(b.addr)].filter((x): x is HostPort => !!x) : []));
      wanted.set(p.port, locals);
    }
    for (const [port, rp] of this.ports) {
      if (wanted.has(port)) continue;
      rp.close();
      this.ports.delete(port);
    }
    for (const [port, locals] of wanted) {
      let rp = this.ports.get(port);
      if (!rp) this.ports.set(port, (rp = new RelayPort(port, this.opts)));
      rp.setBackends(locals);
    }
  }

  /** Open flows per port (tests, stats). */
  flows(): Map<number, number> {
    return new Map([...this.ports].map(([p, rp]) => [p, rp.flowCount]));
  }

  close(): void {
    for (const rp of this.ports.values()) rp.close();
    this.ports.clear();
  }
}
