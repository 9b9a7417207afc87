// The node's service DNS: one server for every overlay network's gateway address on this node
// (UDP and TCP, port 53), answering task containers from the current NameTable and relaying
// every other name to the node's resolvers. Docker runs one embedded resolver per container on
// 127.0.0.11 behind NAT rules; here the gateway address is the nameserver, so a query's source
// address is the asking task's overlay address, which picks the names it may see.

import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { readFile } from 'node:fs/promises';
import { NOOP_LOGGER, ShoalError, type Logger } from '@shoal/api';
import { FORWARD, RCODE, answer, failure } from './answer.js';
import { forward } from './forward.js';
import { NameTable } from './name-table.js';
import { MAX_UPSTREAMS, parseResolvConf, parseUpstream, type Upstream } from './upstreams.js';

export interface ServiceDnsOptions {
  /** Resolvers for names outside the cluster (`ip`, `ip:port`, `[ip6]:port`); default: resolvConf's. */
  upstreams?: readonly string[];
  log?: Logger;
  /** Read when the server first listens; default /etc/resolv.conf. */
  resolvConf?: string;
}

/** Docker's cap (maxConcurrent): past it a query is refused rather than piling up sockets. */
const MAX_FORWARDS = 1024;
/** A TCP client that says nothing for this long is gone (RFC 7766 suggests seconds). */
const TCP_IDLE_MS = 10_000;

interface Listener {
  readonly address: string;
  readonly port: number;
  readonly udp: dgram.Socket;
  readonly tcp: net.Server;
  readonly conns: Set<net.Socket>;
}

interface Slot {
  readonly ready: Promise<Listener>;
  listener?: Listener;
}

export class ServiceDns {
  #table: NameTable = NameTable.EMPTY;
  readonly #log: Logger;
  readonly #resolvConf: string;
  readonly #given: readonly Upstream[] | undefined;
  #upstreams: Promise<readonly Upstream[]> | undefined;
  readonly #slots = new Map<string, Slot>();
  /** Addresses being let go: a new listen on one waits for its port to be free. */
  readonly #closing = new Map<string, Promise<void>>();
  readonly #stop = new AbortController();
  #forwarding = 0;

  constructor(opts: ServiceDnsOptions = {}) {
    this.#log = opts.log ?? NOOP_LOGGER;
    this.#resolvConf = opts.resolvConf ?? '/etc/resolv.conf';
    this.#given = opts.upstreams?.slice(0, MAX_UPSTREAMS).map(parseUpstream);
  }

  /** The next query (on any address) sees `t`; queries already answered saw the old one. */
  setTable(t: NameTable): void {
    this.#table = t;
  }

