// Runs the orchestrator's and the scheduler's passes on the leader (a LeaderComponent: the
// manager's LeaderDuty begins and ends it): after every store change (and
// on a timer, as a safety net), reconcile then schedule, committed together as one transaction
// when they fit the store's size bound, else in several in a row (plan.ts).
// Starts from the store, never from memory, whenever this manager becomes leader.

import type { Logger } from '@shoal/api';
import { type ClusterStore, MAX_TX_BYTES, type Op, type StoreClient, type StoreEvent, type Task, isJobMode, isTerminal, isVersionConflict, newId, updateOp } from '@shoal/store';
import { reconcile } from './reconcile.js';
import { type Plan, batchAt } from './plan.js';
import { schedule } from '../scheduler/scheduler.js';
import type { LeaderComponent } from '../leader-duty.js';
import { RestartDelays } from './restart-delays.js';
import { Allocator } from '../allocator/allocator.js';
import { planIngress } from '../allocator/ingress.js';
import { fullyAttached } from '@shoal/types';

const SAFETY_NET_MS = 2_000;
/**
 * The safety net's full pass takes at most this share of the leader's time: with 100,000 tasks a
 * full pass takes a good part of a second, and one every 2 s would keep a core busy for nothing.
 */
const SAFETY_NET_SHARE = 0.05;
/**
 * Long on purpose: a pass that gives up on its proposal while the entry is still in this leader's
 * log plans the next pass without it and creates its tasks a second time when both commit. A
 * proposal only fails sooner if leadership is lost, and then this duty ends anyway.
 */
const COMMIT_TIMEOUT_MS = 30_000;
/**
 * A pass's transactions stay under a quarter of the store's bound (about 250 new tasks): each
 * one's apply, on every manager, is short enough to leave room for other writes and heartbeats
 * in between, while a small service still converges in a single transaction.
 */
const PASS_TX_BYTES = MAX_TX_BYTES / 4;
/** A pass's transactions in flight at once. */
const PIPELINE = 4;

/** A task meant to run that still waits for its addresses or its node. */
const isUnplaced = (t: Task): boolean => t.desiredState === 'running' && (t.status.state === 'new' || t.status.state === 'pending');
const unplacedTasks = (tasks: readonly Task[]): Set<string> => new Set(tasks.filter(isUnplaced).map((t) => t.id));
/** A task the scheduler would place (as schedule() picks them). */
const isSchedulable = (t: Task): boolean => t.desiredState === 'running' && t.nodeId === '' && t.status.state === 'pending' && fullyAttached(t);

/** What the orchestrator tells metrics as it happens (the rest is read from the store). */
export interface OrchestratorMetrics {
  /** A task's placement on a node committed, `seconds` after the task was created. */
  placed(seconds: number): void;
}

export class Orchestrator implements LeaderComponent {
  private unwatch: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  /** Services changed since the last pass, or 'all' (a node changed, a timer, a new leader). */
  private dirty: Set<string> | 'all' = 'all';
  private running = false;
  /** This leadership's memory of restart delays (a new leader starts its own). */
  private restarts: RestartDelays | undefined;
  /**
   * The tasks meant to run that have no node or no addresses yet (pending or new), kept from the
   * store's events: the only ones, with those a pass writes, that the allocator and the scheduler
   * may have work for.
   */
  private unplaced = new Set<string>();
  /** This leadership's address allocator (its serial cursors start afresh with each). */
  private allocator: Allocator | undefined;
  /** The tasks the last plan placed on a node (their placements are timed once committed). */
  private placed = new Set<string>();

  constructor(
    private readonly store: ClusterStore,
    private readonly client: Pick<StoreClient, 'commit'>,
    private readonly log: Logger,
    /** The wall clock: the times written into objects. */
    private readonly now: () => number = Date.now,
    /** A monotonic clock (ms): restart delays count on it, so a step of the wall clock moves none. */
    private readonly monotonic: () => number = () => performance.now(),
    private readonly metrics?: OrchestratorMetrics,
  ) {}

  begin(): void {
    this.unplaced = unplacedTasks(this.store.list('task'));
    this.restarts = new RestartDelays(this.store, this.monotonic);
    this.allocator = new Allocator();
    this.unwatch = this.store.watch((events) => this.onEvents(events));
    this.armSafetyNet();
    this.kick('all');
  }

  end(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    this.unplaced = new Set();
    this.restarts?.close();
    this.restarts = undefined;
    this.allocator = undefined;
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    if (this.wake) clearTimeout(this.wake);
    this.wake = undefined;
    this.wakeTime = Infinity;
  }

  /** How long the last full pass took to plan (ms). */
  private fullPassMs = 0;

  private armSafetyNet(): void {
    this.timer = setTimeout(() => {
      this.kick('all');
      this.armSafetyNet();
    }, Math.max(SAFETY_NET_MS, this.fullPassMs / SAFETY_NET_SHARE));
    this.timer.unref();
  }

  private wake: NodeJS.Timeout | undefined;
  private wakeTime = Infinity;

