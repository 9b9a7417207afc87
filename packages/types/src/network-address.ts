// Addresses on overlay networks: the attachment form Docker shows (10.0.1.5/24), the addresses a
// network may hand out, and when a task's address is its own. One source for the store (which
// refuses an address held twice), the leader's allocator and the agents.

import { type Check, arrayOf, obj, str } from './check.js';
import { type Cidr, cidrSize, contains, formatIPv4, parseCidr, parseIPv4 } from './network-spec.js';
import type { Endpoint, NetworkAttachment } from './objects.js';
import { type TaskState, taskStateRank } from './enums.js';

export const networkAttachmentShape: Check<NetworkAttachment> = obj<NetworkAttachment>({
  networkId: str({ nonEmpty: true, max: 256 }),
  addr: str({ nonEmpty: true, max: 18 }),
});

export const endpointShape: Check<Endpoint> = obj<Endpoint>({ virtualIps: arrayOf(networkAttachmentShape) });

export const NO_ENDPOINT: Endpoint = { virtualIps: [] };

/** The IP of an attachment's `A.B.C.D/N`, or null when malformed. */
export function attachmentIp(addr: string): number | null {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(addr);
  return m ? parseIPv4(m[1]!) : null;
}

/** The address without its prefix length (10.0.1.5). */
export function bareIp(addr: string): string {
  const i = addr.indexOf('/');
  return i < 0 ? addr : addr.slice(0, i);
}

export function attachmentAddr(ip: number, subnet: Cidr): string {
  return `${formatIPv4(ip)}/${subnet.prefix}`;
}

/** A network's allocation as far as addresses go. */
export interface AddressSpace {
  readonly subnet: string;
  readonly gateway: string;
}

/**
 * Why `addr` cannot be an address of the network (or null): the network's prefix length, inside
 * the subnet, neither its network nor its broadcast address, nor the gateway.
 */
export function addressProblem(net: AddressSpace, addr: string): string | null {
  const c = parseCidr(net.subnet);
  const ip = attachmentIp(addr);
  if (!c || ip === null) return `address ${JSON.stringify(addr)} is not of the form A.B.C.D/N`;
  if (addr !== attachmentAddr(ip, c)) return `address ${addr} is not in subnet ${net.subnet} (or not with its prefix length /${c.prefix})`;
  if (!contains(c, ip)) return `address ${addr} is not in subnet ${net.subnet}`;
  if (ip === c.base || ip === c.base + cidrSize(c) - 1) return `address ${addr} is the network or broadcast address of ${net.subnet}`;
  if (formatIPv4(ip) === net.gateway) return `address ${addr} is the gateway of ${net.subnet}`;
  return null;
}

/**
 * The host addresses of a network that can be handed out, in order from `from` (wrapping round):
 * not the network, broadcast or gateway address.
 */
export function* candidateAddresses(net: AddressSpace, from?: number): Generator<number> {
  const c = parseCidr(net.subnet);
  if (!c) return;
  const first = c.base + 1;
  const last = c.base + cidrSize(c) - 2;
  const gw = parseIPv4(net.gateway);
  const start = from !== undefined && from >= first && from <= last ? from : first;
  for (let ip = start; ip <= last; ip++) if (ip !== gw) yield ip;
  for (let ip = first; ip < start; ip++) if (ip !== gw) yield ip;
}

/**
 * Whether a task still owns its addresses: until both what it does and what it is asked to do are
 * past running (SwarmKit's "task dead" rule). A task that failed but is still desired running
 * keeps them until the orchestrator shuts it down; an orphaned task (its node down) lets them go.
 */
export function holdsAddresses(t: { status: { state: TaskState }; desiredState: TaskState }): boolean {
  const running = taskStateRank('running');
  return !(taskStateRank(t.status.state) > running && taskStateRank(t.desiredState) > running);
}

/** Whether a task has an address on every network of its spec (the scheduler places no other). */
export function fullyAttached(t: { spec: { networks: readonly { target: string }[] }; networks: readonly NetworkAttachment[] }): boolean {
  return t.spec.networks.every((n) => t.networks.some((a) => a.networkId === n.target));
}
