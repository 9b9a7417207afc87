// Address helpers: HOST:PORT parsing and IP text <-> bytes (for the PROXY v2 header).
import { isIP, isIPv4 } from 'node:net';

export interface HostPort {
  host: string;
  port: number;
}

/** Parses `HOST:PORT`, `[IPv6]:PORT` (or a bare IPv6 with a trailing `:PORT`). Undefined if malformed. */
export function parseHostPort(s: string): HostPort | undefined {
  let host: string;
  let portText: string;
  if (s.startsWith('[')) {
    const end = s.indexOf(']');
    if (end < 0 || s[end + 1] !== ':') return undefined;
    host = s.slice(1, end);
    portText = s.slice(end + 2);
  } else {
    const i = s.lastIndexOf(':');
    if (i <= 0) return undefined;
    host = s.slice(0, i);
    portText = s.slice(i + 1);
  }
  if (!/^[0-9]{1,5}$/.test(portText)) return undefined;
  const port = Number(portText);
  if (port < 1 || port > 65535 || host.length === 0 || /\s/.test(host)) return undefined;
  return { host, port };
}

/** `HOST:PORT`, with brackets around an IPv6 host. */
export function formatHostPort(host: string, port: number): string {
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** 4 bytes of a dotted IPv4 address into `buf` at `off`; false if not an IPv4 address. */
export function writeIPv4(ip: string, buf: Buffer, off: number): boolean {
  if (!isIPv4(ip)) return false;
  const parts = ip.split('.');
  for (let i = 0; i < 4; i++) buf[off + i] = Number(parts[i]);
  return true;
}

/** 16 bytes of an IPv6 address (with `::`, an IPv4 tail, a `%zone`) into `buf` at `off`. */
export function writeIPv6(ip: string, buf: Buffer, off: number): boolean {
  const zone = ip.indexOf('%');
  if (zone >= 0) ip = ip.slice(0, zone);
  if (isIP(ip) !== 6) return false;
  const groups: number[] = [];
  const parseSide = (side: string): number[] | undefined => {
    const out: number[] = [];
    if (side === '') return out;
    const parts = side.split(':');
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i]!;
      if (p.includes('.')) {
        if (i !== parts.length - 1 || !isIPv4(p)) return undefined;
        const b = p.split('.').map(Number);
        out.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
      } else {
        out.push(parseInt(p, 16));
      }
    }
    return out;
  };
  const dbl = ip.indexOf('::');
  if (dbl >= 0) {
    const head = parseSide(ip.slice(0, dbl));
    const tail = parseSide(ip.slice(dbl + 2));
    if (!head || !tail) return false;
    groups.push(...head, ...new Array<number>(8 - head.length - tail.length).fill(0), ...tail);
  } else {
    const all = parseSide(ip);
    if (!all) return false;
    groups.push(...all);
  }
  if (groups.length !== 8) return false;
  for (let i = 0; i < 8; i++) buf.writeUInt16BE(groups[i]!, off + 2 * i);
  return true;
}

/** Dotted text of 4 bytes. */
export function readIPv4(buf: Buffer, off: number): string {
  return `${buf[off]}.${buf[off + 1]}.${buf[off + 2]}.${buf[off + 3]}`;
}

/** Canonical (RFC 5952: lower case, longest zero run as `::`) text of 16 bytes. */
export function readIPv6(buf: Buffer, off: number): string {
  const g: number[] = [];
  for (let i = 0; i < 8; i++) g.push(buf.readUInt16BE(off + 2 * i));
  let bestStart = -1;
  let bestLen = 0;
  for (let i = 0; i < 8; ) {
    if (g[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) {
      bestStart = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(':');
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

/** `::ffff:a.b.c.d` → `a.b.c.d`; anything else unchanged. */
export function unmapIPv4(ip: string): string {
  if (ip.length > 7 && ip.slice(0, 7).toLowerCase() === '::ffff:' && isIPv4(ip.slice(7))) return ip.slice(7);
  return ip;
}
