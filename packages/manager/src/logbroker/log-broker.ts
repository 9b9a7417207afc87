// The log broker (SwarmKit's logbroker, on the leader): `shoal service logs` asks here; the broker
// hands one request per node to that node's agent, which long-polls for them (agents reach
// managers, never the other way round), reads its containers' logs from its engine and publishes
// them back. The answer merges every node's lines in time order and says which nodes could not
// answer.

import { ShoalError, logTimeKey, newestLogLines } from '@shoal/api';
import type { ClusterStore, Task } from '@shoal/store';

export interface LogLine {
  taskId: string;
  timestamp: string;
  stream: string;
  data: string;
}

export interface ServiceLogLine extends LogLine {
  taskName: string;
  node: string;
}

export interface NodeLogRequest {
  id: string;
  taskIds: string[];
  tail: number;
  since: string;
}

interface Waiting {
  nodeId: string;
  taskIds: ReadonlySet<string>;
  resolve(answer: { lines: LogLine[]; error: string; truncated: boolean }): void;
}

export interface LogBrokerOptions {
  /** How long nodes have to answer. */
  answerTimeoutMs?: number;
  /** The most log text one answer carries (gRPC messages are at most 4 MiB). */
  maxBytes?: number;
  newId(): string;
}

// Nodes answer in milliseconds; a follower passing the call on gives the leader 10 s in all.
const DEFAULT_ANSWER_TIMEOUT_MS = 5_000;
const DEFAULT_MAX_BYTES = 3 << 20;
const MAX_WAIT_MS = 30_000;
/** Each line's share of the answer besides its text (task id and name, node, time, stream). */
const LINE_OVERHEAD = 200;

/** A task's name as `service ps` and the container show it. */
function taskName(t: Task): string {
  return `${t.serviceName}.${t.slot === 0 ? t.nodeId : t.slot}.${t.id}`;
}

export class LogBroker {
  /** Requests not yet handed to their node, by node id. */
  private readonly queued = new Map<string, NodeLogRequest[]>();
  /** Long polls waiting for a request, by node id. */
  private readonly pollers = new Map<string, Set<() => void>>();
  private readonly waiting = new Map<string, Waiting>();
  private readonly answerTimeoutMs: number;
  private readonly maxBytes: number;

  constructor(
    private readonly store: ClusterStore,
    /** Throws unless `nodeId` has an open dispatcher session `sessionId` here. */
    private readonly verifySession: (nodeId: string | undefined, sessionId: string | undefined) => void,
    private readonly opts: LogBrokerOptions,
  ) {
    this.answerTimeoutMs = opts.answerTimeoutMs ?? DEFAULT_ANSWER_TIMEOUT_MS;
    this.maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  }

  /** `shoal service logs`: the lines of the service's tasks from every node that runs (or ran) them. */
  async serviceLogs(req: { service?: string; tail?: number | string; since?: string }): Promise<{ lines: ServiceLogLine[]; warnings: string[] }> {
    if (!req.service) throw new ShoalError('INVALID_ARGUMENT', 'a service name or id is required');
    const tail = Number(req.tail ?? 0);
    if (!Number.isSafeInteger(tail) || tail < 0) throw new ShoalError('INVALID_ARGUMENT', `tail must be a non-negative integer, not ${String(req.tail)}`);
    const since = req.since ?? '';
    if (since && logTimeKey(since) === undefined) throw new ShoalError('INVALID_ARGUMENT', `since must be an RFC 3339 time, not ${JSON.stringify(since)}`);
    const service = this.store.resolveService(req.service);
    const tasks = this.store.tasksByService(service.id).filter((t) => t.nodeId && t.status.containerId);
    const byNode = new Map<string, Task[]>();
    for (const t of tasks) byNode.set(t.nodeId, [...(byNode.get(t.nodeId) ?? []), t]);
    const warnings: string[] = [];
    const answers: Promise<LogLine[]>[] = [];
    for (const [nodeId, list] of byNode) {
      const node = this.store.get('node', nodeId);
      const name = node?.description.hostname || nodeId;
      if (!node || node.status.state !== 'ready') {
        warnings.push(`node ${name} is ${node ? node.status.state : 'removed'}: the logs of its ${list.length} task(s) are not available`);
        continue;
      }
      answers.push(
        this.ask(nodeId, { id: this.opts.newId(), taskIds: list.map((t) => t.id), tail, since }).then((a) => {
          if (a === undefined) {
            warnings.push(`node ${name} did not answer within ${this.answerTimeoutMs / 1000}s: the logs of its tasks are missing`);
            return [];
          }
          if (a.error) warnings.push(`node ${name}: ${a.error}`);
          if (a.truncated) warnings.push(`node ${name} cut its answer to its size limit: use --tail or --since`);
          return a.lines;
        }),
      );
    }
    const byId = new Map(tasks.map((t) => [t.id, t]));
    const lines: ServiceLogLine[] = [];
    for (const l of (await Promise.all(answers)).flat()) {
      const t = byId.get(l.taskId);
      // Only the tasks asked of that node (a node answers for its own containers only).
      if (!t) continue;
      lines.push({ ...l, taskName: taskName(t), node: this.store.get('node', t.nodeId)?.description.hostname ?? t.nodeId });
    }
    // Within the size limit, the newest lines are kept.
    const kept = newestLogLines(lines, this.maxBytes, LINE_OVERHEAD);
    if (kept.dropped > 0) warnings.push(`${kept.dropped} older line(s) left out to keep the answer under ${this.maxBytes >> 20} MiB: use --tail or --since`);
    return { lines: kept.lines, warnings: warnings.sort() };
  }

