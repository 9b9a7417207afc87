// A network's bridge and VXLAN device on this node, made idempotently from the desired state, and
// removed with everything attached to them.
//
// As libnetwork's overlay driver does: one bridge per network per node, the VXLAN device its port
// to the other nodes. The VXLAN device learns nothing (`nolearning`: the FDB is written from the
// store, as flannel does) and answers ARP for remote endpoints itself from its neighbour table
// (`proxy`), so no broadcast ARP crosses the underlay for a known endpoint.
//
// A network with a gateway has that address on its bridge on every node (the same address on
// each): it is where the tasks' DNS server listens, on their own node. The ARP proxy consumes every
// ARP request that reaches the VXLAN device (it answers the ones it knows and drops the rest), so a
// task's ARP for the gateway is answered by its own node's bridge and never crosses. The bridge
// gets a fixed MAC when made (a bridge otherwise takes its lowest port's, which changes as
// endpoints come and go and would leave the tasks' ARP entry for the gateway stale). With an
// address on each bridge the node is on every network: node-isolation.ts keeps them apart.

import { randomBytes } from 'node:crypto';
import { ShoalError } from '@shoal/api';
import { cidrSize, contains, parseCidr, parseIPv4 } from '@shoal/types';
import { prefixLength } from './addresses.js';
import { Iproute, type LinkInfo } from './iproute.js';
import { bridgeName, vxlanName } from './names.js';
import { type OverlayNetwork, VXLAN_OVERHEAD, VXLAN_PORT } from './types.js';

export function overlayMtu(net: OverlayNetwork): number {
  const mtu = net.mtu - VXLAN_OVERHEAD;
  if (!Number.isInteger(mtu) || mtu < 576) {
    throw new ShoalError('INVALID_ARGUMENT', `network ${net.id}: MTU ${net.mtu} is too small for VXLAN`);
  }
  return mtu;
}

function checkVni(net: OverlayNetwork): void {
  if (!Number.isInteger(net.vni) || net.vni < 1 || net.vni > 0xffffff) {
    throw new ShoalError('INVALID_ARGUMENT', `network ${net.id}: VNI ${net.vni} is not in 1..16777215`);
  }
}

export async function readLink(ip: Iproute, name: string): Promise<LinkInfo | undefined> {
  const [link] = await ip.query<LinkInfo>('ip', ['-d', 'link', 'show', 'dev', name]);
  return link;
}

/** True when an existing VXLAN device already is what the network asks for. */
function vxlanMatches(link: LinkInfo, net: OverlayNetwork, underlay: string): boolean {
  const d = link.linkinfo?.info_data;
  return (
    link.linkinfo?.info_kind === 'vxlan' &&
    d?.id === net.vni &&
    d.local === underlay &&
    d.port === VXLAN_PORT &&
    d.learning === false &&
    d.proxy === true
  );
}

/** A random locally administered unicast MAC: one per bridge, so nodes' bridges differ. */
function bridgeMac(): string {
  const b = randomBytes(6);
  b[0] = (b[0] & 0xfc) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, '0')).join(':');
}

/** The gateway as `ADDRESS/PREFIX`, checked to lie in the network's subnet; undefined without one. */
export function gatewayAddress(net: OverlayNetwork): string | undefined {
  if (net.gateway === undefined) return undefined;
  const subnet = parseCidr(net.subnet);
  const gw = parseIPv4(net.gateway);
  if (subnet === null || gw === null || !contains(subnet, gw) || gw === subnet.base || gw === subnet.base + cidrSize(subnet) - 1) {
    throw new ShoalError('INVALID_ARGUMENT', `network ${net.id}: gateway ${net.gateway} is not a host address of ${net.subnet}`);
  }
  return `${net.gateway}/${prefixLength(net.subnet)}`;
}

interface AddrRow {
  readonly addr_info?: readonly { readonly family: string; readonly local: string; readonly prefixlen: number }[];
}

/** The bridge's IPv4 addresses: exactly the gateway, or none (link-local IPv6 is the kernel's). */
async function convergeGateway(ip: Iproute, br: string, want: string | undefined): Promise<void> {
  const [row] = await ip.query<AddrRow>('ip', ['addr', 'show', 'dev', br]);
  const have = (row?.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
  for (const addr of have) if (addr !== want) await ip.run('ip', ['addr', 'del', addr, 'dev', br]);
  if (want !== undefined && !have.includes(want)) await ip.run('ip', ['addr', 'add', want, 'dev', br]);
}

/** Makes (or keeps) the network's bridge and VXLAN device, up, with the reduced MTU. */
export async function ensureNetworkDevices(ip: Iproute, net: OverlayNetwork, underlay: string): Promise<void> {
  checkVni(net);
  const gateway = gatewayAddress(net);
  const mtu = String(overlayMtu(net));
  const br = bridgeName(net.vni);
  const vx = vxlanName(net.vni);

  const bridge = await readLink(ip, br);
  if (bridge !== undefined && bridge.linkinfo?.info_kind !== 'bridge') {
    await ip.run('ip', ['link', 'del', 'dev', br]);
  }
  if (bridge === undefined || bridge.linkinfo?.info_kind !== 'bridge') {
    await ip.run('ip', ['link', 'add', br, 'address', net.bridgeMac ?? bridgeMac(), 'mtu', mtu, 'type', 'bridge']);
  } else {
    if (String(bridge.mtu) !== mtu) await ip.run('ip', ['link', 'set', 'dev', br, 'mtu', mtu]);
    if (net.bridgeMac !== undefined && bridge.address?.toLowerCase() !== net.bridgeMac.toLowerCase()) {
      await ip.run('ip', ['link', 'set', 'dev', br, 'address', net.bridgeMac]);
    }
  }

  const vxlan = await readLink(ip, vx);
  if (vxlan !== undefined && !vxlanMatches(vxlan, net, underlay)) {
    // A VXLAN device's identity (VNI, local address, port) cannot change in place.
    await ip.run('ip', ['link', 'del', 'dev', vx]);
  }
  if (vxlan === undefined || !vxlanMatches(vxlan, net, underlay)) {
    await ip.run('ip', [
      'link', 'add', vx, 'mtu', mtu, 'type', 'vxlan', 'id', String(net.vni),
      'local', underlay, 'dstport', String(VXLAN_PORT), 'nolearning', 'proxy',
    ]);
  } else if (String(vxlan.mtu) !== mtu) {
    await ip.run('ip', ['link', 'set', 'dev', vx, 'mtu', mtu]);
  }
  await convergeGateway(ip, br, gateway);
  const now = await readLink(ip, vx);
  if (now?.master !== br) await ip.run('ip', ['link', 'set', 'dev', vx, 'master', br]);
  for (const name of [vx, br]) {
    const link = await readLink(ip, name);
    if (!(link?.flags ?? []).includes('UP')) await ip.run('ip', ['link', 'set', 'dev', name, 'up']);
  }
}

/** Removes the network's devices; the ports on its bridge (local endpoints' veths) go with them. */
export async function removeNetworkDevices(ip: Iproute, vni: number): Promise<void> {
  const br = bridgeName(vni);
  const ports = await ip.query<LinkInfo>('ip', ['link', 'show', 'master', br]);
  for (const port of ports) await ip.run('ip', ['link', 'del', 'dev', port.ifname]);
  for (const name of [vxlanName(vni), br]) {
    if ((await readLink(ip, name)) !== undefined) await ip.run('ip', ['link', 'del', 'dev', name]);
  }
}
