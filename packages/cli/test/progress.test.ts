import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Service, ServiceSpec, Task, UpdateState } from '@shoal/types';
import { CliError } from '../src/errors.js';
import { Ctx } from '../src/context.js';
import {
  type ProgressLine,
  ProgressWriter,
  VERIFY_DONE,
  changedLines,
  fitWidth,
  notConvergedReasons,
  progressBar,
  progressLines,
  runningAtVersion,
  serviceProgress,
  verifyWaitingText,
} from '../src/progress.js';
import { buildServiceSpec } from '../src/spec.js';
import { isTerminal, notConvergedMessage, updateEnded, waitForConvergence } from '../src/wait.js';
import type { ControlMethod, ControlMethods, TaskView } from '@shoal/types';

const NOW = 1_700_000_000_000;
const FULL = `[${'='.repeat(50)}>]`;
const bar = (n: number) => `[${'='.repeat(n)}>${' '.repeat(50 - n)}]`;
const NO_NODE = 'no suitable node (3 nodes: host port 8080/tcp is taken)';

function service(spec: Partial<ServiceSpec> = {}, specVersion = 1): Service {
  return {
    id: 'svc1',
    version: 3,
    createdAt: NOW,
    updatedAt: NOW,
    spec: { ...buildServiceSpec({ name: 'web', image: 'nginx:alpine', replicas: '5' }), ...spec },
    previousSpec: null,
    updateStatus: null,
    specVersion,
    endpoint: { virtualIps: [] }, jobStatus: null,
  };
}

let seq = 0;
function task(slot: number, state: Task['status']['state'], extra: Partial<Task> & { err?: string } = {}): TaskView {
  const { err = '', ...rest } = extra;
  seq++;
  const t: Task = {
    id: `task${seq}`,
    version: 1,
    createdAt: NOW + seq,
    updatedAt: NOW + seq,
    serviceId: 'svc1',
    serviceName: 'web',
    slot,
    nodeId: state === 'pending' || state === 'new' ? '' : 'node-aaaaaaaaaaaaaaaa',
    desiredState: 'running',
    status: { state, timestamp: NOW + seq, message: '', err, containerId: '', exitCode: 0 },
    spec: buildServiceSpec({ name: 'web', image: 'nginx:alpine' }),
    specVersion: 1, networks: [], jobIteration: 0,
    ...rest,
  };
  return { task: t, nodeHostname: t.nodeId ? 'host-a' : '' };
}

const texts = (lines: ProgressLine[]) => lines.map((l) => l.text);

describe('progressBar', () => {
  test("grows with the state's place in Swarm's order, as Docker's", () => {
    assert.equal(progressBar('running'), FULL);
    assert.equal(progressBar('starting'), bar(44));
    assert.equal(progressBar('preparing'), bar(33));
    assert.equal(progressBar('accepted'), bar(27));
    assert.equal(progressBar('assigned'), bar(22));
    assert.equal(progressBar('pending'), bar(16));
    assert.equal(progressBar('new'), bar(5));
    assert.equal(progressBar('failed'), '');
    assert.equal(progressBar('shutdown'), '');
    for (const s of ['new', 'pending', 'assigned', 'accepted', 'preparing', 'starting', 'running']) assert.equal(progressBar(s).length, 53);
  });
});

