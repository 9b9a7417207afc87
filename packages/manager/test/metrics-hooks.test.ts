// What the manager gives the daemon's metrics: why a task waits for a node (pendingReason, read
// from what the scheduler wrote on it), the orchestrator's placement latencies as they commit,
// and the dispatcher's count of assignments sent. The scheduler and the orchestrator are the real
// ones, over a store its client commits to at once (no Raft).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@shoal/raft';
import { ClusterStore, StoreClient, type Node, type Service, type ServiceSpec, type Task } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { schedule } from '../src/scheduler/scheduler.js';
import { pendingReason } from '../src/scheduler/pending-reason.js';
import { Orchestrator } from '../src/orchestrator/orchestrator.js';
import { waitFor } from './orchestrator-world.js';

let ids = 0;
function task(s: ServiceSpec, over: Partial<Task> = {}): Task {
  const id = `t${++ids}`;
  return {
    id, version: 1, createdAt: T0 + ids, updatedAt: T0, serviceId: 'svc', serviceName: 'web', slot: ids, nodeId: '', desiredState: 'running',
    status: { state: 'pending', timestamp: T0, message: '', err: '', containerId: '', exitCode: 0 }, spec: s, specVersion: 1, networks: [], jobIteration: 0,
    ...over,
  };
}

/** The task as the scheduler leaves it after one pass over `nodes`. */
function scheduled(nodes: Node[], t: Task): Task {
  const op = schedule(nodes, [t], T0).find((o) => o.kind === 'task' && o.op === 'update');
  return op && op.kind === 'task' && op.op === 'update' ? op.object : t;
}

describe('pendingReason', () => {
  test('says why in fixed words, from what the scheduler wrote', () => {
    const s = mkSpec({ replicas: 1 });
    assert.equal(pendingReason(task(s)), 'unscheduled', 'not looked at yet');
    assert.equal(pendingReason(task(s, { status: { ...task(s).status, state: 'new' } })), 'unallocated');
    assert.equal(pendingReason(task(mkSpec({ networks: [{ target: 'net1', aliases: [] }] }))), 'unallocated', 'its addresses first');
    assert.equal(pendingReason(scheduled([], task(s))), 'no_nodes');
    const down = mkNode('a', { state: 'down' });
    const drained = { ...mkNode('b'), spec: { ...mkNode('b').spec, availability: 'drain' as const } };
    assert.equal(pendingReason(scheduled([down], task(s))), 'node_not_ready');
    assert.equal(pendingReason(scheduled([down, drained], task(s))), 'node_not_active,node_not_ready');
    const constrained = mkSpec({ replicas: 1, constraints: ['node.labels.zone==eu'] });
    assert.equal(pendingReason(scheduled([mkNode('c'), down], task(constrained))), 'constraint,node_not_ready');
    const big = mkSpec({ replicas: 1, resources: { limits: { nanoCpus: 0, memoryBytes: 0 }, reservations: { nanoCpus: 64e9, memoryBytes: 0 } } });
    assert.equal(pendingReason(scheduled([mkNode('d')], task(big))), 'resources');
    assert.equal(pendingReason(task(s, { status: { ...task(s).status, err: 'no suitable node (1 node: something new)' } })), 'other');
  });

  test('a task with a node, or not meant to run, waits for nothing', () => {
    const s = mkSpec({ replicas: 1 });
    const placed = scheduled([mkNode('a')], task(s));
    assert.equal(placed.nodeId, 'a');
    assert.equal(pendingReason(placed), undefined);
    assert.equal(pendingReason(task(s, { desiredState: 'shutdown' })), undefined);
    assert.equal(pendingReason(task(s, { status: { ...task(s).status, state: 'failed' } })), undefined);
  });
});

describe('placement latency', () => {
  test('each placement is told once, when its transaction has committed; a task that waits is told once placed', async () => {
    const store = new ClusterStore();
    let index = 0;
    const client = new StoreClient({ propose: async (payload) => ({ index: ++index, result: store.apply(payload, index) }), readBarrier: async () => index }, store);
    const placed: number[] = [];
    const orchestrator = new Orchestrator(store, client, silentLogger(), Date.now, undefined, { placed: (s) => placed.push(s) });
    const now = Date.now();
    const svc: Service = { id: 'svc1', version: 0, createdAt: now, updatedAt: now, spec: mkSpec({ name: 'web', replicas: 3 }), previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null };
    await client.commit([{ op: 'create', kind: 'service', object: svc }]);
    orchestrator.begin();
    try {
      // No node: three tasks wait, and no placement is told.
      await waitFor('3 pending tasks', () => (store.list('task').filter((t) => pendingReason(t) === 'no_nodes').length === 3 ? true : undefined));
      assert.deepEqual(placed, []);
      await client.commit([{ op: 'create', kind: 'node', object: mkNode('n1') }]);
      await waitFor('3 placements told', () => (placed.length === 3 ? true : undefined));
      assert.ok(store.list('task').every((t) => t.nodeId === 'n1'));
      assert.ok(placed.every((s) => s >= 0 && s < 60), JSON.stringify(placed));
      // Nothing placed again: nothing told again.
      const n1 = store.get('node', 'n1')!;
      await client.commit([{ op: 'update', kind: 'node', object: { ...n1, spec: { ...n1.spec, labels: { poke: '1' } } }, expectVersion: n1.version }]);
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(placed.length, 3);
    } finally {
      orchestrator.end();
    }
  });
});
