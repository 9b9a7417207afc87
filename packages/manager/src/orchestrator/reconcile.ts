// The orchestrator's decisions, as a pure function of the store: which tasks to create (missing
// slots, replacements for failed tasks or tasks on dead or drained nodes, one per eligible node
// for global services) and which to shut down (scale-down, removed services). It never edits a
// task's observed status: that belongs to the agent (and the scheduler's assignment).
// A slot scaled away has its tasks, history included, marked desired `remove` (SwarmKit's
// TaskStateRemove): no longer part of the service, they go once stopped (taskreaper/).

import type { ClusterStore, Node, Op, Service, Task } from '@shoal/store';
import { isJobMode, isTerminal, taskStateRank, deleteOp, updateOp } from '@shoal/store';
import { type NodeUsage, eligible, take, usageByNode } from '../scheduler/filters.js';
import { Plan } from './plan.js';
import { Heap } from '../scheduler/heap.js';
import { reconcileJob } from './jobs.js';
import { newTask, orphan, restartPending, shouldRestart, shutdown } from './task-ops.js';
import { type UpdateVerdict, judgeCompletion, judgeFailures, rolloutConfig, runsSpec } from './update-status.js';

export interface ReconcileContext {
  /** The wall clock, for the times written into objects (and update delays). */
  now: number;
  newId(): string;
  /**
   * Milliseconds left of a stopped task's restart delay, on the leader's monotonic clock (see
   * RestartDelays): never from a status timestamp, which an agent's clock may have skewed.
   */
  restartDelayLeft(t: Task, delayMs: number): number;
  /** Asks for another pass at this time (a restart delay runs out then). */
  wakeAt?(ms: number): void;
  /**
   * Only these services (ids, removed ones included) need a look: the others are unchanged since
   * the last pass. Absent: every service.
   */
  services?: ReadonlySet<string>;
}

/**
 * A start-first update: the place's (slot's, node's) new task starts beside the old one, which
 * stays until the new one runs. `cur`: the place's current tasks, newest first.
 */
function keepsOldBeside(s: Service, cur: readonly Task[]): boolean {
  if (rolloutConfig(s).order !== 'start-first' || cur.length < 2) return false;
  return cur[0]!.specVersion === s.specVersion && cur[1]!.specVersion < s.specVersion && cur[0]!.status.state !== 'running';
}

/** A task that is meant to run and may still be running (or about to). */
const isCurrent = (t: Task) => t.desiredState === 'running';

/** How far a task got towards running: a stopped one least of all. */
const progress = (t: Task) => (isTerminal(t.status.state) ? -1 : taskStateRank(t.status.state));

/**
 * The tasks a place (slot, or a global service's node) keeps of its current ones (`cur`, newest
 * first); the others are shut down. Normally one, or two during a start-first update. Several
 * current tasks of the same spec are a duplicate (e.g. from a leader that acted on a stale store):
 * keep the one furthest along, the newest among equals, so a running task is never killed in
 * favour of one that has yet to start.
 */
function kept(s: Service, cur: readonly Task[]): Task[] {
  if (cur.length < 2) return [...cur];
  if (keepsOldBeside(s, cur)) return cur.slice(0, 2);
  return [cur.reduce((best, t) => (progress(t) > progress(best) ? t : best))];
}

