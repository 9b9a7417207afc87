// Local endpoints of a network: a veth pair per endpoint, one end a port of the network's bridge,
// the other in the endpoint's network namespace with its address and MAC (02:42 + the IP, as
// Docker does) and the overlay's MTU. Converged to exactly the desired set: ports of the bridge
// that no endpoint asks for are removed (an endpoint's host-side name is a digest of its id, so
// a restarted agent recognises the ones it made).

import { macOfIp, prefixLength } from './addresses.js';
import type { Iproute, LinkInfo } from './iproute.js';
import { readLink, overlayMtu } from './network-devices.js';
import { bridgeName, hostVethName, isHostVeth } from './names.js';
import type { LocalEndpoint, OverlayNetwork } from './types.js';

export interface EndpointChanges {
  readonly attached: number;
  readonly detached: number;
}

async function attach(ip: Iproute, net: OverlayNetwork, ep: LocalEndpoint): Promise<void> {
  const host = hostVethName(ep.id);
  const mtu = String(overlayMtu(net));
  const inner = ip.in(ep.netns);
  // Made with a temporary name inside (the host-side name, unique), renamed once there: the
  // endpoint's namespace may already hold an interface with the wanted name on this node's side.
  await ip.run('ip', ['link', 'add', host, 'mtu', mtu, 'type', 'veth', 'peer', 'name', `${host}p`, 'mtu', mtu, 'netns', ep.netns]);
  try {
    await inner.run('ip', ['link', 'set', 'dev', `${host}p`, 'name', ep.ifname, 'address', ep.mac ?? macOfIp(ep.ip)]);
    await inner.run('ip', ['addr', 'add', `${ep.ip}/${prefixLength(net.subnet)}`, 'dev', ep.ifname]);
    await inner.run('ip', ['link', 'set', 'dev', ep.ifname, 'up']);
    // On the bridge last: a veth on the bridge is an endpoint the next converge takes as done.
    await ip.run('ip', ['link', 'set', 'dev', host, 'master', bridgeName(net.vni)]);
    await ip.run('ip', ['link', 'set', 'dev', host, 'up']);
  } catch (err) {
    // Half made is not made: the pair goes (both ends), the next converge starts again.
    await ip.run('ip', ['link', 'del', 'dev', host]).catch(() => undefined);
    throw err;
  }
}

export async function convergeLocalEndpoints(
  ip: Iproute,
  net: OverlayNetwork,
  endpoints: readonly LocalEndpoint[],
): Promise<EndpointChanges> {
  const br = bridgeName(net.vni);
  const want = new Map(endpoints.map((ep) => [hostVethName(ep.id), ep]));
  const ports = await ip.query<LinkInfo>('ip', ['link', 'show', 'master', br]);
  let detached = 0;
  for (const port of ports) {
    if (!isHostVeth(port.ifname) || want.has(port.ifname)) continue;
    await ip.run('ip', ['link', 'del', 'dev', port.ifname]);
    detached++;
  }
  let attached = 0;
  for (const [host, ep] of want) {
    const link = await readLink(ip, host);
    if (link?.master === br) continue;
    // A veth left elsewhere (its bridge gone and remade) is remade whole.
    if (link !== undefined) await ip.run('ip', ['link', 'del', 'dev', host]);
    await attach(ip, net, ep);
    attached++;
  }
  return { attached, detached };
}