  /** Queues a request for a node and waits for its answer (undefined: none in time). */
  private ask(nodeId: string, r: NodeLogRequest): Promise<{ lines: LogLine[]; error: string; truncated: boolean } | undefined> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(r.id);
        const q = this.queued.get(nodeId);
        if (q) this.queued.set(nodeId, q.filter((x) => x.id !== r.id));
        resolve(undefined);
      }, this.answerTimeoutMs);
      this.waiting.set(r.id, {
        nodeId,
        taskIds: new Set(r.taskIds),
        resolve: (a) => {
          clearTimeout(timer);
          this.waiting.delete(r.id);
          resolve(a);
        },
      });
      this.queued.set(nodeId, [...(this.queued.get(nodeId) ?? []), r]);
      for (const wake of this.pollers.get(nodeId) ?? []) wake();
    });
  }

  /** A node's long poll: its queued requests, at once or when one comes (≤ waitMs, ≤ 30 s). */
  async logRequests(req: { nodeId?: string; sessionId?: string; waitMs?: number | string }): Promise<{ requests: NodeLogRequest[] }> {
    this.verifySession(req.nodeId, req.sessionId);
    const nodeId = req.nodeId!;
    if (!this.queued.get(nodeId)?.length) {
      const ms = Math.min(Math.max(Number(req.waitMs ?? 0), 0), MAX_WAIT_MS);
      await new Promise<void>((resolve) => {
        const set = this.pollers.get(nodeId) ?? new Set<() => void>();
        this.pollers.set(nodeId, set);
        const done = (): void => {
          clearTimeout(t);
          set.delete(done);
          if (set.size === 0) this.pollers.delete(nodeId);
          resolve();
        };
        const t = setTimeout(done, ms);
        set.add(done);
      });
      this.verifySession(req.nodeId, req.sessionId);
    }
    const requests = this.queued.get(nodeId) ?? [];
    this.queued.delete(nodeId);
    return { requests };
  }

  /** A node's answer to one of its requests; lines of tasks it was not asked about are dropped. */
  publishLogs(req: { nodeId?: string; sessionId?: string; requestId?: string; lines?: LogLine[]; error?: string; truncated?: boolean }): Record<string, never> {
    this.verifySession(req.nodeId, req.sessionId);
    const w = this.waiting.get(req.requestId ?? '');
    // An answer that came too late: nobody waits for it any more.
    if (!w) return {};
    if (w.nodeId !== req.nodeId) throw new ShoalError('PERMISSION_DENIED', `log request ${req.requestId} was not made to node ${req.nodeId}`);
    w.resolve({
      lines: (req.lines ?? []).filter((l) => w.taskIds.has(l.taskId)),
      error: String(req.error ?? '').slice(0, 500),
      truncated: req.truncated === true,
    });
    return {};
  }

  /** Ends every long poll (leadership lost, or the manager stops). */
  stop(): void {
    for (const set of this.pollers.values()) for (const wake of [...set]) wake();
  }
}
