// Swarm's jobs (`--mode replicated-job | global-job`): tasks that run to completion instead of
// being kept up. A replicated job's slots 1..replicas are its completions, at most maxConcurrent
// of them busy at once; a global job's places are the eligible nodes, one completion each (a node
// that joins later gets its run). A task that completes is never run again; one that fails is
// replaced (in its place) as the restart policy says, and a place whose policy gives up stays
// failed, so the job cannot complete. Every update of a job starts a new iteration (the control
// API bumps Service.jobStatus): the tasks of older iterations stop, the new one's start afresh.

import type { Node, Service, Task } from '@shoal/store';
import { deleteOp, isTerminal, taskStateRank, updateOp } from '@shoal/store';
import { type NodeUsage, eligible, take } from '../scheduler/filters.js';
import type { Plan } from './plan.js';
import type { ReconcileContext } from './reconcile.js';
import { newTask, orphan, restartPending, shouldRestart, shutdown } from './task-ops.js';

export const jobIteration = (s: Service): number => s.jobStatus?.jobIteration ?? 0;

/** A task that did its job: exit code 0. */
export const succeeded = (t: Task): boolean => t.status.state === 'complete' && t.status.exitCode === 0;

const failed = (t: Task): boolean => isTerminal(t.status.state) && t.status.state !== 'shutdown' && t.status.state !== 'orphaned' && !succeeded(t);

/**
 * Where a place of the current iteration stands. `busy`: a task runs or is on its way (or waits
 * out its restart delay), and counts against maxConcurrent; `given-up`: its last task failed and
 * the restart policy runs no other; `open`: it wants a task (none yet, or its last one stopped
 * with a restart due, or lost its node).
 */
type PlaceState = 'done' | 'busy' | 'given-up' | 'open';

/**
 * Judges a place from its tasks (of the current iteration) and stops those that must stop; the
 * caller starts the place's next task when it is open and may have one.
 */
function judgePlace(s: Service, tasks: readonly Task[], ctx: ReconcileContext, plan: Plan, node: { gone: boolean; fits: boolean; node?: Node }): PlaceState {
  const newest = [...tasks].sort((a, b) => b.createdAt - a.createdAt);
  const done = newest.find(succeeded);
  if (done) {
    // Its desired state says so (`service ps`: Complete), and no duplicate runs on.
    if (done.desiredState === 'running') plan.add(updateOp('task', { ...done, desiredState: 'complete', updatedAt: ctx.now }));
    for (const t of newest) if (t !== done && t.desiredState === 'running') plan.add(shutdown(t, ctx));
    return 'done';
  }
  const cur = newest.filter((t) => t.desiredState === 'running');
  // Duplicates (a stale leader's): the one furthest along stays.
  const rank = (t: Task) => (isTerminal(t.status.state) ? -1 : taskStateRank(t.status.state));
  const t = cur.reduce<Task | undefined>((best, x) => (!best || rank(x) > rank(best) ? x : best), undefined);
  for (const x of cur) if (x !== t) plan.add(shutdown(x, ctx));
  if (!t) {
    const last = newest[0];
    return last && failed(last) && !shouldRestart(s, newest, last) ? 'given-up' : 'open';
  }
  if (!isTerminal(t.status.state)) {
    if (node.gone) {
      plan.add(orphan(t, node.node, ctx));
      return 'open';
    }
    if (node.fits) return 'busy';
    plan.add(shutdown(t, ctx));
    return 'open';
  }
  if (restartPending(s, newest, t, ctx)) return 'busy';
  plan.add(shutdown(t, ctx));
  return shouldRestart(s, newest, t) ? 'open' : 'given-up';
}

/**
 * One job's decisions (the counterpart of reconcile's for a service): tasks of older iterations
 * stopped, the current one's places judged, new tasks where the job wants more.
 */
