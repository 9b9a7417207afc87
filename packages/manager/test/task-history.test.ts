// Task history stays bounded however tasks die, at scale: thousands of tasks failing, nodes going
// down and up, a service scaled down and removed, on a real ClusterStore with the orchestrator's
// real decisions (reconcile) and a stand-in for the scheduler and the agents (they place a new task
// on a ready node and report it running; they report a task told to stop as stopped).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterStore, DEFAULT_TASK_HISTORY_LIMIT, decodeTxResult, deleteOp, encodeTx, isTerminal, updateOp, type Op, type Service, type Task } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { reconcile } from '../src/orchestrator/reconcile.js';
import { isReapable } from '../src/taskreaper/reap-rule.js';

const REPLICAS = 1_000;
const NODES = 10;
/** Dead tasks a slot may keep, and its current one. */
const PER_SLOT = DEFAULT_TASK_HISTORY_LIMIT + 1;

class World {
  readonly store = new ClusterStore();
  /** Tasks ever created. */
  created = 0;
  private index = 0;
  private now = T0;

  constructor(replicas: number) {
    const spec = mkSpec({ replicas, restartPolicy: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 } });
    const svc: Service = { id: 'svc', version: 0, createdAt: T0, updatedAt: T0, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null };
    const nodes: Op[] = Array.from({ length: NODES }, (_, i) => ({ op: 'create', kind: 'node', object: mkNode(`n${i}`) }));
    this.tx([...nodes, { op: 'create', kind: 'service', object: svc }]);
  }

  tx(ops: Op[]): void {
    // In transactions of a few hundred ops, as the orchestrator's batches are.
    for (let i = 0; i < ops.length; i += 500) {
      const r = decodeTxResult(this.store.apply(encodeTx(ops.slice(i, i + 500)), ++this.index));
      if (!r.ok) throw new Error(`${r.code}: ${r.message}`);
    }
  }

  /** One orchestrator pass, committed. */
  pass(): void {
    this.now += 1_000;
    const ops = reconcile(this.store, { now: this.now, newId: () => `t${++this.created}`, restartDelayLeft: () => 0 }).ops();
    this.tx(ops);
  }

  /** The scheduler and the agents catch up: new tasks run on ready nodes, stopping ones stop. */
  settle(): void {
    const ready = this.store.list('node').filter((n) => n.status.state === 'ready').map((n) => n.id);
    let k = 0;
    const ops: Op[] = [];
    for (const t of this.store.list('task')) {
      if (isTerminal(t.status.state)) continue;
      if (t.desiredState === 'running' && t.nodeId === '') {
        ops.push(updateOp('task', { ...t, nodeId: ready[k++ % ready.length]!, status: { ...t.status, state: 'running' } }));
      } else if (t.desiredState !== 'running' && this.store.get('node', t.nodeId)?.status.state === 'ready') {
        ops.push(updateOp('task', { ...t, status: { ...t.status, state: 'shutdown' } }));
      }
    }
    this.tx(ops);
  }

  /** The task reaper's deletes (the tasks of slots scaled away, once stopped). */
  reap(): void {
    this.tx(this.store.list('task').filter((t) => isReapable(t, this.store.get('node', t.nodeId))).map((t) => deleteOp('task', t)));
  }

  /** Passes and settling until nothing changes. */
  converge(): void {
    for (let i = 0; i < 10; i++) {
      this.reap();
      const before = this.index;
      this.pass();
      this.settle();
      if (this.index === before + 2 && this.store.list('task').every((t) => isTerminal(t.status.state) || t.desiredState === 'running')) return;
    }
  }

  failAll(): void {
    this.tx(this.store.list('task').filter((t) => t.status.state === 'running').map((t) => updateOp('task', { ...t, status: { ...t.status, state: 'failed', exitCode: 1 } })));
  }

  setNode(id: string, state: 'ready' | 'down'): void {
    const n = this.store.get('node', id)!;
    this.tx([updateOp('node', { ...n, status: { ...n.status, state } })]);
  }

  running(): Task[] {
    return this.store.list('task').filter((t) => t.desiredState === 'running' && t.status.state === 'running');
  }

  /** The most tasks any slot holds. */
  fullestSlot(): number {
    const bySlot = new Map<number, number>();
    for (const t of this.store.list('task')) bySlot.set(t.slot, (bySlot.get(t.slot) ?? 0) + 1);
    return Math.max(0, ...bySlot.values());
  }
}

describe('task history stays bounded at scale', () => {
  test('10,000 tasks failing in turn: every slot keeps its task and at most the history limit', () => {
    const w = new World(REPLICAS);
    w.converge();
    assert.equal(w.running().length, REPLICAS);
    for (let round = 0; round < 10; round++) {
      w.failAll();
      w.converge();
    }
    assert.ok(w.created >= 11 * REPLICAS, `${w.created} tasks were created`);
    assert.equal(w.running().length, REPLICAS);
    assert.ok(w.fullestSlot() <= PER_SLOT, `a slot holds ${w.fullestSlot()} tasks`);
    assert.ok(w.store.count('task') <= REPLICAS * PER_SLOT, `${w.store.count('task')} tasks kept`);
  });

  test('nodes going down and coming back 30 times over: the orphaned tasks are pruned too', () => {
    const w = new World(REPLICAS);
    w.converge();
    for (let round = 0; round < 30; round++) {
      const down = [0, 1, 2].map((k) => `n${(round * 3 + k) % NODES}`);
      for (const id of down) w.setNode(id, 'down');
      w.converge();
      for (const id of down) w.setNode(id, 'ready');
      w.converge();
    }
    assert.ok(w.created >= 10 * REPLICAS, `${w.created} tasks were created`);
    assert.equal(w.running().length, REPLICAS);
    assert.ok(w.fullestSlot() <= PER_SLOT, `a slot holds ${w.fullestSlot()} tasks`);
    assert.ok(w.store.count('task') <= REPLICAS * PER_SLOT, `${w.store.count('task')} tasks kept`);
  });

  test('scaled down from 1,000 to 10 after churn: the slots scaled away go, history and all', () => {
    const w = new World(REPLICAS);
    w.converge();
    for (let round = 0; round < 3; round++) {
      w.failAll();
      w.converge();
    }
    const s = w.store.get('service', 'svc')!;
    w.tx([updateOp('service', { ...s, spec: { ...s.spec, replicas: 10 } })]);
    w.converge();
    w.reap();
    assert.equal(w.running().length, 10);
    assert.ok(w.store.count('task') <= 10 * PER_SLOT, `${w.store.count('task')} tasks kept for 10 replicas`);
    assert.equal(new Set(w.store.list('task').map((t) => t.slot)).size, 10, 'only the 10 slots kept have tasks');
    // Scaling up again starts the slots afresh.
    const s2 = w.store.get('service', 'svc')!;
    w.tx([updateOp('service', { ...s2, spec: { ...s2.spec, replicas: 20 } })]);
    w.converge();
    assert.equal(w.running().length, 20);
  });

  test('removed after churn: every task of the service goes once stopped', () => {
    const w = new World(REPLICAS);
    w.converge();
    w.failAll();
    w.converge();
    w.tx([deleteOp('service', w.store.get('service', 'svc')!)]);
    w.converge();
    assert.equal(w.store.count('task'), 0);
  });
});
