// The scheduler: gives every pending task a node. Filters first (filters.ts), then spreads: over
// the values of the service's placement preferences' labels, then the node with the fewest tasks
// of this service, then the fewest tasks overall (spread.ts). Decisions for all pending tasks are
// made against one view and committed with the rest of the pass.
//
// The pending tasks are taken a kind at a time (a service's spec version: what a node's
// eligibility depends on), so the nodes are filtered once per kind rather than once per task, and
// each placement is a heap operation: a pass is O(tasks + kinds x nodes + placements x log nodes).

import type { Node, Task } from '@shoal/store';
import type { Op } from '@shoal/store';
import { updateOp } from '@shoal/store';
import { fullyAttached } from '@shoal/types';
import { type Rejection, eligible, summarize, take, usageByNode } from './filters.js';
import { Spread } from './spread.js';

const PREF_PREFIX = 'spread=node.labels.';

export function schedule(nodes: Node[], tasks: Iterable<Task>, now: number): Op[] {
  const all = Array.isArray(tasks) ? (tasks as Task[]) : [...tasks];
  const pending = all.filter((t) => t.desiredState === 'running' && t.nodeId === '' && t.status.state === 'pending' && fullyAttached(t));
  // The common pass (a status report came in) has nothing to place: no counting then.
  if (pending.length === 0) return [];
  /** Live tasks per node, and per service per node (this pass's placements included). */
  const perNode = new Map<string, number>();
  const perService = new Map<string, Map<string, number>>();
  for (const t of all) {
    if (t.desiredState !== 'running' || t.nodeId === '') continue;
    perNode.set(t.nodeId, (perNode.get(t.nodeId) ?? 0) + 1);
    let m = perService.get(t.serviceId);
    if (!m) perService.set(t.serviceId, (m = new Map()));
    m.set(t.nodeId, (m.get(t.nodeId) ?? 0) + 1);
  }
  // All tasks: one being shut down still holds its host ports and reservations.
  const usage = usageByNode(all);
  pending.sort((a, b) => a.createdAt - b.createdAt || a.slot - b.slot);
  // Kinds in the order of their first task.
  const kinds = new Map<string, Task[]>();
  for (const t of pending) {
    const kind = `${t.serviceId}/${t.specVersion}`;
    const list = kinds.get(kind);
    if (list) list.push(t);
    else kinds.set(kind, [t]);
  }

  const decided = new Map<string, Op>();
  const waits = (t: Task, err: string) => {
    if (t.status.err !== err) {
      decided.set(t.id, updateOp('task', { ...t, status: { ...t.status, err, message: 'pending', timestamp: now }, updatedAt: now }));
    }
  };
  for (const group of kinds.values()) {
    const { spec, serviceId } = group[0]!;
    let mine = perService.get(serviceId);
    if (!mine) perService.set(serviceId, (mine = new Map()));
    const svc = mine;
    const candidates = nodes.filter((n) => eligible(spec, n, usage, serviceId) === null);
    // Spread over each preference's label values first (the tasks of this service under each value).
    const labels = (spec.placementPrefs ?? []).map((p) => p.slice(PREF_PREFIX.length));
    const nodeById = labels.length > 0 ? new Map(nodes.map((n) => [n.id, n])) : undefined;
    const underValue = labels.map((label) => {
      const m = new Map<string | undefined, number>();
      for (const [nodeId, k] of svc) {
        const v = nodeById!.get(nodeId)?.spec.labels[label];
        m.set(v, (m.get(v) ?? 0) + k);
      }
      return m;
    });
    const spread = new Spread(labels, candidates, {
      ofService: (id) => svc.get(id) ?? 0,
      overall: (id) => perNode.get(id) ?? 0,
      underValue: (i, v) => underValue[i]!.get(v) ?? 0,
    });
    for (let i = 0; i < group.length; i++) {
      const t = group[i]!;
      const best = spread.take();
      if (!best) {
        // Fits nowhere: nor will the rest of its kind, until a placement elsewhere changes nothing
        // for it (placements only take room). One look at the nodes says why, for all of them.
        const rejections: Rejection[] = [];
        for (const n of nodes) {
          const why = eligible(spec, n, usage, serviceId);
          if (why) rejections.push({ nodeId: n.id, reason: why });
        }
        const err = summarize(rejections);
        for (let j = i; j < group.length; j++) waits(group[j]!, err);
        break;
      }
      perNode.set(best.id, (perNode.get(best.id) ?? 0) + 1);
      svc.set(best.id, (svc.get(best.id) ?? 0) + 1);
      labels.forEach((label, k) => {
        const v = best.spec.labels[label];
        underValue[k]!.set(v, (underValue[k]!.get(v) ?? 0) + 1);
      });
      take(usage, best.id, spec, serviceId);
      // Still room for another (max replicas per node, host ports, reservations)?
      if (eligible(spec, best, usage, serviceId) === null) spread.putBack(best);
      decided.set(t.id, updateOp('task', { ...t, nodeId: best.id, status: { ...t.status, state: 'assigned', err: '', message: 'scheduled', timestamp: now }, updatedAt: now }));
    }
  }
  // In the pending tasks' order, oldest first.
  const ops: Op[] = [];
  for (const t of pending) {
    const op = decided.get(t.id);
    if (op) ops.push(op);
  }
  return ops;
}
