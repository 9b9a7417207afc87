// The task reaper (SwarmKit's taskreaper): deletes the tasks marked for removal (desired state
// `remove`, a scale-down's slots) once isReapable says nothing of them can run or report any
// more. A leader-only component: on beginning it sweeps the store for what an earlier leader
// left, then follows the store's events. Deletes go in batches (one proposal for many, at most
// `maxPerPass`), a short while after the events that made them due, so that a scale-down of
// thousands costs a few proposals, not one per task.
// A removed service's tasks are not its own: the orchestrator deletes those (reconcile.ts).

import type { Logger } from '@shoal/api';
import { ShoalError } from '@shoal/api';
import { type ClusterStore, type Op, type StoreClient, type StoreEvent, deleteOp, isVersionConflict } from '@shoal/store';
import type { LeaderComponent } from '../leader-duty.js';
import { isReapable } from './reap-rule.js';

export interface TaskReaperOptions {
  /** Tasks deleted by one proposal at most (default 1,000: about 60 KB of ops). */
  maxPerPass?: number;
  /** How long events gather before a pass (ms; default 250, SwarmKit's batching interval). */
  intervalMs?: number;
}

const COMMIT_TIMEOUT_MS = 30_000;

export class TaskReaper implements LeaderComponent {
  /** Tasks marked for removal not yet deleted (ids): the only ones a pass may look at. */
  private marked = new Set<string>();
  /**
   * Those of them changed since the last pass (a report, the mark itself): the ones the next
   * pass looks at, unless `everything` (a node changed, a new leadership, a failed proposal).
   * A scale-down of thousands still stopping costs each pass what changed, not a scan of all.
   */
  private dirty = new Set<string>();
  private everything = false;
  private unwatch: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private readonly maxPerPass: number;
  private readonly intervalMs: number;

  constructor(
    private readonly store: ClusterStore,
    private readonly client: Pick<StoreClient, 'commit'>,
    private readonly log: Logger,
    opts: TaskReaperOptions = {},
  ) {
    this.maxPerPass = opts.maxPerPass ?? 1_000;
    this.intervalMs = opts.intervalMs ?? 250;
  }

  begin(): void {
    this.sweep();
    this.unwatch = this.store.watch((events) => this.onEvents(events), { kinds: ['task', 'node'] });
    this.soon();
  }

  end(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    this.marked = new Set();
    this.dirty = new Set();
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** How many tasks marked for removal wait to be deleted. */
  get waiting(): number {
    return this.marked.size;
  }

  private sweep(): void {
    this.marked = new Set();
    this.dirty = new Set();
    for (const t of this.store.list('task')) if (t.desiredState === 'remove') this.marked.add(t.id);
    this.everything = true;
  }

  private onEvents(events: readonly StoreEvent[]): void {
    let due = false;
    for (const e of events) {
      if (e.action === 'restore') {
        this.sweep();
        due = true;
      } else if (e.kind === 'task') {
        if (e.action === 'delete') {
          this.marked.delete(e.object.id);
          this.dirty.delete(e.object.id);
        } else if (e.object.desiredState === 'remove') {
          this.marked.add(e.object.id);
          this.dirty.add(e.object.id);
          due = true;
        }
      } else if (e.kind === 'node' && this.marked.size > 0) {
        // A node down or removed makes its marked tasks due.
        this.everything = true;
        due = true;
      }
    }
    if (due) this.soon();
  }

  /** A pass after the interval (events meanwhile join it). */
  private soon(delayMs = this.intervalMs): void {
    if (!this.unwatch) return;
    if (this.running) {
      this.again = true;
      return;
    }
    if (this.timer) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.pass();
    }, delayMs);
    this.timer.unref();
  }

  /** The deletes due now, at most maxPerPass; whether tasks were left to look at. */
  private due(): { ops: Op[]; more: boolean } {
    const look = this.everything ? [...this.marked] : [...this.dirty];
    this.everything = false;
    this.dirty = new Set();
    const ops: Op[] = [];
    let more = false;
    for (const id of look) {
      if (ops.length === this.maxPerPass) {
        this.dirty.add(id);
        more = true;
        continue;
      }
      const t = this.store.get('task', id);
      // Gone, or (never so far) wanted again; a removed service's tasks are the orchestrator's.
      if (!t || t.desiredState !== 'remove' || !this.store.get('service', t.serviceId)) {
        this.marked.delete(id);
        continue;
      }
      if (isReapable(t, t.nodeId ? this.store.get('node', t.nodeId) : null)) ops.push(deleteOp('task', t));
    }
    return { ops, more };
  }

  private async pass(): Promise<void> {
    if (!this.unwatch) return;
    this.running = true;
    this.again = false;
    let retry = false;
    let more = false;
    try {
      const due = this.due();
      more = due.more;
      if (due.ops.length > 0) {
        await this.client.commit(due.ops, { timeoutMs: COMMIT_TIMEOUT_MS, leaderOnly: true });
        this.log.debug({ deleted: due.ops.length, waiting: this.marked.size }, 'reaped tasks marked for removal');
      }
    } catch (err) {
      // A task changed (a last status report) or went meanwhile: the next pass reads it again.
      if (!isVersionConflict(err) && !ShoalError.is(err, 'NOT_FOUND')) this.log.warn({ err: (err as Error).message }, 'reaping tasks failed; retrying');
      this.everything = true;
      retry = true;
    } finally {
      this.running = false;
    }
    if (more) this.soon(0);
    else if (retry || this.again) this.soon();
  }
}
