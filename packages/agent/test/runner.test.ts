// The task runner against an executor that keeps its containers in memory and a dispatcher link
// the test answers: the runner's decisions (launch, report in order, adopt, stop, remove, fail)
// without Docker or a manager. The Docker executor itself has its own suite on real Docker.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NOOP_LOGGER, ShoalError } from '@shoal/api';
import type { Task, TaskState } from '@shoal/types';
import { type ContainerEvent, type ContainerStatus, type Executor, type OwnedContainer, type PrepareOptions, type PrepareResult, LABELS, containerName, executorError } from '../src/executor.js';
import { type DispatcherLink, type PullRetry, type StatusUpdate, type TaskNetworking, TaskRunner } from '../src/runner.js';
import { assignedTask, taskSpec } from './fixtures.js';
import { AssignmentsFeed, type AssignmentsPage } from '../src/dispatcher-feeds.js';

const NODE = 'node1';

interface FakeContainer {
  id: string;
  task: Task;
  running: boolean;
  exitCode: number;
}

/** Containers in a map; images present unless listed as missing; events to whoever subscribed. */
class FakeExecutor implements Executor {
  readonly nodeId = NODE;
  readonly containers = new Map<string, FakeContainer>();
  readonly missingImages = new Set<string>();
  /** Pulls of these images fail this many more times (registry unreachable), then work. */
  readonly failingPulls = new Map<string, number>();
  /** What prepare tells the runner of its pull, once per call; it then waits for `pullGate` (if set). */
  progress: string | undefined;
  pullGate: Promise<void> | undefined;
  /** prepare's result when the image is here (e.g. a note that the local copy is used). */
  prepared: PrepareResult = {};
  readonly calls: string[] = [];
  private listeners: ((e: ContainerEvent) => void)[] = [];
  private seq = 0;

  async prepare(task: Task, opts: PrepareOptions = {}): Promise<PrepareResult> {
    this.calls.push(`prepare ${task.id}`);
    if (this.missingImages.has(task.spec.image)) throw executorError('image-not-found', `image ${task.spec.image} not found locally and cannot be pulled: no registry`);
    const failures = this.failingPulls.get(task.spec.image) ?? 0;
    if (failures > 0) {
      this.failingPulls.set(task.spec.image, failures - 1);
      throw executorError('registry-unreachable', `image ${task.spec.image} not found locally and cannot be pulled: registry unreachable: connection refused`, undefined, { why: 'registry unreachable' });
    }
    if (this.progress) opts.onProgress?.(this.progress);
    await this.pullGate;
    return this.prepared;
  }
  async create(task: Task): Promise<string> {
    const id = `c${++this.seq}`;
    this.calls.push(`create ${task.id}`);
    this.containers.set(id, { id, task, running: false, exitCode: 0 });
    return id;
  }
  async start(id: string): Promise<void> {
    this.calls.push(`start ${id}`);
    const c = this.must(id);
    c.running = true;
    this.emit(c, 'start');
  }
  async stop(id: string): Promise<void> {
    this.calls.push(`stop ${id}`);
    const c = this.containers.get(id);
    if (c?.running) this.exit(id, 143);
  }
  async remove(id: string): Promise<void> {
    this.calls.push(`remove ${id}`);
    this.containers.delete(id);
  }
  async inspect(id: string): Promise<ContainerStatus> {
    const c = this.must(id);
    return { id, name: containerName(c.task), state: c.running ? 'running' : 'exited', running: c.running, exitCode: c.exitCode, error: '', oomKilled: false, startedAt: 0, finishedAt: 0, taskId: c.task.id, ports: [], ip: '', health: { status: '', lastOutput: '' }, pid: 0 };
  }
  async listOwned(): Promise<OwnedContainer[]> {
    return [...this.containers.values()].map((c) => ({
      id: c.id,
      name: containerName(c.task),
      image: c.task.spec.image,
      state: c.running ? 'running' : 'exited',
      status: '',
      createdAt: 0,
      taskId: c.task.id,
      serviceId: c.task.serviceId,
      serviceName: c.task.serviceName,
      slot: c.task.slot,
      nodeId: NODE,
      labels: { [LABELS.nodeId]: NODE, [LABELS.taskId]: c.task.id },
    }));
  }
  async logs(): Promise<never[]> {
    return [];
  }
  events(onEvent: (e: ContainerEvent) => void) {
    this.listeners.push(onEvent);
    return { ready: Promise.resolve(), close: () => (this.listeners = this.listeners.filter((l) => l !== onEvent)) };
  }
  async ping(): Promise<void> {}
  async info(): Promise<never> {
    throw new Error('not used by the runner');
  }
  async close(): Promise<void> {}

