// Each node's fixed address on the lab network, and the registry's. Docker hands a restarted
// container whatever address is free then; a lab node keeps its own (as a host keeps its IP across
// a reboot), so that `lab env`'s SHOAL_HOST stays right after `lab stop`/`lab start` of a manager,
// and the registry keeps its own, which is part of every image reference loaded into it.

import { ShoalError } from '@shoal/api';
import { formatIPv4, parseIPv4 } from '@shoal/types';

/** An IPv4 subnet (`172.25.0.0/16`) as its network address and size, or a FAILED_PRECONDITION error. */
function parseSubnet(subnet: string): { network: number; size: number } {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(subnet);
  const base = m ? parseIPv4(m[1]!) : null;
  const prefix = m ? Number(m[2]) : NaN;
  if (base === null || !(prefix >= 0 && prefix <= 30)) {
    throw new ShoalError('FAILED_PRECONDITION', `the lab network's subnet ${JSON.stringify(subnet)} is not an IPv4 subnet`);
  }
  const size = 2 ** (32 - prefix);
  return { network: base - (base % size), size };
}

/**
 * `count` addresses in an IPv4 subnet (`172.25.0.0/16`), in order from the network's third one:
 * the first is the network itself, the second the bridge's gateway; the last but one is the
 * registry's (registryAddress).
 */
export function nodeAddresses(subnet: string, count: number): string[] {
  const { network, size } = parseSubnet(subnet);
  // Neither the network, the gateway, the registry nor the broadcast address.
  if (count > size - 4) throw new ShoalError('FAILED_PRECONDITION', `the lab network ${subnet} has room for ${size - 4} nodes, not ${count}`);
  return Array.from({ length: count }, (_, i) => formatIPv4(network + 2 + i));
}

/**
 * The registry's address: the subnet's last one before the broadcast address, away from the nodes
 * counted up from the start, so that a lab's node addresses are the same with or without it.
 */
export function registryAddress(subnet: string): string {
  const { network, size } = parseSubnet(subnet);
  return formatIPv4(network + size - 2);
}
