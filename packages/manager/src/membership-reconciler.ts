// The leader's membership loop: keeps the Raft configuration equal to the store's managers
// (membership-plan.ts decides, this makes the changes one at a time and retries whatever Raft
// refuses for now, e.g. another change still pending), and forgets joins that never completed.
// It runs on the leader only, so a leader change in the middle of a promotion is picked up by the
// next leader from the store and the configuration, not from anyone's memory.

import { performance } from 'node:perf_hooks';
import { ShoalError } from '@shoal/api';
import type { Logger } from '@shoal/api';
import type { RaftNode } from '@shoal/raft';
import type { ClusterStore, Node, StoreClient } from '@shoal/store';
import { deleteOp, updateOp } from '@shoal/store';
import type { LeaderComponent } from './leader-duty.js';
import { type MembershipAction, type MembershipPlan, expiredJoins, planMembership } from './membership-plan.js';

/** The node object of a join that has not come up yet: written by join(), replaced by its first status. */
export const JOINING_MESSAGE = 'joining';

export function joinPending(n: Node): boolean {
  return n.status.state === 'unknown' && n.status.message === JOINING_MESSAGE;
}

/** The store's managers, with the address Raft reaches each on. */
export function storeManagers(store: ClusterStore): { id: string; addr: string }[] {
  const removed = new Set(store.cluster()?.removedNodes ?? []);
  return (store.list('node') as Node[])
    .filter((n) => n.spec.role === 'manager' && !removed.has(n.id))
    .map((n) => ({ id: n.id, addr: n.managerStatus?.addr || n.status.addr }));
}

export interface ReconcilerOptions {
  /** How often the loop looks even when nothing pokes it (ms). */
  intervalMs?: number;
  /** A monotonic clock (ms): never the wall clock, which may step. */
  monotonic?: () => number;
  /** The wall clock, for the objects' updatedAt only. */
  now?: () => number;
}

const DEFAULT_INTERVAL_MS = 200;
/** A pending join is forgotten after this long without a sign of life, or this many heartbeat periods if longer. */
const MIN_JOIN_GRACE_MS = 10_000;
const JOIN_GRACE_BEATS = 30;
const CHANGE_TIMEOUT_MS = 10_000;

export class MembershipReconciler implements LeaderComponent {
  private leading = false;
  private timer: NodeJS.Timeout | undefined;
  private running = false;
  private again = false;
  private stopped = false;
  private readonly silentSince = new Map<string, number>();
  private readonly waiters = new Set<() => void>();
  private lastWaiting = '';
  private unwatch: (() => void) | undefined;
  private readonly intervalMs: number;
  private readonly monotonic: () => number;
  private readonly now: () => number;

  constructor(
    private readonly raft: RaftNode,
    private readonly store: ClusterStore,
    private readonly client: StoreClient,
    private readonly log: Logger,
    opts: ReconcilerOptions = {},
  ) {
    this.intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.monotonic = opts.monotonic ?? (() => performance.now());
    this.now = opts.now ?? Date.now;
  }

  stop(): void {
    this.stopped = true;
    this.end();
  }

  /** A manager adds it to its LeaderDuty once the store can be trusted to say who the managers are. */
  begin(): void {
    if (this.stopped) return;
    this.leading = true;
    this.silentSince.clear();
    this.lastWaiting = '';
    this.timer = setInterval(() => this.kick(), this.intervalMs);
    this.timer.unref();
    // A node changing role, joining or leaving: look now rather than at the next interval.
    this.unwatch = this.store.watch(() => this.kick(), { kinds: ['node'] });
    this.kick();
  }

  end(): void {
    this.leading = false;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    this.unwatch?.();
    this.unwatch = undefined;
    this.silentSince.clear();
    this.notify();
  }

  /** Asks for a pass soon (passes never overlap: one asked for during a pass runs after it). */
  kick(): void {
    if (!this.leading) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    setImmediate(() => void this.pass());
  }

  /**
   * Resolves once `done()` holds (checked after every pass and change), or after `timeoutMs`
   * with false: the loop carries on regardless, this only lets a caller report the outcome.
   */
  waitFor(done: () => boolean, timeoutMs: number): Promise<boolean> {
    if (done()) return Promise.resolve(true);
    return new Promise((resolve) => {
      const check = (): void => {
        if (!done()) return;
        finish(true);
      };
      const finish = (v: boolean): void => {
        clearTimeout(t);
        this.waiters.delete(check);
        resolve(v);
      };
      const t = setTimeout(() => finish(done()), timeoutMs);
      this.waiters.add(check);
      this.kick();
    });
  }

  private notify(): void {
    for (const w of [...this.waiters]) w();
  }

