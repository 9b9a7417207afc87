// When each stopped task's restart delay runs out, on the leader's monotonic clock. A delay counts
// from the moment this leader saw the task stopped: never from the status timestamp (the agent's
// or a manager's wall clock, which may be hours off or step) and never from another manager's
// clock. A new leader knows nothing of its predecessor's clock, so it counts each pending delay
// again from its own first sight: a leader change may lengthen a restart delay by up to one delay,
// never shorten it.

import type { ClusterStore, StoreEvent, Task } from '@shoal/store';
import { isTerminal } from '@shoal/store';

export class RestartDelays {
  /** Task id → when (monotonic ms) this leader first saw it stopped while meant to run. */
  private readonly stoppedAt = new Map<string, number>();
  private readonly unwatch: () => void;

  constructor(
    private readonly store: ClusterStore,
    /** A monotonic clock in milliseconds. */
    readonly clock: () => number = () => performance.now(),
  ) {
    this.unwatch = store.watch((events) => this.onEvents(events), { kinds: ['task'] });
  }

  /** Milliseconds left of task `t`'s restart delay (0 or less: it has run out). */
  remaining(t: Task, delayMs: number): number {
    const now = this.clock();
    let since = this.stoppedAt.get(t.id);
    if (since === undefined) this.stoppedAt.set(t.id, (since = now));
    return since + delayMs - now;
  }

  /** How many tasks are remembered (for tests: entries go once a task stops waiting). */
  get size(): number {
    return this.stoppedAt.size;
  }

  close(): void {
    this.unwatch();
    this.stoppedAt.clear();
  }

  private onEvents(events: readonly StoreEvent[]): void {
    const now = this.clock();
    for (const e of events) {
      if (e.action === 'restore') {
        // A snapshot replaced the store: forget the tasks no longer waiting in it.
        for (const id of [...this.stoppedAt.keys()]) if (!waiting(this.store.get('task', id))) this.stoppedAt.delete(id);
      } else if (e.kind === 'task') {
        const t = e.object;
        if (e.action === 'delete' || !waiting(t)) this.stoppedAt.delete(t.id);
        else if (!this.stoppedAt.has(t.id)) this.stoppedAt.set(t.id, now);
      }
    }
  }
}

/** A task that stopped while still meant to run: its slot waits for the restart delay. */
function waiting(t: Task | null | undefined): t is Task {
  return !!t && t.desiredState === 'running' && isTerminal(t.status.state);
}
