// The agent's task runner: makes this node's containers match its assignments. It long-polls
// the dispatcher, drives each task through the executor (accepted → preparing → starting →
// running), reports every transition, reports a container's death within the second Docker tells
// us, stops and removes what is no longer wanted, and removes any container of ours that belongs
// to no live assignment (an old task's container a user restarted by hand, leftovers after a
// crash). After a restart it adopts its running containers by label instead of starting twins.

import { setTimeout as delay } from 'node:timers/promises';
import { type Logger, ShoalError, retryWithBackoff } from '@shoal/api';
import type { NetworkView, Task, TaskState, TaskStatus } from '@shoal/types';
import { isTerminal, taskStateRank } from '@shoal/types';
import type { TaskFiles } from './task-files.js';
import { type ContainerEvent, type CreateOptions, type EventSubscription, type Executor, type ExecutorErrorReason, executorErrorReason } from './executor.js';

export interface StatusUpdate {
  taskId: string;
  status: Partial<TaskStatus> & { state: TaskState };
}

/** The node's overlay networks, as the runner needs them around a task's container (TaskNetworks). */
export interface TaskNetworking {
  /** How to create the container of a task on networks (undefined: on none); throws when its networks are unknown. */
  containerOptions(task: Task, signal?: AbortSignal): Promise<CreateOptions | undefined>;
  /** Puts the started container (its main process) on the task's networks. */
  attach(task: Task, pid: number): Promise<void>;
  /** A running task's container found at start (the previous run put it on its networks). */
  adopt(task: Task, pid: number): Promise<void>;
  /** Every running container found at start was adopted: the networks converge from here on. */
  adopted(): Promise<void>;
  /** The task ended: its endpoints go. */
  detach(taskId: string): Promise<void>;
}

/** How the runner reaches the leader's dispatcher (the node's session supplies it). */
export interface DispatcherLink {
  /** `registryAuths`: the credentials to pull some tasks' images with (Docker's AuthConfig JSON), by task id. */
  assignments(known: string, waitMs: number): Promise<{ token: string; tasks: Task[]; registryAuths?: ReadonlyMap<string, string>; files?: ReadonlyMap<string, Uint8Array> }>;
  report(updates: StatusUpdate[]): Promise<{ rejected: string[] }>;
  /** The routing mesh's view (long poll): published ports and the running tasks behind them. */
  meshView?(known: string, waitMs: number): Promise<MeshView>;
  /** The overlay networks' view (long poll): networks, services on them, running tasks' addresses. */
  networkView?(known: string, waitMs: number): Promise<NetworkView>;
  /** Log requests for this node's containers (long poll), and the answer to one. */
  logRequests?(waitMs: number): Promise<{ requests: LogRequest[] }>;
  publishLogs?(answer: LogAnswer): Promise<unknown>;
}

/** A manager's request for the logs of some of this node's tasks (`shoal service logs`). */
export interface LogRequest {
  id: string;
  taskIds: string[];
  /** Lines per task from the end (0: all). */
  tail: number;
  /** RFC 3339: only lines after it ('' : all). */
  since: string;
}

export interface LogAnswer {
  requestId: string;
  lines: { taskId: string; timestamp: string; stream: string; data: string }[];
  error: string;
  truncated: boolean;
}

export interface MeshView {
  token: string;
  ports: {
    port: number;
    protocol: string;
    targetPort: number;
    proxyProtocol: boolean;
    serviceId: string;
    serviceName: string;
    backends: { taskId: string; nodeId: string; containerId: string; via: string }[];
  }[];
  /** Node ids the cluster removed (their certificates are refused by id). */
  removedNodes?: string[];
}

interface Local {
  task: Task;
  /** The state we last reported (or learned from the store). */
  state: TaskState;
  containerId: string;
  busy: boolean;
  /** The container died (with this exit code) while a step was under way: handled when it ends. */
  diedWhileBusy?: number;
  /** Its health check is being watched (the task has one): it runs once healthy. */
  watching?: boolean;
  /** Ends its preparation (pull, retries) when the task is no longer wanted. */
  preparing?: AbortController;
}