  /** Serves UDP and TCP on address:port; a second call for a listening address does nothing. */
  async listen(address: string, port = 53): Promise<void> {
    if (this.#stop.signal.aborted) throw new ShoalError('FAILED_PRECONDITION', 'service DNS: closed');
    if (net.isIP(address) === 0) throw new ShoalError('INVALID_ARGUMENT', `service DNS: not an IP address: ${JSON.stringify(address)}`);
    const existing = this.#slots.get(address);
    if (existing !== undefined) {
      await existing.ready;
      return;
    }
    this.#upstreams ??= this.#loadUpstreams();
    const closing = this.#closing.get(address);
    const slot: Slot = { ready: (closing ?? Promise.resolve()).then(() => this.#open(address, port)) };
    this.#slots.set(address, slot);
    try {
      slot.listener = await slot.ready;
    } catch (err) {
      if (this.#slots.get(address) === slot) this.#slots.delete(address);
      throw err;
    }
  }

  /** Stops serving on address (both protocols, open TCP connections too); nothing if not listening. */
  async unlisten(address: string): Promise<void> {
    const slot = this.#slots.get(address);
    if (slot === undefined) return;
    this.#slots.delete(address);
    const done = slot.ready.then(shut, () => undefined);
    this.#closing.set(address, done);
    try {
      await done;
    } finally {
      if (this.#closing.get(address) === done) this.#closing.delete(address);
    }
  }

  /** The addresses being served. */
  listening(): string[] {
    return [...this.#slots.values()].flatMap((s) => (s.listener === undefined ? [] : [s.listener.address]));
  }

  /** Stops everything, in-flight forwards included; the server cannot listen again. */
  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.all([...this.#slots.keys()].map((a) => this.unlisten(a)));
  }

  async #open(address: string, port: number): Promise<Listener> {
    const udp = dgram.createSocket({ type: net.isIPv6(address) ? 'udp6' : 'udp4' });
    // Half-open: a client may shut its side after the query and still wait for the answer.
    const tcp = net.createServer({ allowHalfOpen: true });
    const listener: Listener = { address, port, udp, tcp, conns: new Set() };
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once('error', reject);
        udp.bind({ address, port, exclusive: true }, () => {
          udp.off('error', reject);
          resolve();
        });
      });
      await new Promise<void>((resolve, reject) => {
        tcp.once('error', reject);
        tcp.listen({ host: address, port, exclusive: true }, () => {
          tcp.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await shut(listener).catch(() => undefined);
      throw new ShoalError('UNAVAILABLE', `service DNS cannot listen on ${address}:${port}: ${(err as Error).message}`, { cause: err });
    }
    udp.on('error', (err) => this.#log.debug({ address, err: err.message }, 'service DNS: UDP socket error'));
    udp.on('message', (msg, rinfo) => this.#onDatagram(listener, msg, rinfo));
    tcp.on('error', (err) => this.#log.debug({ address, err: err.message }, 'service DNS: TCP listener error'));
    tcp.on('connection', (sock) => this.#onConnection(listener, sock));
    return listener;
  }

  #onDatagram(l: Listener, msg: Buffer, rinfo: dgram.RemoteInfo): void {
    const reply = (res: Buffer): void => {
      try {
        l.udp.send(res, rinfo.port, rinfo.address);
      } catch {
        // the address was let go meanwhile
      }
    };
    this.#handle(msg, rinfo.address, false, reply);
  }

  #onConnection(l: Listener, sock: net.Socket): void {
    l.conns.add(sock);
    sock.on('close', () => l.conns.delete(sock));
    sock.on('error', () => undefined); // a client gone mid-answer is nothing to report
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    const client = unmapped(sock.remoteAddress ?? '');
    let pending = 0;
    let ended = false;
    const reply = (res: Buffer): void => {
      if (sock.destroyed || !sock.writable) return;
      const len = Buffer.allocUnsafe(2);
      len.writeUInt16BE(res.length);
      sock.write(Buffer.concat([len, res]));
    };
    const settled = (): void => {
      pending--;
      if (ended && pending === 0) sock.end();
    };
    let buf: Buffer = Buffer.alloc(0);
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      // Queries may come pipelined; each is answered as soon as it can be (RFC 7766 6.2.1.1).
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        pending++;
        this.#handle(msg, client, true, reply, settled);
      }
    });
    sock.on('end', () => {
      ended = true;
      if (pending === 0) sock.end();
    });
  }

  /** Answers `msg` through `reply` (or not at all), then calls `settled`. */
  #handle(msg: Buffer, client: string, tcp: boolean, reply: (res: Buffer) => void, settled?: () => void): void {
    const verdict = answer(msg, {
      table: this.#table,
      client,
      tcp,
      onMalformed: (why) => this.#log.debug({ client, why }, 'service DNS: malformed query'),
    });
    if (verdict !== FORWARD) {
      if (verdict !== null) reply(verdict);
      settled?.();
      return;
    }
    void this.#forward(msg, tcp)
      .then(
        (res) => res !== undefined && reply(res),
        (err: Error) => this.#log.debug({ client, err: err.message }, 'service DNS: forwarding failed'),
      )
      .finally(() => settled?.());
  }

  /** The upstream's answer, SERVFAIL when none gave one, or undefined once the server is closed. */
  async #forward(query: Buffer, tcp: boolean): Promise<Buffer | undefined> {
    const signal = this.#stop.signal;
    const upstreams = (await this.#upstreams!).filter((u) => !this.#isSelf(u));
    if (signal.aborted) return undefined;
    if (this.#forwarding >= MAX_FORWARDS) {
      this.#log.debug({ limit: MAX_FORWARDS }, 'service DNS: too many queries in flight upstream, refusing');
      return failure(query, RCODE.REFUSED);
    }
    this.#forwarding++;
    try {
      const res = await forward(upstreams, query, tcp, signal, (u, why) =>
        this.#log.debug({ upstream: `${u.host}:${u.port}`, tcp, why }, 'service DNS: upstream gave no answer'),
      );
      if (signal.aborted) return undefined;
      return res ?? failure(query, RCODE.SERVFAIL);
    } finally {
      this.#forwarding--;
    }
  }

  /** Whether an upstream is this server itself (a resolv.conf naming a gateway would loop). */
  #isSelf(u: Upstream): boolean {
    const l = this.#slots.get(u.host)?.listener;
    return l !== undefined && l.port === u.port;
  }

  async #loadUpstreams(): Promise<readonly Upstream[]> {
    if (this.#given !== undefined) return this.#given;
    let text: string;
    try {
      text = await readFile(this.#resolvConf, 'utf8');
    } catch (err) {
      this.#log.warn({ path: this.#resolvConf, err: (err as Error).message }, 'service DNS: no resolv.conf, names outside the cluster will get SERVFAIL');
      return [];
    }
    const ups = parseResolvConf(text);
    if (ups.length === 0) this.#log.warn({ path: this.#resolvConf }, 'service DNS: no nameserver in resolv.conf, names outside the cluster will get SERVFAIL');
    return ups;
  }
}

async function shut(l: Listener): Promise<void> {
  for (const c of l.conns) c.destroy();
  await Promise.all([
    new Promise<void>((resolve) => {
      try {
        l.udp.close(() => resolve());
      } catch {
        resolve(); // never bound, or already closed
      }
    }),
    new Promise<void>((resolve) => (l.tcp.listening ? l.tcp.close(() => resolve()) : resolve())),
  ]);
}

/** ::ffff:10.0.1.5 -> 10.0.1.5 (a dual-stack socket's view of an IPv4 peer). */
function unmapped(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}
