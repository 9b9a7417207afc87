// A task whose spec equals its service's holds the service's spec object (memory at 100,000
// tasks), invisibly: the same answers, the same snapshot bytes.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterStore } from '../src/index.js';
import { Log, create, mkNode, mkService, mkSpec, mkTask, update } from './fixtures.js';

function world(): Log {
  const log = new Log();
  const s = mkService('s1', 'web');
  log.ok(create('node', mkNode('n1')), create('service', s));
  // Each op goes through JSON (as over Raft): the task's spec arrives as a copy of its own.
  log.ok(create('task', { ...mkTask('t1', 's1', 1), spec: s.spec }), create('task', { ...mkTask('t2', 's1', 2), spec: s.spec }));
  return log;
}

describe('tasks share their service spec', () => {
  test('a task with its service spec holds the service spec object; one with another spec keeps its own', () => {
    const log = world();
    const svc = log.store.get('service', 's1')!;
    assert.equal(log.store.get('task', 't1')!.spec, svc.spec);
    assert.equal(log.store.get('task', 't2')!.spec, svc.spec);
    const other = mkSpec('web', { env: ['B=2'] });
    log.ok(create('task', { ...mkTask('t3', 's1', 3), spec: other }));
    const t3 = log.store.get('task', 't3')!;
    assert.notEqual(t3.spec, svc.spec);
    assert.deepEqual(t3.spec.env, ['B=2']);
    assert.ok(Object.isFrozen(log.store.get('task', 't1')) && Object.isFrozen(t3.spec));
  });

  test("a task of the previous spec (a rolling update) shares the service's previousSpec", () => {
    const log = world();
    const svc = log.store.get('service', 's1')!;
    const next = { ...svc, spec: { ...svc.spec, env: ['A=2'] }, previousSpec: svc.spec, specVersion: 2 };
    log.ok(update('service', next, svc.version));
    log.ok(create('task', { ...mkTask('t9', 's1', 9), spec: svc.spec }));
    const now = log.store.get('service', 's1')!;
    assert.equal(log.store.get('task', 't9')!.spec, now.previousSpec);
  });

  test('a snapshot is the same bytes, and a restored store shares the specs again', () => {
    const log = world();
    const snap = log.store.snapshot();
    const restored = new ClusterStore();
    restored.restore(snap);
    assert.deepEqual(Buffer.from(restored.snapshot()), Buffer.from(snap));
    assert.equal(restored.get('task', 't1')!.spec, restored.get('service', 's1')!.spec);
    // And equal to a store that never shared them (the objects' JSON is what is written).
    assert.equal(JSON.stringify(restored.get('task', 't1')), JSON.stringify({ ...log.store.get('task', 't1')! }));
  });
});