export function reconcileJob(s: Service, tasks: Task[], nodes: ReadonlyMap<string, Node>, usage: () => NodeUsage, ctx: ReconcileContext, plan: Plan): void {
  const it = jobIteration(s);
  const current: Task[] = [];
  for (const t of tasks) {
    if (t.jobIteration === it) current.push(t);
    else if (t.desiredState === 'running') plan.add(shutdown(t, ctx));
  }
  if (s.spec.mode === 'global-job') reconcileGlobalJob(s, current, nodes, usage, ctx, plan);
  else reconcileReplicatedJob(s, current, nodes, ctx, plan);
}

function reconcileReplicatedJob(s: Service, tasks: Task[], nodes: ReadonlyMap<string, Node>, ctx: ReconcileContext, plan: Plan): void {
  const bySlot = new Map<number, Task[]>();
  for (const t of tasks) bySlot.set(t.slot, [...(bySlot.get(t.slot) ?? []), t]);
  const total = s.spec.replicas;
  const open: number[] = [];
  let busy = 0;
  for (let slot = 1; slot <= total; slot++) {
    const list = bySlot.get(slot) ?? [];
    const live = list.find((t) => t.desiredState === 'running' && t.nodeId !== '');
    const n = live && nodes.get(live.nodeId);
    const gone = !!live && (!n || n.status.state === 'down');
    // A drained node's task moves (its replacement goes wherever the scheduler puts it).
    const fits = !n || n.spec.availability !== 'drain';
    const state = list.length === 0 ? 'open' : judgePlace(s, list, ctx, plan, { gone, fits, node: n });
    if (state === 'busy') busy++;
    else if (state === 'open') open.push(slot);
  }
  // Slots past the completions wanted (none unless the store was edited by hand): stopped.
  for (const [slot, list] of bySlot) if (slot > total) for (const t of list) if (t.desiredState === 'running') plan.add(shutdown(t, ctx));
  const room = (s.spec.maxConcurrent || total) - busy;
  for (const slot of open.slice(0, Math.max(0, room))) plan.add({ op: 'create', kind: 'task', object: newTask(s, slot, '', ctx) });
}

function reconcileGlobalJob(s: Service, tasks: Task[], nodes: ReadonlyMap<string, Node>, usage: () => NodeUsage, ctx: ReconcileContext, plan: Plan): void {
  const byNode = new Map<string, Task[]>();
  for (const t of tasks) byNode.set(t.nodeId, [...(byNode.get(t.nodeId) ?? []), t]);
  // A removed node's place is gone for good: its tasks go too (as a global service's).
  for (const [nodeId, list] of byNode) if (!nodes.has(nodeId)) for (const t of list) plan.add(deleteOp('task', t));
  for (const n of nodes.values()) {
    const list = byNode.get(n.id) ?? [];
    const up = n.status.state === 'ready' && n.spec.availability !== 'drain';
    // A down node's task is orphaned and waits for its node (its only place) to come back.
    const state = list.length === 0 ? 'open' : judgePlace(s, list, ctx, plan, { gone: n.status.state === 'down', fits: up, node: n });
    if (state !== 'open' || !up || eligible(s.spec, n, usage()) !== null) continue;
    plan.add({ op: 'create', kind: 'task', object: newTask(s, 0, n.id, ctx) });
    // Placed here and now: later services of this pass see its ports and reservations taken.
    take(usage(), n.id, s.spec);
  }
}

/**
 * A job's progress as `service ls` shows it (docker's `N/M (K/T completed)`): tasks running,
 * tasks it wants running now, and completions, all of the current iteration.
 */
export function jobProgress(s: Service, tasks: readonly Task[]): { running: number; desired: number; completed: number } {
  const it = jobIteration(s);
  const cur = tasks.filter((t) => t.jobIteration === it);
  const places = (list: readonly Task[]) => new Set(list.map((t) => (t.slot === 0 ? `n:${t.nodeId}` : `s:${t.slot}`))).size;
  const completed = places(cur.filter(succeeded));
  const running = cur.filter((t) => t.desiredState === 'running' && t.status.state === 'running').length;
  const desired =
    s.spec.mode === 'global-job'
      ? places(cur.filter((t) => t.desiredState === 'running'))
      : Math.min(s.spec.maxConcurrent || s.spec.replicas, Math.max(0, s.spec.replicas - completed));
  return { running, desired, completed };
}
