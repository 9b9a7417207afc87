// This node's side of the overlay networks (libnetwork's overlay driver and embedded DNS, as one
// agent component): it follows the dispatcher's network view and converges, from it and from the
// local tasks it attached,
//   - each network that has a local task: its bridge and VXLAN device, the gateway address on the
//     bridge, the forwarding toward the other nodes' running tasks, one veth per local task;
//   - each local task's virtual IPs: nftables DNAT in the task's own namespace, to the running tasks
//     of each service on a network it shares (service-lb.ts);
//   - the node's DNS, listening on each local network's gateway, answering from the view.
// A network whose last local task goes is taken away. Everything is recomputed from the view and
// the local tasks on each change (one converge at a time), so a restarted agent converges too:
// until the runner has handed back the containers it adopted (adopt(), then adopted()) nothing is
// converged (a converge without them would take their veths away: a blip in a running task's
// network); then what a previous run left that no adopted task needs goes (its networks' devices,
// its namespaces' names).
//
// Containers keep Docker's default bridge (their way out and the routing mesh's way in) unless
// every network of the task is internal: then they have no network but the overlays.

import { lookup } from 'node:dns/promises';
import type { Logger } from '@shoal/api';
import { ShoalError } from '@shoal/api';
import type { NetworkView, Task } from '@shoal/types';
import { bareIp, parseIPv4 } from '@shoal/types';
import {
  Iproute,
  type LocalEndpoint,
  type ServiceVip,
  applyOverlay,
  applyServiceLb,
  attachNetns,
  detachNetns,
  bridgeName,
  ensureNodeIsolation,
  isHostVeth,
  listNetns,
  macOfIp,
  removeOverlay,
} from './overlay/index.js';
import type { KernelIngress } from '@shoal/mesh';
import { type DnsNetwork, NameTable, type ServiceDns } from './service-dns/index.js';
import { type DispatcherLink, LONG_POLL_WAIT_MS } from './runner.js';

/** How a task's container is created when it is on overlay networks. */
export interface TaskNetworkOptions {
  /** The node's DNS on the first network's gateway. */
  dns: string[];
  /** 'none': every network of the task is internal (no way out, not even Docker's bridge). */
  networkMode: 'default' | 'none';
}

interface LocalTask {
  task: Task;
  netns: string;
  /** Its namespace has its name (until then a converge leaves it out, a sweep leaves its name alone). */
  named: boolean;
}

/** How long a task waits for the view to name its networks before it is rejected. */
const VIEW_WAIT_MS = 15_000;
const NETNS_PREFIX = 'shoal-';
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export interface TaskNetworksOptions {
  nodeId: string;
  /** This node's underlay address (its VXLAN tunnel endpoint): the host of its advertised address. */
  underlay: string;
  link: DispatcherLink;
  dns: ServiceDns;
  log: Logger;
  /** The underlay's MTU (the overlay's devices get 50 bytes less). */
  mtu?: number;
  ip?: Iproute;
  /**
   * The routing mesh's kernel path: this node joins the ingress overlay (its own address on the
   * ingress network's bridge, every other node's reachable) and is told where it stands after
   * every converge (undefined: not on it). Absent: the node stays off the ingress network.
   */
  onIngress?: (ingress: KernelIngress | undefined) => void;
}

export class TaskNetworks {
  private view: NetworkView = { token: '', networks: [], services: [], endpoints: [], ingressNodes: [] };
  private readonly local = new Map<string, LocalTask>();
  /** VNI and gateway of the networks this node has set up, by id. */
  private readonly active = new Map<string, { vni: number; gateway: string }>();
  private running = false;
  private loop: Promise<void> | undefined;
  /** The converge under way, and whether another must follow it. */
  private converging: Promise<void> | undefined;
  private again = false;
  /** The isolation table's version in place (its ingress bridge, '' for none); undefined: none yet. */
  private isolated: string | undefined;
  /** The endpoints (task ids) of the view the last converge completed. */
  private plumbed = new Set<string>();
  /** The ingress network's VNI while this node is on it. */
  private ingressVni: number | undefined;
  private readonly ip: Iproute;
  private readonly viewWaiters = new Set<() => void>();
  /** Set once the runner has handed back its adopted containers (adopted()): converges wait for it. */
  private ready = false;
  private readonly whenReady: Promise<void>;
  private markReady!: () => void;

  constructor(private readonly opts: TaskNetworksOptions) {
    this.ip = opts.ip ?? new Iproute();
    this.whenReady = new Promise<void>((r) => (this.markReady = r));
  }

