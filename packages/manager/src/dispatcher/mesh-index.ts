// What every node's routing mesh serves, kept up to date from the store's events in one
// ChangeLog: each published ingress port (key `p:PORT`, `p:PORT/udp`: meshPortKey), each running task of an ingress service
// on a ready node, with where to reach it (`b:TASKID`), and each node the cluster removed
// (`r:NODEID`: its certificate is refused by id). A store change refreshes only the keys it can
// alter (a task: its backend; a node: the backends of its tasks; a service: its ports and
// backends), reading the store as it now is, so each costs what it changed. Nodes read the log
// from their cursor, in pages (see ChangeLog); the agent rebuilds the whole view from it.

import { type ClusterStore, type Service, type StoreEvent, type Task, meshPortKey } from '@shoal/store';
import { ChangeLog, type Cursor, type Page } from './change-log.js';

/** A published ingress port, without its backends (they are entries of their own). */
export interface MeshPortEntry {
  port: number;
  protocol: string;
  targetPort: number;
  proxyProtocol: boolean;
  serviceId: string;
  serviceName: string;
}

export interface MeshBackendEntry {
  taskId: string;
  nodeId: string;
  containerId: string;
  /** The forwarding address of the node that runs the task. */
  via: string;
  serviceId: string;
}

export type MeshEntry = { port: MeshPortEntry } | { backend: MeshBackendEntry } | { removedNode: string };

function ingressPorts(s: Service | null | undefined): MeshPortEntry[] {
  if (!s) return [];
  return s.spec.ports
    .filter((p) => p.publishMode === 'ingress')
    .map((p) => ({ port: p.publishedPort, protocol: p.protocol, targetPort: p.targetPort, proxyProtocol: p.proxyProtocol, serviceId: s.id, serviceName: s.spec.name }));
}

export class MeshIndex {
  private log!: ChangeLog<MeshEntry>;
  /** service id → the keys of the ports it holds in the log. */
  private portsOf = new Map<string, string[]>();
  private unwatch: () => void;

  constructor(
    private readonly store: ClusterStore,
    private readonly onChange: () => void,
  ) {
    this.rebuild();
    this.unwatch = store.watch((events) => this.apply(events), { kinds: ['service', 'task', 'node', 'cluster'] });
  }

  stop(): void {
    this.unwatch();
  }

  private rebuild(): void {
    const at = this.store.appliedIndex;
    this.log = new ChangeLog<MeshEntry>(at);
    this.portsOf = new Map();
    for (const s of this.store.list('service')) {
      this.refreshService(s.id, at, false);
    }
    this.refreshRemoved(at, false);
  }

  /** The backend a task is now, or undefined when it is none. */
  private backendOf(t: Task | null | undefined): MeshBackendEntry | undefined {
    if (!t || t.desiredState !== 'running' || t.status.state !== 'running') return undefined;
    if (!this.portsOf.has(t.serviceId)) return undefined;
    const n = this.store.get('node', t.nodeId);
    if (!n || n.status.state !== 'ready') return undefined;
    return { taskId: t.id, nodeId: t.nodeId, containerId: t.status.containerId, via: n.status.meshAddr, serviceId: t.serviceId };
  }

  private refreshTask(taskId: string, seq: number, wake = true): boolean {
    const want = this.backendOf(this.store.get('task', taskId));
    const key = `b:${taskId}`;
    const have = this.log.get(key);
    if (!want) {
      if (!have) return false;
      this.log.delete(key, seq);
      return true;
    }
    if (have && JSON.stringify(have) === JSON.stringify({ backend: want })) return false;
    this.log.set(key, { backend: want }, seq, wake);
    return true;
  }

  private refreshService(serviceId: string, seq: number, wake = true): boolean {
    const ports = ingressPorts(this.store.get('service', serviceId));
    const before = this.portsOf.get(serviceId) ?? [];
    let changed = false;
    const keys = ports.map((p) => meshPortKey(p.port, p.protocol));
    for (const k of before) {
      const held = this.log.get(k);
      // (Another service may have taken the port in the same transaction.)
      if (!keys.includes(k) && held && 'port' in held && held.port.serviceId === serviceId) {
        this.log.delete(k, seq);
        changed = true;
      }
    }
    ports.forEach((p, i) => {
      const have = this.log.get(keys[i]!);
      if (have && JSON.stringify(have) === JSON.stringify({ port: p })) return;
      this.log.set(keys[i]!, { port: p }, seq, wake);
      changed = true;
    });
    const hadIngress = before.length > 0;
    if (ports.length > 0) this.portsOf.set(serviceId, keys);
    else this.portsOf.delete(serviceId);
    // Its tasks become backends, or stop being ones, only when the service gains or loses ingress.
    if (hadIngress !== ports.length > 0 || !wake) {
      for (const t of this.store.tasksByService(serviceId)) changed = this.refreshTask(t.id, seq, wake) || changed;
    }
    return changed;
  }

  private refreshRemoved(seq: number, wake = true): boolean {
    const now = new Set(this.store.cluster()?.removedNodes ?? []);
    let changed = false;
    for (const id of now) {
      if (this.log.get(`r:${id}`)) continue;
      this.log.set(`r:${id}`, { removedNode: id }, seq, wake);
      changed = true;
    }
    for (const id of this.removedIds) {
      if (now.has(id)) continue;
      this.log.delete(`r:${id}`, seq);
      changed = true;
    }
    this.removedIds = now;
    return changed;
  }

  private removedIds = new Set<string>();

  private apply(events: readonly StoreEvent[]): void {
    let changed = false;
    const services = new Set<string>();
    const tasks = new Set<string>();
    const nodes = new Set<string>();
    let cluster = false;
    let at = 0;
    for (const e of events) {
      at = e.index;
      if (e.action === 'restore') {
        this.rebuild();
        changed = true;
        services.clear();
        tasks.clear();
        nodes.clear();
        cluster = false;
        continue;
      }
      if (e.kind === 'service') services.add(e.object.id);
      else if (e.kind === 'task') tasks.add(e.object.id);
      else if (e.kind === 'node') {
        // Only its readiness and its forwarding address matter to the backends it holds.
        const prev = e.previous;
        if (!prev || e.action === 'delete' || prev.status.state !== e.object.status.state || prev.status.meshAddr !== e.object.status.meshAddr) nodes.add(e.object.id);
      } else if (e.kind === 'cluster') cluster = true;
    }
    for (const id of services) changed = this.refreshService(id, at) || changed;
    for (const id of tasks) changed = this.refreshTask(id, at) || changed;
    for (const id of nodes) for (const t of this.store.tasksByNode(id)) changed = this.refreshTask(t.id, at) || changed;
    if (cluster) changed = this.refreshRemoved(at) || changed;
    // A deleted task or node no longer lists its tasks: their entries go through the task events.
    if (changed) this.onChange();
  }

  hasNews(cursor: Cursor | undefined): boolean {
    return this.log.hasNews(cursor);
  }

  page(cursor: Cursor | undefined, budget: number): Page<MeshEntry> {
    return this.log.since(cursor, budget, (v) => JSON.stringify(v).length, this.store.appliedIndex);
  }
}
