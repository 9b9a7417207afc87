// The task reaper on a real ClusterStore: which tasks marked for removal it deletes (isReapable,
// every case), which it never touches (a task a service still wants, a failed one under restart
// none included), its sweep on becoming leader, and its batches (one proposal for many, bounded).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '@shoal/raft';
import { ClusterStore, StoreClient, type Op, type Service, type Task, type TaskState, deleteOp, updateOp } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { waitFor } from './orchestrator-world.js';
import { isReapable } from '../src/taskreaper/reap-rule.js';
import { TaskReaper } from '../src/taskreaper/task-reaper.js';

function mkTask(id: string, state: TaskState, over: Partial<Task> = {}): Task {
  const spec = mkSpec();
  return {
    id, version: 0, createdAt: T0, updatedAt: T0, serviceId: 'svc', serviceName: spec.name, slot: 1, nodeId: 'n1', desiredState: 'remove',
    status: { state, timestamp: T0, message: '', err: '', containerId: '', exitCode: 0 }, spec, specVersion: 1, networks: [], jobIteration: 0, ...over,
  };
}

describe('isReapable: a task marked for removal goes once nothing of it can run or report', () => {
  const up = mkNode('n1');
  const down = mkNode('n1', { state: 'down' });
  for (const state of ['complete', 'shutdown', 'failed', 'rejected', 'orphaned'] as const) {
    test(`stopped (${state}): reaped`, () => assert.equal(isReapable(mkTask('t', state), up), true));
  }
  for (const state of ['new', 'pending'] as const) {
    test(`never given to a node (${state}): reaped`, () => assert.equal(isReapable(mkTask('t', state, { nodeId: '' }), undefined), true));
  }
  test('assigned but with no node: reaped', () => assert.equal(isReapable(mkTask('t', 'assigned', { nodeId: '' }), undefined), true));
  for (const state of ['assigned', 'accepted', 'preparing', 'starting', 'running'] as const) {
    test(`${state} on a ready node: kept until its agent reports it stopped`, () => assert.equal(isReapable(mkTask('t', state), up), false));
  }
  test('running on a node that is down: reaped', () => assert.equal(isReapable(mkTask('t', 'running'), down), true));
  test('running on a node that was removed: reaped', () => assert.equal(isReapable(mkTask('t', 'running'), undefined), true));
  test('a task still wanted is never reaped, however it ended (restart none: failed, desired shutdown)', () => {
    for (const desiredState of ['running', 'shutdown', 'complete'] as const) {
      for (const state of ['failed', 'complete', 'shutdown', 'orphaned', 'pending'] as const) {
        assert.equal(isReapable(mkTask('t', state, { desiredState }), down), false, `${desiredState}/${state}`);
        assert.equal(isReapable(mkTask('t', state, { desiredState, nodeId: '' }), undefined), false, `${desiredState}/${state} without node`);
      }
    }
  });
});

/** A store, a client committing into it at once (recording each proposal), and a reaper. */
function world(opts: { maxPerPass?: number; beforeCommit?: (n: number, store: ClusterStore, tx: (ops: Op[]) => Promise<unknown>) => Promise<void> } = {}) {
  const store = new ClusterStore();
  let index = 0;
  const proposals: Op[][] = [];
  const client = new StoreClient({ propose: async (payload) => ({ index: ++index, result: store.apply(payload, index) }), readBarrier: async () => index }, store);
  const tx = (ops: Op[]) => client.commit(ops);
  const commit: Pick<StoreClient, 'commit'>['commit'] = async (ops, o) => {
    await opts.beforeCommit?.(proposals.length, store, tx);
    proposals.push(ops);
    return client.commit(ops, o);
  };
  const reaper = new TaskReaper(store, { commit }, silentLogger(), { intervalMs: 1, maxPerPass: opts.maxPerPass });
  const spec = mkSpec({ replicas: 1 });
  const svc: Service = { id: 'svc', version: 0, createdAt: T0, updatedAt: T0, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null };
  const setup = tx([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'node', object: mkNode('n2') }, { op: 'create', kind: 'service', object: svc }]);
  const ids = () => store.list('task').map((t) => t.id).sort();
  /** Lets the reaper's timers and proposals run. */
  const settle = async () => {
    for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 10));
  };
  return { store, reaper, proposals, tx, setup, ids, settle };
}