  start(): void {
    if (this.running || !this.opts.link.networkView) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const w of this.viewWaiters) w();
    await Promise.race([this.loop?.catch(() => undefined), sleep(200)]);
    await this.converging?.catch(() => undefined);
    await this.opts.dns.close();
  }

  /** Network views received (each a change of the networks, their services or their endpoints). */
  private viewUpdates = 0;

  /** What the overlay follows now, for metrics: views received, and the networks and endpoints of the last. */
  stats(): { viewUpdates: number; networks: number; endpoints: number } {
    return { viewUpdates: this.viewUpdates, networks: this.view.networks.length, endpoints: this.view.endpoints.length };
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const v = await this.opts.link.networkView!(this.view.token, this.view.token ? LONG_POLL_WAIT_MS : 0);
        if (!this.running) break;
        this.view = v;
        this.viewUpdates++;
        for (const w of this.viewWaiters) w();
        // Names of endpoints gone leave at once (memory only); the rest converges in the
        // background, while the next long poll already waits for the next change.
        this.forgetGone(v);
        void this.converge();
      } catch (err) {
        this.opts.log.debug({ err: (err as Error).message }, 'network view unavailable; retrying');
        this.view = { ...this.view, token: '' };
        await sleep(200);
      }
    }
  }

  /** The networks of a task, once the view names them all (waits for it a while). */
  private async networksOf(task: Task, signal?: AbortSignal): Promise<NetworkView['networks']> {
    const deadline = Date.now() + VIEW_WAIT_MS;
    for (;;) {
      const byId = new Map(this.view.networks.map((n) => [n.id, n]));
      const missing = task.networks.filter((a) => !byId.has(a.networkId));
      if (missing.length === 0) return task.networks.map((a) => byId.get(a.networkId)!);
      if (!this.running || signal?.aborted || Date.now() > deadline) {
        throw new ShoalError('UNAVAILABLE', `network ${missing.map((m) => m.networkId).join(', ')} is not known to this node (no network view from the managers)`);
      }
      await this.nextView();
    }
  }

  /** How to create the container of a task on overlay networks (undefined: on none). */
  async containerOptions(task: Task, signal?: AbortSignal): Promise<TaskNetworkOptions | undefined> {
    if (task.networks.length === 0) return undefined;
    await this.underlayAddress(this.opts.underlay);
    const nets = await this.networksOf(task, signal);
    return { dns: [nets[0]!.gateway], networkMode: nets.every((n) => n.internal) ? 'none' : 'default' };
  }

  /**
   * A running task's container a restarted agent found (process `pid`): already on its networks
   * (the previous run put it there); named again, converged with the others at adopted().
   */
  async adopt(task: Task, pid: number): Promise<void> {
    if (task.networks.length === 0) return;
    const netns = `${NETNS_PREFIX}${task.id}`;
    await attachNetns(netns, pid, this.ip);
    this.local.set(task.id, { task, netns, named: true });
    await this.converge(); // (nothing until adopted())
  }

  /**
   * Every container the runner adopted is back (adopt()): the first converge, then what a
   * previous run left behind goes: the devices of networks no local task is on, host-side veths
   * on no bridge, the namespace names of tasks that are gone.
   */
  async adopted(): Promise<void> {
    if (this.ready) return;
    // The view may not be here yet (it comes on a poll of its own): without it, a converge would
    // take the adopted tasks' networks for stale ones.
    await this.firstView();
    for (const l of this.local.values()) await this.networksOf(l.task).catch(() => undefined);
    this.ready = true;
    this.sweep = true;
    this.markReady();
    await this.converge();
  }

  /** Until the next view comes (or half a second passes). */
  private async nextView(): Promise<void> {
    await new Promise<void>((r) => {
      const t = setTimeout(r, 500);
      this.viewWaiters.add(() => {
        clearTimeout(t);
        r();
      });
    });
    this.viewWaiters.clear();
  }

  /** Waits (a while) until a view has come. */
  private async firstView(): Promise<void> {
    const deadline = Date.now() + VIEW_WAIT_MS;
    while (this.view.token === '' && this.running && Date.now() < deadline) {
      await this.nextView();
    }
  }

  /** The next converge also removes what a previous run left (see adopted()). */
  private sweep = false;

  /** Bridges and VXLAN devices of networks this run has not set up, and unattached veths: a previous run's. */
  private async removeStaleDevices(): Promise<void> {
    const mine = new Set([...this.active.values()].map((a) => a.vni));
    if (this.ingressVni !== undefined) mine.add(this.ingressVni);
    const links = await this.ip.query<{ ifname: string; master?: string }>('ip', ['link', 'show']);
    const stale = new Set<number>();
    for (const l of links) {
      const m = /^sh(?:br|vx)(\d+)$/.exec(l.ifname);
      if (m && !mine.has(Number(m[1]))) stale.add(Number(m[1]));
    }
    for (const vni of stale) {
      this.opts.log.info({ vni }, 'removing an overlay network a previous run left on this node');
      await removeOverlay(this.ip, { vni });
    }
    for (const l of links) {
      if (isHostVeth(l.ifname) && l.master === undefined) await this.ip.run('ip', ['link', 'del', 'dev', l.ifname]).catch(() => undefined);
    }
  }

  /** Puts a started task's container (process `pid`) on its networks; throws when it cannot be. */
  async attach(task: Task, pid: number): Promise<void> {
    if (task.networks.length === 0) return;
    await this.networksOf(task);
    // (the runner adopts before it launches anything: this wait ends with its first pass)
    await this.whenReady;
    const netns = `${NETNS_PREFIX}${task.id}`;
    // Known before it is named: a sweep under way leaves the name alone.
    const local: LocalTask = { task, netns, named: false };
    this.local.set(task.id, local);
    try {
      await attachNetns(netns, pid, this.ip);
    } catch (err) {
      this.local.delete(task.id);
      throw err;
    }
    local.named = true;
    await this.converge();
    // The converge logs its own failures: say here whether this task's endpoints are there.
    for (const a of task.networks) {
      const net = this.active.get(a.networkId);
      if (!net) throw new ShoalError('UNAVAILABLE', `network ${a.networkId} could not be set up on this node`);
    }
    const links = await this.ip.in(netns).query<{ ifname: string; addr_info?: { local: string }[] }>('ip', ['addr', 'show']);
    for (const a of task.networks) {
      if (!links.some((l) => (l.addr_info ?? []).some((x) => x.local === bareIp(a.addr)))) {
        throw new ShoalError('UNAVAILABLE', `address ${a.addr} could not be given to the container`);
      }
    }
  }

  /** A local task ended: its endpoints go (its namespace's name with them). */
  async detach(taskId: string): Promise<void> {
    const l = this.local.get(taskId);
    if (!l) return;
    this.local.delete(taskId);
    await this.converge();
    await detachNetns(l.netns, this.ip).catch((err: Error) => this.opts.log.warn({ task: taskId, err: err.message }, 'could not release a task network namespace'));
  }

  /** Names of namespaces a previous run attached for tasks this one does not know: released. */
  async releaseStale(known: ReadonlySet<string>): Promise<void> {
    for (const name of await listNetns(NETNS_PREFIX, this.ip).catch(() => [])) {
      if (!known.has(name.slice(NETNS_PREFIX.length)) && !this.local.has(name.slice(NETNS_PREFIX.length))) {
        await detachNetns(name, this.ip).catch(() => undefined);
      }
    }
  }

  /**
   * A node's underlay address as an IPv4 address (VXLAN needs one): advertised addresses may be
   * host names (docker-compose's): resolved, and remembered for the agent's life.
   */
  private async underlayAddress(host: string): Promise<string> {
    if (parseIPv4(host) !== null) return host;
    let ip = this.resolved.get(host);
    if (ip === undefined) {
      try {
        ip = (await lookup(host, { family: 4 })).address;
      } catch (err) {
        throw new ShoalError('FAILED_PRECONDITION', `overlay networks need an IPv4 address for node address ${JSON.stringify(host)}: ${(err as Error).message}`);
      }
      this.resolved.set(host, ip);
    }
    return ip;
  }

  private readonly resolved = new Map<string, string>();

  /** One converge at a time; a change during one asks for another after it. */
  converge(): Promise<void> {
    if (!this.ready) return Promise.resolve();
    if (this.converging) {
      this.again = true;
      return this.converging;
    }
    const run = async (): Promise<void> => {
      do {
        this.again = false;
        try {
          await this.convergeOnce();
        } catch (err) {
          this.opts.log.warn({ err: (err as Error).message }, 'overlay networks: converge failed; retrying at the next change');
        }
      } while (this.again);
    };
    this.converging = run().finally(() => (this.converging = undefined));
    return this.converging;
  }

  /** Does `view` lack an endpoint the last converge plumbed? */
  private anyGone(view: NetworkView): boolean {
    const listed = new Set(view.endpoints.map((e) => e.taskId));
    for (const id of this.plumbed) if (!listed.has(id)) return true;
    return false;
  }

  /** `view` with only the endpoints the last converge plumbed: the gone ones out, the new ones not yet in. */
  private plumbedOnly(view: NetworkView): NetworkView {
    return { ...view, endpoints: view.endpoints.filter((e) => this.plumbed.has(e.taskId)) };
  }

  /** The DNS without the endpoints `view` no longer lists (new ones wait for their plumbing). */
  private forgetGone(view: NetworkView): void {
    if (!this.ready || !this.anyGone(view)) return;
    this.opts.dns.setTable(this.nameTable(this.plumbedOnly(view)));
  }

  private async convergeOnce(): Promise<void> {
    const view = this.view;
    const nets = new Map(view.networks.map((n) => [n.id, n]));
    const locals = [...this.local.values()].filter((l) => l.named);
    // Endpoints that went away leave the names and the VIPs first, before the plumbing (dozens of
    // commands) is converged: a dead replica is out of reach as soon as the view says so. New
    // ones join after it, once they can be reached.
    if (this.anyGone(view)) {
      const known = this.plumbedOnly(view);
      this.opts.dns.setTable(this.nameTable(known));
      for (const l of locals) await applyServiceLb(l.netns, this.vipsOf(l.task, known));
    }
    const wanted = new Set(locals.flatMap((l) => l.task.networks.map((a) => a.networkId)).filter((id) => nets.has(id)));
    const ingress = this.opts.onIngress ? view.networks.find((n) => n.ingress) : undefined;
    const me = view.ingressNodes.find((n) => n.nodeId === this.opts.nodeId);
    const ingressBridge = ingress && me ? bridgeName(ingress.vni) : undefined;
    if ((wanted.size > 0 || ingressBridge) && this.isolated !== (ingressBridge ?? '')) {
      await ensureNodeIsolation(ingressBridge ? { ingressBridge } : {});
      this.isolated = ingressBridge ?? '';
    }
    await this.convergeIngress(ingress && me ? { net: ingress, me } : undefined, view);
    for (const id of wanted) {
      const n = nets.get(id)!;
      const remote = view.endpoints.filter((e) => e.nodeId !== this.opts.nodeId);
      const remoteEndpoints: { ip: string; peer: string }[] = [];
      for (const e of remote) {
        const mine = e.addresses.filter((a) => a.networkId === id);
        if (mine.length === 0) continue;
        const peer = await this.underlayAddress(e.underlay).catch(() => undefined);
        if (peer === undefined) continue; // unresolvable now: left out until the next converge
        for (const a of mine) remoteEndpoints.push({ ip: bareIp(a.addr), peer });
      }
      const peers = [...new Set(remoteEndpoints.map((e) => e.peer))].map((underlay) => ({ underlay }));
      const localEndpoints: LocalEndpoint[] = [];
      for (const l of locals) {
        const at = l.task.networks.findIndex((a) => a.networkId === id);
        if (at < 0) continue;
        localEndpoints.push({ id: `${l.task.id}/${id}`, ip: bareIp(l.task.networks[at]!.addr), netns: l.netns, ifname: this.ifname(l.task, at, nets) });
      }
      const prev = this.active.get(id);
      if (prev && prev.vni !== n.vni) await removeOverlay(this.ip, { vni: prev.vni });
      await applyOverlay(this.ip, {
        network: { id, vni: n.vni, subnet: n.subnet, gateway: n.gateway, mtu: this.opts.mtu ?? 1500, internal: n.internal },
        underlay: await this.underlayAddress(this.opts.underlay),
        peers,
        remoteEndpoints,
        localEndpoints,
      });
      this.active.set(id, { vni: n.vni, gateway: n.gateway });
      await this.opts.dns.listen(n.gateway);
    }
    for (const [id, a] of [...this.active]) {
      if (wanted.has(id)) continue;
      await this.opts.dns.unlisten(a.gateway).catch(() => undefined);
      await removeOverlay(this.ip, { vni: a.vni });
      this.active.delete(id);
    }
    this.opts.dns.setTable(this.nameTable(view));
    for (const l of locals) await applyServiceLb(l.netns, this.vipsOf(l.task, view));
    this.plumbed = new Set(view.endpoints.map((e) => e.taskId));
    if (this.sweep && view.token !== '') {
      this.sweep = false;
      await this.releaseStale(new Set(this.local.keys()));
      await this.removeStaleDevices().catch((err: Error) => this.opts.log.warn({ err: err.message }, 'overlay networks: could not remove what a previous run left'));
    }
  }

  /**
   * The ingress overlay: the network's bridge carries this node's own ingress address (its MAC
   * derived from it, as every endpoint's), the other nodes' addresses are its remote endpoints.
   * The mesh then hears which of them serve theirs; a failure takes the node off it (userland).
   */
  private async convergeIngress(want: { net: NetworkView['networks'][number]; me: NetworkView['ingressNodes'][number] } | undefined, view: NetworkView): Promise<void> {
    if (!this.opts.onIngress) return;
    try {
      if (this.ingressVni !== undefined && this.ingressVni !== want?.net.vni) {
        await removeOverlay(this.ip, { vni: this.ingressVni });
        this.ingressVni = undefined;
      }
      if (!want) {
        this.opts.onIngress(undefined);
        return;
      }
      const own = bareIp(want.me.addr);
      const others = view.ingressNodes.filter((n) => n.nodeId !== this.opts.nodeId);
      const remoteEndpoints: { ip: string; peer: string }[] = [];
      for (const n of others) {
        const peer = await this.underlayAddress(n.underlay).catch(() => undefined);
        if (peer !== undefined) remoteEndpoints.push({ ip: bareIp(n.addr), peer });
      }
      await applyOverlay(this.ip, {
        network: { id: want.net.id, vni: want.net.vni, subnet: want.net.subnet, gateway: own, bridgeMac: macOfIp(own), mtu: this.opts.mtu ?? 1500, internal: false },
        underlay: await this.underlayAddress(this.opts.underlay),
        peers: [...new Set(remoteEndpoints.map((e) => e.peer))].map((underlay) => ({ underlay })),
        remoteEndpoints,
        localEndpoints: [],
      });
      this.ingressVni = want.net.vni;
      const reachable = new Set(remoteEndpoints.map((e) => e.ip));
      const serving = others.filter((n) => n.serving && reachable.has(bareIp(n.addr)));
      this.opts.onIngress({ address: own, subnet: want.net.subnet, nodes: new Map(serving.map((n) => [n.nodeId, bareIp(n.addr)])) });
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'ingress overlay: cannot join it; published ports of other nodes\' replicas go through the userland proxy');
      this.opts.onIngress(undefined);
    }
  }

  /** eth0 is Docker's bridge when the container has it; the overlays follow, in the spec's order. */
  private ifname(task: Task, at: number, nets: ReadonlyMap<string, { internal: boolean }>): string {
    const isolated = task.networks.every((a) => nets.get(a.networkId)?.internal);
    return `eth${isolated ? at : at + 1}`;
  }

  /** The VIPs a local task can reach: of every service on a network it is on, to their running tasks there. */
  private vipsOf(task: Task, view: NetworkView): ServiceVip[] {
    const mine = new Set(task.networks.map((a) => a.networkId));
    const out: ServiceVip[] = [];
    for (const s of view.services) {
      if (s.endpointMode !== 'vip') continue;
      for (const on of s.networks) {
        if (!mine.has(on.networkId) || !on.vip) continue;
        const backends = view.endpoints
          .filter((e) => e.serviceId === s.serviceId)
          .flatMap((e) => e.addresses.filter((a) => a.networkId === on.networkId).map((a) => bareIp(a.addr)));
        out.push({ vip: bareIp(on.vip), backends });
      }
    }
    return out;
  }

  /** The DNS's names: the view's services and running tasks; the clients: the local tasks. */
  private nameTable(view: NetworkView): NameTable {
    const networks: DnsNetwork[] = view.networks.map((n) => ({
      id: n.id,
      services: view.services
        .filter((s) => s.networks.some((on) => on.networkId === n.id))
        .map((s) => {
          const on = s.networks.find((x) => x.networkId === n.id)!;
          return {
            id: s.serviceId,
            name: s.name,
            aliases: on.aliases,
            endpointMode: s.endpointMode === 'dnsrr' ? ('dnsrr' as const) : ('vip' as const),
            ...(on.vip ? { vip: bareIp(on.vip) } : {}),
            tasks: view.endpoints
              .filter((e) => e.serviceId === s.serviceId)
              .flatMap((e) =>
                e.addresses
                  .filter((a) => a.networkId === n.id)
                  .map((a) => ({ id: e.taskId, slot: e.slot, ip: bareIp(a.addr), name: `${s.name}.${e.slot === 0 ? e.nodeId : e.slot}.${e.taskId}` })),
              ),
          };
        }),
    }));
    const clients = [...this.local.values()].flatMap((l) => l.task.networks.map((a) => ({ ip: bareIp(a.addr), networks: l.task.networks.map((x) => x.networkId) })));
    return new NameTable(networks, clients);
  }
}