describe('serviceProgress: replicated', () => {
  test('one line per slot, errors instead of bars, the overall count', () => {
    const tasks = [task(1, 'running'), task(2, 'running'), task(3, 'running'), task(4, 'starting'), task(5, 'pending', { err: NO_NODE })];
    const p = serviceProgress({ service: service(), tasks });
    assert.equal(p.running, 3);
    assert.equal(p.desired, 5);
    assert.equal(p.converged, false);
    assert.deepEqual(texts(progressLines(p)), [
      'overall progress: 3 out of 5 tasks',
      `1/5: running   ${FULL}`,
      `2/5: running   ${FULL}`,
      `3/5: running   ${FULL}`,
      `4/5: starting  ${bar(44)}`,
      `5/5: ${NO_NODE}`,
    ]);
    assert.equal(notConvergedReasons(p), `slot 5: ${NO_NODE}`);
  });

  test('all running: converged; the verify line goes last', () => {
    const tasks = [1, 2, 3].map((s) => task(s, 'running'));
    const p = serviceProgress({ service: service({ replicas: 3 }), tasks });
    assert.equal(p.converged, true);
    assert.deepEqual(texts(progressLines(p, VERIFY_DONE)).slice(-1), ['verify: Service converged']);
    assert.equal(verifyWaitingText(1000), 'verify: Waiting 1 second to verify that tasks are stable...');
    assert.equal(verifyWaitingText(5000), 'verify: Waiting 5 seconds to verify that tasks are stable...');
  });

  test('no task yet (the orchestrator has not run): not converged, no slot lines', () => {
    const p = serviceProgress({ service: service({ replicas: 2 }), tasks: [] });
    assert.equal(p.converged, false);
    assert.deepEqual(texts(progressLines(p)), ['overall progress: 0 out of 2 tasks']);
  });

  test('ids are aligned past 9 replicas; other services and old tasks are ignored', () => {
    const tasks = Array.from({ length: 10 }, (_, i) => task(i + 1, 'running'));
    tasks.push(task(3, 'failed', { desiredState: 'shutdown', createdAt: NOW - 10, err: 'old' }));
    tasks.push({ ...task(1, 'pending'), task: { ...task(1, 'pending').task!, serviceId: 'other' } });
    const p = serviceProgress({ service: service({ replicas: 10 }), tasks });
    const lines = texts(progressLines(p));
    assert.equal(lines[1], `1/10:  running   ${FULL}`);
    assert.equal(lines[10], `10/10: running   ${FULL}`);
    assert.equal(p.converged, true);
  });

  test('after a scale-down the remaining slots are numbered 1..N; errors name the real slot', () => {
    const tasks = [task(1, 'running'), task(4, 'failed', { err: 'task: non-zero exit (1)' }), task(5, 'running', { desiredState: 'shutdown' })];
    const p = serviceProgress({ service: service({ replicas: 2 }), tasks });
    assert.deepEqual(texts(progressLines(p)), ['overall progress: 1 out of 2 tasks', `1/2: running   ${FULL}`, '2/2: task: non-zero exit (1)']);
    assert.equal(notConvergedReasons(p), 'slot 4: task: non-zero exit (1)');
  });

  test('a restart loop: the replacement shows its bar, the summary the previous attempt\'s error', () => {
    const tasks = [
      task(1, 'failed', { desiredState: 'shutdown', err: 'task: non-zero exit (1)' }),
      task(1, 'pending'),
      task(2, 'failed', { desiredState: 'shutdown', err: 'task: non-zero exit (1)' }),
      task(2, 'preparing'),
      task(3, 'assigned'),
    ];
    const p = serviceProgress({ service: service({ replicas: 3 }), tasks });
    assert.deepEqual(texts(progressLines(p)).slice(1), [`1/3: pending   ${bar(16)}`, `2/3: preparing ${bar(33)}`, `3/3: assigned  ${bar(22)}`]);
    assert.equal(notConvergedReasons(p), 'slots 1, 2: task: non-zero exit (1)');
  });

  test('without errors the summary lists the states; many errors are cut short', () => {
    const p = serviceProgress({ service: service({ replicas: 2 }), tasks: [task(1, 'running'), task(2, 'preparing')] });
    assert.equal(notConvergedReasons(p), 'slot 2: preparing');
    const many = Array.from({ length: 8 }, (_, i) => task(i + 1, 'pending', { err: `error ${i + 1}` }));
    const q = serviceProgress({ service: service({ replicas: 8 }), tasks: many });
    assert.equal(notConvergedReasons(q), 'slot 1: error 1; slot 2: error 2; slot 3: error 3; slot 4: error 4; slot 5: error 5; and 3 more');
  });

  test('more than 100 slots: only the overall line', () => {
    const tasks = Array.from({ length: 101 }, (_, i) => task(i + 1, 'running'));
    const p = serviceProgress({ service: service({ replicas: 101 }), tasks });
    assert.deepEqual(texts(progressLines(p)), ['overall progress: 101 out of 101 tasks']);
  });

  test('multi-line errors stay on one line', () => {
    const p = serviceProgress({ service: service({ replicas: 1 }), tasks: [task(1, 'rejected', { err: 'pull failed:\n  denied' })] });
    assert.equal(texts(progressLines(p))[1], '1/1: pull failed: denied');
  });
});

