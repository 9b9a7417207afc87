// Jobs (`--mode replicated-job | global-job`) in the orchestrator's passes, on a real ClusterStore:
// completions counted, concurrency bounded, failures replaced per the restart policy, completed
// tasks never run again, a new iteration replacing the old one's tasks, a global job's node that
// joins later getting its run. The agent's part (placing, running, exiting) is played by the test.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterStore, decodeTxResult, encodeTx, isTerminal, type Op, type Service, type SpecInput, type Task, updateOp } from '@shoal/store';
import { T0, mkNode } from './fixtures.js';
import { validateServiceSpec } from '../src/controlapi/validate.js';
import { reconcile } from '../src/orchestrator/reconcile.js';
import { RestartDelays } from '../src/orchestrator/restart-delays.js';
import { jobProgress, succeeded } from '../src/orchestrator/jobs.js';
import { withJobSpec } from '../src/service-update.js';

const jobSpec = (over: SpecInput = {}) => validateServiceSpec({ name: 'job', image: 'busybox', mode: 'replicated-job', restartPolicy: { condition: 'on-failure', delayMs: 0 }, ...over });

class World {
  readonly store = new ClusterStore();
  wall = T0;
  readonly restarts = new RestartDelays(this.store, () => 0);
  private index = 0;
  private ids = 0;
  /** The most tasks of the service that were busy (placed or running, not stopped) at once. */
  maxBusy = 0;

  constructor(over: SpecInput, nodes = ['n1']) {
    const spec = jobSpec(over);
    const svc: Service = { id: 'svc', version: 0, createdAt: T0, updatedAt: T0, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: { jobIteration: 0, lastExecution: T0 } };
    this.tx([...nodes.map((n) => ({ op: 'create', kind: 'node', object: mkNode(n) }) as Op), { op: 'create', kind: 'service', object: svc }]);
  }

  tx(ops: Op[]): void {
    const r = decodeTxResult(this.store.apply(encodeTx(ops), ++this.index));
    if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  }

  pass(): Op[] {
    this.wall += 1;
    const ops = reconcile(this.store, { now: this.wall, newId: () => `t${++this.ids}`, restartDelayLeft: (t, ms) => this.restarts.remaining(t, ms) }).ops();
    if (ops.length > 0) this.tx(ops);
    this.maxBusy = Math.max(this.maxBusy, this.busy().length);
    return ops;
  }

  get service(): Service {
    return this.store.get('service', 'svc')!;
  }

  tasks(): Task[] {
    return this.store.list('task').filter((t) => t.serviceId === 'svc');
  }

  busy(): Task[] {
    return this.tasks().filter((t) => t.desiredState === 'running' && !isTerminal(t.status.state));
  }

  /** The agents: every task meant to run is placed (on n1 unless it has a node) and runs. */
  runAll(): Task[] {
    const ts = this.busy().filter((t) => t.status.state !== 'running');
    if (ts.length > 0) this.tx(ts.map((t) => updateOp('task', { ...t, nodeId: t.nodeId || 'n1', status: { ...t.status, state: 'running' as const, timestamp: this.wall } })));
    this.maxBusy = Math.max(this.maxBusy, this.busy().length);
    return this.busy();
  }

  exit(t: Task, code: number): void {
    const cur = this.store.get('task', t.id)!;
    this.tx([updateOp('task', { ...cur, status: { ...cur.status, state: code === 0 ? 'complete' : 'failed', exitCode: code, timestamp: this.wall } })]);
  }

  completions(): number {
    return jobProgress(this.service, this.tasks()).completed;
  }
}