/** The pass's decisions: each group of ops (Plan) a change to commit whole. */
export function reconcile(store: ClusterStore, ctx: ReconcileContext): Plan {
  const plan = new Plan();
  const nodes = new Map(store.list('node').map((n) => [n.id, n]));
  const nodeGone = (id: string) => {
    const n = nodes.get(id);
    return !n || n.status.state === 'down';
  };
  const services = new Map<string, Service>();
  const orphans: Task[] = [];
  if (ctx.services) {
    for (const id of ctx.services) {
      const s = store.get('service', id);
      if (s) services.set(id, s);
      else for (const t of store.tasksByService(id)) orphans.push(t);
    }
  } else {
    for (const s of store.list('service')) services.set(s.id, s);
    for (const t of store.list('task')) if (!services.has(t.serviceId)) orphans.push(t);
  }

  // Tasks of removed services: shut down what may run, delete the rest.
  for (const t of orphans) {
    if (!t.nodeId || isTerminal(t.status.state) || nodeGone(t.nodeId)) plan.add(deleteOp('task', t));
    else if (t.desiredState === 'running') plan.add(shutdown(t, ctx, 'remove'));
  }

  // Only global services need what nodes hold (a whole-store scan): computed on demand.
  let usage: NodeUsage | undefined;
  for (const s of services.values()) {
    const tasks = store.tasksByService(s.id);
    // A failed update is paused or rolled back before any task is replaced: a rolled-back
    // service's tasks wait for the next pass, which sees the restored spec.
    const verdict = judgeFailures(s, tasks, ctx);
    if (verdict.service) plan.add(updateOp('service', verdict.service));
    if (verdict.rolledBack) continue;
    if (isJobMode(s.spec.mode)) {
      reconcileJob(s, tasks, nodes, () => (usage ??= usageByNode(store.list('task'))), ctx, plan);
      continue;
    }
    if (s.spec.mode === 'global') {
      usage ??= usageByNode(store.list('task'));
      const active = reconcileGlobal(s, tasks, [...nodes.values()], usage, ctx, plan, verdict);
      const done = verdict.service ? undefined : judgeCompletion(s, active, ctx);
      if (done) plan.add(updateOp('service', done));
      continue;
    }
    // Current task per slot; replace the ones that died or lost their node. A task marked for
    // removal is no longer its slot's (nor its history): a slot of that number later is a new one.
    const fromGroup = plan.groups.length;
    const bySlot = new Map<number, Task[]>();
    for (const t of tasks) {
      if (t.desiredState === 'remove') continue;
      const list = bySlot.get(t.slot) ?? [];
      list.push(t);
      bySlot.set(t.slot, list);
    }
    const active: Task[] = [];
    for (const [slot, list] of bySlot) {
      const cur = list.filter(isCurrent).sort((a, b) => b.createdAt - a.createdAt);
      const keep = kept(s, cur);
      for (const extra of cur) if (!keep.includes(extra)) plan.add(shutdown(extra, ctx));
      const t = keep[0];
      if (!t) continue;
      const lostNode = t.nodeId !== '' && nodeGone(t.nodeId);
      const drained = t.nodeId !== '' && nodes.get(t.nodeId)?.spec.availability === 'drain';
      if (lostNode || drained) {
        const r = newTask(s, slot, '', ctx);
        plan.add(lostNode ? orphan(t, nodes.get(t.nodeId), ctx) : shutdown(t, ctx), { op: 'create', kind: 'task', object: r });
        active.push(r);
      } else if (isTerminal(t.status.state)) {
        if (restartPending(s, list, t, ctx)) {
          // The restart delay has not run out: the slot waits (and stays taken).
          active.push(t);
          continue;
        }
        if (shouldRestart(s, list, t)) {
          const r = newTask(s, slot, '', ctx);
          plan.add(shutdown(t, ctx), { op: 'create', kind: 'task', object: r });
          active.push(r);
        } else {
          plan.add(shutdown(t, ctx));
        }
      } else {
        active.push(t);
      }
    }
    if (!verdict.hold) rollingUpdate(s, active, ctx, plan, new Set(verdict.failed.map((t) => t.slot)), (t) => t.slot);
    const want = s.spec.replicas;
    if (active.length < want) {
      // New slots take the lowest free numbers.
      const used = new Set(tasks.filter(isCurrent).map((t) => t.slot));
      for (const t of active) used.add(t.slot);
      let slot = 1;
      for (let k = active.length; k < want; k++) {
        while (used.has(slot)) slot++;
        used.add(slot);
        const t = newTask(s, slot, '', ctx);
        plan.add({ op: 'create', kind: 'task', object: t });
        active.push(t);
      }
    } else if (active.length > want) {
      const victims = scaleDownVictims(active, active.length - want);
      removeSlots(plan, fromGroup, new Set([...victims].map((t) => t.slot)), bySlot, ctx);
      let k = 0;
      for (const t of active) if (!victims.has(t)) active[k++] = t;
      active.length = k;
    }
    const done = verdict.service ? undefined : judgeCompletion(s, active, ctx);
    if (done) plan.add(updateOp('service', done));
  }
  return plan;
}

