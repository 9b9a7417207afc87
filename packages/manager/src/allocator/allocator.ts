// The network allocator (SwarmKit's allocator, leader only): gives every new task one address on
// each network of its spec before the scheduler may place it. Part of the leader's pass
// (orchestrator.ts): it looks at the tasks as the pass's own ops leave them, so a task is created
// already holding its addresses, in the same transaction.
//
// Addresses are handed out serially (the next free one after the last given, wrapping round), as
// libnetwork's IPAM does for swarm: an address a task just let go is not given straight to the next
// one, so a container still running on a node cut off from the cluster (its task orphaned) meets
// no twin for as long as possible. The store is the judge: a proposal holding an address someone
// else holds fails the whole transaction and the next pass allocates from the new state.

import type { Network, Node, Task } from '@shoal/store';
import { type NetworkAttachment, attachmentAddr, attachmentIp, candidateAddresses, fullyAttached, isTerminal, parseCidr } from '@shoal/types';

/** What the allocator reads of the store. */
export interface AddressBook {
  network(id: string): Network | null | undefined;
  /** The holder (task or service id) of an address of a network, if held. */
  holder(networkId: string, addr: string): string | undefined;
}

/** The tasks the allocator looks at: meant to run, on networks, not yet given to an agent. */
function wantsAddresses(t: Task, created: ReadonlySet<string>): boolean {
  if (t.desiredState !== 'running' || isTerminal(t.status.state) || fullyAttached(t)) return false;
  return t.status.state === 'new' || t.status.state === 'pending' || created.has(t.id);
}

export class Allocator {
  /** Per network, the last address given (this leadership's memory; a new leader starts afresh). */
  private readonly last = new Map<string, number>();

  /**
   * The tasks of `tasks` (the store's, as this pass leaves them; `created`: those it creates) that
   * get addresses, or wait for one: each returned as it should be written.
   */
  allocate(book: AddressBook, tasks: Iterable<Task>, created: ReadonlySet<string>, now: number): Task[] {
    const taken = new Map<string, string>(); // this pass's grants: addressKey → task id
    const out: Task[] = [];
    for (const t of tasks) {
      if (!wantsAddresses(t, created)) continue;
      const got: NetworkAttachment[] = [];
      let missing: string | undefined;
      for (const { target } of t.spec.networks) {
        const kept = t.networks.find((a) => a.networkId === target);
        if (kept) {
          got.push(kept);
          continue;
        }
        const net = book.network(target);
        if (!net) {
          missing = `network ${target} no longer exists`;
          break;
        }
        const addr = this.next(book, net, taken);
        if (addr === undefined) {
          missing = `no free address left in network "${net.spec.name}" (${net.subnet})`;
          break;
        }
        taken.set(`${target} ${addr}`, t.id);
        got.push({ networkId: target, addr });
      }
      if (missing === undefined) {
        // A task that waited (new) goes on to where it would have been created.
        const state = t.status.state === 'new' ? (t.nodeId ? 'assigned' : 'pending') : t.status.state;
        const status = t.status.state === 'new' ? { ...t.status, state, err: '', message: t.nodeId ? 'scheduled' : 'allocated', timestamp: now } : t.status;
        out.push({ ...t, networks: got, status, updatedAt: now });
      } else {
        // A created task waits in `new` (the scheduler and the agents leave it alone); one the store
        // already holds keeps its state (states only move forward) and says why it waits.
        const state = created.has(t.id) ? 'new' : t.status.state;
        if (state === t.status.state && t.status.err === missing) continue;
        // Addresses granted to it in this pass go back (it holds none until it holds them all).
        for (const a of got) if (!t.networks.includes(a)) taken.delete(`${a.networkId} ${a.addr}`);
        out.push({ ...t, status: { ...t.status, state, err: missing, message: 'pending address allocation', timestamp: now }, updatedAt: now });
      }
    }
    return out;
  }

  /**
   * The nodes of `nodes` that get their address on the ingress network `ingress` (those without
   * one), each as it should be written; those it has no address for stay as they are (the
   * network is full: the routing mesh's kernel path leaves them out, the userland one serves).
   */
  allocateNodes(book: AddressBook, ingress: Network, nodes: Iterable<Node>, now: number): Node[] {
    const taken = new Map<string, string>();
    const out: Node[] = [];
    for (const n of nodes) {
      if (n.attachments.some((a) => a.networkId === ingress.id)) continue;
      const addr = this.next(book, ingress, taken);
      if (addr === undefined) break;
      taken.set(`${ingress.id} ${addr}`, n.id);
      out.push({ ...n, attachments: [...n.attachments.filter((a) => book.network(a.networkId)), { networkId: ingress.id, addr }], updatedAt: now });
    }
    return out;
  }

  private next(book: AddressBook, net: Network, taken: ReadonlyMap<string, string>): string | undefined {
    const subnet = parseCidr(net.subnet);
    if (!subnet) return undefined;
    const after = this.last.get(net.id);
    for (const ip of candidateAddresses(net, after === undefined ? undefined : after + 1)) {
      const addr = attachmentAddr(ip, subnet);
      if (taken.has(`${net.id} ${addr}`) || book.holder(net.id, addr) !== undefined) continue;
      this.last.set(net.id, attachmentIp(addr)!);
      return addr;
    }
    return undefined;
  }
}
