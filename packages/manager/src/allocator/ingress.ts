// The ingress network (Swarm's `ingress`): the overlay the routing mesh's kernel path uses. A
// published port's connection that lands on a node without a replica is DNATed there to the
// ingress address of a node with one, over VXLAN (agent: task-networks.ts; mesh: kernel-routes.ts).
// The leader makes it once per cluster and gives every node one address on it, serially as the
// tasks' addresses (allocator.ts); the store refuses an address held twice.

import type { ClusterStore, Network, Op } from '@shoal/store';
import { newId, updateOp } from '@shoal/store';
import { overlaps, parseCidr } from '@shoal/types';
import type { Allocator } from './allocator.js';

export const INGRESS_NAME = 'ingress';
/** Apart from the default pool's first /24s (users' networks), room for 65534 nodes. */
export const INGRESS_SUBNET = '10.255.0.0/16';

/** The ops that make the ingress network, or give nodes their address on it: none when all is done. */
export function planIngress(store: ClusterStore, allocator: Allocator, now: number): Op[] {
  const networks = store.list('network');
  const ingress = networks.find((n) => n.spec.ingress);
  if (!ingress) {
    // A user's network already named so (made before this release): the mesh stays in userland.
    if (networks.some((n) => n.spec.name === INGRESS_NAME)) return [];
    // The fixed subnet unless a user's network overlaps it: then one from the default pool.
    const subnet = networks.some((n) => overlapsIngress(n.subnet)) ? '' : INGRESS_SUBNET;
    const network: Network = {
      id: newId(),
      version: 0,
      createdAt: now,
      updatedAt: now,
      spec: { name: INGRESS_NAME, driver: 'overlay', labels: {}, internal: false, attachable: false, ipam: { subnet, gateway: '' }, ingress: true },
      subnet: '',
      gateway: '',
      vni: 0,
    };
    return [{ op: 'create', kind: 'network', object: network }];
  }
  const book = { network: (id: string) => store.get('network', id), holder: (net: string, addr: string) => store.addressHolder(net, addr) };
  return allocator.allocateNodes(book, ingress, store.list('node'), now).map((n) => updateOp('node', n));
}

function overlapsIngress(subnet: string): boolean {
  const c = parseCidr(subnet);
  return c !== null && overlaps(c, parseCidr(INGRESS_SUBNET)!);
}
