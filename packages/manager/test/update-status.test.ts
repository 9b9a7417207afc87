// Rolling updates and their failure actions, on the orchestrator's pure function: a ClusterStore
// fed by reconcile()'s transactions, with a small agent in the loop that runs (or fails) tasks
// and a clock the test moves. Covers completion after the monitor period, pause, continue,
// automatic rollback, the failure ratio, a failing rollback, and global services.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterStore, decodeTxResult, encodeTx, type Op, type Service, type ServiceSpec, type Task, updateOp } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { reconcile } from '../src/orchestrator/reconcile.js';
import { rolledBack, withSpec } from '../src/service-update.js';
import { RestartDelays } from '../src/orchestrator/restart-delays.js';

/** The suite's spec: tasks of args "good ..." run, others fail; updates watched for 1 s. */
function spec(over: Partial<ServiceSpec> = {}): ServiceSpec {
  const rollout = { parallelism: 1, delayMs: 0, failureAction: 'pause' as const, order: 'stop-first' as const, monitorMs: 1000, maxFailureRatio: 0 };
  return mkSpec({ args: ['good', 'v1'], updateConfig: rollout, rollbackConfig: rollout, ...over });
}

/** A store driven by reconcile(), with an agent that runs tasks whose args start with "good". */
class Sim {
  readonly store = new ClusterStore();
  now = T0;
  private index = 0;
  private ids = 0;
  private rr = 0;
  readonly nodes = ['n1', 'n2', 'n3'];
  /** Whether the agent fails a task when it starts it (default: args not starting with "good"). */
  fails: (t: Task) => boolean = (t) => t.spec.args[0] !== 'good';
  /** Restart delays on the test's clock (the suite's specs restart without delay). */
  private readonly restarts = new RestartDelays(this.store, () => this.now);

  constructor() {
    this.tx(this.nodes.map((n) => ({ op: 'create', kind: 'node', object: mkNode(n) }) as Op));
  }

  tx(ops: Op[]): void {
    const r = decodeTxResult(this.store.apply(encodeTx(ops), ++this.index));
    if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  }

  service(): Service {
    return this.store.list('service')[0]!;
  }

  create(s: ServiceSpec): void {
    const svc: Service = { id: 'svc1', version: 0, createdAt: this.now, updatedAt: this.now, spec: s, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null };
    this.tx([{ op: 'create', kind: 'service', object: svc }]);
  }

  /** What UpdateService stores. */
  update(next: ServiceSpec): void {
    const s = this.service();
    this.now += 10;
    this.tx([updateOp('service', withSpec(s, next, this.now))]);
  }

  /** What RollbackService stores. */
  rollback(): void {
    const s = this.service();
    this.now += 10;
    this.tx([updateOp('service', rolledBack({ ...s, previousSpec: s.previousSpec! }, this.now, 'manually requested rollback'))]);
  }

  /** One orchestrator pass, then the agents' reports; the clock moves 100 ms. */
  step(): void {
    this.now += 100;
    const ops = reconcile(this.store, { now: this.now, newId: () => `t${++this.ids}`, restartDelayLeft: (t, ms) => this.restarts.remaining(t, ms) }).ops();
    if (ops.length > 0) this.tx(ops);
    const reports: Op[] = [];
    for (const t of this.store.list('task')) {
      let next: Task | undefined;
      if (t.desiredState !== 'running') {
        if (!['shutdown', 'failed', 'complete', 'rejected', 'orphaned'].includes(t.status.state)) next = this.report(t, 'shutdown');
      } else if (t.status.state === 'pending' || t.status.state === 'new') {
        // The scheduler's part: round robin (global tasks come with their node).
        next = { ...t, nodeId: t.nodeId || this.nodes[this.rr++ % this.nodes.length]!, status: { ...t.status, state: 'assigned', timestamp: this.now } };
      } else if (t.status.state === 'assigned') {
        next = this.fails(t) ? this.report(t, 'failed', 'container exited with code 1') : this.report(t, 'running');
      }
      if (next) reports.push(updateOp('task', next));
    }
    if (reports.length > 0) this.tx(reports);
  }