/** How a failed pull is retried within the task's `preparing` state (Backoff's waits). */
export interface PullRetry {
  initialMs: number;
  maxMs: number;
  attempts: number;
}

/** 1, 2, 4, 8 s between five attempts: some 15 s, then the task is rejected (and replaced). */
export const PULL_RETRY: PullRetry = { initialMs: 1_000, maxMs: 8_000, attempts: 5 };

/** What a pull may fail for and succeed on a later try: all but a spec the executor refuses. */
const RETRIED: ReadonlySet<ExecutorErrorReason> = new Set(['image-not-found', 'registry-unreachable', 'registry-unauthorized', 'image-pull-failed', 'runtime-unreachable', 'runtime-error']);

/** A task whose spec has a health check of its own (not NONE): it runs only once healthy. */
function hasHealthcheck(t: Task): boolean {
  const kind = t.spec.healthcheck?.test[0];
  return kind === 'CMD' || kind === 'CMD-SHELL';
}

/**
 * How long each of a node's long polls (assignments, mesh, networks, log requests) waits for news:
 * the managers' most (30 s). At rest every poll that runs out is one more call for the leader,
 * as a heartbeat is: at 10 s a node's four polls cost the leader twice what its heartbeats did.
 */
export const LONG_POLL_WAIT_MS = 30_000;
/** Status reports sent per call at most. */
const REPORT_BATCH = 500;
/** How often a starting task's health is looked at. */
const HEALTH_POLL_MS = 250;
/**
 * Between two full listings of this node's containers the runner trusts what it did and what
 * Docker's events told it; a listing now and then catches what both missed.
 */
