// The orchestrator's loop alone, as a leader component: no Raft, no manager. Its store client
// commits straight into a ClusterStore (the same encode, size check and apply a Raft commit
// runs), its monotonic clock is a variable the test moves, and begin()/end() are called the way
// the manager's LeaderDuty calls them.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { statusOp, updateOp, type Service, type Task } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { waitFor, world } from './orchestrator-world.js';

const service = (spec: ReturnType<typeof mkSpec>): Service => ({ id: 'svc1', version: 0, createdAt: T0, updatedAt: T0, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null });

describe('orchestrator loop (fake store client, fake clock)', () => {
  test('a failed task is replaced once its restart delay has run out on the monotonic clock, not before', async () => {
    const w = world();
    await w.client.commit([
      { op: 'create', kind: 'node', object: mkNode('n1') },
      { op: 'create', kind: 'service', object: service(mkSpec({ name: 'web', replicas: 1, restartPolicy: { condition: 'any', delayMs: 10_000, maxAttempts: 0, windowMs: 0 } })) },
    ]);
    w.orchestrator.begin();
    try {
      const [first] = await waitFor('the first task', () => (w.tasks('web').length === 1 ? w.tasks('web') : undefined));
      const reads = w.clockReads;
      await w.client.commit([updateOp('task', { ...first!, status: { ...first!.status, state: 'failed', err: 'exit 1' } })]);
      // The orchestrator saw the failure (it asked the clock how long is left) and waits.
      await waitFor('the failure seen', () => (w.clockReads > reads ? true : undefined));
      w.advance(10_000);
      // Any change wakes a pass (the delay's own wake-up timer is on the wall clock, 10 s away).
      const n1 = w.store.get('node', 'n1')!;
      await w.client.commit([updateOp('node', { ...n1, spec: { ...n1.spec, labels: { poke: '1' } } })]);
      const replacement = await waitFor('a replacement', () => w.tasks('web').find((t) => t.id !== first!.id));
      const createdAt = w.committed.find((c) => c.ops.some((op) => op.op === 'create' && op.kind === 'task' && op.object.id === replacement.id))!.at;
      assert.equal(createdAt, 10_000, 'the replacement was committed only once the delay had run out');
      assert.equal(replacement.slot, first!.slot);
    } finally {
      w.orchestrator.end();
    }
  });

  test('reports of tasks moving towards running cost a service at rest no pass; a stopped task does', async () => {
    const w = world();
    await w.client.commit([
      { op: 'create', kind: 'node', object: mkNode('n1') },
      { op: 'create', kind: 'service', object: service(mkSpec({ name: 'web', replicas: 3, restartPolicy: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 } })) },
    ]);
    // Each look at the service's tasks (a pass over the service, or the safety net's full one).
    let looks = 0;
    const tasksByService = w.store.tasksByService.bind(w.store);
    w.store.tasksByService = (id: string) => {
      looks++;
      return tasksByService(id);
    };
    const turns = async () => {
      for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    };
    w.orchestrator.begin();
    try {
      await waitFor('3 tasks placed', () => (w.tasks('web').filter((t) => t.nodeId === 'n1').length === 3 ? true : undefined));
      await turns();
      const before = looks;
      for (const state of ['accepted', 'preparing', 'starting', 'running'] as const) {
        const ts = w.tasks('web');
        await w.client.commit(ts.map((t: Task) => statusOp(t, { ...t.status, state, timestamp: T0 }, T0)));
        await turns();
      }
      assert.ok(w.tasks('web').every((t) => t.status.state === 'running'));
      assert.equal(looks, before, 'no pass over the service for its tasks starting');
      const [victim] = w.tasks('web');
      await w.client.commit([statusOp(victim!, { ...victim!.status, state: 'failed', err: 'exit 1', timestamp: T0 }, T0)]);
      await waitFor('a replacement', () => w.tasks('web').find((t) => t.slot === victim!.slot && t.id !== victim!.id));
      assert.ok(looks > before, 'the failure was looked at');
    } finally {
      w.orchestrator.end();
    }
  });

  test('after end() it acts on nothing; begin() again starts from the store', async () => {
    const w = world();
    await w.client.commit([{ op: 'create', kind: 'node', object: mkNode('n1') }]);
    w.orchestrator.begin();
    w.orchestrator.end();
    await w.client.commit([{ op: 'create', kind: 'service', object: service(mkSpec({ name: 'web', replicas: 2 })) }]);
    // Two turns of the event loop: a pass would have been scheduled on the first (setImmediate).
    for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
    assert.equal(w.tasks('web').length, 0, 'no pass while not leading');
    assert.equal(w.committed.length, 0);
    w.orchestrator.begin();
    try {
      await waitFor('2 tasks', () => (w.tasks('web').length === 2 ? true : undefined));
    } finally {
      w.orchestrator.end();
    }
  });
});
