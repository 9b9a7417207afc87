// The scheduler: gives every pending task a node. Filters first (filters.ts), then spreads: over
// the values of the service's placement preferences' labels, then the node with the fewest tasks
// of this service, then the fewest tasks overall. Decisions for all pending tasks are made
// against one view and committed in one transaction.

import type { Node, Task } from '@shoal/store';
import type { Op } from '@shoal/store';
import { updateOp } from '@shoal/store';
import { fullyAttached } from '@shoal/types';
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
  const nodeById = new Map(nodes.map((n) => [n.id, n]));
  /** Placements made in this pass, beside the live tasks. */
  const placed: { serviceId: string; nodeId: string }[] = [];
  /** The nodes of a service's live tasks (this pass's placements included), one entry per task. */
  const tasksOfService = (serviceId: string): string[] => [
    ...live.filter((x) => x.serviceId === serviceId).map((x) => x.nodeId),
    ...placed.filter((x) => x.serviceId === serviceId).map((x) => x.nodeId),
  ];
  const pending = tasks
    .filter((t) => t.desiredState === 'running' && t.nodeId === '' && t.status.state === 'pending' && fullyAttached(t))
    .sort((a, b) => a.createdAt - b.createdAt || a.slot - b.slot);
  // Tasks that fit nowhere, by service and spec version (what a node's eligibility depends on,
  // constraints, ports, reservations, changes the spec version): the next task of the same kind
  // fits nowhere either until a placement changes what nodes hold. 10,000 tasks waiting on a
  // constraint cost one look at the nodes per pass, not one each.
  const nowhere = new Map<string, { err: string; placements: number }>();
  let placements = 0;
  const waits = (t: Task, err: string) => {
    if (t.status.err !== err) {
      ops.push(updateOp('task', { ...t, status: { ...t.status, err, message: 'pending', timestamp: now }, updatedAt: now }));
    }
  };
  for (const t of pending) {
    const kind = `${t.serviceId}/${t.specVersion}`;
    const known = nowhere.get(kind);
    if (known && known.placements === placements) {
      waits(t, known.err);
      continue;
    }
    const rejections: Rejection[] = [];
    const candidates: Node[] = [];
    for (const n of nodes) {
      const why = eligible(t.spec, n, usage, t.serviceId);
      if (why) rejections.push({ nodeId: n.id, reason: why });
      else candidates.push(n);
    }
    // Spread over each preference's label values first (the tasks of this service under each
    // value), then over nodes: the fewest of this service, then the fewest overall, then by id.
    const prefs = (t.spec.placementPrefs ?? []).map((p) => p.slice('spread=node.labels.'.length));
    const nodesOfService = prefs.length > 0 ? tasksOfService(t.serviceId) : [];
    const perValue = prefs.map((label) => {
      const m = new Map<string | undefined, number>();
      for (const id of nodesOfService) {
        const v = nodeById.get(id)?.spec.labels[label];
        m.set(v, (m.get(v) ?? 0) + 1);
      }
      return m;
    });
    const keyOf = (n: Node): (number | string)[] => [
      ...prefs.map((label, i) => perValue[i]!.get(n.spec.labels[label]) ?? 0),
      perService.get(`${t.serviceId}/${n.id}`) ?? 0,
      perNode.get(n.id) ?? 0,
      n.id,
    ];
    let best: Node | undefined;
    let bestKey: (number | string)[] | undefined;
    for (const n of candidates) {
      const key = keyOf(n);
      if (!bestKey || less(key, bestKey)) {
        best = n;
        bestKey = key;
      }
    }
    if (!best) {
      const err = summarize(rejections);
      nowhere.set(kind, { err, placements });
      waits(t, err);
      continue;
    }
    placements++;
    placed.push({ serviceId: t.serviceId, nodeId: best.id });
    perNode.set(best.id, (perNode.get(best.id) ?? 0) + 1);
    perService.set(`${t.serviceId}/${best.id}`, (perService.get(`${t.serviceId}/${best.id}`) ?? 0) + 1);
    take(usage, best.id, t.spec, t.serviceId);
    ops.push(updateOp('task', { ...t, nodeId: best.id, status: { ...t.status, state: 'assigned', err: '', message: 'scheduled', timestamp: now }, updatedAt: now }));
  }
  return ops;
}

/** Lexicographic order of two keys of the same shape. */
function less(a: readonly (number | string)[], b: readonly (number | string)[]): boolean {
  for (let i = 0; i < a.length; i++) {
    if (a[i]! < b[i]!) return true;
    if (a[i]! > b[i]!) return false;
  }
  return false;
}
