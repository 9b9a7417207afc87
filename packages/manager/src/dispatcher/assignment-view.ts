// Every node's assignments, kept up to date from the store's events: for each node, the tasks the
// store places on it (old ones included: the agent keeps their exited containers as history) in a
// ChangeLog, so a node's long poll is answered with what changed since its cursor, in pages that
// fit a gRPC message. A change to a task touches its node's log only (O(1)); a node's long poll is
// woken only by a change it acts on (which tasks, and whether each should run), not by the status
// reports its own agent sends, though those ride along in the next answer.

import type { ClusterStore, StoreEvent, Task } from '@shoal/store';
import { taskStateRank } from '@shoal/store';
import { ChangeLog, type Cursor, type Page } from './change-log.js';

/** A task the agent sees: every task on the node, except one not yet handed to it. */
function visible(t: Task | undefined, nodeId: string): t is Task {
  return !!t && t.nodeId === nodeId && (t.desiredState !== 'running' || taskStateRank(t.status.state) >= taskStateRank('assigned'));
}

export class AssignmentView {
  private logs = new Map<string, ChangeLog<Task>>();
  private unwatch: () => void;

  /** `onChange`: called with the nodes whose agents have something new to act on. */
  constructor(
    private readonly store: ClusterStore,
    private readonly onChange: (nodeIds: Iterable<string>) => void,
  ) {
    this.rebuild();
    this.unwatch = store.watch((events) => this.apply(events), { kinds: ['task', 'node'] });
  }

  stop(): void {
    this.unwatch();
  }

  private rebuild(): void {
    const floor = this.store.appliedIndex;
    this.logs = new Map();
    for (const n of this.store.list('node')) {
      const log = new ChangeLog<Task>(floor);
      for (const t of this.store.tasksByNode(n.id)) if (visible(t, n.id)) log.set(t.id, t, floor, false);
      this.logs.set(n.id, log);
    }
  }

  private log(nodeId: string): ChangeLog<Task> {
    let l = this.logs.get(nodeId);
    if (!l) {
      // A node created after the last rebuild: it had nothing before its creation.
      l = new ChangeLog<Task>(0);
      this.logs.set(nodeId, l);
    }
    return l;
  }

  private apply(events: readonly StoreEvent[]): void {
    const woken = new Set<string>();
    for (const e of events) {
      if (e.action === 'restore') {
        this.rebuild();
        for (const id of this.logs.keys()) woken.add(id);
        continue;
      }
      if (e.kind === 'node') {
        if (e.action === 'delete') {
          this.logs.delete(e.object.id);
          woken.add(e.object.id);
        }
        continue;
      }
      if (e.kind !== 'task') continue;
      const before = e.previous ?? (e.action === 'delete' ? e.object : undefined);
      const now = e.action === 'delete' ? undefined : e.object;
      for (const nodeId of new Set([before?.nodeId, now?.nodeId])) {
        if (!nodeId) continue;
        const was = visible(before, nodeId) ? before : undefined;
        const is = visible(now, nodeId) ? now : undefined;
        if (!was && !is) continue;
        const l = this.log(nodeId);
        if (!is) {
          l.delete(e.object.id, e.index);
          woken.add(nodeId);
        } else {
          const acts = !was || was.desiredState !== is.desiredState;
          l.set(is.id, is, e.index, acts);
          if (acts) woken.add(nodeId);
        }
      }
    }
    if (woken.size > 0) this.onChange(woken);
  }

  /** Whether a node at `cursor` has something to act on. */
  hasNews(nodeId: string, cursor: Cursor | undefined): boolean {
    return this.log(nodeId).hasNews(cursor);
  }

  /** What changed for the node since `cursor`, at most ~`budget` bytes of tasks. */
  page(nodeId: string, cursor: Cursor | undefined, budget: number): Page<Task> {
    return this.log(nodeId).since(cursor, budget, taskSize, this.store.appliedIndex);
  }

  /** The node's current assignments (tests, diagnostics). */
  size(nodeId: string): number {
    return this.logs.get(nodeId)?.size ?? 0;
  }
}

/** A task's size on the wire, bounded above by its JSON (protobuf is more compact). */
export function taskSize(t: Task): number {
  return JSON.stringify(t).length;
}
