// The store's network rules, applied to every network a transaction writes: unique names, subnets
// that overlap no other network's, unique VNIs. A network created without a subnet or a VNI gets
// them here, at apply time: Raft orders concurrent creates, so each sees the ones before it and
// no subnet or VNI is ever handed out twice, on any leader (as SwarmKit's allocator, which runs
// on the leader alone, guarantees by its own lock).

import { type Cidr, FIRST_VNI, MAX_VNI, type Network, checkSubnet, contains, defaultGateway, formatCidr, nextFreeSubnet, overlaps, parseCidr, parseIPv4 } from '@shoal/types';

export interface NetworkConflict {
  code: 'ALREADY_EXISTS' | 'INVALID_ARGUMENT' | 'RESOURCE_EXHAUSTED';
  message: string;
}

const subnetOf = (n: Network): Cidr => parseCidr(n.subnet)!;

/** `net` with its subnet, gateway and VNI allocated when it has none; a conflict when it cannot be. */
export function allocateNetwork(net: Network, others: readonly Network[]): Network | NetworkConflict {
  let { subnet, gateway, vni } = net;
  if (subnet === '') {
    if (net.spec.ipam.subnet !== '') subnet = net.spec.ipam.subnet;
    else {
      const free = nextFreeSubnet(others.map(subnetOf));
      if (!free) return { code: 'RESOURCE_EXHAUSTED', message: 'the default address pool 10.0.0.0/8 has no free /24 left: give the network a --subnet' };
      subnet = formatCidr(free);
    }
  }
  if (gateway === '') gateway = net.spec.ipam.gateway || (parseCidr(subnet) ? defaultGateway(parseCidr(subnet)!) : '');
  if (vni === 0) {
    const used = new Set(others.map((o) => o.vni));
    vni = FIRST_VNI;
    while (used.has(vni) && vni <= MAX_VNI) vni++;
    if (vni > MAX_VNI) return { code: 'RESOURCE_EXHAUSTED', message: 'every VXLAN network identifier is in use' };
  }
  if (subnet === net.subnet && gateway === net.gateway && vni === net.vni) return net;
  return { ...net, subnet, gateway, vni };
}

/** Why `net` cannot be stored beside `others` (the other networks), or null. */
export function networkConflict(net: Network, others: readonly Network[]): NetworkConflict | null {
  let mine: Cidr;
  try {
    mine = checkSubnet(net.subnet);
  } catch (err) {
    return { code: 'INVALID_ARGUMENT', message: (err as Error).message };
  }
  const gw = parseIPv4(net.gateway);
  if (gw === null || !contains(mine, gw)) return { code: 'INVALID_ARGUMENT', message: `gateway ${net.gateway} is not in subnet ${net.subnet}` };
  if (net.vni < FIRST_VNI) return { code: 'INVALID_ARGUMENT', message: `network ${net.spec.name}: VNI ${net.vni} is below ${FIRST_VNI}` };
  for (const o of others) {
    if (o.spec.name === net.spec.name) return { code: 'ALREADY_EXISTS', message: `network name "${net.spec.name}" is already taken by network ${o.id}` };
    if (overlaps(subnetOf(o), mine)) {
      return { code: 'ALREADY_EXISTS', message: `subnet ${net.subnet} overlaps subnet ${o.subnet} of network "${o.spec.name}"` };
    }
    if (o.vni === net.vni) return { code: 'ALREADY_EXISTS', message: `VNI ${net.vni} is already network "${o.spec.name}"'s` };
  }
  return null;
}
