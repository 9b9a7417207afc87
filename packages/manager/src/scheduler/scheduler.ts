// The scheduler: gives every pending task a node. Filters first (filters.ts), then spreads: the
// node with the fewest tasks of this service, then the fewest tasks overall. Decisions for all
// pending tasks are made against one view and committed in one transaction.

import type { Node, Task } from '@shoal/store';
import type { Op } from '@shoal/store';
import { type Rejection, eligible, summarize, take, usageByNode } from './filters.js';

export function schedule(nodes: Node[], tasks: Task[], now: number): Op[] {
  const live = tasks.filter((t) => t.desiredState === 'running' && t.nodeId !== '');
  const perNode = new Map<string, number>();
  const perService = new Map<string, number>();
  for (const t of live) {
    perNode.set(t.nodeId, (perNode.get(t.nodeId) ?? 0) + 1);
    const k = `${t.serviceId}/${t.nodeId}`;
    perService.set(k, (perService.get(k) ?? 0) + 1);
  }
  // All tasks: one being shut down still holds its host ports and reservations.
  const usage = usageByNode(tasks);
  const ops: Op[] = [];
  const pending = tasks
    .filter((t) => t.desiredState === 'running' && t.nodeId === '' && t.status.state === 'pending')
    .sort((a, b) => a.createdAt - b.createdAt || a.slot - b.slot);
  for (const t of pending) {
    const rejections: Rejection[] = [];
    let best: Node | undefined;
    let bestKey: [number, number, string] | undefined;
    for (const n of nodes) {
      const why = eligible(t.spec, n, usage);
      if (why) {
        rejections.push({ nodeId: n.id, reason: why });
        continue;
      }
      const key: [number, number, string] = [perService.get(`${t.serviceId}/${n.id}`) ?? 0, perNode.get(n.id) ?? 0, n.id];
      if (!bestKey || key[0] < bestKey[0] || (key[0] === bestKey[0] && (key[1] < bestKey[1] || (key[1] === bestKey[1] && key[2] < bestKey[2])))) {
        best = n;
        bestKey = key;
      }
    }
    if (!best) {
      const err = summarize(rejections);
      if (t.status.err !== err) {
        ops.push({ op: 'update', kind: 'task', object: { ...t, status: { ...t.status, err, message: 'pending', timestamp: now }, updatedAt: now }, expectVersion: t.version });
      }
      continue;
    }
    perNode.set(best.id, (perNode.get(best.id) ?? 0) + 1);
    perService.set(`${t.serviceId}/${best.id}`, (perService.get(`${t.serviceId}/${best.id}`) ?? 0) + 1);
    take(usage, best.id, t.spec);
    ops.push({
      op: 'update',
      kind: 'task',
      object: { ...t, nodeId: best.id, status: { ...t.status, state: 'assigned', err: '', message: 'scheduled', timestamp: now }, updatedAt: now },
      expectVersion: t.version,
    });
  }
  return ops;
}
