// The service names one node's DNS answers, with Docker Swarm's embedded DNS rules (libnetwork's
// service_common.go addEndpointNameResolution and sandbox.go ResolveName): per network,
//   SERVICE and each ALIAS  -> the service's VIP (vip mode) or its running tasks' IPs (dnsrr mode,
//                              or vip mode without a VIP, as Docker falls back to);
//   tasks.SERVICE, tasks.ALIAS -> the running tasks' IPs;
//   the task's container name (SERVICE.SLOT.TASKID) -> that task's IP;
// and a client sees only the networks it is on, the first of its networks that has a name winning.
// Built once from plain data and never changed: the server swaps whole tables, so a query never
// sees half an update and a lookup takes no lock and builds nothing but its shuffled answer.

import { ShoalError } from '@shoal/api';
import { parseIPv4 } from '@shoal/types';

/** A running (and healthy) task: the caller filters. */
export interface DnsTask {
  id: string;
  slot: number;
  /** The task's address on this network. */
  ip: string;
  /**
   * The task's container name, when the caller has it (`containerName(task)`, which is
   * SERVICE.NODEID.TASKID for a global service); SERVICE.SLOT.TASKID when absent.
   */
  name?: string;
}

export interface DnsService {
  id: string;
  name: string;
  aliases: string[];
  endpointMode: 'vip' | 'dnsrr';
  /** The service's virtual IP on this network (vip mode). */
  vip?: string;
  tasks: DnsTask[];
}

export interface DnsNetwork {
  id: string;
  services: DnsService[];
}

/**
 * A local task as a DNS client: one of its overlay addresses (the source address of its queries
 * on that network) and every network it is on, in its order. A task on two networks is two
 * clients, one per address, with the same network list.
 */
export interface DnsClient {
  ip: string;
  networks: string[];
}

type Names = ReadonlyMap<string, readonly string[]>;
type Reverse = ReadonlyMap<string, string>;

interface NetworkNames {
  readonly names: Names;
  readonly reverse: Reverse;
}

/** The names of the networks a client is on, in its order. */
type ClientView = readonly NetworkNames[];

export class NameTable {
  /** No names at all: every query goes upstream. */
  static readonly EMPTY = new NameTable([], []);

  readonly #clients: ReadonlyMap<string, ClientView>;

  constructor(networks: readonly DnsNetwork[], clients: readonly DnsClient[]) {
    const byId = new Map<string, NetworkNames>();
    for (const n of networks) {
      if (!byId.has(n.id)) byId.set(n.id, networkNames(n));
    }
    const views = new Map<string, ClientView>();
    for (const c of clients) {
      checkIPv4(c.ip, `client ${c.ip}`);
      // Overlay addresses are unique in the cluster; a repeated one is a stale record, and the
      // first (the caller's newest-first order, if it has one) is as good a guess as any.
      if (views.has(c.ip)) continue;
      const view: NetworkNames[] = [];
      for (const id of c.networks) {
        const names = byId.get(id);
        if (names !== undefined && !view.includes(names)) view.push(names);
      }
      views.set(c.ip, Object.freeze(view));
    }
    this.#clients = views;
  }

  /**
   * The IPv4 addresses `qname` stands for, as seen from the task whose overlay address is
   * `clientIp`, in a fresh random order (Docker shuffles each answer so clients spread over the
   * tasks); undefined when it is no cluster name for that client (ask upstream). A dnsrr service or
   * a tasks. name with no running task is no name, as in Docker (its records go with the last
   * task), so such a query goes upstream; a vip service keeps its name while it has no task, as
   * its VIP stays allocated for the service's life (Docker drops the VIP record with the last
   * backend, so its clients get the upstream's NXDOMAIN while a service restarts all its tasks).
   */
  resolve(clientIp: string, qname: string): string[] | undefined {
    const view = this.#clients.get(clientIp);
    if (view === undefined) return undefined;
    const key = normalize(qname);
    for (const net of view) {
      const ips = net.names.get(key);
      if (ips !== undefined) return shuffled(ips);
    }
    return undefined;
  }

  /**
   * The name of a cluster address (a task's container name, or a service's name for its VIP)
   * as seen from `clientIp`; undefined when the address is none of its networks'.
   */
  reverse(clientIp: string, ip: string): string | undefined {
    const view = this.#clients.get(clientIp);
    if (view === undefined) return undefined;
    for (const net of view) {
      const name = net.reverse.get(ip);
      if (name !== undefined) return name;
    }
    return undefined;
  }

  /** Whether `clientIp` is a known local task (a client that gets cluster names). */
  knows(clientIp: string): boolean {
    return this.#clients.has(clientIp);
  }
}

function networkNames(n: DnsNetwork): NetworkNames {
  const names = new Map<string, Set<string>>();
  const reverse = new Map<string, string>();
  // Two services claiming one name on a network (an alias both use) answer the union, as
  // Docker's per-network name -> address set does.
  const add = (name: string, ips: readonly string[]): void => {
    if (ips.length === 0) return;
    const key = normalize(name);
    let set = names.get(key);
    if (set === undefined) names.set(key, (set = new Set()));
    for (const ip of ips) set.add(ip);
  };
  for (const s of n.services) {
    const where = `service ${s.name} on network ${n.id}`;
    for (const t of s.tasks) checkIPv4(t.ip, `task ${t.id} of ${where}`);
    if (s.vip !== undefined) checkIPv4(s.vip, `VIP of ${where}`);
    const taskIps = s.tasks.map((t) => t.ip);
    const serviceIps = s.endpointMode === 'vip' && s.vip !== undefined ? [s.vip] : taskIps;
    for (const name of [s.name, ...s.aliases]) {
      add(name, serviceIps);
      add(`tasks.${name}`, taskIps);
    }
    for (const t of s.tasks) {
      const container = t.name ?? `${s.name}.${t.slot}.${t.id}`;
      add(container, [t.ip]);
      if (!reverse.has(t.ip)) reverse.set(t.ip, container);
    }
    if (serviceIps !== taskIps && !reverse.has(s.vip!)) reverse.set(s.vip!, s.name);
  }
  const frozen = new Map<string, readonly string[]>();
  for (const [name, set] of names) frozen.set(name, Object.freeze([...set]));
  return { names: frozen, reverse };
}

/** DNS names are case-insensitive and a query's trailing dot (the root) is no part of a name here. */
function normalize(name: string): string {
  const end = name.length > 0 && name.charCodeAt(name.length - 1) === 46 /* . */ ? name.length - 1 : name.length;
  return (end === name.length ? name : name.slice(0, end)).toLowerCase();
}

function shuffled(ips: readonly string[]): string[] {
  const out = ips.slice();
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const x = out[i]!;
    out[i] = out[j]!;
    out[j] = x;
  }
  return out;
}

function checkIPv4(ip: string, what: string): void {
  if (parseIPv4(ip) === null) throw new ShoalError('INVALID_ARGUMENT', `service DNS: ${what} is not an IPv4 address: ${JSON.stringify(ip)}`);
}
