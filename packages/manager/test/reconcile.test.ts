// The orchestrator's decisions on a real ClusterStore: restart delays counted on the leader's
// monotonic clock (whatever the status timestamps and the wall clock say), and which task a slot
// (or a global service's node) keeps when it has a duplicate.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterStore, decodeTxResult, encodeTx, type Op, type Service, type ServiceSpec, type Task, type TaskState, updateOp } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { reconcile } from '../src/orchestrator/reconcile.js';
import { RestartDelays } from '../src/orchestrator/restart-delays.js';

const HOUR = 3_600_000;
const DELAY = 5_000;

/** A store, a wall clock and a separate monotonic clock, both moved by the test. */
class World {
  readonly store = new ClusterStore();
  wall = T0;
  mono = 1_000;
  readonly restarts = new RestartDelays(this.store, () => this.mono);
  wakes: number[] = [];
  private index = 0;
  private ids = 0;

  constructor(spec: ServiceSpec, nodes = ['n1']) {
    const svc: Service = { id: 'svc', version: 0, createdAt: T0, updatedAt: T0, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null };
    this.tx([...nodes.map((n) => ({ op: 'create', kind: 'node', object: mkNode(n) }) as Op), { op: 'create', kind: 'service', object: svc }]);
  }

  tx(ops: Op[]): void {
    const r = decodeTxResult(this.store.apply(encodeTx(ops), ++this.index));
    if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
  }

  /** One pass, committed. */
  pass(): Op[] {
    this.wakes = [];
    const ops = reconcile(this.store, {
      now: this.wall,
      newId: () => `new${++this.ids}`,
      restartDelayLeft: (t, ms) => this.restarts.remaining(t, ms),
      wakeAt: (ms) => this.wakes.push(ms),
    }).ops();
    if (ops.length > 0) this.tx(ops);
    return ops;
  }

  task(id: string, slot: number, state: TaskState, over: Partial<Task> = {}): Task {
    const s = this.store.get('service', 'svc')!;
    const t: Task = {
      id, version: 0, createdAt: this.wall, updatedAt: this.wall, serviceId: 'svc', serviceName: s.spec.name, slot, nodeId: 'n1', desiredState: 'running',
      status: { state, timestamp: this.wall, message: '', err: '', containerId: '', exitCode: 0 }, spec: s.spec, specVersion: s.specVersion, networks: [], jobIteration: 0, ...over,
    };
    this.tx([{ op: 'create', kind: 'task', object: t }]);
    return this.store.get('task', id)!;
  }

  /** An agent's report, with the timestamp its own clock gave it. */
  report(id: string, state: TaskState, timestamp: number): void {
    const t = this.store.get('task', id)!;
    this.tx([updateOp('task', { ...t, status: { ...t.status, state, timestamp, exitCode: state === 'failed' ? 1 : 0 } })]);
  }

  current(): Task[] {
    return this.store.list('task').filter((t) => t.desiredState === 'running');
  }
}

const spec = (over: Partial<ServiceSpec> = {}) => mkSpec({ replicas: 1, restartPolicy: { condition: 'any', delayMs: DELAY, maxAttempts: 0, windowMs: 0 }, ...over });

