// Runs the orchestrator's and the scheduler's passes on the leader: after every store change (and
// on a timer, as a safety net), reconcile then schedule, each committed as one transaction.
// Starts from the store, never from memory, whenever this manager becomes leader.

import type { Logger, RaftNode } from '@shoal/raft';
import { type ClusterStore, type StoreClient, type StoreEvent, isVersionConflict, newId } from '@shoal/store';
import { reconcile } from './reconcile.js';
import { schedule } from '../scheduler/scheduler.js';

const SAFETY_NET_MS = 2_000;

export class Orchestrator {
  private unwatch: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private pending = false;
  /** Services changed since the last pass, or 'all' (a node changed, a timer, a new leader). */
  private dirty: Set<string> | 'all' = 'all';
  private running = false;
  private stopped = false;

  constructor(
    private readonly raft: RaftNode,
    private readonly store: ClusterStore,
    private readonly client: StoreClient,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    raft.on('leader', () => this.onLeaderChange());
    this.onLeaderChange();
  }

  private onLeaderChange(): void {
    const leading = this.raft.isLeader() && !this.stopped;
    if (leading && !this.unwatch) {
      this.unwatch = this.store.watch((events) => this.onEvents(events));
      this.timer = setInterval(() => this.kick('all'), SAFETY_NET_MS);
      this.timer.unref();
      this.kick('all');
    } else if (!leading && this.unwatch) {
      this.unwatch();
      this.unwatch = undefined;
      if (this.timer) clearInterval(this.timer);
      this.timer = undefined;
    }
  }

  stop(): void {
    this.stopped = true;
    this.onLeaderChange();
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
      if (e.action === 'restore' || e.kind === 'node' || e.kind === 'cluster') return this.kick('all');
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

  private async run(): Promise<void> {
    try {
      while (this.pending && this.unwatch) {
        this.pending = false;
        const dirty = this.dirty;
        this.dirty = new Set();
        const services = dirty === 'all' ? undefined : dirty;
        for (const [name, pass] of [
          ['orchestrator', () => reconcile(this.store, { now: this.now(), newId, wakeAt: (ms) => this.wakeAt(ms), services })],
          ['scheduler', () => schedule(this.store.list('node'), this.store.list('task'), this.now())],
        ] as const) {
          const ops = pass();
          if (ops.length === 0) continue;
          try {
            await this.client.commit(ops, { timeoutMs: 5_000 });
          } catch (err) {
            // A conflict means the store moved under us: the next pass sees the new state.
            if (!isVersionConflict(err)) this.log.warn({ pass: name, err: (err as Error).message }, 'pass failed; retrying');
            this.dirty = 'all';
            this.pending = true;
            await new Promise((r) => setTimeout(r, 50));
          }
        }
      }
    } finally {
      this.running = false;
    }
  }
}
