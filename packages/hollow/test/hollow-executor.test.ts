// The hollow executor answers the runner's calls as Docker would (events after the call, errors
// with the executor's reasons, containers listed with Shoal's labels) and counts what it did.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ContainerEvent, LABELS, executorErrorReason } from '@shoal/agent';
import { type Task, completeServiceSpec } from '@shoal/types';
import { HollowExecutor } from '../src/hollow-executor.js';

function task(id: string, slot: number): Task {
  const now = Date.now();
  return {
    id,
    version: 1,
    createdAt: now,
    updatedAt: now,
    serviceId: 'svc1',
    serviceName: 'web',
    slot,
    nodeId: 'n1',
    desiredState: 'running',
    status: { state: 'assigned', timestamp: now, message: '', err: '', containerId: '', exitCode: 0 },
    spec: completeServiceSpec({ name: 'web', image: 'busybox' }),
    specVersion: 1,
    networks: [],
    jobIteration: 0,
  };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('hollow executor', () => {
  test('a task walks create, start, stop, remove; events follow each call; counts add up', async () => {
    const ex = new HollowExecutor({ nodeId: 'n1', hostname: 'h1', stepMs: 0 });
    const seen: ContainerEvent[] = [];
    const sub = ex.events((e) => seen.push(e));
    await sub.ready;
    await ex.prepare(task('t1', 1));
    const id = await ex.create(task('t1', 1));
    assert.equal((await ex.inspect(id)).state, 'created');
    await ex.start(id);
    const st = await ex.inspect(id);
    assert.equal(st.running, true);
    assert.equal(st.taskId, 't1');
    assert.ok(st.startedAt > 0);
    await tick();
    assert.deepEqual(seen.map((e) => e.action), ['start']);
    const [owned] = await ex.listOwned();
    assert.equal(owned.name, 'web.1.t1');
    assert.equal(owned.labels[LABELS.nodeId], 'n1');
    assert.equal(owned.labels[LABELS.taskSlot], '1');
    assert.equal(owned.status, 'Up');
    await ex.stop(id, 1_000);
    await tick();
    assert.deepEqual(seen.map((e) => e.action), ['start', 'die', 'stop']);
    assert.equal(seen[1].exitCode, 137);
    assert.equal((await ex.inspect(id)).running, false);
    await ex.stop(id, 1_000); // stopped already: fine, nothing counted
    await ex.remove(id);
    await ex.remove(id); // gone already: fine
    await tick();
    assert.deepEqual(seen.map((e) => e.action), ['start', 'die', 'stop', 'destroy']);
    assert.deepEqual(ex.stats(), { created: 1, started: 1, stopped: 1, removed: 1, containers: 0, running: 0 });
    sub.close();
  });

  test('removing a running container kills it first; an unknown container is NOT_FOUND', async () => {
    const ex = new HollowExecutor({ nodeId: 'n1', hostname: 'h1', stepMs: 0 });
    const seen: string[] = [];
    ex.events((e) => seen.push(e.action));
    const id = await ex.create(task('t2', 2));
    await ex.start(id);
    await ex.remove(id);
    await tick();
    assert.deepEqual(seen, ['start', 'die', 'destroy']);
    await assert.rejects(ex.inspect(id), (err) => executorErrorReason(err) === 'container-not-found');
    await assert.rejects(ex.start('nope'), (err) => executorErrorReason(err) === 'container-not-found');
  });

  test('a preparation whose task is no longer wanted is abandoned', async () => {
    const ex = new HollowExecutor({ nodeId: 'n1', hostname: 'h1' });
    const ac = new AbortController();
    ac.abort(new Error('not wanted'));
    await assert.rejects(ex.prepare(task('t3', 3), { signal: ac.signal }), /not wanted/);
  });
});
