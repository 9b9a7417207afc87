// The nodes' task status reports, stored together. Each agent already sends its tasks' changes in
// one call per turn, but 2,000 agents send 2,000 calls: one transaction each would cost every
// manager an apply, and every watcher (orchestrator, views) a wake-up, per node. Here the calls
// that arrive while transactions are in flight join the next one, across nodes (SwarmKit's
// dispatcher batches the same way): no added wait when the cluster is quiet, few large
// transactions when it is busy.
//
// A transaction holds at most one part of one call per node, and a node has one part in flight at
// a time: a node's tasks are written by its own reports only, so the batcher's transactions never
// conflict with each other. A call is cut into parts that each stay well under the store's size
// bound (each report is stored as a status op: the task's status alone, as big as its messages);
// its parts go in order, each in some transaction.
// A call is answered once all its parts are stored, with the reports refused, each with why.

import type { ClusterStore, Op, StoreClient, Task, TaskStatus } from '@shoal/store';
import { MAX_TX_BYTES, TASK_STATES, jsonBytes, statusOp, taskStateRank } from '@shoal/store';

export interface StatusReport {
  taskId?: string;
  status?: Partial<TaskStatus> | null;
}

/** A transaction's reports: at most this many bytes (of the statuses reported)... */
const TX_BYTES = MAX_TX_BYTES / 4;
/** ...and at most this many reports. */
const TX_REPORTS = 1_000;
/** One call's part: at most this many reports (an agent sends up to 500 a call). */
const PART_REPORTS = 500;

interface Call {
  nodeId: string;
  parts: StatusReport[][];
  /** Tasks whose report was stored (a second report of one in the same call is refused). */
  seen: Set<string>;
  rejected: string[];
  resolve: (rejected: string[]) => void;
  reject: (err: unknown) => void;
}

export class StatusBatcher {
  /** Calls with parts left to store, oldest first. */
  private queue: Call[] = [];
  /** Nodes with a part in a transaction now. */
  private readonly busy = new Set<string>();
  private inFlight = 0;
  private transactionsCount = 0;

  constructor(
    private readonly client: StoreClient,
    /** Transactions in flight at once. */
    private readonly maxInFlight = 4,
  ) {}

  /** Transactions committed (tests, diagnostics). */
  get transactions(): number {
    return this.transactionsCount;
  }

  /** Stores `updates` of `nodeId`'s tasks; resolves with the refused ones (`ID: why`). */
  submit(nodeId: string, updates: readonly StatusReport[]): Promise<string[]> {
    if (updates.length === 0) return Promise.resolve([]);
    return new Promise<string[]>((resolve, reject) => {
      this.queue.push({ nodeId, parts: this.cut(updates), seen: new Set(), rejected: [], resolve, reject });
      this.pump();
    });
  }

  /** Refuses every call not stored yet (leadership lost). */
  cancel(err: unknown): void {
    const calls = this.queue;
    this.queue = [];
    for (const c of calls) c.reject(err);
  }

  /** A call's reports in parts of bounded size, in order. */
  private cut(updates: readonly StatusReport[]): StatusReport[][] {
    const parts: StatusReport[][] = [];
    let part: StatusReport[] = [];
    let bytes = 0;
    for (const u of updates) {
      const b = reportBytes(u);
      if (part.length > 0 && (part.length >= PART_REPORTS || bytes + b > TX_BYTES)) {
        parts.push(part);
        part = [];
        bytes = 0;
      }
      part.push(u);
      bytes += b;
    }
    parts.push(part);
    return parts;
  }

