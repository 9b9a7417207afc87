// Who holds which overlay address: a task (while it may run, holdsAddresses), a service (its
// virtual IPs) or a node (its address on the ingress network). The store keeps the holder of every
// held address (State) and refuses a write that would give one to two holders at once, whoever
// proposed it: so an address is never handed out twice, on any leader, even by two leaders'
// allocators racing across a change of leadership. Other kinds hold none.

import { type NetworkAttachment, bareIp, holdsAddresses } from '@shoal/types';
import type { Node, ObjectKind, Service, StoreObject, Task } from './types.js';

/** The key of an address in a network (the bare IP: the prefix length is the network's). */
export const addressKey = (networkId: string, addr: string): string => `${networkId} ${bareIp(addr)}`;

/** The addresses `obj` holds now (none for the kinds that hold none). */
export function heldAddresses(kind: ObjectKind, obj: StoreObject): readonly NetworkAttachment[] {
  if (kind === 'task') return holdsAddresses(obj as Task) ? (obj as Task).networks : [];
  if (kind === 'service') return (obj as Service).endpoint.virtualIps;
  if (kind === 'node') return (obj as Node).attachments;
  return [];
}