const SWEEP_MS = 15_000;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class TaskRunner {
  private running = false;
  private loop: Promise<void> | undefined;
  private events: EventSubscription | undefined;
  private tasks = new Map<string, Local>();
  private token = '';
  private registryAuths: ReadonlyMap<string, string> = new Map();
  /** Secrets' and configs' data the tasks use (task-files.ts fileKey): in memory only. */
  private files: ReadonlyMap<string, Uint8Array> = new Map();
  private adopted = false;
  private lastSweep = 0;
  /**
   * Tasks this runner brought to running (adopted ones not counted), and those that ended
   * failed (a start that failed, a container that exited non-zero) or rejected (never started).
   */
  readonly counts = { started: 0, failed: 0, rejected: 0 };

  constructor(
    private readonly executor: Executor,
    private readonly link: DispatcherLink,
    private readonly log: Logger,
    private readonly pullRetry: PullRetry = PULL_RETRY,
    private readonly networks?: TaskNetworking,
    private readonly taskFiles?: TaskFiles,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    this.events = this.executor.events((e) => void this.onEvent(e), { onError: (err) => this.log.warn({ err: err.message }, 'docker event stream broke; reconnecting') });
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.events?.close();
    for (const l of this.tasks.values()) l.preparing?.abort();
    // A long poll may be in flight for seconds: don't hold a shutdown for it (its answer is
    // ignored once we stop); a step already under way gets a moment to finish.
    await Promise.race([this.loop?.catch(() => undefined), sleep(200)]);
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const a = await this.link.assignments(this.token, this.token ? LONG_POLL_WAIT_MS : 0);
        if (!this.running) break;
        this.token = a.token;
        this.registryAuths = a.registryAuths ?? new Map();
        this.files = a.files ?? new Map();
        await this.reconcile(a.tasks);
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, 'assignments unavailable; retrying');
        this.token = '';
        await sleep(200);
      }
    }
  }

  /**
   * Records a transition and queues its report. Reports are coalesced (the latest state of each
   * task) and sent in one call per flush, so ten tasks starting at once cost a few store writes,
   * not forty.
   */
  private async report(local: Local, state: TaskState, extra: Partial<TaskStatus> = {}): Promise<void> {
    if (taskStateRank(state) < taskStateRank(local.state)) return;
    if (state !== local.state) {
      if (state === 'running' && extra.message !== 'adopted') this.counts.started++;
      else if (state === 'failed') this.counts.failed++;
      else if (state === 'rejected') this.counts.rejected++;
    }
    local.state = state;
    if (isTerminal(state) && local.task.networks.length > 0) {
      void this.networks?.detach(local.task.id).catch((err: Error) => this.log.warn({ task: local.task.id, err: err.message }, 'could not take a task off its networks'));
    }
    const status = { state, timestamp: Date.now(), containerId: local.containerId, message: extra.message ?? state, err: '', exitCode: 0, ...extra };
    this.outbox.set(local.task.id, { taskId: local.task.id, status });
    if (!this.flushing) void this.flush();
  }

  private outbox = new Map<string, StatusUpdate>();
  private flushing = false;

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      // Let the transitions of this turn of the event loop join the batch.
      await new Promise<void>((r) => setImmediate(r));
      while (this.outbox.size > 0) {
        // Bounded batches: the dispatcher stores a call's reports, and thousands of tasks may
        // change state at once.
        const batch = [...this.outbox.values()].slice(0, REPORT_BATCH);
        for (const u of batch) this.outbox.delete(u.taskId);
        try {
          const r = await this.link.report(batch);
          if (r.rejected.length > 0) this.log.warn({ rejected: r.rejected }, 'status reports refused');
        } catch (err) {
          // Keep the newest state of each task for the next attempt (unless a newer one is queued).
          for (const u of batch) if (!this.outbox.has(u.taskId)) this.outbox.set(u.taskId, u);
          this.log.debug({ err: (err as Error).message }, 'status report failed; retrying');
          if (!this.running) return;
          await sleep(200);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private async reconcile(assigned: Task[]): Promise<void> {
    // The full listing of our containers: when adopting (after a start), and now and then.
    const sweep = !this.adopted || Date.now() - this.lastSweep >= SWEEP_MS;
    const owned = sweep ? await this.executor.listOwned() : undefined;
    if (sweep) this.lastSweep = Date.now();
    const byTask = new Map((owned ?? []).map((c) => [c.taskId, c]));
    if (!this.adopted) {
      this.adopted = true;
      this.log.info({ containers: owned!.length }, 'adopting this node\'s containers');
      await this.adoptNetworks(assigned, byTask);
    }
    for (const t of assigned) {
      let local = this.tasks.get(t.id);
      // 'orphaned' is the managers' word for "we lost track of it" (this node was down): the
      // container may well still run, so it is no end state for us: stop it like any other.
      const stored = t.status.state === 'orphaned' ? 'running' : t.status.state;
      if (!local) {
        local = { task: t, state: stored, containerId: t.status.containerId || byTask.get(t.id)?.id || '', busy: false };
        this.tasks.set(t.id, local);
      }
      local.task = t;
      if (taskStateRank(stored) > taskStateRank(local.state)) local.state = stored;
      if (t.desiredState === 'running' && !isTerminal(local.state)) {
        if (!local.busy && !local.watching && taskStateRank(local.state) < taskStateRank('running')) void this.launch(local);
        else if (local.state === 'running' && !local.busy && owned) void this.verify(local, byTask.get(t.id)?.state);
      } else if (local.preparing) {
        local.preparing.abort(); // its launch reports the shutdown
      } else if (!isTerminal(local.state) && !local.busy) {
        void this.shutdown(local);
      } else if (!local.busy && byTask.get(t.id)?.state === 'running') {
        // An old task's container running again: started by hand while we were not watching
        // (onEvent removes those we see start). It is not a replica any more.
        const c = byTask.get(t.id)!;
        this.log.info({ container: c.name }, 'a stale container is running: removing it');
        void this.executor.remove(c.id).catch((err: Error) => this.log.warn({ container: c.name, err: err.message }, 'could not remove container'));
      }
    }
    // Containers of ours that no assignment claims (the store pruned the task, or removed its
    // service) are removed. An old task's container stays, as history, as in Swarm; if someone
    // starts it again by hand, the 'start' event removes it (see onEvent).
    const known = new Set(assigned.map((t) => t.id));
    const unclaimed = owned
      ? owned.filter((c) => !known.has(c.taskId)).map((c) => ({ id: c.id, name: c.name, taskId: c.taskId }))
      : [...this.tasks.values()].filter((l) => !known.has(l.task.id) && l.containerId).map((l) => ({ id: l.containerId, name: l.containerId, taskId: l.task.id }));
    for (const c of unclaimed) {
      if (this.tasks.get(c.taskId)?.busy) continue;
      this.log.info({ container: c.name }, 'removing a container no task of this node wants');
      try {
        await this.executor.remove(c.id);
      } catch (err) {
        this.log.warn({ container: c.name, err: (err as Error).message }, 'could not remove container');
      }
    }
    for (const [id, l] of [...this.tasks]) {
      if (known.has(id)) continue;
      l.preparing?.abort();
      if (!l.busy) this.tasks.delete(id);
    }
    // Secret and config files stay while their task's container does (or its launch runs).
    if (owned && this.taskFiles) {
      const keep = new Set(owned.filter((c) => !unclaimed.some((u) => u.id === c.id)).map((c) => c.taskId));
      for (const l of this.tasks.values()) if (l.busy) keep.add(l.task.id);
      await this.taskFiles.sweep(keep);
    }
  }

  /**
   * After a restart, the running containers of tasks on networks are handed back to the networks
   * before anything else happens to them (their endpoints stay as the previous run left them),
   * then the networks converge: no task on a network loses its endpoint while the others come back.
   */
  private async adoptNetworks(assigned: Task[], byTask: ReadonlyMap<string, { id: string; state: string }>): Promise<void> {
    if (!this.networks) return;
    for (const t of assigned) {
      const c = byTask.get(t.id);
      if (t.networks.length === 0 || t.desiredState !== 'running' || c?.state !== 'running') continue;
      if (isTerminal(t.status.state === 'orphaned' ? 'running' : t.status.state)) continue;
      try {
        const st = await this.executor.inspect(c.id);
        if (st.running) await this.networks.adopt(t, st.pid);
      } catch (err) {
        this.log.warn({ task: t.id, err: (err as Error).message }, 'could not put an adopted task back on its networks');
      }
    }
    await this.networks.adopted();
  }

  /** assigned → accepted → preparing → starting → running (or rejected/failed with the reason). */
  private async launch(local: Local): Promise<void> {
    local.busy = true;
    const t = local.task;
    /** Started (or adopted) and to be watched until healthy. */
    let watch = '';
    try {
      if (local.containerId) {
        // Adopted after a restart: a container already exists for this task.
        const st = await this.executor.inspect(local.containerId).catch(() => undefined);
        if (st?.running) {
          // Back on its networks (a restarted agent converges them again from its tasks).
          if (t.networks.length > 0) {
            await this.networks?.attach(t, st.pid).catch((err: Error) => this.log.warn({ task: t.id, err: err.message }, 'could not put an adopted task back on its networks'));
          }
          if (hasHealthcheck(t) && st.health.status !== 'healthy') watch = local.containerId;
          else await this.report(local, 'running', { message: 'adopted' });
          return;
        }
        if (st) await this.executor.remove(local.containerId);
        local.containerId = '';
      }
      await this.report(local, 'accepted');
      await this.report(local, 'preparing');
      const ac = (local.preparing = new AbortController());
      let note: string | undefined;
      try {
        note = await this.prepare(local, ac.signal);
      } catch (err) {
        if (!ac.signal.aborted) await this.report(local, 'rejected', { err: (err as Error).message, message: 'preparing failed' });
        // No longer wanted (no container yet): shut down, unless it is this node that stops.
        else if (this.running && local.task.desiredState !== 'running') await this.report(local, 'shutdown', { message: 'shutdown' });
        return;
      } finally {
        local.preparing = undefined;
      }
      if (note) await this.report(local, 'preparing', { message: note });
      let attach: CreateOptions | undefined;
      try {
        attach = await this.networks?.containerOptions(t, ac.signal);
      } catch (err) {
        await this.report(local, 'rejected', { err: (err as Error).message, message: 'network unavailable' });
        return;
      }
      try {
        const mounts = (await this.taskFiles?.write(t, this.files)) ?? [];
        if (mounts.length > 0) attach = { ...attach, mounts };
      } catch (err) {
        await this.report(local, 'rejected', { err: (err as Error).message, message: 'secrets or configs unavailable' });
        return;
      }
      let id: string;
      try {
        id = await this.executor.create(t, attach);
      } catch (err) {
        await this.report(local, 'rejected', { err: (err as Error).message, message: 'create failed' });
        return;
      }
      local.containerId = id;
      await this.report(local, 'starting');
      try {
        await this.executor.start(id);
      } catch (err) {
        await this.executor.remove(id).catch(() => undefined);
        await this.report(local, 'failed', { err: (err as Error).message, message: 'start failed' });
        return;
      }
      if (t.networks.length > 0 && this.networks) {
        try {
          const st = await this.executor.inspect(id);
          await this.networks.attach(t, st.pid);
        } catch (err) {
          await this.executor.remove(id).catch(() => undefined);
          await this.report(local, 'failed', { err: `network attach failed: ${(err as Error).message}`, message: 'start failed' });
          return;
        }
      }
      if (hasHealthcheck(t)) watch = id;
      // (once running, the status still says which copy of the image runs)
      else await this.report(local, 'running', { message: note ? `started (${note})` : 'started' });
    } finally {
      local.busy = false;
    }
    if (watch) {
      local.watching = true;
      void this.watchHealth(local, watch).finally(() => (local.watching = false));
    }
    // A container that died while we were starting it (its 'die' event arrived meanwhile).
    if (local.diedWhileBusy !== undefined) {
      const code = local.diedWhileBusy;
      local.diedWhileBusy = undefined;
      await this.ended(local, code);
    }
  }

  /**
   * The task's image, made ready by the executor: its pull's progress and each failed attempt
   * shown in the task's `preparing` status, a failure retried with backoff while the task is
   * wanted (`signal`), the last one thrown. Returns what the executor had to say (e.g. that the
   * local copy is used).
   */
  private async prepare(local: Local, signal: AbortSignal): Promise<string | undefined> {
    const { attempts } = this.pullRetry;
    let attempt = 0;
    let note: string | undefined;
    const onProgress = (message: string) => void this.report(local, 'preparing', { message });
    await retryWithBackoff(
      async () => {
        attempt++;
        note = (await this.executor.prepare(local.task, { signal, onProgress, registryAuth: this.registryAuths.get(local.task.id) })).note;
      },
      {
        ...this.pullRetry,
        while: () => !signal.aborted,
        retryable: (err) => !signal.aborted && RETRIED.has(executorErrorReason(err)),
        onError: (err, ms) => {
          const why = (ShoalError.is(err) && err.details['why']) || (err as Error).message;
          this.log.info({ task: local.task.id, image: local.task.spec.image, err: (err as Error).message, retryInMs: ms }, 'preparing failed: retrying');
          void this.report(local, 'preparing', { message: `pull failed (${why}): retrying in ${ms >= 1000 ? `${Math.round(ms / 1000)}s` : `${ms}ms`}, attempt ${attempt + 1} of ${attempts}` });
        },
        // Node's own abortable timer: a shutdown ends the wait at once.
        sleep: (ms) => delay(ms, undefined, { signal }),
      },
    );
    if (signal.aborted) throw signal.reason;
    return note;
  }

  /** A running task whose container is gone or stopped: report how it ended. */
  private async verify(local: Local, listedState?: string): Promise<void> {
    if (!local.containerId || local.state !== 'running') return;
    if (listedState === 'running') return;
    const st = await this.executor.inspect(local.containerId).catch(() => undefined);
    if (st?.running) return;
    await this.ended(local, st?.exitCode ?? -1, st ? st.error : 'container is gone');
  }

  private async ended(local: Local, exitCode: number, error = ''): Promise<void> {
    if (isTerminal(local.state)) return;
    if (local.task.desiredState !== 'running') {
      await this.report(local, 'shutdown', { exitCode, message: 'shutdown' });
      return;
    }
    if (exitCode === 0) await this.report(local, 'complete', { exitCode, message: 'finished' });
    else await this.report(local, 'failed', { exitCode, err: error || `container exited with code ${exitCode}`, message: 'exited' });
  }

  /** Stops and removes a task's container (desired shutdown/remove), then reports shutdown. */
  private async shutdown(local: Local): Promise<void> {
    local.busy = true;
    try {
      if (local.containerId) {
        await this.executor.stop(local.containerId, local.task.spec.stopGracePeriodMs);
        await this.executor.remove(local.containerId);
      }
      await this.report(local, 'shutdown', { message: 'shutdown' });
    } catch (err) {
      this.log.warn({ task: local.task.id, err: (err as Error).message }, 'could not stop the task\'s container');
    } finally {
      local.busy = false;
    }
  }

  /**
   * A task with a health check: `starting` until its container is healthy, then `running`; when
   * it turns unhealthy (then or later) its container is stopped and the task fails, saying so.
   */
  private async watchHealth(local: Local, id: string): Promise<void> {
    const hc = local.task.spec.healthcheck!;
    const live = () => this.running && local.containerId === id && !isTerminal(local.state) && local.task.desiredState === 'running';
    while (live()) {
      // Often while it starts (Docker probes every interval: 30 s unless set); calmly once it runs.
      await sleep(local.state === 'running' ? Math.max(1_000, hc.intervalMs || 30_000) : HEALTH_POLL_MS);
      if (!live() || local.busy) continue;
      const st = await this.executor.inspect(id).catch(() => undefined);
      if (!st || !live() || local.busy) continue;
      if (!st.running) {
        await this.ended(local, st.exitCode);
        return;
      }
      if (st.health.status === 'healthy' && local.state === 'starting') {
        await this.report(local, 'running', { message: 'healthy' });
      } else if (st.health.status === 'unhealthy') {
        // Busy until the report is made: the container's 'die' event must not report it first.
        local.busy = true;
        try {
          await this.executor.stop(id, local.task.spec.stopGracePeriodMs).catch((err: Error) => this.log.warn({ task: local.task.id, err: err.message }, 'could not stop an unhealthy container'));
          await this.report(local, 'failed', { err: `container is unhealthy${st.health.lastOutput ? `: ${st.health.lastOutput}` : ''}`, message: 'unhealthy' });
        } finally {
          local.busy = false;
          local.diedWhileBusy = undefined;
        }
        return;
      }
    }
  }

  private async onEvent(e: ContainerEvent): Promise<void> {
    const local = this.tasks.get(e.taskId);
    // A task's files go with its container (a launch that replaced a dead one holds the new id).
    if (e.action === 'destroy' && this.taskFiles && (!local || local.containerId === e.containerId)) {
      await this.taskFiles.remove(e.taskId);
      return;
    }
    if (e.action === 'die') {
      if (!local || local.containerId !== e.containerId) return;
      if (local.busy) local.diedWhileBusy = e.exitCode ?? -1;
      // (starting, not busy: waiting for its health check)
      else if (local.state === 'running' || local.state === 'starting') await this.ended(local, e.exitCode ?? -1);
      return;
    }
    if (e.action === 'start' && (!local || isTerminal(local.state) || local.task.desiredState !== 'running')) {
      // Someone restarted a container whose task is over: it is not a replica any more.
      this.log.info({ container: e.containerId }, 'a stale container was started by hand: removing it');
      await this.executor.remove(e.containerId).catch(() => undefined);
    }
  }
}
