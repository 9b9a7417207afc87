// Which nodes may run a task: ready, active, matching the service's constraints, and (for
// host-mode published ports) not already using the port. Each filter says why it refused, so a
// task that fits nowhere can tell the user why in `service ps`.

import type { Node, ServiceSpec, Task } from '@shoal/store';
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

/** Host ports (protocol/port) used by the live tasks on each node. */
export function hostPortsByNode(tasks: Task[]): Map<string, Set<string>> {
  const out = new Map<string, Set<string>>();
  for (const t of tasks) {
    // A task being shut down holds its ports until its container has stopped (a rolling update
    // must not start the new task next to the old one's binding).
    if (!t.nodeId || (t.desiredState !== 'running' && isTerminal(t.status.state))) continue;
    for (const p of t.spec.ports) {
      if (p.publishMode !== 'host') continue;
      let s = out.get(t.nodeId);
      if (!s) out.set(t.nodeId, (s = new Set()));
      s.add(`${p.protocol}/${p.publishedPort}`);
    }
  }
  return out;
}

export function eligible(spec: ServiceSpec, n: Node, hostPorts: Map<string, Set<string>>): string | null {
  if (n.status.state !== 'ready') return `node ${n.description.hostname} is ${n.status.state}`;
  if (n.spec.availability !== 'active') return `node ${n.description.hostname} is ${n.spec.availability}`;
  for (const c of spec.constraints) {
    if (!constraintMatches(c, n)) return `node ${n.description.hostname} does not satisfy ${c}`;
  }
  const used = hostPorts.get(n.id);
  for (const p of spec.ports) {
    if (p.publishMode === 'host' && used?.has(`${p.protocol}/${p.publishedPort}`)) {
      return `host port ${p.publishedPort}/${p.protocol} is taken on ${n.description.hostname}`;
    }
  }
  return null;
}

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