describe('serviceProgress: global', () => {
  test('one line per node (id prefix), hostnames in the summary', () => {
    const on = (node: string, host: string, state: Task['status']['state'], err = ''): TaskView => {
      const v = task(0, state, { nodeId: node, err });
      return { task: v.task, nodeHostname: host };
    };
    const tasks = [
      on('zzzzzzzzzzzzzzzzzz', 'w2', 'starting'),
      on('aaaaaaaaaaaaaaaaaa', 'm1', 'running'),
      on('mmmmmmmmmmmmmmmmmm', 'w1', 'rejected', 'pull access denied for nope'),
    ];
    const p = serviceProgress({ service: service({ mode: 'global', replicas: 0 }), tasks });
    assert.equal(p.mode, 'global');
    assert.equal(p.desired, 3);
    assert.equal(p.running, 1);
    assert.deepEqual(texts(progressLines(p)), [
      'overall progress: 1 out of 3 tasks',
      `aaaaaaaaaaaa: running   ${FULL}`,
      'mmmmmmmmmmmm: pull access denied for nope',
      `zzzzzzzzzzzz: starting  ${bar(44)}`,
    ]);
    assert.equal(notConvergedReasons(p), 'node w1: pull access denied for nope');
  });
});

describe('serviceProgress: update', () => {
  test('only tasks of the new spec version count; old ones wait for their turn', () => {
    const tasks = [
      task(1, 'shutdown', { desiredState: 'shutdown', specVersion: 1 }),
      task(1, 'running', { specVersion: 2 }),
      task(2, 'shutdown', { desiredState: 'shutdown', specVersion: 1 }),
      task(2, 'starting', { specVersion: 2 }),
      task(3, 'running', { specVersion: 1 }),
    ];
    const p = serviceProgress({ service: service({ replicas: 3 }, 2), tasks, specVersion: 2 });
    assert.equal(p.running, 1);
    assert.equal(runningAtVersion(tasks, 2), 1);
    assert.equal(runningAtVersion(tasks, 1), 2);
    assert.equal(p.converged, false);
    assert.deepEqual(texts(progressLines(p)), [
      'overall progress: 1 out of 3 tasks',
      `1/3: running   ${FULL}`,
      `2/3: starting  ${bar(44)}`,
      '3/3: running   (previous version, to be updated)',
    ]);
    assert.equal(notConvergedReasons(p), 'slot 2: starting; slot 3: not updated yet');
    // The same tasks without a version to wait for: 2 of 3 run.
    assert.equal(serviceProgress({ service: service({ replicas: 3 }, 2), tasks }).running, 2);
  });

  test('every slot replaced and running: converged', () => {
    const tasks = [task(1, 'running', { specVersion: 2 }), task(1, 'shutdown', { desiredState: 'shutdown', specVersion: 1 })];
    assert.equal(serviceProgress({ service: service({ replicas: 1 }, 2), tasks, specVersion: 2 }).converged, true);
  });
});

describe('serviceProgress: scaled to 0', () => {
  test('0 out of 0; converged once no task of the service still runs (tasks of dead nodes aside)', () => {
    const stopping = task(1, 'running', { desiredState: 'shutdown' });
    const p = serviceProgress({ service: service({ replicas: 0 }), tasks: [stopping, task(2, 'shutdown', { desiredState: 'shutdown' })] });
    assert.equal(p.converged, false);
    assert.deepEqual(texts(progressLines(p)), ['overall progress: 0 out of 0 tasks', 'stopping: 1 task still running']);
    assert.equal(notConvergedReasons(p), '1 task still running');
    assert.equal(serviceProgress({ service: service({ replicas: 0 }), tasks: [stopping], liveNodes: new Set() }).converged, true);
    assert.equal(serviceProgress({ service: service({ replicas: 0 }), tasks: [] }).converged, true);
    assert.deepEqual(texts(progressLines(serviceProgress({ service: service({ replicas: 0 }), tasks: [] }))), ['overall progress: 0 out of 0 tasks']);
  });
});