describe('replicated jobs', () => {
  test('run until `replicas` tasks completed, never more than max-concurrent at once, and no task after', () => {
    const w = new World({ replicas: 5, maxConcurrent: 2 });
    w.pass();
    assert.equal(w.busy().length, 2);
    assert.deepEqual(w.busy().map((t) => t.slot).sort(), [1, 2]);
    for (let round = 0; round < 10 && w.completions() < 5; round++) {
      const running = w.runAll();
      assert.ok(running.length <= 2, `${running.length} running at once`);
      // One at a time: a completion frees exactly one place.
      w.exit(running[0]!, 0);
      w.pass();
    }
    assert.equal(w.completions(), 5);
    assert.equal(w.maxBusy, 2);
    // The last one still running completes; then the job is done and stays done.
    for (const t of w.runAll()) w.exit(t, 0);
    w.pass();
    assert.equal(w.pass().length, 0, 'a finished job makes no more decisions');
    const done = w.tasks().filter(succeeded);
    assert.equal(done.length, 5, 'one completion per slot');
    assert.deepEqual(done.map((t) => t.slot).sort(), [1, 2, 3, 4, 5]);
    assert.ok(done.every((t) => t.desiredState === 'complete'), 'a completed task is meant to be complete (service ps: Complete)');
    assert.deepEqual(jobProgress(w.service, w.tasks()), { running: 0, desired: 0, completed: 5 });
  });

  test('max-concurrent defaults to replicas: all of them start at once', () => {
    const w = new World({ replicas: 3 });
    assert.equal(w.service.spec.maxConcurrent, 3);
    w.pass();
    assert.equal(w.busy().length, 3);
  });

  test('a failed task is replaced in its slot (restart on-failure); a completed one is never restarted', () => {
    const w = new World({ replicas: 2 });
    w.pass();
    const [a, b] = w.runAll().sort((x, y) => x.slot - y.slot);
    w.exit(a!, 0);
    w.exit(b!, 3);
    w.pass();
    const busy = w.busy();
    assert.equal(busy.length, 1, 'only the failed slot runs again');
    assert.equal(busy[0]!.slot, b!.slot);
    assert.notEqual(busy[0]!.id, b!.id);
    assert.equal(w.store.get('task', b!.id)!.desiredState, 'shutdown');
    w.runAll();
    w.exit(busy[0]!, 0);
    w.pass();
    assert.equal(w.completions(), 2);
    assert.equal(w.tasks().length, 3, 'two completions and the one failure: nothing else ran');
  });

  test('restart condition none: a failed slot gives up, no other slot takes its place, the job never completes', () => {
    const w = new World({ replicas: 3, maxConcurrent: 1, restartPolicy: { condition: 'none', delayMs: 0 } });
    w.pass();
    const [first] = w.runAll();
    w.exit(first!, 1);
    w.pass();
    // The next slot runs (the failed one holds no concurrency), but slot 1 is never retried.
    for (let i = 0; i < 5; i++) {
      const r = w.runAll();
      if (r.length === 0) break;
      w.exit(r[0]!, 0);
      w.pass();
    }
    assert.equal(w.completions(), 2);
    assert.equal(w.tasks().length, 3);
    assert.equal(w.tasks().filter((t) => t.slot === 1).length, 1);
    assert.equal(w.pass().length, 0);
  });

  test('restart max attempts: a slot is retried that many times, then gives up', () => {
    const w = new World({ replicas: 1, restartPolicy: { condition: 'on-failure', delayMs: 0, maxAttempts: 2 } });
    w.pass();
    for (let i = 0; i < 5; i++) {
      const r = w.runAll();
      if (r.length === 0) break;
      w.exit(r[0]!, 1);
      w.pass();
    }
    assert.equal(w.tasks().length, 3, 'the first run and two restarts');
    assert.equal(w.busy().length, 0);
  });

  test('a task on a node that went down is replaced in its slot', () => {
    const w = new World({ replicas: 1 });
    w.pass();
    const [t] = w.runAll();
    const n1 = w.store.get('node', 'n1')!;
    w.tx([updateOp('node', { ...n1, status: { ...n1.status, state: 'down' } })]);
    w.pass();
    assert.equal(w.store.get('task', t!.id)!.status.state, 'orphaned');
    const [r] = w.busy();
    assert.equal(r!.slot, 1);
    assert.notEqual(r!.id, t!.id);
  });

  test('an update (any, even unchanged: --force) starts a new iteration: the old tasks stop, all the completions run again', () => {
    const w = new World({ replicas: 2, maxConcurrent: 1 });
    w.pass();
    w.exit(w.runAll()[0]!, 0);
    w.pass();
    const old = w.runAll();
    assert.equal(old.length, 1);
    assert.equal(w.completions(), 1);
    const next = withJobSpec(w.service, w.service.spec, w.wall);
    assert.equal(next.jobStatus!.jobIteration, 1);
    assert.equal(next.updateStatus, null, 'a job is never rolled out');
    w.tx([updateOp('service', next)]);
    w.pass();
    assert.equal(w.store.get('task', old[0]!.id)!.desiredState, 'shutdown', 'the old iteration\'s running task stops');
    assert.equal(w.completions(), 0, 'completions count in the current iteration only');
    const fresh = w.busy();
    assert.equal(fresh.length, 1);
    assert.equal(fresh[0]!.jobIteration, 1);
    assert.equal(fresh[0]!.slot, 1);
    for (let i = 0; i < 4 && w.completions() < 2; i++) {
      for (const t of w.runAll()) w.exit(t, 0);
      w.pass();
    }
    assert.equal(w.completions(), 2);
    assert.ok(w.service.jobStatus!.lastExecution > T0);
  });
});

