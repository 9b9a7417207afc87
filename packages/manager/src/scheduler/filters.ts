// Which nodes may run a task: ready, active, matching the service's constraints, (for host-mode
// published ports) not already using the port, holding fewer than the service's
// max-replicas-per-node of its live tasks, and with the CPU and memory it reserves still free. Each filter says why it refused, so a task that fits nowhere can tell the user why in
// `service ps`.

import type { Node, NodeResources, ServiceSpec, Task } from '@shoal/store';
import { isTerminal } from '@shoal/store';

export interface Rejection {
  nodeId: string;
  reason: string;
}

export function constraintMatches(expr: string, n: Node): boolean {
  const m = /^\s*([a-zA-Z0-9_.-]+)\s*(==|!=)\s*(.+?)\s*$/.exec(expr);
  if (!m) return false;
  const [, key, op, want] = m;
  let have: string | undefined;
  if (key === 'node.id') have = n.id;
  else if (key === 'node.hostname') have = n.description.hostname;
  else if (key === 'node.role') have = n.spec.role;
  else if (key === 'node.platform.os') have = n.description.platform.os;
  else if (key === 'node.platform.arch') have = n.description.platform.arch;
  else if (key.startsWith('node.labels.')) have = n.spec.labels[key.slice('node.labels.'.length)];
  const eq = have !== undefined && have === want;
  return op === '==' ? eq : !eq;
}

/** What the live tasks on each node hold: host ports (protocol/port), reserved CPU and memory, tasks of each service. */
export interface NodeUsage {
  hostPorts: Map<string, Set<string>>;
  reserved: Map<string, NodeResources>;
  /** serviceId → nodeId → the service's tasks meant to run there and not ended (Swarm's ActiveTasksCountByService). */
  serviceTasks: Map<string, Map<string, number>>;
}

export function usageByNode(tasks: Iterable<Task>): NodeUsage {
  const usage: NodeUsage = { hostPorts: new Map(), reserved: new Map(), serviceTasks: new Map() };
  for (const t of tasks) {
    // A task being shut down holds its ports and reservations until its container has stopped (a
    // rolling update must not start the new task next to the old one's binding).
    if (!t.nodeId || (t.desiredState !== 'running' && isTerminal(t.status.state))) continue;
    // It no longer counts toward the service's replicas on the node once it is told to stop, as in Swarm.
    take(usage, t.nodeId, t.spec, t.desiredState === 'running' && !isTerminal(t.status.state) ? t.serviceId : undefined);
  }
  return usage;
}

/** Books a task of `spec` on a node (the scheduler, after placing one); `serviceId`: counted as one of its service's there. */
export function take(usage: NodeUsage, nodeId: string, spec: ServiceSpec, serviceId?: string): void {
  if (serviceId !== undefined) {
    let m = usage.serviceTasks.get(serviceId);
    if (!m) usage.serviceTasks.set(serviceId, (m = new Map()));
    m.set(nodeId, (m.get(nodeId) ?? 0) + 1);
  }
  for (const p of spec.ports) {
    if (p.publishMode !== 'host') continue;
    let s = usage.hostPorts.get(nodeId);
    if (!s) usage.hostPorts.set(nodeId, (s = new Set()));
    s.add(`${p.protocol}/${p.publishedPort}`);
  }
  const r = spec.resources?.reservations;
  if (r && (r.nanoCpus > 0 || r.memoryBytes > 0)) {
    const have = usage.reserved.get(nodeId) ?? { nanoCpus: 0, memoryBytes: 0 };
    usage.reserved.set(nodeId, { nanoCpus: have.nanoCpus + r.nanoCpus, memoryBytes: have.memoryBytes + r.memoryBytes });
  }
}

/** Why node `n` may not run a task of `spec` (of service `serviceId`, when its tasks per node are limited), or null. */
export function eligible(spec: ServiceSpec, n: Node, usage: NodeUsage, serviceId?: string): string | null {
  if (n.status.state !== 'ready') return `node ${n.description.hostname} is ${n.status.state}`;
  if (n.spec.availability !== 'active') return `node ${n.description.hostname} is ${n.spec.availability}`;
  for (const c of spec.constraints) {
    if (!constraintMatches(c, n)) return `node ${n.description.hostname} does not satisfy ${c}`;
  }
  const max = spec.maxReplicasPerNode ?? 0;
  if (max > 0 && serviceId !== undefined && (usage.serviceTasks.get(serviceId)?.get(n.id) ?? 0) >= max) {
    // Swarm's words (MaxReplicasFilter), so that scripts and searches find them.
    return `max replicas per node limit exceed on ${n.description.hostname}`;
  }
  const used = usage.hostPorts.get(n.id);
  for (const p of spec.ports) {
    if (p.publishMode === 'host' && used?.has(`${p.protocol}/${p.publishedPort}`)) {
      return `host port ${p.publishedPort}/${p.protocol} is taken on ${n.description.hostname}`;
    }
  }
  const want = spec.resources?.reservations;
  if (want && (want.nanoCpus > 0 || want.memoryBytes > 0)) {
    const held = usage.reserved.get(n.id) ?? { nanoCpus: 0, memoryBytes: 0 };
    const total = n.description.resources;
    const short: string[] = [];
    if (want.nanoCpus > total.nanoCpus - held.nanoCpus) short.push(cpus(want.nanoCpus));
    if (want.memoryBytes > total.memoryBytes - held.memoryBytes) short.push(`${mib(want.memoryBytes)} of memory`);
    if (short.length > 0) return `insufficient resources (${short.join(' and ')} to reserve) on ${n.description.hostname}`;
  }
  return null;
}

const cpus = (nano: number): string => {
  const n = Math.round(nano / 1e7) / 100;
  return `${n} CPU${n === 1 ? '' : 's'}`;
};
const mib = (bytes: number): string => (bytes >= 1 << 30 ? `${Math.round((bytes / (1 << 30)) * 100) / 100} GiB` : `${Math.round((bytes / (1 << 20)) * 10) / 10} MiB`);

/** One line for a task that fits nowhere: "no suitable node (2 nodes are down; 1 node does not satisfy ...)". */
export function summarize(rejections: Rejection[]): string {
  if (rejections.length === 0) return 'no suitable node: the cluster has no nodes';
  const counts = new Map<string, number>();
  for (const r of rejections) {
    const generic = r.reason.replace(/^node \S+ /, '').replace(/ on \S+$/, '');
    counts.set(generic, (counts.get(generic) ?? 0) + 1);
  }
  const parts = [...counts].map(([why, k]) => `${k} node${k === 1 ? '' : 's'}: ${why}`);
  return `no suitable node (${parts.join('; ')})`;
}
