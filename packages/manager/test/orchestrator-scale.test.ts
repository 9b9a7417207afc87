// The orchestrator's passes at scale, on an in-memory store (orchestrator-world.ts): a 10,000-
// replica service on 1,000 nodes is created with every task already placed (one write per task),
// in as many bounded transactions as it takes; nodes going down have their tasks placed evenly
// on the others; a scale-down takes from the most loaded nodes; and a pass whose service changes
// between its transactions stops and plans again rather than create what is no longer wanted.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MAX_TX_BYTES, type Node, type Op, type Service, type Task, encodeTx, updateOp } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { waitFor, world } from './orchestrator-world.js';

const LONG = 120_000;
const service = (id: string, replicas: number): Service => ({
  id, version: 0, createdAt: T0, updatedAt: T0, spec: mkSpec({ name: id, replicas }), previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null,
});
const nodeIds = (count: number) => Array.from({ length: count }, (_, i) => `n${String(i).padStart(4, '0')}`);

async function addNodes(w: ReturnType<typeof world>, ids: string[]): Promise<void> {
  for (let b = 0; b < ids.length; b += 500) await w.client.commit(ids.slice(b, b + 500).map((id) => ({ op: 'create', kind: 'node', object: mkNode(id) }) as Op));
}

/** Live tasks (meant to run, placed) per node of `over`. */
function livePerNode(tasks: readonly Task[], over: readonly string[]): { min: number; max: number } {
  const m = new Map(over.map((id) => [id, 0]));
  for (const t of tasks) if (t.desiredState === 'running' && m.has(t.nodeId)) m.set(t.nodeId, m.get(t.nodeId)! + 1);
  const v = [...m.values()];
  return { min: Math.min(...v), max: Math.max(...v) };
}

describe('orchestrator at scale (in-memory store)', () => {
  test('10,000 replicas on 1,000 nodes: created placed, spread evenly; nodes down and a scale-down stay even', async () => {
    const w = world();
    const ids = nodeIds(1000);
    await addNodes(w, ids);
    let taskUpdates = 0;
    const unwatch = w.store.watch((events) => {
      for (const e of events) if (e.action === 'update' && e.kind === 'task') taskUpdates++;
    });
    w.orchestrator.begin();
    try {
      await w.client.commit([{ op: 'create', kind: 'service', object: service('big', 10_000) }]);
      await waitFor('10,000 tasks placed', () => (w.tasks('big').filter((t) => t.nodeId !== '').length === 10_000 ? true : undefined), LONG);
      const tasks = w.tasks('big');
      assert.equal(tasks.length, 10_000);
      assert.equal(new Set(tasks.map((t) => t.slot)).size, 10_000, 'one task per slot');
      assert.ok(tasks.every((t) => t.status.state === 'assigned'));
      assert.equal(taskUpdates, 0, 'each task was written once: created already placed');
      assert.deepEqual(livePerNode(tasks, ids), { min: 10, max: 10 });
      const creating = w.committed.filter((c) => c.ops.some((op) => op.op === 'create' && op.kind === 'task'));
      assert.ok(creating.length > 1, 'in several transactions');
      for (const c of creating) assert.ok(encodeTx(c.ops).length <= MAX_TX_BYTES / 4, 'each within the pass bound');
      unwatch();

      // All running (as their agents would say).
      const running = w.tasks('big').map((t) => ({ ...t, status: { ...t.status, state: 'running' as const } }));
      for (let b = 0; b < running.length; b += 500) await w.client.commit(running.slice(b, b + 500).map((t) => updateOp('task', t)));

      // Ten nodes go down: their 100 tasks are orphaned and replaced, one more each on 100 other nodes.
      const down = ids.slice(0, 10);
      await w.client.commit(down.map((id) => { const n = w.store.get('node', id) as Node; return updateOp('node', { ...n, status: { ...n.status, state: 'down' } }); }));
      await waitFor('the lost tasks replaced', () => {
        const ts = w.tasks('big');
        const live = ts.filter((t) => t.desiredState === 'running');
        return live.length === 10_000 && live.every((t) => t.nodeId !== '' && !down.includes(t.nodeId)) ? true : undefined;
      }, LONG);
      const after = w.tasks('big');
      assert.equal(after.filter((t) => t.status.state === 'orphaned').length, 100);
      assert.deepEqual(livePerNode(after, ids.slice(10)), { min: 10, max: 11 });

      // Scale down to 4,950: five each on the 990 nodes left.
      const s = w.store.get('service', 'big') as Service;
      await w.client.commit([updateOp('service', { ...s, spec: { ...s.spec, replicas: 4950 } })]);
      await waitFor('4,950 left', () => (w.tasks('big').filter((t) => t.desiredState === 'running').length === 4950 ? true : undefined), LONG);
      assert.deepEqual(livePerNode(w.tasks('big'), ids.slice(10)), { min: 5, max: 5 });
      const slots = w.tasks('big').filter((t) => t.desiredState === 'running').map((t) => t.slot);
      assert.equal(new Set(slots).size, 4950, 'no slot twice');
    } finally {
      w.orchestrator.end();
    }
  });

  test('a service scaled down while its pass is still committing: the rest of the pass is planned again', async () => {
    let scaled = false;
    const w = world(async (ops) => {
      // Right after the first transaction that creates tasks, the user scales to 10.
      if (scaled || !ops.some((op) => op.op === 'create' && op.kind === 'task')) return;
      scaled = true;
      const s = w.store.get('service', 'big') as Service;
      await w.client.commit([updateOp('service', { ...s, spec: { ...s.spec, replicas: 10 } })]);
    });
    await addNodes(w, nodeIds(100));
    w.orchestrator.begin();
    try {
      await w.client.commit([{ op: 'create', kind: 'service', object: service('big', 10_000) }]);
      await waitFor('10 tasks left', () => (scaled && w.tasks('big').filter((t) => t.desiredState === 'running').length === 10 ? true : undefined), LONG);
      const created = w.committed.flatMap((c) => c.ops).filter((op) => op.op === 'create' && op.kind === 'task').length;
      assert.ok(created < 10_000, `${created} tasks were created for a service scaled to 10 meanwhile`);
    } finally {
      w.orchestrator.end();
    }
  });
});