  /** What the configuration needs now, from the local store and Raft status. */
  plan(): MembershipPlan {
    const st = this.raft.status();
    return planMembership({
      self: st.id,
      commit: st.commit,
      managers: storeManagers(this.store),
      conf: st.conf,
      progress: st.progress,
    });
  }

  private async pass(): Promise<void> {
    try {
      do {
        this.again = false;
        if (!this.leading || !this.store.cluster()) break;
        await this.forgetSilentJoins();
        if (!this.leading) break;
        const plan = this.plan();
        this.report(plan);
        const next = plan.actions[0];
        if (next) {
          const changed = await this.apply(next);
          // One change at a time; when one went through, the next may be possible at once.
          if (changed) this.again = true;
        }
        this.notify();
      } while (this.again && !this.stopped);
    } catch (err) {
      this.log.warn({ err: (err as Error).message }, 'membership reconciliation failed; retrying');
    } finally {
      this.running = false;
      this.notify();
    }
  }

  /** Logs what is held back, once per distinct situation (the loop would repeat it every pass). */
  private report(plan: MembershipPlan): void {
    const stuck = plan.waiting.filter((w) => !w.why.startsWith('learner catching up'));
    const key = JSON.stringify(stuck);
    if (key === this.lastWaiting) return;
    this.lastWaiting = key;
    for (const w of stuck) this.log.warn({ node: w.id, why: w.why }, 'membership change held back');
  }

  /** Makes one change; false if Raft refused it for now (it is retried on a later pass). */
  private async apply(a: MembershipAction): Promise<boolean> {
    try {
      switch (a.kind) {
        case 'add-learner':
          await this.raft.addLearner(a.id, a.addr, CHANGE_TIMEOUT_MS);
          this.log.info({ node: a.id, addr: a.addr }, 'manager added to raft as a learner');
          break;
        case 'promote':
          await this.raft.promote(a.id, CHANGE_TIMEOUT_MS);
          this.log.info({ node: a.id }, 'manager promoted to raft voter');
          break;
        case 'remove':
          await this.raft.removeMember(a.id, CHANGE_TIMEOUT_MS);
          this.log.info({ node: a.id, voter: a.voter }, 'node removed from raft: it is no longer a manager');
          break;
        case 'transfer-leadership':
          this.log.info({ to: a.to }, 'this manager was demoted: handing leadership over');
          await this.raft.transferLeadership(a.to);
          break;
      }
      return true;
    } catch (err) {
      const e = ShoalError.from(err);
      // Another change not yet applied, a new leader's first entry not yet committed, a leader
      // change: normal, the next pass tries again.
      const expected = e.code === 'FAILED_PRECONDITION' || e.code === 'NOT_LEADER' || e.code === 'UNAVAILABLE';
      this.log[expected ? 'debug' : 'warn']({ action: a.kind, node: 'id' in a ? a.id : a.to, err: e.message }, 'membership change not made yet');
      return false;
    }
  }

  private joinGraceMs(): number {
    const period = this.store.cluster()?.spec.heartbeatPeriodMs || 1_000;
    return Math.max(MIN_JOIN_GRACE_MS, JOIN_GRACE_BEATS * period);
  }

  /**
   * A join whose node never came up (the joiner died after its node object was written, or never
   * got the answer) leaves no ghost: once silent for the grace period, its node is removed as
   * `node rm` would (its id refused from then on, should its certificate ever show up).
   */
  private async forgetSilentJoins(): Promise<void> {
    const progress = this.raft.status().progress;
    const pending = (this.store.list('node') as Node[]).filter(joinPending).map((n) => ({ id: n.id, heardFrom: !!progress[n.id]?.recentActive }));
    const expired = expiredJoins(pending, this.silentSince, this.monotonic(), this.joinGraceMs());
    for (const id of expired) {
      await this.client
        .update(
          (store) => {
            const cur = store.get('node', id) as Node | undefined;
            if (!cur || !joinPending(cur)) return [];
            const c = store.cluster();
            const removed = c && !c.removedNodes.includes(id)
              ? [updateOp('cluster', { ...c, removedNodes: [...c.removedNodes, id], updatedAt: this.now() })]
              : [];
            return [deleteOp('node', cur), ...removed];
          },
          // A leader's decision: never passed on to another leader should this one be deposed.
          { retries: 3, timeoutMs: 5_000, leaderOnly: true },
        )
        .then(
          () => {
            this.silentSince.delete(id);
            this.log.warn({ node: id }, 'a join never completed: its node is removed');
          },
          (err: Error) => this.log.warn({ node: id, err: err.message }, 'could not remove the node of a failed join'),
        );
    }
  }
}