  /** The container's process ends with `code` (as when it crashes, or is killed). */
  exit(id: string, code: number): void {
    const c = this.must(id);
    c.running = false;
    c.exitCode = code;
    this.emit(c, 'die', code);
  }
  /** A container of this node that exists before the runner starts (an agent restart). */
  existing(task: Task, running: boolean): string {
    const id = `c${++this.seq}`;
    this.containers.set(id, { id, task, running, exitCode: 0 });
    return id;
  }
  private emit(c: FakeContainer, action: ContainerEvent['action'], exitCode?: number): void {
    for (const l of this.listeners) l({ containerId: c.id, taskId: c.task.id, action, exitCode, time: Date.now() });
  }
  private must(id: string): FakeContainer {
    const c = this.containers.get(id);
    if (!c) throw executorError('container-not-found', `no such container: ${id}`);
    return c;
  }
}

/** The dispatcher as the runner sees it: the test sets the assignments; reports are recorded. */
class FakeLink implements DispatcherLink {
  private tasks: Task[] = [];
  private version = 0;
  private wake: (() => void) | undefined;
  readonly reports: StatusUpdate[] = [];

  assign(tasks: Task[]): void {
    this.tasks = tasks;
    this.version++;
    this.wake?.();
  }
  async assignments(known: string, waitMs: number): Promise<{ token: string; tasks: Task[] }> {
    if (known === String(this.version) && waitMs > 0) await new Promise<void>((r) => ((this.wake = r), setTimeout(r, waitMs).unref()));
    return { token: String(this.version), tasks: this.tasks };
  }
  async report(updates: StatusUpdate[]): Promise<{ rejected: string[] }> {
    this.reports.push(...updates);
    return { rejected: [] };
  }
  /** The states reported for one task, in order. */
  states(taskId: string): TaskState[] {
    return this.reports.filter((u) => u.taskId === taskId).map((u) => u.status.state);
  }
  last(taskId: string): StatusUpdate | undefined {
    return this.reports.filter((u) => u.taskId === taskId).at(-1);
  }
}