/**
 * A scale-down's slots (`gone`) leave the service: what this service's part of the pass (its
 * groups from `from` on) decided for them is revised (no task created for them; a task stopped
 * is marked for removal instead), and every other task of theirs, history included, is marked
 * for removal too (deleted at once if no node ever had it).
 */
function removeSlots(plan: Plan, from: number, gone: ReadonlySet<number>, bySlot: ReadonlyMap<number, Task[]>, ctx: ReconcileContext): void {
  const decided = new Set<string>();
  plan.rewrite(from, (op) => {
    if (op.kind !== 'task' || op.op === 'status') return op;
    if (op.op === 'delete') {
      decided.add(op.id);
      return op;
    }
    if (!gone.has(op.object.slot)) return op;
    if (op.op === 'create') return undefined;
    decided.add(op.object.id);
    return updateOp('task', { ...op.object, desiredState: 'remove' }, op.expectVersion);
  });
  for (const slot of gone) {
    for (const t of bySlot.get(slot) ?? []) if (!decided.has(t.id)) plan.add(shutdown(t, ctx, 'remove'));
  }
}

/**
 * The `count` tasks a scale-down removes, one at a time from the currently most loaded node
 * (unplaced tasks go first of all; among equal nodes, the one whose task came first in `active`),
 * the highest slot of that node first. A heap of nodes by load: O(tasks log nodes), not a scan of
 * every node for every task removed.
 */
function scaleDownVictims(active: readonly Task[], count: number): Set<Task> {
  const byNode = new Map<string, Task[]>();
  for (const t of active) {
    const list = byNode.get(t.nodeId);
    if (list) list.push(t);
    else byNode.set(t.nodeId, [t]);
  }
  interface Load {
    nodeId: string;
    /** Highest slot last. */
    tasks: Task[];
    order: number;
  }
  const heap = new Heap<Load>((a, b) => {
    if ((a.nodeId === '') !== (b.nodeId === '')) return a.nodeId === '';
    return a.tasks.length !== b.tasks.length ? a.tasks.length > b.tasks.length : a.order < b.order;
  });
  let order = 0;
  for (const [nodeId, tasks] of byNode) heap.push({ nodeId, tasks: tasks.sort((a, b) => a.slot - b.slot), order: order++ });
  const victims = new Set<Task>();
  for (let k = count; k > 0; k--) {
    const load = heap.pop();
    if (!load) break;
    victims.add(load.tasks.pop()!);
    if (load.tasks.length > 0) heap.push(load);
  }
  return victims;
}

/**
 * Rolling update, as `docker service update`: tasks of an older spec version are replaced slot by
 * slot, `parallelism` at a time (0: all at once); the next batch starts once the new tasks run
 * and `delay` has passed since the last of them started. stop-first stops the old task first;
 * start-first starts the new one beside it (the slot loop retires the old one once it runs).
 * A slot whose new task does not run holds the next batch; a failed one applies the update's
 * failure action (update-status.ts). Global services are updated node by node the same way.
 */