describe('ProgressWriter', () => {
  const sink = (isTTY?: boolean, columns?: number) => {
    const writes: string[] = [];
    return { out: { isTTY, columns, write: (s: string) => writes.push(s) }, writes };
  };
  const L = (...pairs: [string, string][]): ProgressLine[] => pairs.map(([key, text]) => ({ key, text }));

  test('not a terminal: plain lines, only those that changed, never an escape code', () => {
    const { out, writes } = sink(false);
    const w = new ProgressWriter(out);
    assert.equal(w.tty, false);
    w.render(L(['overall', 'overall progress: 0 out of 2 tasks'], ['slot 1', '1/2: pending'], ['slot 2', '1/2: pending']));
    w.render(L(['overall', 'overall progress: 0 out of 2 tasks'], ['slot 1', '1/2: pending'], ['slot 2', '1/2: pending']));
    w.render(L(['overall', 'overall progress: 1 out of 2 tasks'], ['slot 1', '1/2: running'], ['slot 2', '1/2: pending']));
    w.render(L(['overall', 'overall progress: 1 out of 2 tasks'], ['slot 1', '1/2: running'], ['slot 2', '1/2: pending'], ['verify', VERIFY_DONE]));
    const all = writes.join('');
    assert.equal(all, ['overall progress: 0 out of 2 tasks', '1/2: pending', '1/2: pending', 'overall progress: 1 out of 2 tasks', '1/2: running', VERIFY_DONE, ''].join('\n'));
    assert.doesNotMatch(all, /\x1b/);
  });

  test('changedLines: a line that left the block prints again when it comes back', () => {
    const printed = new Map<string, string>();
    assert.deepEqual(changedLines(printed, L(['a', 'x'], ['v', 'verify: Waiting'])), ['x', 'verify: Waiting']);
    assert.deepEqual(changedLines(printed, L(['a', 'x'])), []);
    assert.deepEqual(changedLines(printed, L(['a', 'x'], ['v', 'verify: Waiting'])), ['verify: Waiting']);
  });

  test('a terminal: the block is redrawn in place, nothing written when unchanged, a shrinking block is cleaned up', () => {
    const { out, writes } = sink(true, 80);
    const w = new ProgressWriter(out);
    assert.equal(w.tty, true);
    w.render(L(['overall', 'A'], ['1', 'B'], ['2', 'C']));
    assert.equal(writes[0], '\x1b[2KA\n\x1b[2KB\n\x1b[2KC\n');
    w.render(L(['overall', 'A'], ['1', 'B'], ['2', 'C']));
    assert.equal(writes.length, 1);
    w.render(L(['overall', 'A2'], ['1', 'B'], ['2', 'C']));
    assert.equal(writes[1], '\x1b[3A\x1b[2KA2\n\x1b[2KB\n\x1b[2KC\n');
    w.render(L(['overall', 'A3']));
    assert.equal(writes[2], '\x1b[3A\x1b[2KA3\n\x1b[2K\n\x1b[2K\n\x1b[2A');
    w.line('db');
    w.render(L(['overall', 'D']));
    assert.equal(writes.slice(3).join(''), 'db\n\x1b[2KD\n');
  });

  test('a terminal: lines are cut to its width', () => {
    const { out, writes } = sink(true, 20);
    new ProgressWriter(out).render(L(['1', `1/1: running   ${FULL}`]));
    assert.equal(writes[0], '\x1b[2K1/1: running   [==…\n');
    assert.equal(fitWidth('short', 20), 'short');
    assert.equal(fitWidth('x'.repeat(30), undefined), 'x'.repeat(30));
  });

  test('isTerminal: a TTY that is not TERM=dumb', () => {
    assert.equal(isTerminal({ write: () => 0, isTTY: true }, {}), true);
    assert.equal(isTerminal({ write: () => 0, isTTY: true }, { TERM: 'dumb' }), false);
    assert.equal(isTerminal({ write: () => 0 }, {}), false);
  });
});

describe('notConvergedMessage', () => {
  test('the count, the grouped errors, where to look', () => {
    const tasks = [task(1, 'running'), task(2, 'running'), task(3, 'running'), task(4, 'pending', { err: NO_NODE }), task(5, 'failed', { err: 'task: non-zero exit (1)' })];
    const p = serviceProgress({ service: service(), tasks });
    assert.equal(
      notConvergedMessage('web', 30_000, 'created', p),
      `web: not converged within 30s (3/5 running): slot 4: ${NO_NODE}; slot 5: task: non-zero exit (1); the service was created: see 'shoal service ps web' (use -d not to wait, --timeout to wait longer)`,
    );
    assert.match(notConvergedMessage('web', 2000, 'scaled', undefined, new Error('cannot reach a manager')), /^web: not converged within 2s \(last error: cannot reach a manager\);/);
  });
});

