// One overlay network's kernel plumbing on this node, driven by the agent from the desired state:
// apply() makes the network's devices and converges its forwarding and local endpoints to exactly
// what is given (a second run with the same state changes nothing; a restarted agent converges
// without duplicates), remove() takes everything of the network away. Beside it: the node's
// isolation from its overlays (node-isolation.ts), services' VIPs balanced in each client
// container's namespace (service-lb.ts), and names for containers' namespaces (netns.ts).

import { convergeForwarding, type ForwardingChanges } from './forwarding.js';
import type { Iproute } from './iproute.js';
import { convergeLocalEndpoints, type EndpointChanges } from './local-endpoints.js';
import { ensureNetworkDevices, removeNetworkDevices } from './network-devices.js';
import type { LocalEndpoint, OverlayNetwork, RemoteEndpoint, RemotePeer } from './types.js';

export { Iproute, type IprouteOptions, type Tool } from './iproute.js';
export { macOfIp } from './addresses.js';
export { bridgeName, vxlanName, hostVethName, isHostVeth } from './names.js';
export { gatewayAddress } from './network-devices.js';
export { Netfilter, type NetfilterOptions, type NetfilterTool } from './netfilter.js';
export { attachNetns, detachNetns, listNetns } from './netns.js';
export { ensureNodeIsolation, removeNodeIsolation, type NodeIsolationOptions } from './node-isolation.js';
export { applyServiceLb, readServiceLb, removeServiceLb, type LbChanges, type ServiceLbOptions, type ServiceVip } from './service-lb.js';
export * from './types.js';

export interface OverlayState {
  readonly network: OverlayNetwork;
  /** This node's underlay address (its VTEP). */
  readonly underlay: string;
  readonly peers: readonly RemotePeer[];
  readonly remoteEndpoints: readonly RemoteEndpoint[];
  readonly localEndpoints: readonly LocalEndpoint[];
}

export type OverlayChanges = ForwardingChanges & EndpointChanges;

export async function applyOverlay(ip: Iproute, state: OverlayState): Promise<OverlayChanges> {
  await ensureNetworkDevices(ip, state.network, state.underlay);
  // This node is never its own peer: an entry toward its own address would loop frames back.
  const peers = state.peers.filter((p) => p.underlay !== state.underlay);
  const remote = state.remoteEndpoints.filter((e) => e.peer !== state.underlay);
  const fwd = await convergeForwarding(ip, state.network.vni, peers, remote);
  const eps = await convergeLocalEndpoints(ip, state.network, state.localEndpoints);
  return { ...fwd, ...eps };
}

export async function removeOverlay(ip: Iproute, network: Pick<OverlayNetwork, 'vni'>): Promise<void> {
  await removeNetworkDevices(ip, network.vni);
}