describe('TaskReaper', () => {
  test('on becoming leader it deletes what an earlier leader left marked and stopped, and nothing else', async () => {
    const w = world();
    await w.setup;
    await w.tx([
      { op: 'create', kind: 'task', object: mkTask('gone-stopped', 'shutdown', { slot: 3 }) },
      { op: 'create', kind: 'task', object: mkTask('gone-pending', 'pending', { slot: 4, nodeId: '' }) },
      { op: 'create', kind: 'task', object: mkTask('gone-running', 'running', { slot: 5 }) },
      // Slot 1 is still wanted: its current task and its history (a restart none failure among it).
      { op: 'create', kind: 'task', object: mkTask('kept-running', 'running', { desiredState: 'running' }) },
      { op: 'create', kind: 'task', object: mkTask('kept-failed', 'failed', { desiredState: 'shutdown', slot: 2 }) },
      { op: 'create', kind: 'task', object: mkTask('kept-history', 'shutdown', { desiredState: 'shutdown' }) },
    ]);
    w.reaper.begin();
    await waitFor('the stopped and the never-placed marked tasks deleted', () => (w.store.get('task', 'gone-stopped') || w.store.get('task', 'gone-pending') ? undefined : true));
    await w.settle();
    assert.deepEqual(w.ids(), ['gone-running', 'kept-failed', 'kept-history', 'kept-running']);
    assert.equal(w.proposals.length, 1, 'one proposal for both');
    assert.equal(w.reaper.waiting, 1);
    w.reaper.end();
  });

  test('a marked task goes once its agent reports it stopped, or once its node is down', async () => {
    const w = world();
    await w.setup;
    w.reaper.begin();
    await w.tx([
      { op: 'create', kind: 'task', object: mkTask('a', 'running', { desiredState: 'running' }) },
      { op: 'create', kind: 'task', object: mkTask('b', 'running', { desiredState: 'running', nodeId: 'n2', slot: 2 }) },
    ]);
    // The orchestrator's scale-down marks both.
    await w.tx(w.store.list('task').map((t) => updateOp('task', { ...t, desiredState: 'remove' })));
    await w.settle();
    assert.deepEqual(w.ids(), ['a', 'b'], 'still running: kept');
    const a = w.store.get('task', 'a')!;
    await w.tx([updateOp('task', { ...a, status: { ...a.status, state: 'shutdown' } })]);
    await waitFor('a deleted once stopped', () => (w.store.get('task', 'a') ? undefined : true));
    assert.deepEqual(w.ids(), ['b']);
    const n2 = w.store.get('node', 'n2')!;
    await w.tx([updateOp('node', { ...n2, status: { ...n2.status, state: 'down' } })]);
    await waitFor('b deleted once its node is down', () => (w.store.get('task', 'b') ? undefined : true));
    assert.equal(w.reaper.waiting, 0);
    w.reaper.end();
  });

  test('a marked task whose node is removed goes', async () => {
    const w = world();
    await w.setup;
    await w.tx([{ op: 'create', kind: 'task', object: mkTask('a', 'running', { nodeId: 'n2' }) }]);
    w.reaper.begin();
    await w.settle();
    assert.deepEqual(w.ids(), ['a']);
    await w.tx([deleteOp('node', w.store.get('node', 'n2')!)]);
    await waitFor('a deleted once its node is removed', () => (w.store.get('task', 'a') ? undefined : true));
    w.reaper.end();
  });

  test('deletes in bounded batches: 25 due with at most 10 a proposal take three proposals', async () => {
    const w = world({ maxPerPass: 10 });
    await w.setup;
    await w.tx(Array.from({ length: 25 }, (_, i): Op => ({ op: 'create', kind: 'task', object: mkTask(`t${i}`, 'complete', { slot: i + 2 }) })));
    await w.tx([{ op: 'create', kind: 'task', object: mkTask('wanted', 'failed', { desiredState: 'shutdown' }) }]);
    w.reaper.begin();
    await waitFor('every marked task deleted', () => (w.store.count('task') === 1 ? true : undefined));
    await w.settle();
    assert.deepEqual(w.proposals.map((p) => p.length), [10, 10, 5]);
    assert.deepEqual(w.ids(), ['wanted']);
    w.reaper.end();
  });

  test('a removed service\'s tasks are left to the orchestrator', async () => {
    const w = world();
    await w.setup;
    await w.tx([{ op: 'create', kind: 'task', object: mkTask('orphan', 'shutdown', { serviceId: 'gone' }) }]);
    w.reaper.begin();
    await w.settle();
    assert.deepEqual(w.ids(), ['orphan']);
    assert.equal(w.proposals.length, 0);
    w.reaper.end();
  });

  test('a task changed under a batch (a last status report): the batch fails, is read again and goes through', async () => {
    // Before its first proposal, `a` changes (as a report arriving meanwhile would).
    const w = world({
      beforeCommit: async (n, store, tx) => {
        if (n > 0) return;
        const a = store.get('task', 'a')!;
        await tx([updateOp('task', { ...a, status: { ...a.status, message: 'late report' } })]);
      },
    });
    await w.setup;
    await w.tx([{ op: 'create', kind: 'task', object: mkTask('a', 'shutdown') }, { op: 'create', kind: 'task', object: mkTask('b', 'shutdown', { slot: 2 }) }]);
    w.reaper.begin();
    await waitFor('both deleted', () => (w.store.count('task') === 0 ? true : undefined));
    assert.deepEqual(w.proposals.map((p) => p.length), [2, 2]);
    w.reaper.end();
  });
});