describe('global jobs', () => {
  test('one completion per node; a node that joins later gets its run; nothing runs twice', () => {
    const w = new World({ mode: 'global-job' }, ['n1', 'n2']);
    w.pass();
    const first = w.busy();
    assert.deepEqual(first.map((t) => t.nodeId).sort(), ['n1', 'n2']);
    assert.ok(first.every((t) => t.slot === 0));
    for (const t of w.runAll()) w.exit(t, 0);
    w.pass();
    assert.equal(w.pass().length, 0);
    assert.deepEqual(jobProgress(w.service, w.tasks()), { running: 0, desired: 0, completed: 2 });
    w.tx([{ op: 'create', kind: 'node', object: mkNode('n3') }]);
    w.pass();
    const late = w.busy();
    assert.deepEqual(late.map((t) => t.nodeId), ['n3']);
    for (const t of w.runAll()) w.exit(t, 0);
    w.pass();
    assert.equal(w.tasks().length, 3);
    assert.equal(w.completions(), 3);
  });

  test('a failed node run is retried on its node; a drained node gets none', () => {
    const w = new World({ mode: 'global-job' }, ['n1', 'n2']);
    const n2 = w.store.get('node', 'n2')!;
    w.tx([updateOp('node', { ...n2, spec: { ...n2.spec, availability: 'drain' } })]);
    w.pass();
    const [t] = w.runAll();
    assert.equal(t!.nodeId, 'n1');
    assert.equal(w.busy().length, 1);
    w.exit(t!, 2);
    w.pass();
    const [r] = w.busy();
    assert.equal(r!.nodeId, 'n1');
    assert.notEqual(r!.id, t!.id);
  });
});

describe('job spec rules (docker\'s)', () => {
  const bad = (over: SpecInput, re: RegExp) => assert.throws(() => jobSpec(over), re);
  test('defaults: replicas 1, max-concurrent = replicas, restart on-failure', () => {
    const s = validateServiceSpec({ name: 'job', image: 'busybox', mode: 'replicated-job' });
    assert.equal(s.replicas, 1);
    assert.equal(s.maxConcurrent, 1);
    assert.equal(s.restartPolicy.condition, 'on-failure');
    const g = validateServiceSpec({ name: 'job', image: 'busybox', mode: 'global-job' });
    assert.equal(g.replicas, 0);
    assert.equal(g.maxConcurrent, 0);
  });
  test('refused: max-concurrent above replicas, restart any, update or rollback settings, replicas on a global job', () => {
    bad({ replicas: 2, maxConcurrent: 3 }, /max concurrent \(3\) cannot exceed replicas \(2\)/);
    bad({ restartPolicy: { condition: 'any' } }, /restart condition "any" is not allowed for a job/);
    bad({ updateConfig: { parallelism: 3 } }, /takes no update settings/);
    bad({ rollbackConfig: { order: 'start-first' } }, /takes no rollback settings/);
    bad({ mode: 'global-job', replicas: 2 }, /replicas cannot be set on a global job/);
    bad({ mode: 'global-job', maxConcurrent: 2 }, /only for replicated jobs/);
    assert.throws(() => validateServiceSpec({ name: 'web', image: 'busybox', maxConcurrent: 2 }), /only for replicated jobs/);
  });
  test('a completed job spec completes again unchanged (an update resends it)', () => {
    const s = jobSpec({ replicas: 4, maxConcurrent: 2 });
    assert.deepEqual(validateServiceSpec(s), s);
  });
});