describe('restart delays run on the leader\'s monotonic clock', () => {
  for (const [who, skew] of [
    ['an hour ahead', HOUR],
    ['an hour behind', -HOUR],
  ] as const) {
    test(`an agent whose clock is ${who} gets its restart delay, no shorter and no longer`, () => {
      const w = new World(spec());
      w.task('t1', 1, 'running');
      w.report('t1', 'failed', w.wall + skew);
      w.pass();
      assert.deepEqual(w.current().map((t) => t.id), ['t1'], 'the slot waits for the delay');
      assert.equal(w.wakes.length, 1);
      assert.ok(w.wakes[0]! - w.wall <= DELAY && w.wakes[0]! - w.wall > 0, `a wake-up within the delay (${w.wakes[0]! - w.wall} ms)`);
      w.mono += DELAY - 1;
      w.wall += DELAY - 1;
      w.pass();
      assert.deepEqual(w.current().map((t) => t.id), ['t1'], 'not restarted before the delay ran out');
      w.mono += 1;
      w.wall += 1;
      w.pass();
      assert.deepEqual(w.current().map((t) => t.id), ['new1'], 'restarted once the delay ran out');
      assert.equal(w.restarts.size, 0, 'a restarted task is forgotten');
    });
  }

  test('a wall clock that steps 10 s either way changes no delay', () => {
    const w = new World(spec());
    w.task('t1', 1, 'running');
    w.report('t1', 'failed', w.wall);
    w.pass();
    for (const step of [10_000, -20_000, 10_000]) {
      w.wall += step;
      w.mono += 1_000;
      w.pass();
      assert.deepEqual(w.current().map((t) => t.id), ['t1'], `no restart after a ${step} ms step`);
    }
    w.mono += DELAY - 3_000;
    w.pass();
    assert.deepEqual(w.current().map((t) => t.id), ['new1']);
  });

  test('a new leader counts a pending delay again from its own first sight, never shorter', () => {
    const w = new World(spec());
    w.task('t1', 1, 'running');
    w.report('t1', 'failed', w.wall - HOUR);
    w.mono += 60_000; // the old leader's memory is gone: this one first sees the task now
    const fresh = new RestartDelays(w.store, () => w.mono);
    assert.equal(fresh.remaining(w.store.get('task', 't1')!, DELAY), DELAY);
    w.mono += DELAY;
    assert.equal(fresh.remaining(w.store.get('task', 't1')!, DELAY), 0);
    fresh.close();
  });

  test('the delay counts from the report, even when the pass comes later', () => {
    const w = new World(spec());
    w.task('t1', 1, 'running');
    w.report('t1', 'failed', w.wall + HOUR);
    w.mono += DELAY;
    w.pass();
    assert.deepEqual(w.current().map((t) => t.id), ['new1']);
  });
});

describe('a slot with a duplicate keeps the task furthest along', () => {
  test('a running task is kept; the newer duplicate that has not started yet is shut down', () => {
    const w = new World(spec({ restartPolicy: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 } }));
    w.task('running', 1, 'running');
    w.wall += 1_000;
    w.task('dup', 1, 'assigned');
    const ops = w.pass();
    assert.deepEqual(w.current().map((t) => t.id), ['running']);
    assert.ok(!ops.some((op) => op.kind === 'task' && op.op === 'update' && op.object.id === 'running'), 'the running task is left alone');
  });

  test('among tasks equally far along, the newest stays', () => {
    const w = new World(spec());
    w.task('old', 1, 'assigned');
    w.wall += 1_000;
    w.task('new', 1, 'assigned');
    w.pass();
    assert.deepEqual(w.current().map((t) => t.id), ['new']);
  });

  test('a start-first update still keeps the old task beside the starting one, and retires it once the new one runs', () => {
    const rollout = { parallelism: 1, delayMs: 0, failureAction: 'pause' as const, order: 'start-first' as const, monitorMs: 0, maxFailureRatio: 0 };
    const w = new World(spec({ updateConfig: rollout }));
    w.task('old', 1, 'running');
    const s = w.store.get('service', 'svc')!;
    w.tx([updateOp('service', { ...s, spec: { ...s.spec, args: ['v2'] }, previousSpec: s.spec, specVersion: 2 })]);
    w.wall += 1_000;
    w.pass();
    const fresh = w.current().find((t) => t.id !== 'old')!;
    assert.deepEqual(w.current().map((t) => t.id).sort(), [fresh.id, 'old'].sort(), 'old and new side by side');
    w.report(fresh.id, 'running', w.wall);
    w.pass();
    assert.deepEqual(w.current().map((t) => t.id), [fresh.id], 'the old one retired once the new one runs');
  });

  test('a global service\'s node keeps its running task too', () => {
    const w = new World(spec({ mode: 'global', replicas: 0 }));
    w.task('running', 0, 'running');
    w.wall += 1_000;
    w.task('dup', 0, 'assigned');
    w.pass();
    assert.deepEqual(w.current().map((t) => t.id), ['running']);
  });
});