async function until<T>(what: string, f: () => T | undefined | false, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Failed pulls retried after 10, 20 ms, three attempts in all. */
const QUICK_RETRY: PullRetry = { initialMs: 10, maxMs: 20, attempts: 3 };

let seq = 0;
const mkTask = (over: Parameters<typeof taskSpec>[1] = {}) =>
  assignedTask({ id: `t${++seq}`, nodeId: NODE, spec: taskSpec('shoal/busybox', over), serviceId: 's1', serviceName: 'web', slot: seq });

/** Runs `body` with a runner started over `ex` and `tasks` assigned; stops it whatever happens. */
async function withRunner(
  tasks: Task[],
  body: (w: { ex: FakeExecutor; link: FakeLink; runner: TaskRunner }) => Promise<void>,
  ex = new FakeExecutor(),
  pullRetry: PullRetry = QUICK_RETRY,
  networks?: TaskNetworking,
): Promise<void> {
  const link = new FakeLink();
  const runner = new TaskRunner(ex, link, NOOP_LOGGER, pullRetry, networks);
  link.assign(tasks);
  runner.start();
  try {
    await body({ ex, link, runner });
  } finally {
    await runner.stop();
  }
}

/** The report that took task `t` to `state` (waits for it). */
const reached = (link: FakeLink, t: Task, state: TaskState) =>
  until(`${t.id} ${state}`, () => (link.last(t.id)?.status.state === state ? link.last(t.id) : undefined));

describe('TaskRunner (fake executor)', () => {
  test('an assigned task goes accepted → preparing → starting → running, its container created and started once', async () => {
    const t = mkTask();
    await withRunner([t], async ({ ex, link }) => {
      await reached(link, t, 'running');
      // Reports are coalesced per flush: whatever was sent, in forward order, ends at running.
      const states = link.states(t.id);
      const order: TaskState[] = ['accepted', 'preparing', 'starting', 'running'];
      assert.deepEqual(states, order.filter((s) => states.includes(s)), `reported in order: ${states.join(', ')}`);
      assert.deepEqual(ex.calls.filter((c) => c.startsWith('create')), [`create ${t.id}`]);
      const [c] = ex.containers.values();
      assert.equal(c!.running, true);
      assert.equal(link.last(t.id)!.status.containerId, c!.id);
    });
  });

  test('a container that exits: failed with its exit code; 0: complete', async () => {
    const [a, b] = [mkTask(), mkTask()];
    await withRunner([a, b], async ({ ex, link, runner }) => {
      await Promise.all([reached(link, a, 'running'), reached(link, b, 'running')]);
      assert.deepEqual(runner.counts, { started: 2, failed: 0, rejected: 0 }, 'two starts counted (metrics)');
      const idOf = (t: Task) => [...ex.containers.values()].find((c) => c.task.id === t.id)!.id;
      ex.exit(idOf(a), 3);
      ex.exit(idOf(b), 0);
      const failed = await reached(link, a, 'failed');
      assert.equal(failed.status.exitCode, 3);
      assert.match(failed.status.err ?? '', /exited with code 3/);
      await reached(link, b, 'complete');
      assert.deepEqual(runner.counts, { started: 2, failed: 1, rejected: 0 }, 'the failure counted, the completion not');
    });
  });

  test('a missing image: rejected, saying which; nothing created', async () => {
    const ex = new FakeExecutor();
    ex.missingImages.add('nope');
    const t = assignedTask({ id: 'tmissing', nodeId: NODE, spec: taskSpec('nope'), serviceId: 's1', serviceName: 'web' });
    await withRunner(
      [t],
      async ({ link, runner }) => {
        const r = await reached(link, t, 'rejected');
        assert.match(r.status.err ?? '', /image nope not found/);
        assert.deepEqual(runner.counts, { started: 0, failed: 0, rejected: 1 });
        assert.equal(ex.containers.size, 0);
      },
      ex,
    );
  });

  test('a failed pull is retried with backoff, each wait shown while preparing; then the task runs', async () => {
    const ex = new FakeExecutor();
    ex.failingPulls.set('flaky', 2);
    const t = assignedTask({ id: 'tflaky', nodeId: NODE, spec: taskSpec('flaky'), serviceId: 's1', serviceName: 'web' });
    await withRunner(
      [t],
      async ({ link }) => {
        await reached(link, t, 'running');
        const waits = link.reports.filter((u) => u.taskId === t.id && u.status.state === 'preparing' && u.status.message !== 'preparing').map((u) => u.status.message);
        assert.deepEqual(waits, [
          'pull failed (registry unreachable): retrying in 10ms, attempt 2 of 3',
          'pull failed (registry unreachable): retrying in 20ms, attempt 3 of 3',
        ]);
        assert.equal(ex.calls.filter((c) => c === `prepare ${t.id}`).length, 3);
      },
      ex,
    );
  });

  test('a pull that fails every attempt: rejected with its error after the last one', async () => {
    const ex = new FakeExecutor();
    ex.failingPulls.set('down', 99);
    const t = assignedTask({ id: 'tdown', nodeId: NODE, spec: taskSpec('down'), serviceId: 's1', serviceName: 'web' });
    await withRunner(
      [t],
      async ({ link }) => {
        const r = await reached(link, t, 'rejected');
        assert.equal(r.status.err, 'image down not found locally and cannot be pulled: registry unreachable: connection refused');
        assert.equal(ex.calls.filter((c) => c === `prepare ${t.id}`).length, QUICK_RETRY.attempts);
        assert.equal(ex.containers.size, 0);
      },
      ex,
    );
  });

  test('a task shut down while its pull is retried stops retrying at once and reports shutdown', async () => {
    const ex = new FakeExecutor();
    ex.failingPulls.set('down', 99);
    const t = assignedTask({ id: 'tgone', nodeId: NODE, spec: taskSpec('down'), serviceId: 's1', serviceName: 'web' });
    // The wait before the next attempt is an hour: only the shutdown can end it (a timer left
    // behind would also hold this test process open).
    await withRunner(
      [t],
      async ({ link }) => {
        await until('a retry scheduled', () => link.reports.some((u) => u.taskId === t.id && /retrying in 3600s/.test(u.status.message ?? '')));
        link.assign([{ ...t, desiredState: 'shutdown', status: { ...t.status, state: 'preparing' } }]);
        await reached(link, t, 'shutdown');
        assert.equal(ex.calls.filter((c) => c === `prepare ${t.id}`).length, 1);
      },
      ex,
      { initialMs: 3_600_000, maxMs: 3_600_000, attempts: 5 },
    );
  });

  test("a pull's progress is the preparing task's status message; a note of prepare's stays in the running one", async () => {
    const ex = new FakeExecutor();
    let release!: () => void;
    ex.pullGate = new Promise<void>((r) => (release = r));
    ex.progress = 'pulling shoal/busybox:latest: 1 of 2 layers, 0.5 MB / 1.0 MB';
    ex.prepared = { note: 'pull of shoal/busybox:latest failed (registry unreachable): using the local copy' };
    const t = mkTask();
    await withRunner(
      [t],
      async ({ link }) => {
        await until('the progress reported', () => link.last(t.id)?.status.message === ex.progress && link.last(t.id)?.status.state === 'preparing');
        release();
        const r = await reached(link, t, 'running');
        assert.equal(r.status.message, `started (${ex.prepared.note})`);
      },
      ex,
    );
  });

  test('desired shutdown: stopped and removed, then reported shutdown', async () => {
    const t = mkTask();
    await withRunner([t], async ({ ex, link }) => {
      await reached(link, t, 'running');
      const id = [...ex.containers.keys()][0]!;
      link.assign([{ ...t, desiredState: 'shutdown', status: { ...t.status, state: 'running', containerId: id } }]);
      await reached(link, t, 'shutdown');
      const [stopAt, removeAt] = [ex.calls.indexOf(`stop ${id}`), ex.calls.indexOf(`remove ${id}`)];
      assert.ok(stopAt >= 0 && stopAt < removeAt, `stopped (with its grace period), then removed: ${ex.calls.join(', ')}`);
      assert.equal(ex.containers.size, 0);
    });
  });

  test('after a restart: running tasks on networks are handed back to the networks before any task is attached', async () => {
    const calls: string[] = [];
    const networks: TaskNetworking = {
      containerOptions: async () => undefined,
      attach: async (t) => void calls.push(`attach ${t.id}`),
      adopt: async (t) => void calls.push(`adopt ${t.id}`),
      adopted: async () => void calls.push('adopted'),
      detach: async (id) => void calls.push(`detach ${id}`),
    };
    const onNet = () => ({ ...mkTask({ networks: [{ target: 'n1', aliases: [] }] }), networks: [{ networkId: 'n1', addr: '10.0.0.2/24' }] });
    const ex = new FakeExecutor();
    const kept = onNet();
    const keptId = ex.existing(kept, true);
    const fresh = { ...onNet(), networks: [{ networkId: 'n1', addr: '10.0.0.3/24' }] };
    await withRunner(
      [{ ...kept, status: { ...kept.status, state: 'running', containerId: keptId } }, fresh],
      async ({ link }) => {
        await reached(link, fresh, 'running');
        assert.deepEqual(calls, [`adopt ${kept.id}`, 'adopted', `attach ${fresh.id}`]);
      },
      ex,
      QUICK_RETRY,
      networks,
    );
  });

  test('after a restart: a running container of an assigned task is adopted, not started twice; one no task claims is removed', async () => {
    const ex = new FakeExecutor();
    const kept = mkTask();
    const keptId = ex.existing(kept, true);
    const strayId = ex.existing(mkTask(), true);
    await withRunner(
      [{ ...kept, status: { ...kept.status, state: 'running', containerId: keptId } }],
      async ({ link, runner }) => {
        await until('the stray removed', () => !ex.containers.has(strayId));
        assert.ok(ex.containers.get(keptId)?.running, 'the adopted container still runs');
        assert.equal(runner.counts.started, 0, 'an adopted task is no start');
        assert.deepEqual(ex.calls.filter((c) => c.startsWith('create') || c.startsWith('start')), [], 'nothing created or started');
        // A death after adoption is still noticed.
        ex.exit(keptId, 137);
        await reached(link, kept, 'failed');
      },
      ex,
    );
  });

  test("an old task's container started again by hand is removed (it is not a replica any more)", async () => {
    const t = mkTask();
    await withRunner([t], async ({ ex, link }) => {
      await reached(link, t, 'running');
      const id = [...ex.containers.keys()][0]!;
      ex.exit(id, 1);
      await reached(link, t, 'failed');
      // The manager keeps the failed task as history (desired shutdown); someone restarts it.
      link.assign([{ ...t, desiredState: 'shutdown', status: { ...t.status, state: 'failed', containerId: id } }]);
      await ex.start(id);
      await until('removed', () => !ex.containers.has(id));
    });
  });

  test('a leader failover: assignments unavailable a while, then the new leader\'s reset in pages: nothing stopped, started or removed', async () => {
    const tasks = [mkTask(), mkTask(), mkTask()];
    const ex = new FakeExecutor();
    /** How the dispatcher answers the raw Assignments call (as AgentSession's link passes it on). */
    let phase: 'old' | 'lost' | 'new' = 'old';
    const stored = new Map(tasks.map((t) => [t.id, t]));
    const served: string[] = [];
    const feed = new AssignmentsFeed(async (known, waitMs): Promise<AssignmentsPage> => {
      served.push(`${phase} ${known}`);
      const idle = async (token: string): Promise<AssignmentsPage> => {
        await sleep(Math.min(waitMs, 50));
        return { token, tasks: [], removed: [], reset: false, more: false };
      };
      if (phase === 'lost') throw new ShoalError('NOT_LEADER', 'this manager is not the leader', { details: { leaderAddr: '' } });
      if (phase === 'old') return known === 'old' ? idle('old') : { token: 'old', tasks: [...stored.values()], removed: [], reset: true, more: false };
      // The new leader does not take the old cursor: everything again, one task per page.
      if (known.startsWith('new')) {
        const i = Number(known.slice(3));
        if (i >= tasks.length) return idle(known);
        return { token: `new${i + 1}`, tasks: [stored.get(tasks[i]!.id)!], removed: [], reset: false, more: i + 1 < tasks.length };
      }
      return { token: 'new1', tasks: [stored.get(tasks[0]!.id)!], removed: [], reset: true, more: true };
    });
    const reports: StatusUpdate[] = [];
    const link: DispatcherLink = {
      assignments: (known, waitMs) => feed.next(known, waitMs),
      report: async (updates) => {
        if (phase === 'lost') throw new ShoalError('UNAVAILABLE', 'no dispatcher session yet');
        reports.push(...updates);
        // As the store would keep them.
        for (const u of updates) {
          const t = stored.get(u.taskId)!;
          stored.set(u.taskId, { ...t, status: { ...t.status, ...u.status } });
        }
        return { rejected: [] };
      },
    };
    const runner = new TaskRunner(ex, link, NOOP_LOGGER, QUICK_RETRY);
    runner.start();
    try {
      await until('all three running', () => [...stored.values()].every((t) => t.status.state === 'running'));
      const callsBefore = ex.calls.length;
      const reportsBefore = reports.length;
      phase = 'lost';
      await until('a few failed polls', () => served.filter((c) => c.startsWith('lost')).length >= 3);
      phase = 'new';
      await until('the reset read to its end and the next poll', () => served.includes('new new3'));
      await sleep(100);
      const after = ex.calls.slice(callsBefore);
      assert.deepEqual(after.filter((c) => /^(create|start|stop|remove)/.test(c)), [], 'no container touched');
      assert.equal([...ex.containers.values()].filter((c) => c.running).length, 3);
      assert.deepEqual(reports.slice(reportsBefore), [], 'nothing to report: every task still runs');
    } finally {
      await runner.stop();
    }
  });
});
