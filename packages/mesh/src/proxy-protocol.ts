// PROXY protocol version 2 (binary), as in HAProxy's proxy-protocol.txt, section 2.2.
// Only what the mesh needs: the PROXY command for TCP over IPv4/IPv6, LOCAL/UNSPEC otherwise.
import { isIPv4 } from 'node:net';
import { readIPv4, readIPv6, unmapIPv4, writeIPv4, writeIPv6, type HostPort } from './addr.js';

/** The 12-byte signature `\r\n\r\n\0\r\nQUIT\n`. */
export const PROXY_V2_SIGNATURE: Buffer = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

export interface ProxyEndpoints {
  /** The client's address (the connection's source). */
  srcAddr: string;
  srcPort: number;
  /** The address the client connected to (the published port on the node it reached). */
  dstAddr: string;
  dstPort: number;
}

/** The PROXY v2 header for a connection from `src` to `dst` (LOCAL when either is unknown). */
export function proxyHeader(src: HostPort | undefined, dst: HostPort | undefined): Buffer {
  return encodeProxyV2({ srcAddr: src?.host, srcPort: src?.port, dstAddr: dst?.host, dstPort: dst?.port });
}

/**
 * The PROXY v2 header for a TCP connection: 28 bytes for IPv4 (both ends IPv4 or IPv4-mapped),
 * 52 for IPv6 (an IPv4 end then appears IPv4-mapped). Without usable addresses (undefined, or not
 * IP): the 16-byte LOCAL command with family UNSPEC, which tells the receiver to use the real
 * connection's endpoints.
 */
export function encodeProxyV2(ends: Partial<ProxyEndpoints>): Buffer {
  const src = ends.srcAddr === undefined ? undefined : unmapIPv4(ends.srcAddr);
  const dst = ends.dstAddr === undefined ? undefined : unmapIPv4(ends.dstAddr);
  const srcPort = ends.srcPort ?? -1;
  const dstPort = ends.dstPort ?? -1;
  const portsOk = srcPort >= 0 && srcPort <= 65535 && dstPort >= 0 && dstPort <= 65535;
  if (src !== undefined && dst !== undefined && portsOk) {
    if (isIPv4(src) && isIPv4(dst)) {
      const b = Buffer.allocUnsafe(28);
      PROXY_V2_SIGNATURE.copy(b, 0);
      b[12] = 0x21; // version 2, command PROXY
      b[13] = 0x11; // AF_INET, STREAM
      b.writeUInt16BE(12, 14);
      writeIPv4(src, b, 16);
      writeIPv4(dst, b, 20);
      b.writeUInt16BE(srcPort, 24);
      b.writeUInt16BE(dstPort, 26);
      return b;
    }
    const b = Buffer.allocUnsafe(52);
    PROXY_V2_SIGNATURE.copy(b, 0);
    b[12] = 0x21;
    b[13] = 0x21; // AF_INET6, STREAM
    b.writeUInt16BE(36, 14);
    if (writeAny6(src, b, 16) && writeAny6(dst, b, 32)) {
      b.writeUInt16BE(srcPort, 48);
      b.writeUInt16BE(dstPort, 50);
      return b;
    }
  }
  const b = Buffer.allocUnsafe(16);
  PROXY_V2_SIGNATURE.copy(b, 0);
  b[12] = 0x20; // version 2, command LOCAL
  b[13] = 0x00; // AF_UNSPEC, UNSPEC
  b.writeUInt16BE(0, 14);
  return b;
}

function writeAny6(ip: string, b: Buffer, off: number): boolean {
  if (isIPv4(ip)) {
    b.fill(0, off, off + 10);
    b[off + 10] = 0xff;
    b[off + 11] = 0xff;
    return writeIPv4(ip, b, off + 12);
  }
  return writeIPv6(ip, b, off);
}

export interface ProxyV2Header {
  command: 'LOCAL' | 'PROXY';
  /** 'INET' | 'INET6' | 'UNIX' | 'UNSPEC' */
  family: 'INET' | 'INET6' | 'UNIX' | 'UNSPEC';
  /** 'STREAM' | 'DGRAM' | 'UNSPEC' */
  transport: 'STREAM' | 'DGRAM' | 'UNSPEC';
  srcAddr?: string;
  srcPort?: number;
  dstAddr?: string;
  dstPort?: number;
  /** Total header bytes (16 + the length field), i.e. where the payload starts. */
  length: number;
}

/**
 * Parses a PROXY v2 header at the start of `buf`: undefined while `buf` holds less than the whole
 * header; throws when the bytes are not a PROXY v2 header. (For backends and tests; the mesh only
 * writes headers.)
 */
export function parseProxyV2(buf: Buffer): ProxyV2Header | undefined {
  const n = Math.min(buf.length, 12);
  if (!buf.subarray(0, n).equals(PROXY_V2_SIGNATURE.subarray(0, n))) throw new Error('not a PROXY v2 header (signature)');
  if (buf.length < 16) return undefined;
  const verCmd = buf[12]!;
  if (verCmd >> 4 !== 2) throw new Error(`PROXY header version ${verCmd >> 4}, want 2`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) throw new Error(`PROXY v2 command ${cmd}`);
  const famByte = buf[13]!;
  const family = (['UNSPEC', 'INET', 'INET6', 'UNIX'] as const)[famByte >> 4];
  const transport = (['UNSPEC', 'STREAM', 'DGRAM'] as const)[famByte & 0x0f];
  if (!family || !transport) throw new Error(`PROXY v2 family/transport byte 0x${famByte.toString(16)}`);
  const len = buf.readUInt16BE(14);
  if (buf.length < 16 + len) return undefined;
  const h: ProxyV2Header = { command: cmd === 1 ? 'PROXY' : 'LOCAL', family, transport, length: 16 + len };
  if (family === 'INET' && len >= 12) {
    h.srcAddr = readIPv4(buf, 16);
    h.dstAddr = readIPv4(buf, 20);
    h.srcPort = buf.readUInt16BE(24);
    h.dstPort = buf.readUInt16BE(26);
  } else if (family === 'INET6' && len >= 36) {
    h.srcAddr = readIPv6(buf, 16);
    h.dstAddr = readIPv6(buf, 32);
    h.srcPort = buf.readUInt16BE(48);
    h.dstPort = buf.readUInt16BE(50);
  }
  return h;
}
