// Runs the orchestrator's and the scheduler's passes on the leader (a LeaderComponent: the
// manager's LeaderDuty begins and ends it): after every store change (and
// on a timer, as a safety net), reconcile then schedule, committed together as one transaction
// when they fit the store's size bound, else in several (plan.ts).
// Starts from the store, never from memory, whenever this manager becomes leader.

import type { Logger } from '@shoal/api';
import { type ClusterStore, MAX_TX_BYTES, type Op, type StoreClient, type StoreEvent, type Task, isVersionConflict, newId, updateOp } from '@shoal/store';
import { reconcile } from './reconcile.js';
import { type Plan, firstBatch } from './plan.js';
import { schedule } from '../scheduler/scheduler.js';
import type { LeaderComponent } from '../leader-duty.js';
import { RestartDelays } from './restart-delays.js';
import { Allocator } from '../allocator/allocator.js';
import { planIngress } from '../allocator/ingress.js';

const SAFETY_NET_MS = 2_000;
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

export class Orchestrator implements LeaderComponent {
  private unwatch: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  /** Services changed since the last pass, or 'all' (a node changed, a timer, a new leader). */
  private dirty: Set<string> | 'all' = 'all';
  private running = false;
  /** This leadership's memory of restart delays (a new leader starts its own). */
  private restarts: RestartDelays | undefined;
  /** This leadership's address allocator (its serial cursors start afresh with each). */
  private allocator: Allocator | undefined;

  constructor(
    private readonly store: ClusterStore,
    private readonly client: Pick<StoreClient, 'commit'>,
    private readonly log: Logger,
    /** The wall clock: the times written into objects. */
    private readonly now: () => number = Date.now,
    /** A monotonic clock (ms): restart delays count on it, so a step of the wall clock moves none. */
    private readonly monotonic: () => number = () => performance.now(),
  ) {}

  begin(): void {
    this.restarts = new RestartDelays(this.store, this.monotonic);
    this.allocator = new Allocator();
    this.unwatch = this.store.watch((events) => this.onEvents(events));
    this.timer = setInterval(() => this.kick('all'), SAFETY_NET_MS);
    this.timer.unref();
    this.kick('all');
  }

  end(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    this.restarts?.close();
    this.restarts = undefined;
    this.allocator = undefined;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    if (this.wake) clearTimeout(this.wake);
    this.wake = undefined;
    this.wakeTime = Infinity;
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
    for (const e of events) {
      if (e.action === 'restore' || e.kind === 'node' || e.kind === 'cluster' || e.kind === 'network') return this.kick('all');
      if (e.kind === 'service') ids.push(e.object.id);
      else if (e.kind === 'task') ids.push(e.object.serviceId);
    }
    this.kick(ids);
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
    // The tasks as they will be once the orchestrator's ops apply; where each new one is created.
    const tasks = new Map(this.store.list('task').map((t) => [t.id, t]));
    const created = new Map<string, { group: Op[]; at: number }>();
    const updated = new Map<string, { group: Op[]; at: number }>();
    for (const group of plan.groups) {
      group.forEach((op, at) => {
        if (op.kind !== 'task' || op.op === 'status') return;
        if (op.op === 'delete') tasks.delete(op.id);
        else tasks.set(op.object.id, op.object);
        if (op.op === 'create') created.set(op.object.id, { group, at });
        if (op.op === 'update') updated.set(op.object.id, { group, at });
      });
    }
    // One op per task in a pass: a later decision on a task folds into the op already written for it.
    const write = (t: Task): void => {
      tasks.set(t.id, t);
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
    // Addresses before placement: a task is scheduled only once it holds all of them.
    const book = { network: (id: string) => this.store.get('network', id), holder: (net: string, addr: string) => this.store.addressHolder(net, addr) };
    for (const t of this.allocator!.allocate(book, tasks.values(), new Set(created.keys()), now)) write(t);
    for (const op of schedule(this.store.list('node'), [...tasks.values()], now)) {
      if (op.kind === 'task' && op.op === 'update') write(op.object);
      else plan.add(op);
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
        const plan = this.plan(services);
        if (plan.empty) continue;
        // One transaction when the pass fits (the common case); else its first part, and another
        // pass over the same services for the rest, planned from what that part left.
        const batch = firstBatch(plan.groups, PASS_TX_BYTES);
        try {
          await this.client.commit(batch.ops, { timeoutMs: COMMIT_TIMEOUT_MS, leaderOnly: true });
          if (batch.more) this.kick(services ? [...services] : 'all');
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
}
