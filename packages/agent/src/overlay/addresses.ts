// Address arithmetic of an overlay: an endpoint's MAC from its IPv4 address (Docker's rule,
// 02:42 and the address's four bytes, so that any node knows a remote endpoint's MAC from its
// IP alone) and the prefix length of a subnet.

import { isIPv4 } from 'node:net';
import { ShoalError } from '@shoal/api';

export function macOfIp(ip: string): string {
  if (!isIPv4(ip)) throw new ShoalError('INVALID_ARGUMENT', `not an IPv4 address: ${ip}`);
  const hex = ip.split('.').map((b) => Number(b).toString(16).padStart(2, '0'));
  return ['02', '42', ...hex].join(':');
}

export function prefixLength(subnet: string): number {
  const m = /^(\d+\.\d+\.\d+\.\d+)\/(\d{1,2})$/.exec(subnet);
  if (m === null || !isIPv4(m[1]) || Number(m[2]) > 32) {
    throw new ShoalError('INVALID_ARGUMENT', `not an IPv4 subnet: ${subnet}`);
  }
  return Number(m[2]);
}

/** The all-zero MAC: a VXLAN FDB entry with it floods broadcast and unknown traffic to its peer. */
export const FLOOD_MAC = '00:00:00:00:00:00';