  /** One timer for the earliest restart delay that runs out. */
  private wakeAt(ms: number): void {
    if (ms >= this.wakeTime) return;
    if (this.wake) clearTimeout(this.wake);
    this.wakeTime = ms;
    this.wake = setTimeout(() => {
      this.wake = undefined;
      this.wakeTime = Infinity;
      this.kick('all');
    }, Math.max(0, ms - this.now()) + 5);
    this.wake.unref();
  }

  private onEvents(events: readonly StoreEvent[]): void {
    const ids: string[] = [];
    let all = false;
    for (const e of events) {
      if (e.action === 'restore') {
        this.unplaced = unplacedTasks(this.store.list('task'));
        all = true;
      } else if (e.kind === 'node' || e.kind === 'cluster' || e.kind === 'network') {
        all = true;
      } else if (e.kind === 'service') {
        ids.push(e.object.id);
      } else if (e.kind === 'task') {
        if (!this.nothingToDecide(e.object, e.previous)) ids.push(e.object.serviceId);
        if (e.action !== 'delete' && isUnplaced(e.object)) this.unplaced.add(e.object.id);
        else this.unplaced.delete(e.object.id);
      }
    }
    this.kick(all ? 'all' : ids);
  }

  /**
   * A task's report that moves it forward short of stopping (accepted, starting, running...) while
   * its service is at rest decides nothing: no slot to fill, no update waiting on it. Without this
   * each report of a 10,000-task service cost a pass over its 10,000 tasks (41% of the leader
   * during a converge). Stopped tasks, services in an update or a rollback, and jobs are looked at;
   * the safety net's full pass covers the rest.
   */
  private nothingToDecide(t: Task, prev: Task | undefined): boolean {
    // (Unplaced tasks go on to the allocator and the scheduler: a pass for those.)
    if (!prev || isTerminal(t.status.state) || t.nodeId === '' || isUnplaced(t)) return false;
    if (t.desiredState !== prev.desiredState || t.nodeId !== prev.nodeId || t.specVersion !== prev.specVersion) return false;
    const s = this.store.get('service', t.serviceId);
    if (!s || isJobMode(s.spec.mode)) return false;
    const update = s.updateStatus?.state;
    return update !== 'updating' && update !== 'rollback_started';
  }

  private kick(what: 'all' | readonly string[]): void {
    if (what === 'all') this.dirty = 'all';
    else if (this.dirty !== 'all') for (const id of what) this.dirty.add(id);
    this.pending = true;
    if (this.running) return;
    this.running = true;
    setImmediate(() => void this.run());
  }

  /**
   * Both passes' decisions: the orchestrator's, then the scheduler's placement of every pending
   * task, new ones included (a new task is created already assigned, which saves its agent a
   * Raft round trip).
   */
  private plan(services: ReadonlySet<string> | undefined): Plan {
    const now = this.now();
    const restarts = this.restarts!;
    const plan = reconcile(this.store, { now, newId, restartDelayLeft: (t, ms) => restarts.remaining(t, ms), wakeAt: (ms) => this.wakeAt(ms), services });
    // The tasks the pass writes, as it leaves them (null: deleted); where each new one is created.
    const written = new Map<string, Task | null>();
    const created = new Map<string, { group: Op[]; at: number }>();
    const updated = new Map<string, { group: Op[]; at: number }>();
    for (const group of plan.groups) {
      group.forEach((op, at) => {
        if (op.kind !== 'task' || op.op === 'status') return;
        if (op.op === 'delete') written.set(op.id, null);
        else written.set(op.object.id, op.object);
        if (op.op === 'create') created.set(op.object.id, { group, at });
        if (op.op === 'update') updated.set(op.object.id, { group, at });
      });
    }
    // One op per task in a pass: a later decision on a task folds into the op already written for it.
    const write = (t: Task): void => {
      written.set(t.id, t);
      const c = created.get(t.id);
      const u = updated.get(t.id);
      if (c) c.group[c.at] = { op: 'create', kind: 'task', object: t };
      else if (u) u.group[u.at] = { ...u.group[u.at]!, object: t } as Op;
      else {
        const group = [updateOp('task', t)];
        plan.add(...group);
        updated.set(t.id, { group: plan.groups[plan.groups.length - 1]!, at: 0 });
      }
    };
    // Only a task without its node (or its addresses) yet, or one this pass writes, may want either:
    // the others are not looked at, so a pass after a status report costs what the report touched.
    const open = (): Task[] => {
      const out: Task[] = [];
      for (const id of this.unplaced) {
        if (written.has(id)) continue;
        const t = this.store.get('task', id);
        if (t) out.push(t);
      }
      for (const t of written.values()) if (t) out.push(t);
      return out;
    };
    // Addresses before placement: a task is scheduled only once it holds all of them.
    const book = { network: (id: string) => this.store.get('network', id), holder: (net: string, addr: string) => this.store.addressHolder(net, addr) };
    for (const t of this.allocator!.allocate(book, open(), new Set(created.keys()), now)) write(t);
    if (open().some(isSchedulable)) {
      // Placing weighs every task on the nodes: the whole store, as the pass leaves it.
      const tasks: Task[] = [];
      for (const t of this.store.list('task')) {
        const w = written.get(t.id);
        if (w === undefined) tasks.push(t);
        else if (w) tasks.push(w);
      }
      for (const id of created.keys()) tasks.push(written.get(id)!);
      for (const op of schedule(this.store.list('node'), tasks, now)) {
        if (op.kind === 'task' && op.op === 'update') {
          write(op.object);
          if (op.object.nodeId !== '') this.placed.add(op.object.id);
        } else plan.add(op);
      }
    }
    // The ingress network and the nodes' addresses on it, on every full pass (nodes come and go).
    if (!services) for (const op of planIngress(this.store, this.allocator!, now)) plan.add(op);
    return plan;
  }