  private report(t: Task, state: Task['status']['state'], err = ''): Task {
    return { ...t, status: { ...t.status, state, err, exitCode: state === 'failed' ? 1 : 0, timestamp: this.now } };
  }

  /** Steps until `done` holds (at most `max` steps). */
  until(what: string, done: () => boolean, max = 200): void {
    for (let i = 0; i < max; i++) {
      if (done()) return;
      this.step();
    }
    assert.fail(`not reached in ${max} steps: ${what} (status ${JSON.stringify(this.service().updateStatus)})`);
  }

  current(): Task[] {
    return this.store.list('task').filter((t) => t.desiredState === 'running');
  }

  running(specVersion: number): number {
    return this.current().filter((t) => t.specVersion === specVersion && t.status.state === 'running').length;
  }
}

function started(s: Sim, over: Partial<ServiceSpec> = {}): Sim {
  s.create(spec(over));
  s.until('3 running', () => s.running(1) === (over.mode === 'global' ? 3 : (over.replicas ?? 3)));
  return s;
}

describe('rolling update status and failure actions', () => {
  test('an update completes once every task runs the new spec and the monitor period has passed', () => {
    const s = started(new Sim());
    s.update(spec({ args: ['good', 'v2'] }));
    let maxNew = 0;
    s.until('all on v2', () => {
      maxNew = Math.max(maxNew, s.current().filter((t) => t.specVersion === 2 && t.status.state !== 'running').length);
      return s.running(2) === 3;
    });
    assert.ok(maxNew <= 1, 'one slot at a time');
    assert.equal(s.service().updateStatus?.state, 'updating', 'watched for the monitor period first');
    const lastStart = Math.max(...s.current().map((t) => t.status.timestamp));
    s.until('completed', () => s.service().updateStatus?.state === 'completed');
    const us = s.service().updateStatus!;
    assert.ok(us.completedAt >= lastStart + 1000, 'not before the monitor period');
    assert.equal(us.message, 'update completed');
  });

  test('pause: the first failed task stops the update; the other slots keep the old spec', () => {
    const s = started(new Sim());
    s.update(spec({ args: ['bad', 'v2'] }));
    s.until('paused', () => s.service().updateStatus?.state === 'paused');
    const us = s.service().updateStatus!;
    assert.match(us.message, /^update paused due to failure or early termination of task t\d+ \(container exited with code 1\)$/);
    for (let i = 0; i < 30; i++) s.step();
    assert.equal(s.running(1), 2, 'no further batch while paused');
    assert.equal(s.service().updateStatus?.state, 'paused');
    // A new update (the fix) starts over.
    s.update(spec({ args: ['good', 'v3'] }));
    s.until('completed', () => s.service().updateStatus?.state === 'completed');
    assert.equal(s.running(3), 3);
  });

  test('continue: failures do not stop the update', () => {
    const s = started(new Sim(), { updateConfig: { ...spec().updateConfig, failureAction: 'continue' } });
    s.update(spec({ args: ['bad', 'v2'], updateConfig: { ...spec().updateConfig, failureAction: 'continue' } }));
    s.until('no task of v1 left', () => s.current().every((t) => t.specVersion === 2));
    assert.equal(s.service().updateStatus?.state, 'updating', 'never complete: its tasks do not run');
  });

  test('rollback: a failed task brings the previous spec back, rolled out, then rollback_completed', () => {
    const cfg = { ...spec().updateConfig, failureAction: 'rollback' as const };
    const s = started(new Sim(), { updateConfig: cfg });
    s.update(spec({ args: ['bad', 'v2'], updateConfig: cfg }));
    s.until('rolled back', () => s.service().updateStatus?.state === 'rollback_started');
    const svc = s.service();
    assert.deepEqual(svc.spec.args, ['good', 'v1']);
    assert.deepEqual(svc.previousSpec?.args, ['bad', 'v2']);
    assert.equal(svc.specVersion, 3);
    assert.match(svc.updateStatus!.message, /^update rolled back due to failure or early termination of task t\d+ \(container exited with code 1\)$/);
    s.until('rollback completed', () => s.service().updateStatus?.state === 'rollback_completed');
    assert.ok(s.current().every((t) => t.spec.args[1] === 'v1' && t.status.state === 'running'));
    // Only the slot the update reached was replaced: the two it never touched kept their tasks.
    assert.deepEqual([s.running(1), s.running(3)], [2, 1]);
    assert.match(s.service().updateStatus!.message, /^update rolled back due to failure or early termination of task t\d+/, 'the reason stays');
  });

  test('max failure ratio: failures up to the ratio are tolerated, beyond it the action applies', () => {
    const cfg = { ...spec().updateConfig, maxFailureRatio: 0.5 };
    for (const [failing, expected] of [
      [2, 'completed'],
      [3, 'paused'],
    ] as const) {
      const s = started(new Sim(), { replicas: 4, updateConfig: cfg });
      // The first `failing` tasks of v2 fail once; their replacements run.
      let failed = 0;
      s.fails = (t) => t.specVersion === 2 && failed < failing && ++failed > 0;
      s.update(spec({ replicas: 4, args: ['good', 'v2'], updateConfig: cfg }));
      s.until(expected, () => s.service().updateStatus?.state === expected);
      assert.equal(failed, failing);
    }
  });

  test('a rollback whose tasks fail too pauses (rollback_paused)', () => {
    const cfg = { ...spec().updateConfig, failureAction: 'rollback' as const };
    const s = new Sim();
    // The "previous" spec fails as well: v1 is bad, v2 is bad.
    s.create(spec({ args: ['bad', 'v1'], updateConfig: cfg }));
    s.step();
    s.update(spec({ args: ['bad', 'v2'], updateConfig: cfg }));
    s.until('rollback paused', () => s.service().updateStatus?.state === 'rollback_paused');
    assert.match(s.service().updateStatus!.message, /^rollback paused due to failure or early termination of task/);
  });

  test('a rollback follows the rollback settings, not the update settings', () => {
    // Updates one slot at a time; rollbacks all at once.
    const rb = { ...spec().updateConfig, parallelism: 0 };
    const s = started(new Sim(), { rollbackConfig: rb });
    s.update(spec({ args: ['good', 'v2'], rollbackConfig: rb }));
    s.until('update completed', () => s.service().updateStatus?.state === 'completed');
    s.rollback();
    let maxNew = 0;
    s.until('rollback completed', () => {
      maxNew = Math.max(maxNew, s.current().filter((t) => t.specVersion === 3 && t.status.state !== 'running').length);
      return s.service().updateStatus?.state === 'rollback_completed';
    });
    assert.equal(maxNew, 3, 'every slot at once');
    assert.equal(s.service().updateStatus?.message, 'manually requested rollback');
    assert.ok(s.current().every((t) => t.spec.args[1] === 'v1'));
  });

  test('global services are updated node by node, and complete', () => {
    const s = started(new Sim(), { mode: 'global', replicas: 0 });
    s.update(spec({ mode: 'global', replicas: 0, args: ['good', 'v2'] }));
    let maxNew = 0;
    s.until('completed', () => {
      maxNew = Math.max(maxNew, s.current().filter((t) => t.specVersion === 2 && t.status.state !== 'running').length);
      return s.service().updateStatus?.state === 'completed';
    });
    assert.ok(maxNew <= 1, 'one node at a time');
    assert.deepEqual(s.current().map((t) => t.nodeId).sort(), ['n1', 'n2', 'n3']);
    assert.ok(s.current().every((t) => t.specVersion === 2 && t.status.state === 'running'));
  });
});
