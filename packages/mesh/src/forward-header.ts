// The node-to-node forwarding header: what a node sends first on a connection to another node's
// forwarding listener, so that node connects the client to one of ITS local tasks.
//
//   SHOALFWD1 <taskId> <targetPort> <proxy 0|1> <clientHost:port | -> <dstHost:port | ->\n
//
// One ASCII line, at most FORWARD_HEADER_MAX bytes with the newline. The target is named by task
// and container port only: the receiving node looks the task up among its own local backends
// and connects to the address in its own table, so the listener can never be used as a relay to
// an address the sender chooses. `client` and `dst` are the original client's address and the
// address it connected to (the published port on the first node), for the PROXY v2 header the
// last hop writes when `proxy` is 1. IPv6 hosts are bracketed: `[::1]:80`.
//
// Reply: one byte FORWARD_ACK (0x06) once the local connect succeeded, then the backend's bytes;
// or `ERR <reason>\n` and a close (bad header, unknown target, local connect failed). The sending
// node treats anything but the ACK as a failed connect and retries another backend.

import { formatHostPort, parseHostPort, type HostPort } from './addr.js';

export const FORWARD_MAGIC = 'SHOALFWD1';
export const FORWARD_ACK = 0x06;
export const FORWARD_HEADER_MAX = 512;
/** The forwarder's answer for a task that is not one of its node's (both protocols): the sender backs off briefly. */
export const UNKNOWN_TASK_REASON = 'not a local backend';

const TASK_ID = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;

export interface ForwardRequest {
  taskId: string;
  targetPort: number;
  proxyProtocol: boolean;
  /** The original client; undefined if unknown. */
  client?: HostPort;
  /** Where the original client connected; undefined if unknown. */
  dst?: HostPort;
}

/** True if `id` can travel in a forwarding header (no spaces, bounded). */
export function isValidTaskId(id: string): boolean {
  return TASK_ID.test(id);
}

export function encodeForwardHeader(r: ForwardRequest): string {
  const ep = (h?: HostPort) => (h ? formatHostPort(h.host, h.port) : '-');
  return `${FORWARD_MAGIC} ${r.taskId} ${r.targetPort} ${r.proxyProtocol ? 1 : 0} ${ep(r.client)} ${ep(r.dst)}\n`;
}

/** Parses one header line (without its newline); undefined if malformed. */
export function parseForwardHeader(line: string): ForwardRequest | undefined {
  const f = line.split(' ');
  if (f.length !== 6 || f[0] !== FORWARD_MAGIC) return undefined;
  const [, taskId, portText, pp, client, dst] = f as [string, string, string, string, string, string];
  if (!isValidTaskId(taskId) || !/^[0-9]{1,5}$/.test(portText) || (pp !== '0' && pp !== '1')) return undefined;
  const targetPort = Number(portText);
  if (targetPort < 1 || targetPort > 65535) return undefined;
  const req: ForwardRequest = { taskId, targetPort, proxyProtocol: pp === '1' };
  if (client !== '-') {
    const c = parseHostPort(client);
    if (!c) return undefined;
    req.client = c;
  }
  if (dst !== '-') {
    const d = parseHostPort(dst);
    if (!d) return undefined;
    req.dst = d;
  }
  return req;
}

// ---- HTTP/2 transport ------------------------------------------------------------------------
//
// With the h2 transport, a forwarded connection is one HTTP/2 CONNECT stream (RFC 9113 §8.5) on a
// long-lived session between the two nodes. The request names the same target as the line
// above: `:authority` is `<taskId>:<targetPort>` (split at the last colon: task ids may hold
// colons), and the PROXY-protocol fields travel as headers. The far node answers `:status 200`
// once its local connect succeeded (in place of the ACK byte), or an error status with the reason
// in `shoal-error`: 400 bad request, 403 peer refused, 404 not a local backend, 405 not CONNECT,
// 431 headers too large, 502 local connect failed, 503 shutting down.

export const H2_HEADER_PROXY = 'shoal-proxy';
export const H2_HEADER_CLIENT = 'shoal-client';
export const H2_HEADER_DST = 'shoal-dst';
export const H2_HEADER_ERROR = 'shoal-error';

/** The request headers of a forwarded connection's CONNECT stream. */
export function encodeForwardH2(r: ForwardRequest): Record<string, string> {
  const h: Record<string, string> = { ':method': 'CONNECT', ':authority': `${r.taskId}:${r.targetPort}` };
  if (r.proxyProtocol) {
    h[H2_HEADER_PROXY] = '1';
    if (r.client) h[H2_HEADER_CLIENT] = formatHostPort(r.client.host, r.client.port);
    if (r.dst) h[H2_HEADER_DST] = formatHostPort(r.dst.host, r.dst.port);
  }
  return h;
}

/**
 * Parses a CONNECT stream's request headers: the request, or why it is refused (`status`, `reason`).
 * Unknown headers are ignored (a newer peer may add some).
 */
export function parseForwardH2(
  h: Record<string, string | string[] | undefined>,
): { req: ForwardRequest } | { status: number; reason: string } {
  if (h[':method'] !== 'CONNECT') return { status: 405, reason: 'not a CONNECT' };
  if (h[':protocol'] !== undefined || h[':path'] !== undefined) return { status: 400, reason: 'extended CONNECT not supported' };
  const authority = h[':authority'];
  if (typeof authority !== 'string') return { status: 400, reason: 'bad :authority' };
  const colon = authority.lastIndexOf(':');
  const taskId = authority.slice(0, colon);
  const portText = authority.slice(colon + 1);
  if (colon <= 0 || !isValidTaskId(taskId) || !/^[0-9]{1,5}$/.test(portText)) return { status: 400, reason: 'bad :authority' };
  const targetPort = Number(portText);
  if (targetPort < 1 || targetPort > 65535) return { status: 400, reason: 'bad :authority' };
  const pp = h[H2_HEADER_PROXY];
  if (pp !== undefined && pp !== '0' && pp !== '1') return { status: 400, reason: `bad ${H2_HEADER_PROXY}` };
  const req: ForwardRequest = { taskId, targetPort, proxyProtocol: pp === '1' };
  for (const [name, key] of [
    [H2_HEADER_CLIENT, 'client'],
    [H2_HEADER_DST, 'dst'],
  ] as const) {
    const v = h[name];
    if (v === undefined) continue;
    const ep = typeof v === 'string' ? parseHostPort(v) : undefined;
    if (!ep) return { status: 400, reason: `bad ${name}` };
    req[key] = ep;
  }
  return { req };
}
