// One query in, one verdict out: the answer from the name table, "forward it", or "drop it".
// Pure (no sockets), so the server's UDP and TCP paths share it.

import * as dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, OptAnswer } from 'dns-packet';
import type { NameTable } from './name-table.js';

export const FORWARD = Symbol('forward');

export const RCODE = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NXDOMAIN: 3, NOTIMP: 4, REFUSED: 5 } as const;

/**
 * TTL 0 on every cluster answer. Docker's resolver.go gives 600 s (respTTL) to VIPs, task IPs
 * and PTRs alike; a client or library that caches (a JVM, nginx, a caching stub) would then keep
 * a dead task's IP for ten minutes after the task moved, and a re-created service's old VIP as
 * long. This server is on the client's own node and answers from memory, so caching buys nothing.
 */
export const CLUSTER_TTL = 0;

/** The UDP payload this server offers (RFC 6891; 1232 per DNS flag day 2020: no fragments). */
export const EDNS_UDP_SIZE = 1232;
const CLASSIC_UDP_SIZE = 512;
const TCP_MAX = 65535;

const QR = 0x8000;
const OPCODE_MASK = 0x7800;
const RD = dnsPacket.RECURSION_DESIRED;
const RA = dnsPacket.RECURSION_AVAILABLE;
const TC = dnsPacket.TRUNCATED_RESPONSE;
const CD = dnsPacket.CHECKING_DISABLED;
const HEADER = 12;

const IN_ADDR_ARPA = '.in-addr.arpa';

export type Verdict = Buffer | typeof FORWARD | null;

export interface QueryContext {
  readonly table: NameTable;
  /** The overlay address the query came from. */
  readonly client: string;
  readonly tcp: boolean;
  /** Told why a packet got FORMERR or was dropped (debug level: a container can send anything). */
  readonly onMalformed?: (why: string) => void;
}

/** The reply to `query`: the response bytes, FORWARD (not a cluster name), or null (no reply). */
export function answer(query: Buffer, ctx: QueryContext): Verdict {
  if (query.length < HEADER) {
    ctx.onMalformed?.('shorter than a DNS header');
    return null;
  }
  const flags = query.readUInt16BE(2);
  // A response sent to a server is a reflection or a loop: never answer it.
  if ((flags & QR) !== 0) {
    ctx.onMalformed?.('a response, not a query');
    return null;
  }
  if ((flags & OPCODE_MASK) !== 0) return failure(query, RCODE.NOTIMP);
  // One question a query: what every stub sends, and what the rules below are for.
  if (query.readUInt16BE(4) !== 1) {
    ctx.onMalformed?.(`${query.readUInt16BE(4)} questions`);
    return failure(query, RCODE.FORMERR);
  }
  let packet: DecodedPacket;
  try {
    packet = dnsPacket.decode(query);
  } catch (err) {
    ctx.onMalformed?.((err as Error).message);
    return failure(query, RCODE.FORMERR);
  }
  const q = packet.questions![0]!;
  if (q.class !== 'IN') return FORWARD;

  let opt: OptAnswer | undefined;
  for (const a of packet.additionals!) {
    if (a.type !== 'OPT') continue;
    if (opt !== undefined) {
      ctx.onMalformed?.('two OPT records'); // RFC 6891 6.1.1
      return failure(query, RCODE.FORMERR);
    }
    opt = a;
  }

  let answers: Answer[];
  if (q.type === 'PTR' && endsWithIgnoringCase(q.name, IN_ADDR_ARPA)) {
    const ip = ipOfReverseName(q.name);
    const name = ip === undefined ? undefined : ctx.table.reverse(ctx.client, ip);
    if (name === undefined) return FORWARD;
    answers = [{ name: q.name, type: 'PTR', class: 'IN', ttl: CLUSTER_TTL, data: name }];
  } else {
    const ips = ctx.table.resolve(ctx.client, q.name);
    if (ips === undefined) return FORWARD;
    // A cluster name has IPv4 addresses only (no IPv6 overlay): AAAA and every other type get
    // NOERROR with no records, so the client does not wait on an upstream for a name it owns.
    answers = q.type === 'A' ? ips.map((ip) => ({ name: q.name, type: 'A', class: 'IN', ttl: CLUSTER_TTL, data: ip })) : [];
  }

  const response = {
    id: packet.id,
    type: 'response' as const,
    flags: (flags & (RD | CD)) | RA | RCODE.NOERROR,
    questions: [q],
    answers,
    additionals: opt === undefined ? [] : [{ name: '.', type: 'OPT', udpPayloadSize: EDNS_UDP_SIZE, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] } satisfies OptAnswer],
  };
  const limit = ctx.tcp ? TCP_MAX : opt === undefined ? CLASSIC_UDP_SIZE : Math.max(CLASSIC_UDP_SIZE, Math.min(opt.udpPayloadSize, EDNS_UDP_SIZE));
  truncate(response, limit);
  return dnsPacket.encode(response);
}

/**
 * Drops the last answers until the message fits and sets TC, as Docker does (the answers were
 * shuffled, so a UDP client still spreads; a client that wants them all asks again over TCP).
 */
function truncate(r: { flags: number; answers: Answer[] } & dnsPacket.Packet, limit: number): void {
  let size = dnsPacket.encodingLength(r);
  if (size <= limit) return;
  while (r.answers.length > 0 && size > limit) {
    size -= dnsPacket.encodingLength({ answers: [r.answers.pop()!] }) - HEADER;
  }
  r.flags |= TC;
}

/**
 * A header-and-question reply with `rcode`: the question bytes echoed as they came (a stub
 * matches a reply to its query by them), or the header alone when there is no readable question.
 */
export function failure(query: Buffer, rcode: number): Buffer {
  const out = Buffer.from(query);
  out.fill(0, 6, HEADER); // no answer, authority or additional records
  let end = HEADER;
  if (out.readUInt16BE(4) === 1) {
    try {
      // With the other counts zeroed, what decode reads is the header and the question.
      dnsPacket.decode(out);
      end = dnsPacket.decode.bytes;
    } catch {
      out.writeUInt16BE(0, 4);
    }
  } else {
    out.writeUInt16BE(0, 4);
  }
  const flags = out.readUInt16BE(2);
  out.writeUInt16BE(QR | (flags & (OPCODE_MASK | RD | CD)) | RA | rcode, 2);
  return out.subarray(0, end);
}

/** 4.3.2.1.in-addr.arpa -> 1.2.3.4; undefined for anything but a whole IPv4 address. */
function ipOfReverseName(name: string): string | undefined {
  const labels = name.slice(0, name.length - IN_ADDR_ARPA.length).split('.');
  if (labels.length !== 4 || !labels.every((l) => /^(0|[1-9]\d{0,2})$/.test(l) && Number(l) <= 255)) return undefined;
  return `${labels[3]}.${labels[2]}.${labels[1]}.${labels[0]}`;
}

function endsWithIgnoringCase(s: string, suffix: string): boolean {
  return s.length > suffix.length && s.slice(s.length - suffix.length).toLowerCase() === suffix;
}

/** The rcode of a DNS message (its header's low four bits). */
export function rcodeOf(message: Buffer): number {
  return message[3]! & 0x0f;
}