// ------------------------------------------------------------------ the wait loop

type Answer = { [M in ControlMethod]?: (req: ControlMethods[M][0]) => ControlMethods[M][1] };

/** A Ctx whose control calls are answered by functions (and whose clock is real). */
class FakeCtx extends Ctx {
  calls: string[] = [];
  constructor(
    private readonly answers: Answer,
    timeout: string,
    readonly err: string[] = [],
  ) {
    super({ timeout }, { write: () => 0 }, { write: (s: string) => err.push(s) }, {});
  }
  override async call<M extends ControlMethod>(method: M, req: ControlMethods[M][0]): Promise<ControlMethods[M][1]> {
    this.calls.push(method);
    const f = this.answers[method] as ((r: ControlMethods[M][0]) => ControlMethods[M][1]) | undefined;
    if (!f) throw new Error(`unexpected call ${method}`);
    return f(req);
  }
}

describe('waitForConvergence', () => {
  test('progress lines, a stability window, then converged (non-TTY)', async () => {
    let polls = 0;
    const ctx = new FakeCtx(
      {
        GetService: () => ({ service: service({ replicas: 2 }), running: 0, desired: 2, warnings: [], withRegistryAuth: false, completed: 0 }),
        ListTasks: (req) => {
          assert.equal(req.desiredState, '');
          polls++;
          return { tasks: polls === 1 ? [task(1, 'pending'), task(2, 'pending')] : [task(1, 'running'), task(2, 'running')], nextPageToken: '' };
        },
      },
      '10s',
    );
    await waitForConvergence(ctx, [{ ref: 'svc1', name: 'web' }], 'created', { pollMs: 10, stableMs: 50, tty: false });
    const out = ctx.err.join('');
    assert.match(out, /^overall progress: 0 out of 2 tasks\n1\/2: pending {3}\[/);
    assert.match(out, /overall progress: 2 out of 2 tasks\n/);
    assert.match(out, /verify: Waiting 1 second to verify that tasks are stable\.\.\.\nverify: Service converged\n$/);
    assert.ok(polls >= 3, `kept watching during the window (${polls} polls)`);
  });

  test('a task that fails within the stability window resets it', async () => {
    let polls = 0;
    const ctx = new FakeCtx(
      {
        GetService: () => ({ service: service({ replicas: 1 }), running: 0, desired: 1, warnings: [], withRegistryAuth: false, completed: 0 }),
        ListTasks: () => {
          polls++;
          if (polls === 2) return { tasks: [task(1, 'failed', { err: 'task: non-zero exit (1)' })], nextPageToken: '' };
          return { tasks: [task(1, 'running')], nextPageToken: '' };
        },
      },
      '10s',
    );
    await waitForConvergence(ctx, [{ ref: 'svc1', name: 'web' }], 'created', { pollMs: 5, stableMs: 30, tty: false });
    const lines = ctx.err.join('').split('\n');
    assert.ok(lines.includes('1/1: task: non-zero exit (1)'));
    assert.equal(lines.filter((l) => l.startsWith('verify: Waiting')).length, 2);
    assert.equal(lines.at(-2), VERIFY_DONE);
  });

  test('time runs out: one CliError naming the reasons; UNAVAILABLE is retried meanwhile', async () => {
    let n = 0;
    const ctx = new FakeCtx(
      {
        GetService: () => {
          if (++n % 2 === 0) throw new CliError('cannot reach a manager at x: connection reset', 1, 'UNAVAILABLE');
          return { service: service({ replicas: 1, constraints: ['node.hostname==nope'] }), running: 0, desired: 1, warnings: [], withRegistryAuth: false, completed: 0 };
        },
        ListTasks: () => ({ tasks: [task(1, 'pending', { err: 'no suitable node (1 node: does not satisfy node.hostname==nope)' })], nextPageToken: '' }),
      },
      '200ms',
    );
    await assert.rejects(
      waitForConvergence(ctx, [{ ref: 'svc1', name: 'web' }], 'created', { pollMs: 10, tty: false }),
      (err: unknown) => {
        assert.ok(err instanceof CliError);
        assert.equal(err.code, 'TIMEOUT');
        assert.match(err.message, /^web: not converged within 200ms \(0\/1 running\): slot 1: no suitable node \(1 node: does not satisfy node\.hostname==nope\); the service was created: see 'shoal service ps web'/);
        return true;
      },
    );
    assert.ok(n >= 3);
    assert.equal(ctx.err.join(''), 'overall progress: 0 out of 1 tasks\n1/1: no suitable node (1 node: does not satisfy node.hostname==nope)\n');
  });

  test('other errors stop the wait at once', async () => {
    const ctx = new FakeCtx({ GetService: () => { throw new CliError('no such service: web', 1, 'NOT_FOUND'); } }, '10s');
    await assert.rejects(waitForConvergence(ctx, [{ ref: 'svc1', name: 'web' }], 'created', { pollMs: 10 }), /no such service: web/);
  });

  test('scaled to 0: waits for the last task to stop; asks for the nodes only then', async () => {
    let polls = 0;
    const ctx = new FakeCtx(
      {
        GetService: () => ({ service: service({ replicas: 0 }), running: 0, desired: 0, warnings: [], withRegistryAuth: false, completed: 0 }),
        ListTasks: () => ({ tasks: [task(1, ++polls < 3 ? 'running' : 'shutdown', { desiredState: 'shutdown' })], nextPageToken: '' }),
        ListNodes: () => ({
          nodes: [{ node: { id: 'node-aaaaaaaaaaaaaaaa', status: { state: 'ready' } } as never, leader: true, reachability: 'reachable' }],
        }),
      },
      '10s',
    );
    await waitForConvergence(ctx, [{ ref: 'svc1', name: 'web' }], 'scaled', { pollMs: 5, stableMs: 10, tty: false });
    assert.equal(ctx.calls.filter((c) => c === 'ListNodes').length, 2);
    assert.equal(
      ctx.err.join(''),
      ['overall progress: 0 out of 0 tasks', 'stopping: 1 task still running', verifyWaitingText(10), VERIFY_DONE, ''].join('\n'),
    );
  });

  test('several services: one after the other, each under its name', async () => {
    const ctx = new FakeCtx(
      {
        GetService: (req) => ({ service: { ...service({ replicas: 0, name: req.service }), id: 'svc1' }, running: 0, desired: 0, warnings: [], withRegistryAuth: false, completed: 0 }),
        ListTasks: () => ({ tasks: [], nextPageToken: '' }),
      },
      '10s',
    );
    await waitForConvergence(ctx, [{ ref: 'web', name: 'web' }, { ref: 'db', name: 'db' }], 'scaled', { pollMs: 5, stableMs: 0, tty: false });
    assert.equal(ctx.err.join(''), ['web', 'overall progress: 0 out of 0 tasks', VERIFY_DONE, 'db', 'overall progress: 0 out of 0 tasks', VERIFY_DONE, ''].join('\n'));
  });
});

describe('updateEnded: a wait after an update or a rollback', () => {
  const st = (state: UpdateState, message = 'm') => ({ state, startedAt: 1, completedAt: 0, message });
  test('after an update: a pause ends it, a rollback once it has run its course', () => {
    const t = { ref: 's', name: 'web', specVersion: 2, watch: 'update' as const };
    assert.equal(updateEnded(t, st('updating'), 2), undefined);
    assert.equal(updateEnded(t, st('completed'), 2), undefined);
    assert.equal(updateEnded(t, st('paused', 'update paused due to failure or early termination of task x'), 2), 'update paused due to failure or early termination of task x');
    assert.equal(updateEnded(t, st('rollback_started', 'update rolled back due to y'), 3), undefined);
    assert.equal(updateEnded(t, st('rollback_completed', 'update rolled back due to y'), 3), 'update rolled back due to y; the previous spec runs again');
    assert.equal(updateEnded(t, st('rollback_paused', 'rollback paused due to z'), 3), 'rollback paused due to z');
    // An older rollback (before this update) is not this update's.
    assert.equal(updateEnded(t, st('rollback_completed'), 2), undefined);
  });
  test('after a rollback: only a paused rollback ends it; without watch nothing does', () => {
    const t = { ref: 's', name: 'web', specVersion: 4, watch: 'rollback' as const };
    assert.equal(updateEnded(t, st('rollback_started'), 4), undefined);
    assert.equal(updateEnded(t, st('rollback_paused', 'rollback paused due to z'), 4), 'rollback paused due to z');
    assert.equal(updateEnded({ ref: 's', name: 'web' }, st('paused'), 4), undefined);
  });
});

describe('waiting for a job (replicated-job, global-job)', () => {
  const job = (over: Partial<ServiceSpec> = {}): Service => ({
    ...service(),
    spec: { ...buildServiceSpec({ name: 'web', image: 'busybox', mode: 'replicated-job', replicas: '3', maxConcurrent: '2' }), ...over },
    jobStatus: { jobIteration: 1, lastExecution: NOW },
  });
  const jt = (slot: number, state: Task['status']['state'], extra: Partial<Task> & { err?: string } = {}) => task(slot, state, { jobIteration: 1, ...extra });

  test("docker's job progress, then `verify: Job complete` once every completion is in (older iterations not counted)", async () => {
    let polls = 0;
    const ctx = new FakeCtx(
      {
        GetService: () => ({ service: job(), running: 0, desired: 2, warnings: [], withRegistryAuth: false, completed: 0 }),
        ListTasks: () => {
          polls++;
          const old = task(1, 'complete', { jobIteration: 0, desiredState: 'complete' });
          if (polls === 1) return { tasks: [old, jt(1, 'running'), jt(2, 'running')], nextPageToken: '' };
          return { tasks: [old, jt(1, 'complete', { desiredState: 'complete' }), jt(2, 'complete', { desiredState: 'complete' }), jt(3, 'complete')], nextPageToken: '' };
        },
      },
      '10s',
    );
    await waitForConvergence(ctx, [{ ref: 'svc1', name: 'web' }], 'created', { pollMs: 10, stableMs: 5_000, tty: false });
    const out = ctx.err.join('');
    assert.match(out, /^job progress: 0 out of 3 complete\nactive tasks: 2 out of 2 tasks\n1\/3: running/);
    assert.match(out, /job progress: 3 out of 3 complete\nactive tasks: 0 out of 0 tasks\n/);
    assert.match(out, /verify: Job complete\n$/);
    assert.equal(polls, 2, 'no stability window: a complete job has nothing left running');
  });

  test('a slot whose restart policy gives up ends the wait with its error', async () => {
    const ctx = new FakeCtx(
      {
        GetService: () => ({ service: job({ restartPolicy: { condition: 'none', delayMs: 0, maxAttempts: 0, windowMs: 0 } }), running: 0, desired: 2, warnings: [], withRegistryAuth: false, completed: 0 }),
        ListTasks: () => ({ tasks: [jt(1, 'failed', { desiredState: 'shutdown', err: 'container exited with code 3' }), jt(2, 'running')], nextPageToken: '' }),
      },
      '10s',
    );
    await assert.rejects(waitForConvergence(ctx, [{ ref: 'svc1', name: 'web' }], 'created', { pollMs: 10, tty: false }), (err: unknown) => {
      assert.ok(err instanceof CliError);
      assert.equal(err.message, "web: the job cannot complete: slot 1: container exited with code 3; see 'shoal service ps web'");
      return true;
    });
  });

  test('a failure the policy restarts is waited through', async () => {
    let polls = 0;
    const ctx = new FakeCtx(
      {
        GetService: () => ({ service: job({ replicas: 1, maxConcurrent: 1 }), running: 0, desired: 1, warnings: [], withRegistryAuth: false, completed: 0 }),
        ListTasks: () => {
          polls++;
          const failed = jt(1, 'failed', { desiredState: 'shutdown', err: 'exit 1' });
          return { tasks: polls === 1 ? [failed, jt(1, 'pending')] : [failed, jt(1, 'complete')], nextPageToken: '' };
        },
      },
      '10s',
    );
    await waitForConvergence(ctx, [{ ref: 'svc1', name: 'web' }], 'created', { pollMs: 10, tty: false });
    assert.match(ctx.err.join(''), /verify: Job complete\n$/);
  });
});