  private async run(): Promise<void> {
    try {
      while (this.pending && this.unwatch) {
        this.pending = false;
        const dirty = this.dirty;
        this.dirty = new Set();
        const services = dirty === 'all' ? undefined : dirty;
        const plannedAt = this.store.appliedIndex;
        const t0 = performance.now();
        this.placed = new Set();
        const plan = this.plan(services);
        const placed = this.placed;
        if (!services) this.fullPassMs = performance.now() - t0;
        if (plan.empty) continue;
        // One transaction when the pass fits (the common case); else as many as it takes, one
        // after the other, all in this pass: a 10,000-task service is created and placed by one
        // plan, not by one plan per transaction.
        const ours = new Set<number>();
        try {
          // Up to PIPELINE transactions in flight: Raft carries them in the same rounds and
          // writes, where one at a time left every batch a round trip and a disk write of its own.
          const inFlight: Promise<void>[] = [];
          let failed: { err: unknown } | undefined;
          for (let start = 0; start < plan.groups.length; ) {
            const batch = batchAt(plan.groups, start, PASS_TX_BYTES);
            if (start > 0 && !this.stillHolds(batch.ops, plannedAt, ours)) {
              // The rest was planned on a store that has moved: plan it again.
              this.kick(services ? [...services] : 'all');
              break;
            }
            inFlight.push(
              this.client.commit(batch.ops, { timeoutMs: COMMIT_TIMEOUT_MS, leaderOnly: true }).then(
                (r) => {
                  ours.add(r.index);
                  if (this.metrics && placed.size > 0) this.timePlacements(batch.ops, placed);
                },
                (err: unknown) => void (failed ??= { err }),
              ),
            );
            if (inFlight.length >= PIPELINE) await inFlight.shift();
            start = batch.next;
            if (failed || !this.unwatch) break;
          }
          // Every proposal settled before the next pass plans: one still in the log would be
          // planned again and its tasks created twice.
          await Promise.all(inFlight);
          if (failed) throw failed.err;
        } catch (err) {
          // A conflict means the store moved under us: the next pass sees the new state.
          if (!isVersionConflict(err)) this.log.warn({ err: (err as Error).message }, 'orchestration pass failed; retrying');
          this.dirty = 'all';
          this.pending = true;
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    } finally {
      this.running = false;
    }
  }

  /** Tells the metrics how long each task placed by `ops` waited from its creation. */
  private timePlacements(ops: readonly Op[], placed: ReadonlySet<string>): void {
    const now = this.now();
    for (const op of ops) {
      if (op.kind !== 'task' || (op.op !== 'create' && op.op !== 'update') || !placed.has(op.object.id)) continue;
      this.metrics!.placed(Math.max(0, now - op.object.createdAt) / 1000);
    }
  }

  /**
   * Whether a later batch of a pass may still be committed as planned (at store index
   * `plannedAt`; `ours`: the indexes of the pass's own transactions since): the services of its
   * tasks unchanged by anyone else (not scaled, updated or removed meanwhile), and the nodes it
   * gives tasks to still taking them. Ops on tasks carry their expected versions: the store
   * refuses a batch whose tasks moved on its own.
   */
  private stillHolds(ops: readonly Op[], plannedAt: number, ours: ReadonlySet<number>): boolean {
    const checked = new Set<string>();
    for (const op of ops) {
      if (op.op === 'delete' || op.op === 'status' || (op.kind !== 'task' && op.kind !== 'service')) continue;
      const serviceId = op.kind === 'task' ? op.object.serviceId : op.object.id;
      if (!checked.has(serviceId)) {
        checked.add(serviceId);
        const s = this.store.get('service', serviceId);
        // A service removed meanwhile (its tasks are orphans the next pass clears) or changed by another writer.
        if (op.kind === 'task' && !s && op.object.desiredState === 'running') return false;
        if (s && s.version > plannedAt && !ours.has(s.version)) return false;
      }
      if (op.kind === 'task' && op.object.nodeId !== '' && op.object.desiredState === 'running' && op.object.status.state === 'assigned') {
        const n = this.store.get('node', op.object.nodeId);
        if (!n || n.status.state !== 'ready' || n.spec.availability !== 'active') return false;
      }
    }
    return true;
  }
}
