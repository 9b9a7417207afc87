// What every node's overlay data plane needs, kept up to date from the store's events in one
// ChangeLog (as MeshIndex does for the routing mesh): each network's allocation (`n:NETWORKID`),
// each service on a network with its virtual IPs and aliases (`s:SERVICEID`), and each running
// task holding addresses on a ready node, with its node's underlay address (`e:TASKID`), and each
// node's address on the ingress network with its underlay (`i:NODEID`). A store
// change refreshes only the keys it can alter. Every node reads the whole view: it needs the
// networks of its own tasks, the peers and endpoints on them, and the services its tasks can name.

import type { ClusterStore, StoreEvent, Task } from '@shoal/store';
import type { IngressNode, NetworkEndpoint, NetworkService, OverlayNetworkInfo } from '@shoal/types';
import { ChangeLog, type Cursor, type Page } from './change-log.js';

export type NetworkEntry = { network: OverlayNetworkInfo } | { service: NetworkService } | { endpoint: NetworkEndpoint } | { ingressNode: IngressNode };

/** The host part of a node's `HOST:PORT` address: its VXLAN tunnel endpoint. */
export function underlayOf(addr: string): string {
  const i = addr.lastIndexOf(':');
  const host = i < 0 ? addr : addr.slice(0, i);
  return host.replace(/^\[|\]$/g, '');
}

export class NetworkIndex {
  private log!: ChangeLog<NetworkEntry>;
  private readonly unwatch: () => void;

  constructor(
    private readonly store: ClusterStore,
    private readonly onChange: () => void,
  ) {
    this.rebuild();
    this.unwatch = store.watch((events) => this.apply(events), { kinds: ['network', 'service', 'task', 'node'] });
  }

  stop(): void {
    this.unwatch();
  }

  private rebuild(): void {
    const at = this.store.appliedIndex;
    this.log = new ChangeLog<NetworkEntry>(at);
    for (const n of this.store.list('network')) this.refresh(`n:${n.id}`, this.networkOf(n.id), at, false);
    for (const s of this.store.list('service')) this.refresh(`s:${s.id}`, this.serviceOf(s.id), at, false);
    for (const t of this.store.list('task')) this.refresh(`e:${t.id}`, this.endpointOf(t), at, false);
    for (const n of this.store.list('node')) this.refresh(`i:${n.id}`, this.ingressNodeOf(n.id), at, false);
  }

  private networkOf(id: string): NetworkEntry | undefined {
    const n = this.store.get('network', id);
    if (!n) return undefined;
    return { network: { id: n.id, name: n.spec.name, vni: n.vni, subnet: n.subnet, gateway: n.gateway, internal: n.spec.internal, ingress: n.spec.ingress } };
  }

  /** A node holding an ingress address, down or not: its peers keep it in their forwarding tables. */
  private ingressNodeOf(id: string): NetworkEntry | undefined {
    const n = this.store.get('node', id);
    const a = n?.attachments[0];
    if (!n || !a) return undefined;
    return { ingressNode: { nodeId: n.id, addr: a.addr, underlay: underlayOf(n.status.addr), serving: n.status.state === 'ready' && n.status.meshMode === 'kernel+ingress' } };
  }

  private serviceOf(id: string): NetworkEntry | undefined {
    const s = this.store.get('service', id);
    if (!s || s.spec.networks.length === 0) return undefined;
    const vip = (net: string) => s.endpoint.virtualIps.find((v) => v.networkId === net)?.addr ?? '';
    return {
      service: {
        serviceId: s.id,
        name: s.spec.name,
        endpointMode: s.spec.endpointMode,
        networks: s.spec.networks.map((n) => ({ networkId: n.target, vip: vip(n.target), aliases: [...n.aliases] })),
      },
    };
  }

  /** A task is an endpoint while it runs (healthy, if it has a check: only then is it running) on a ready node. */
  private endpointOf(t: Task | null | undefined): NetworkEntry | undefined {
    if (!t || t.networks.length === 0 || t.desiredState !== 'running' || t.status.state !== 'running') return undefined;
    const n = this.store.get('node', t.nodeId);
    if (!n || n.status.state !== 'ready') return undefined;
    return {
      endpoint: {
        taskId: t.id,
        serviceId: t.serviceId,
        nodeId: t.nodeId,
        slot: t.slot,
        underlay: underlayOf(n.status.addr),
        addresses: t.networks.map((a) => ({ networkId: a.networkId, addr: a.addr })),
      },
    };
  }

  private refresh(key: string, want: NetworkEntry | undefined, seq: number, wake = true): boolean {
    const have = this.log.get(key);
    if (!want) {
      if (!have) return false;
      this.log.delete(key, seq);
      return true;
    }
    if (have && JSON.stringify(have) === JSON.stringify(want)) return false;
    this.log.set(key, want, seq, wake);
    return true;
  }

  private apply(events: readonly StoreEvent[]): void {
    let changed = false;
    let at = 0;
    const tasks = new Set<string>();
    for (const e of events) {
      at = e.index;
      if (e.action === 'restore') {
        this.rebuild();
        this.onChange();
        return;
      }
      if (e.kind === 'network') changed = this.refresh(`n:${e.object.id}`, this.networkOf(e.object.id), at) || changed;
      else if (e.kind === 'service') changed = this.refresh(`s:${e.object.id}`, this.serviceOf(e.object.id), at) || changed;
      else if (e.kind === 'task') tasks.add(e.object.id);
      else if (e.kind === 'node') {
        changed = this.refresh(`i:${e.object.id}`, this.ingressNodeOf(e.object.id), at) || changed;
        const prev = e.previous;
        if (!prev || e.action === 'delete' || prev.status.state !== e.object.status.state || prev.status.addr !== e.object.status.addr) {
          for (const t of this.store.tasksByNode(e.object.id)) tasks.add(t.id);
        }
      }
    }
    for (const id of tasks) changed = this.refresh(`e:${id}`, this.endpointOf(this.store.get('task', id)), at) || changed;
    if (changed) this.onChange();
  }

  hasNews(cursor: Cursor | undefined): boolean {
    return this.log.hasNews(cursor);
  }

  page(cursor: Cursor | undefined, budget: number): Page<NetworkEntry> {
    return this.log.since(cursor, budget, (v) => JSON.stringify(v).length, this.store.appliedIndex);
  }
}