describe('tasks no node ever got', () => {
  const scaleTo = (w: World, replicas: number, over: Partial<ServiceSpec> = {}) => {
    const s = w.store.get('service', 'svc')!;
    w.tx([updateOp('service', { ...s, spec: { ...s.spec, replicas, ...over }, specVersion: s.specVersion + 1 })]);
  };

  test('scaled away while pending: deleted (nothing would ever make them terminal), assigned ones marked for removal', () => {
    const w = new World(spec({ replicas: 3 }));
    w.pass();
    const [a, b, c] = w.store.list('task').map((t) => t.id).sort();
    // The scheduler placed one; the others wait (say, on a constraint no node meets).
    const placed = w.store.get('task', a!)!;
    w.tx([updateOp('task', { ...placed, nodeId: 'n1', status: { ...placed.status, state: 'assigned' } })]);
    assert.deepEqual([b, c].map((id) => w.store.get('task', id!)!.nodeId), ['', '']);
    scaleTo(w, 0);
    w.pass();
    assert.deepEqual(w.store.list('task').map((t) => [t.id, t.desiredState]), [[a, 'remove']], 'the assigned one waits for its agent; the unassigned are gone');
  });

  test('an update replaces a pending task without leaving the old one behind', () => {
    const w = new World(spec({ replicas: 1 }));
    w.pass();
    const old = w.store.list('task')[0]!;
    scaleTo(w, 1, { args: ['v2'] });
    w.pass();
    const left = w.store.list('task');
    assert.equal(left.length, 1, JSON.stringify(left.map((t) => [t.id, t.desiredState, t.status.state])));
    assert.notEqual(left[0]!.id, old.id);
    assert.equal(left[0]!.desiredState, 'running');
  });
});

describe('a scale-down marks its slots for removal (SwarmKit\'s desired state REMOVE)', () => {
  const scaleTo = (w: World, replicas: number, over: Partial<ServiceSpec> = {}) => {
    const s = w.store.get('service', 'svc')!;
    w.tx([updateOp('service', { ...s, spec: { ...s.spec, replicas, ...over }, specVersion: s.specVersion + 1 })]);
  };
  const desired = (w: World) => Object.fromEntries(w.store.list('task').map((t) => [t.id, t.desiredState]));

  test('the victims and their slots\' history are marked remove; the slots kept and their history are untouched', () => {
    const w = new World(spec({ replicas: 4 }), ['n1', 'n2']);
    // Slots 1-4 run (two per node); slots 2 and 4 have a stopped task from an earlier restart.
    w.task('old2', 2, 'failed', { desiredState: 'shutdown', nodeId: 'n2' });
    w.task('old4', 4, 'failed', { desiredState: 'shutdown', nodeId: 'n2' });
    w.task('a1', 1, 'running');
    w.task('a2', 2, 'running', { nodeId: 'n2' });
    w.task('a3', 3, 'running');
    w.task('a4', 4, 'running', { nodeId: 'n2' });
    assert.deepEqual(w.pass(), [], 'settled');
    scaleTo(w, 2);
    w.pass();
    // One from each node, the highest slot of each.
    assert.deepEqual(desired(w), { old2: 'shutdown', old4: 'remove', a1: 'running', a2: 'running', a3: 'remove', a4: 'remove' });
    assert.deepEqual(w.pass(), [], 'a removed slot is not looked at again');
  });

  test('a task that failed for good (restart none) in a slot still wanted keeps desired shutdown', () => {
    const w = new World(spec({ replicas: 2, restartPolicy: { condition: 'none', delayMs: 0, maxAttempts: 0, windowMs: 0 } }));
    w.task('a1', 1, 'running');
    w.task('a2', 2, 'running');
    w.report('a2', 'failed', w.wall);
    w.pass();
    assert.equal(w.store.get('task', 'a2')!.desiredState, 'shutdown');
    assert.ok(w.store.list('task').every((t) => t.desiredState !== 'remove'));
  });

  test('a slot scaled away in the pass that would replace its task: no replacement, the old task marked remove', () => {
    const w = new World(spec({ replicas: 2, restartPolicy: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 } }));
    w.task('a1', 1, 'running');
    w.task('a2', 2, 'running');
    w.report('a2', 'failed', w.wall);
    scaleTo(w, 1);
    w.pass();
    assert.deepEqual(desired(w), { a1: 'running', a2: 'remove' });
  });

  test('scaled back up: new tasks in fresh slots, the marked tasks no part of them', () => {
    const w = new World(spec({ replicas: 3 }));
    w.task('a1', 1, 'running');
    w.task('a2', 2, 'running');
    w.task('a3', 3, 'running');
    scaleTo(w, 1);
    w.pass();
    assert.deepEqual(desired(w), { a1: 'running', a2: 'remove', a3: 'remove' });
    scaleTo(w, 3);
    w.pass();
    const cur = w.current().sort((a, b) => a.slot - b.slot);
    assert.deepEqual(cur.map((t) => t.slot), [1, 2, 3]);
    assert.deepEqual(cur.slice(1).map((t) => t.id.startsWith('new')), [true, true]);
    assert.equal(w.store.get('task', 'a2')!.desiredState, 'remove', 'left for the reaper');
  });
});