function rollingUpdate<K>(
  s: Service,
  active: Task[],
  ctx: ReconcileContext,
  plan: Plan,
  failedPlaces: ReadonlySet<K>,
  placeOf: (t: Task) => K,
  replacement = (t: Task) => newTask(s, t.slot, '', ctx),
): void {
  const outdated = active.filter((t) => t.version > 0 && !runsSpec(t, s) && !isTerminal(t.status.state));
  if (outdated.length === 0) return;
  const fresh = active.filter((t) => t.specVersion === s.specVersion);
  // A slot (or node) whose new task failed has had its turn: the failure was judged (within the
  // failure ratio, or with "continue"), so it does not hold the next batch.
  const starting = fresh.filter((t) => t.status.state !== 'running' && !failedPlaces.has(placeOf(t))).length;
  const { parallelism, delayMs, order } = rolloutConfig(s);
  if (delayMs > 0) {
    let lastStart = 0;
    for (const t of fresh) if (t.status.state === 'running') lastStart = Math.max(lastStart, t.status.timestamp);
    if (lastStart + delayMs > ctx.now) {
      ctx.wakeAt?.(lastStart + delayMs);
      return;
    }
  }
  const room = parallelism === 0 ? outdated.length : Math.max(0, parallelism - starting);
  const batch = outdated.sort((a, b) => a.slot - b.slot).slice(0, room);
  const startFirst = order === 'start-first';
  const at = new Map(active.map((t, i) => [t, i]));
  for (const t of batch) {
    // stop-first: the old task goes now; start-first: it stays until its replacement runs.
    const r = replacement(t);
    const create: Op = { op: 'create', kind: 'task', object: r };
    if (startFirst) plan.add(create);
    else plan.add(shutdown(t, ctx), create);
    active[at.get(t)!] = r;
  }
}

function reconcileGlobal(
  s: Service,
  tasks: Task[],
  nodes: Node[],
  usage: NodeUsage,
  ctx: ReconcileContext,
  plan: Plan,
  verdict: UpdateVerdict,
): Task[] {
  const byNode = new Map<string, Task[]>();
  for (const t of tasks) {
    const list = byNode.get(t.nodeId) ?? [];
    list.push(t);
    byNode.set(t.nodeId, list);
  }
  // A removed node's place is gone for good (its id is refused from then on): its tasks, history
  // included, are deleted. Nothing else would: history is pruned only where a new task comes.
  const known = new Set(nodes.map((n) => n.id));
  for (const [nodeId, list] of byNode) {
    if (!known.has(nodeId)) for (const t of list) plan.add(deleteOp('task', t));
  }
  const active: Task[] = [];
  for (const n of nodes) {
    const list = byNode.get(n.id) ?? [];
    const cur = list.filter(isCurrent).sort((a, b) => b.createdAt - a.createdAt);
    const keep = kept(s, cur);
    for (const extra of cur) if (!keep.includes(extra)) plan.add(shutdown(extra, ctx));
    const t = keep[0];
    // A node's own task does not block its host ports for itself.
    const why = t ? null : eligible(s.spec, n, usage);
    const fits = t ? n.status.state === 'ready' && n.spec.availability !== 'drain' : why === null;
    if (t && !fits) {
      plan.add(shutdown(t, ctx));
    } else if (t && isTerminal(t.status.state)) {
      if (restartPending(s, list, t, ctx)) {
        active.push(t);
        continue;
      }
      if (shouldRestart(s, list, t)) {
        const r = newTask(s, 0, n.id, ctx);
        plan.add(shutdown(t, ctx), { op: 'create', kind: 'task', object: r });
        active.push(r);
      } else {
        plan.add(shutdown(t, ctx));
      }
    } else if (!t && fits) {
      const r = newTask(s, 0, n.id, ctx);
      plan.add({ op: 'create', kind: 'task', object: r });
      active.push(r);
      // Placed here and now: later services of this pass see its ports and reservations taken.
      take(usage, n.id, s.spec);
    } else if (t) {
      active.push(t);
    }
  }
  if (!verdict.hold) rollingUpdate(s, active, ctx, plan, new Set(verdict.failed.map((t) => t.nodeId)), (t) => t.nodeId, (t) => newTask(s, 0, t.nodeId, ctx));
  return active;
}
