// Relaying a query to the upstream resolvers, byte for byte (the client's id, flags and EDNS
// options go as they came, and the answer comes back as the upstream wrote it).

import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { RCODE, rcodeOf } from './answer.js';
import type { Upstream } from './upstreams.js';

/** Per upstream: a stub's whole budget is ~5 s (glibc), so three tries must fit in it. */
export const UPSTREAM_TIMEOUT_MS = 2000;

/**
 * The first usable answer from `upstreams` in order, over UDP or TCP as the client asked;
 * undefined when none answered. SERVFAIL and REFUSED move on to the next upstream, as Docker's
 * forwardExtDNS does (REFUSED can be a transitional state of one server).
 */
export async function forward(
  upstreams: readonly Upstream[],
  query: Buffer,
  tcp: boolean,
  signal: AbortSignal,
  onFailure?: (upstream: Upstream, why: string) => void,
): Promise<Buffer | undefined> {
  for (const up of upstreams) {
    if (signal.aborted) return undefined;
    const res = await (tcp ? exchangeTcp : exchangeUdp)(up, query, signal);
    if (typeof res === 'string') {
      onFailure?.(up, res);
      continue;
    }
    const rcode = rcodeOf(res);
    if (rcode === RCODE.SERVFAIL || rcode === RCODE.REFUSED) {
      onFailure?.(up, rcode === RCODE.SERVFAIL ? 'SERVFAIL' : 'REFUSED');
      continue;
    }
    return res;
  }
  return undefined;
}

/** A response to `query`: long enough, marked a response, with its id. */
function answers(query: Buffer, res: Buffer): boolean {
  return res.length >= 12 && (res[2]! & 0x80) !== 0 && res[0] === query[0] && res[1] === query[1];
}

/** The response, or why there is none. */
function exchangeUdp(up: Upstream, query: Buffer, signal: AbortSignal): Promise<Buffer | string> {
  return new Promise((resolve) => {
    // A fresh socket each query: a fresh random source port, and a connected socket only takes
    // datagrams from its upstream and hears ICMP port-unreachable (an upstream that is down
    // fails at once instead of after the timeout).
    const sock = dgram.createSocket(up.family === 6 ? 'udp6' : 'udp4');
    let done = false;
    const finish = (r: Buffer | string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      try {
        sock.close();
      } catch {
        // already closed
      }
      resolve(r);
    };
    const onAbort = (): void => finish('server closed');
    const timer = setTimeout(() => finish('timed out'), UPSTREAM_TIMEOUT_MS);
    signal.addEventListener('abort', onAbort, { once: true });
    sock.on('error', (err) => finish(err.message));
    sock.on('message', (msg) => {
      if (answers(query, msg)) finish(msg);
    });
    sock.connect(up.port, up.host, () => {
      sock.send(query, (err) => {
        if (err) finish(err.message);
      });
    });
  });
}

function exchangeTcp(up: Upstream, query: Buffer, signal: AbortSignal): Promise<Buffer | string> {
  return new Promise((resolve) => {
    const sock = net.connect({ host: up.host, port: up.port });
    let buf: Buffer = Buffer.alloc(0);
    let done = false;
    const finish = (r: Buffer | string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      sock.destroy();
      resolve(r);
    };
    const onAbort = (): void => finish('server closed');
    const timer = setTimeout(() => finish('timed out'), UPSTREAM_TIMEOUT_MS);
    signal.addEventListener('abort', onAbort, { once: true });
    sock.on('error', (err) => finish(err.message));
    sock.on('close', () => finish('closed the connection'));
    sock.on('connect', () => {
      const len = Buffer.allocUnsafe(2);
      len.writeUInt16BE(query.length);
      sock.write(Buffer.concat([len, query]));
    });
    sock.on('data', (chunk: Buffer) => {
      buf = buf.length === 0 ? chunk : Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
        buf = buf.subarray(2 + msg.length);
        if (answers(query, msg)) return finish(msg);
      }
    });
  });
}