  private pump(): void {
    while (this.inFlight < this.maxInFlight) {
      const batch: { call: Call; part: StatusReport[] }[] = [];
      const nodes = new Set<string>();
      let bytes = 0;
      let reports = 0;
      for (const call of this.queue) {
        if (this.busy.has(call.nodeId) || nodes.has(call.nodeId)) continue;
        const part = call.parts[0]!;
        const b = part.reduce((n, u) => n + reportBytes(u), 0);
        if (batch.length > 0 && (bytes + b > TX_BYTES || reports + part.length > TX_REPORTS)) break;
        batch.push({ call, part });
        nodes.add(call.nodeId);
        bytes += b;
        reports += part.length;
      }
      if (batch.length === 0) return;
      for (const { call } of batch) {
        call.parts.shift();
        this.busy.add(call.nodeId);
      }
      // (a call whose last part is in this batch leaves the queue)
      this.queue = this.queue.filter((c) => c.parts.length > 0);
      this.inFlight++;
      void this.commit(batch).finally(() => {
        this.inFlight--;
        for (const { call } of batch) this.busy.delete(call.nodeId);
        this.pump();
      });
    }
  }

  /** One transaction for the batch's parts; each call answered once its last part is stored. */
  private async commit(batch: { call: Call; part: StatusReport[] }[]): Promise<void> {
    let outcome: { call: Call; rejected: string[]; seen: string[] }[] = [];
    try {
      await this.client.update(
        (store) => {
          outcome = [];
          const ops: Op[] = [];
          const now = Date.now();
          for (const { call, part } of batch) {
            const rejected: string[] = [];
            const seen = new Set<string>();
            for (const u of part) {
              const op = this.reportOp(store, call, u, seen, rejected, now);
              if (op) ops.push(op);
            }
            outcome.push({ call, rejected, seen: [...seen] });
          }
          return ops;
        },
        { retries: 5, timeoutMs: 5_000, optimistic: true },
      );
    } catch (err) {
      // Nothing of this batch was stored (or nobody knows): its calls fail whole; the agents
      // send their reports again.
      const failed = new Set(batch.map((b) => b.call));
      this.queue = this.queue.filter((c) => !failed.has(c));
      for (const call of failed) call.reject(err);
      return;
    }
    this.transactionsCount++;
    for (const { call, rejected, seen } of outcome) {
      call.rejected.push(...rejected);
      for (const id of seen) call.seen.add(id);
      if (call.parts.length === 0) call.resolve(call.rejected);
    }
  }

  /**
   * The op that stores one report, or undefined (refused, with why in `rejected`, or the same as
   * stored). A status is stamped with this manager's time, not the agent's (which may be hours
   * off): the managers judge update delays and restart windows by these times. A report in the
   * state the task is already in (a repeat, or a pull's progress) keeps the time the state began,
   * as `service ps` shows it ("Preparing 20 seconds ago").
   */
  private reportOp(store: ClusterStore, call: Call, u: StatusReport, seen: Set<string>, rejected: string[], now: number): Op | undefined {
    const id = u.taskId ?? '';
    const t: Task | null | undefined = store.get('task', id);
    const st = u.status;
    if (!t) rejected.push(`${id}: no such task`);
    else if (t.nodeId !== call.nodeId) rejected.push(`${id}: not assigned to this node`);
    else if (!st || !(TASK_STATES as readonly string[]).includes(st.state ?? '')) rejected.push(`${id}: invalid state ${st?.state}`);
    else if (taskStateRank(st.state as TaskStatus['state']) < taskStateRank(t.status.state)) rejected.push(`${id}: ${t.status.state} cannot go back to ${st.state}`);
    else if (call.seen.has(id) || seen.has(id)) rejected.push(`${id}: given twice`);
    else {
      seen.add(id);
      const state = st.state as TaskStatus['state'];
      const status: TaskStatus = {
        state,
        timestamp: state === t.status.state ? t.status.timestamp : now,
        message: st.message ?? '',
        err: st.err ?? '',
        containerId: st.containerId ?? t.status.containerId,
        exitCode: Number(st.exitCode ?? 0),
      };
      const { timestamp: _a, ...same } = status;
      const { timestamp: _b, ...had } = t.status;
      if (JSON.stringify(same) !== JSON.stringify(had)) return statusOp(t, status, now);
    }
    return undefined;
  }
}

/** A report's bytes in a transaction, about (its status op: the status, the task's id, the version). */
function reportBytes(u: StatusReport): number {
  return jsonBytes(u.status ?? null) + 120;
}
