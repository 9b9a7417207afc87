import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ShoalError } from '@shoal/api';
import {
  ClusterStore,
  ID_LENGTH,
  StoreClient,
  decodeTx,
  encodeTx,
  isVersionConflict,
  deleteOp,
  newId,
  statusOp,
  updateOp,
  type StoreEvent,
  type StoreProposer,
  type TxFailure,
} from '../src/index.js';
import type { Service, Task } from '../src/types.js';
import { Log, T0, create, del, mkCluster, mkNode, mkService, mkTask, update } from './fixtures.js';
import { readSnapshot, toV1 } from './snapshot-fixtures.js';

function failed(r: ReturnType<Log['tx']>, code: string, re?: RegExp): TxFailure {
  assert.equal(r.ok, false, 'expected the transaction to fail');
  const f = r as TxFailure;
  assert.equal(f.code, code, f.message);
  if (re) assert.match(f.message, re);
  return f;
}

describe('transactions', () => {
  test('create, update, delete; version is the apply index', () => {
    const log = new Log();
    const i1 = log.ok(create('service', mkService('s1', 'web')), create('node', mkNode('n1')));
    const s = log.store.get('service', 's1')!;
    assert.equal(s.version, i1);
    assert.equal(log.store.get('node', 'n1')!.version, i1);
    const i2 = log.ok(update('service', { ...s, spec: { ...s.spec, replicas: 5 } }, i1));
    assert.equal(log.store.get('service', 's1')!.spec.replicas, 5);
    assert.equal(log.store.get('service', 's1')!.version, i2);
    const r = log.tx(del('service', 's1', i2));
    assert.deepEqual(r, { ok: true, index: 3, ids: ['s1'] });
    assert.equal(log.store.get('service', 's1'), null);
    assert.equal(log.store.appliedIndex, 3);
  });

  test('all or nothing: a failing op leaves the state unchanged', () => {
    const log = new Log();
    log.ok(create('service', mkService('s1', 'web')));
    const before = readSnapshot(log.store.snapshot()).objects;
    const r = log.tx(
      create('service', mkService('s2', 'api')),
      create('task', mkTask('t1', 's2', 1)),
      update('service', mkService('missing', 'x')),
    );
    failed(r, 'NOT_FOUND', /service missing not found \(ops\[2\]: update\)/);
    assert.equal(log.store.get('service', 's2'), null);
    assert.equal(log.store.get('task', 't1'), null);
    assert.deepEqual(log.store.tasksByService('s2'), []);
    assert.equal(log.store.serviceByName('api'), null);
    // Only the applied index moved.
    assert.deepEqual(readSnapshot(log.store.snapshot()).objects, before);
  });

  test('create of an existing id, update/delete of a missing id', () => {
    const log = new Log();
    log.ok(create('node', mkNode('n1')));
    failed(log.tx(create('node', mkNode('n1'))), 'ALREADY_EXISTS', /node n1 already exists/);
    failed(log.tx(update('node', mkNode('n2'))), 'NOT_FOUND', /node n2 not found/);
    failed(log.tx(del('task', 'nope')), 'NOT_FOUND', /task nope not found/);
  });

  test('version conflicts: FAILED_PRECONDITION with details', () => {
    const log = new Log();
    const v1 = log.ok(create('service', mkService('s1', 'web')));
    const s = log.store.get('service', 's1')!;
    const v2 = log.ok(update('service', { ...s, specVersion: 2 }, v1));
    const f = failed(log.tx(update('service', { ...s, specVersion: 3 }, v1)), 'FAILED_PRECONDITION', /^version conflict on service s1/);
    assert.deepEqual(f.details, { reason: 'version-conflict', kind: 'service', id: 's1', expected: String(v1), actual: String(v2) });
    failed(log.tx(del('service', 's1', v1)), 'FAILED_PRECONDITION', /version conflict/);
    assert.equal(log.store.get('service', 's1')!.specVersion, 2);
    // Without expectVersion, the update is unconditional.
    log.ok(update('service', { ...s, specVersion: 4 }));
    assert.equal(log.store.get('service', 's1')!.specVersion, 4);
  });

  test('updateOp/deleteOp: conditional on the version read, or on one the caller saw', () => {
    const log = new Log();
    log.ok(create('service', mkService('s1', 'web')));
    const seen = log.store.get('service', 's1')!;
    log.ok(updateOp('service', { ...seen, specVersion: 2 }));
    const now = log.store.get('service', 's1')!;
    // The object as read now, but checked against the version the caller saw before: refused.
    failed(log.tx(updateOp('service', { ...now, specVersion: 3 }, seen.version)), 'FAILED_PRECONDITION', /version conflict/);
    failed(log.tx(deleteOp('service', seen)), 'FAILED_PRECONDITION', /version conflict/);
    log.ok(updateOp('service', { ...now, specVersion: 3 }, now.version));
    assert.equal(log.store.get('service', 's1')!.specVersion, 3);
    log.ok(deleteOp('service', log.store.get('service', 's1')!));
    assert.equal(log.store.get('service', 's1'), null);
  });

  test('service names are unique: across the store, within a transaction, on rename', () => {
    const log = new Log();
    log.ok(create('service', mkService('s1', 'web')), create('service', mkService('s2', 'api')));
    failed(log.tx(create('service', mkService('s3', 'web'))), 'ALREADY_EXISTS', /name "web" is already taken by service s1/);
    failed(
      log.tx(create('service', mkService('s3', 'db')), create('service', mkService('s4', 'db'))),
      'ALREADY_EXISTS',
      /"db" is already taken by service s3/,
    );
    const s2 = log.store.get('service', 's2')!;
    failed(log.tx(update('service', { ...s2, spec: { ...s2.spec, name: 'web' } })), 'ALREADY_EXISTS');
    assert.equal(log.store.serviceByName('api')!.id, 's2');
    // Rename frees the old name; delete + create of the same name in one transaction is fine.
    log.ok(update('service', { ...s2, spec: { ...s2.spec, name: 'api2' } }), create('service', mkService('s5', 'api')));
    assert.equal(log.store.serviceByName('api')!.id, 's5');
    assert.equal(log.store.serviceByName('api2')!.id, 's2');
    log.ok(del('service', 's1'), create('service', mkService('s6', 'web')));
    assert.equal(log.store.serviceByName('web')!.id, 's6');
    assert.equal(log.store.count('service'), 3);
  });

  test('ops within a transaction see the earlier ops', () => {
    const log = new Log();
    const s = mkService('s1', 'web');
    const i = log.ok(create('service', s), update('service', { ...s, specVersion: 7 }), create('task', mkTask('t1', 's1', 1)));
    assert.equal(log.store.get('service', 's1')!.specVersion, 7);
    assert.equal(log.store.get('service', 's1')!.version, i);
    log.ok(create('node', mkNode('n9')), del('node', 'n9'));
    assert.equal(log.store.get('node', 'n9'), null);
  });

  test('one cluster object', () => {
    const log = new Log();
    assert.equal(log.store.cluster(), null);
    log.ok(create('cluster', mkCluster()));
    assert.equal(log.store.cluster()!.id, 'cluster1');
    failed(log.tx(create('cluster', mkCluster({ id: 'other' }))), 'ALREADY_EXISTS', /cluster object already exists/);
  });

  test('malformed transactions and objects are rejected with a clear message, never stored', () => {
    const log = new Log();
    log.ok(create('service', mkService('s1', 'web')));
    const before = readSnapshot(log.store.snapshot()).objects;
    const bad = (object: unknown, re: RegExp, kind: 'service' | 'task' | 'node' | 'cluster' = 'service') =>
      failed(log.tx(create(kind, object)), 'INVALID_ARGUMENT', re);

    const spec = mkService('s2', 'api').spec;
    bad({ ...mkService('s2', 'api'), spec: { ...spec, replicas: -1 } }, /service\.spec\.replicas must be a non-negative integer \(got number -1\)/);
    bad({ ...mkService('s2', 'api'), spec: { ...spec, replicas: '3' } }, /spec\.replicas must be/);
    bad({ ...mkService('s2', 'api'), spec: { ...spec, mode: 'daemonset' } }, /spec\.mode must be one of replicated, global/);
    bad({ ...mkService('s2', 'api'), spec: { ...spec, mode: 'global' } }, /replicas must be 0 in global mode/);
    bad({ ...mkService('s2', 'api'), spec: { ...spec, name: '' } }, /spec\.name must not be empty/);
    bad({ ...mkService('s2', 'api'), spec: { ...spec, ports: [{ ...spec.ports[0], targetPort: 70000 }] } }, /ports\[0\]\.targetPort/);
    bad({ ...mkService('s2', 'api'), spec: { ...spec, env: ['A=1', 2] } }, /spec\.env\[1\] must be a string/);
    bad({ ...mkService('s2', 'api'), spec: { ...spec, labels: { a: 1 } } }, /spec\.labels\.a must be a string/);
    bad({ ...mkService('s2', 'api'), bogus: 1 }, /service\.bogus is not a known field/);
    const { previousSpec: _omit, ...noPrev } = mkService('s2', 'api');
    bad(noPrev, /service\.previousSpec is missing/);
    bad({ ...mkService('', 'api') }, /service\.id must not be empty/);
    bad(null, /service must be an object/);
    bad([], /service must be an object/);
    bad({ ...mkTask('t1', 's1', 1), status: { ...mkTask('t1', 's1', 1).status, state: 'exploded' } }, /task\.status\.state must be one of/, 'task');
    bad(mkTask('t1', 's1', 0), /task\.slot must be at least 1/, 'task');
    bad(mkNode('n1', 'h', { managerStatus: {} as never }), /node\.managerStatus\.raftId is missing/, 'node');
    bad({ ...mkCluster(), spec: { ...mkCluster().spec, heartbeatPeriodMs: 0 } }, /cluster\.spec\.heartbeatPeriodMs/, 'cluster');

    failed(log.raw(new TextEncoder().encode('{not json')), 'INVALID_ARGUMENT', /not valid UTF-8 JSON/);
    failed(log.raw(new Uint8Array([0xff, 0xfe])), 'INVALID_ARGUMENT', /not valid UTF-8 JSON/);
    failed(log.raw(new TextEncoder().encode('{"ops": 1}')), 'INVALID_ARGUMENT', /"ops" array/);
    failed(log.tx(), 'INVALID_ARGUMENT', /at least one op/);
    failed(log.raw(encodeTx([{ op: 'upsert', kind: 'node' } as never])), 'INVALID_ARGUMENT', /ops\[0\]\.op must be create, update, status or delete/);
    failed(log.raw(encodeTx([{ op: 'create', kind: 'volume', object: {} } as never])), 'INVALID_ARGUMENT', /ops\[0\]\.kind must be one of/);
    failed(log.tx(update('service', mkService('s1', 'web'), -1)), 'INVALID_ARGUMENT', /expectVersion/);
    failed(log.tx(del('service', '')), 'INVALID_ARGUMENT', /id must be a non-empty string/);

    assert.deepEqual(readSnapshot(log.store.snapshot()).objects, before);
  });

  test('stored objects are frozen copies: neither the reader nor the proposer can change the store', () => {
    const log = new Log();
    const obj = mkService('s1', 'web');
    log.ok(create('service', obj));
    obj.spec.replicas = 99;
    const s = log.store.get('service', 's1')!;
    assert.equal(s.spec.replicas, 2);
    assert.ok(Object.isFrozen(s) && Object.isFrozen(s.spec) && Object.isFrozen(s.spec.ports[0]));
    assert.throws(() => {
      (s.spec as { replicas: number }).replicas = 7;
    }, TypeError);
    assert.throws(() => log.store.list('service')[0]!.spec.env.push('X=1'), TypeError);
    assert.equal(log.store.get('service', 's1')!.spec.replicas, 2);
    // A caller that wants to edit makes its own copy.
    const copy = structuredClone(s);
    copy.spec.replicas = 3;
    log.ok(update('service', copy, s.version));
    assert.equal(log.store.get('service', 's1')!.spec.replicas, 3);
  });

  test('encodeTx / decodeTx round trip', () => {
    const ops = [create('node', mkNode('n1')), del('task', 't1', 4)];
    assert.deepEqual(decodeTx(encodeTx(ops)), { ops: JSON.parse(JSON.stringify(ops)) });
    assert.throws(() => decodeTx(new TextEncoder().encode('[]')), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT'));
  });
});

describe('tasks', () => {
  test('observed state only moves forward', () => {
    const log = new Log();
    log.ok(create('task', mkTask('t1', 's1', 1, { state: 'pending' })));
    const t = () => log.store.get('task', 't1')!;
    const withState = (state: Task['status']['state']) => ({ ...t(), status: { ...t().status, state } });
    log.ok(update('task', withState('running')));
    failed(log.tx(update('task', withState('starting'))), 'FAILED_PRECONDITION', /may only move forward, not running -> starting/);
    assert.equal(t().status.state, 'running');
    // Same state (e.g. a new message) is fine; so is skipping ahead.
    log.ok(update('task', { ...t(), status: { ...t().status, message: 'still up' } }));
    log.ok(update('task', withState('failed')));
    failed(log.tx(update('task', withState('running'))), 'FAILED_PRECONDITION');
    assert.equal(t().status.state, 'failed');
  });

  test('desired state only moves forward: running, shutdown, remove', () => {
    const log = new Log();
    log.ok(create('task', mkTask('t1', 's1', 1, { state: 'running', nodeId: 'n1' })));
    const t = () => log.store.get('task', 't1')!;
    const desired = (desiredState: Task['desiredState']) => update('task', { ...t(), desiredState });
    log.ok(desired('shutdown'));
    failed(log.tx(desired('running')), 'FAILED_PRECONDITION', /desired state may only move forward, not shutdown -> running/);
    assert.equal(t().desiredState, 'shutdown');
    log.ok(desired('shutdown'));
    log.ok(desired('remove'));
    failed(log.tx(desired('shutdown')), 'FAILED_PRECONDITION', /not remove -> shutdown/);
    assert.equal(t().desiredState, 'remove');
    // A status op leaves the desired state alone, whatever it is.
    log.ok(statusOp(t(), { ...t().status, state: 'shutdown' }, T0 + 9));
    assert.equal(t().desiredState, 'remove');
  });

  test('a status op changes only the status and the time, under the rules of an update, at a fraction of its bytes', () => {
    const log = new Log();
    log.ok(create('task', mkTask('t1', 's1', 1, { state: 'assigned', nodeId: 'n1' })));
    const t = () => log.store.get('task', 't1')!;
    const before = t();
    const running = { ...before.status, state: 'running' as const, containerId: 'c1', message: 'started' };
    const op = statusOp(before, running, T0 + 5);
    assert.ok(encodeTx([op]).length * 3 < encodeTx([updateOp('task', { ...before, status: running })]).length);
    log.ok(op);
    assert.deepEqual(t().status, running);
    assert.equal(t().updatedAt, T0 + 5);
    assert.deepEqual({ ...t(), status: before.status, updatedAt: before.updatedAt, version: before.version }, before);
    // Backwards, a stale version, an unknown task, a bad shape: refused, the task as it was.
    failed(log.tx(statusOp(t(), { ...running, state: 'starting' }, T0 + 6)), 'FAILED_PRECONDITION', /may only move forward, not running -> starting/);
    failed(log.tx(statusOp(before, { ...running, state: 'failed' }, T0 + 6)), 'FAILED_PRECONDITION');
    failed(log.tx(statusOp({ ...before, id: 'nope' }, running, T0 + 6)), 'NOT_FOUND', /task nope not found \(ops\[0\]: status\)/);
    failed(log.tx({ op: 'status', kind: 'service', id: 's1', status: running, updatedAt: 1 } as never), 'INVALID_ARGUMENT', /must be task for a status op/);
    failed(log.tx({ op: 'status', kind: 'task', id: 't1', status: null, updatedAt: 1 } as never), 'INVALID_ARGUMENT', /status must be an object/);
    failed(log.tx({ op: 'status', kind: 'task', id: 't1', status: { ...running, state: 'bogus' }, updatedAt: 1 } as never), 'INVALID_ARGUMENT');
    assert.equal(t().status.state, 'running');
    assert.equal(t().updatedAt, T0 + 5);
  });

  test('secondary indexes follow updates and deletes', () => {
    const log = new Log();
    log.ok(
      create('task', mkTask('t1', 's1', 1, { nodeId: 'n1' })),
      create('task', mkTask('t2', 's1', 2)),
      create('task', mkTask('t3', 's2', 1, { nodeId: 'n1' })),
    );
    assert.deepEqual(log.store.tasksByService('s1').map((t) => t.id), ['t1', 't2']);
    assert.deepEqual(log.store.tasksByNode('n1').map((t) => t.id), ['t1', 't3']);
    assert.deepEqual(log.store.tasksByNode(''), []);
    log.ok(update('task', { ...log.store.get('task', 't2')!, nodeId: 'n2' }), del('task', 't3'));
    assert.deepEqual(log.store.tasksByNode('n1').map((t) => t.id), ['t1']);
    assert.deepEqual(log.store.tasksByNode('n2').map((t) => t.id), ['t2']);
    assert.deepEqual(log.store.tasksByService('s2'), []);
    assert.deepEqual(log.store.tasksBySlot('s1', 2).map((t) => t.id), ['t2']);
  });

  test('history pruning keeps taskHistoryLimit dead tasks per slot', () => {
    const log = new Log();
    log.ok(create('cluster', mkCluster({}, 2)));
    // Slot 1 of s1: four dead tasks (oldest first by createdAt), one running.
    const dead = (id: string, at: number, state: Task['status']['state'] = 'failed') =>
      mkTask(id, 's1', 1, { state, desired: 'shutdown', createdAt: T0 + at });
    log.ok(
      create('task', dead('d3', 3)),
      create('task', dead('d1', 1)),
      create('task', dead('d2', 2, 'shutdown')),
      create('task', mkTask('alive', 's1', 1, { state: 'running', createdAt: T0 + 4 })),
      // Another slot and another service are not touched.
      create('task', mkTask('other-slot', 's1', 2, { state: 'failed', desired: 'shutdown' })),
      create('task', mkTask('other-svc', 's2', 1, { state: 'failed', desired: 'shutdown' })),
    );
    // That transaction created tasks in slot 1 too: pruned down to 2 dead ones right away.
    assert.deepEqual(log.store.tasksBySlot('s1', 1).map((t) => t.id).sort(), ['alive', 'd2', 'd3']);

    // A dead task whose desired state is still running is not history: it stays.
    log.ok(create('task', mkTask('zombie', 's1', 1, { state: 'failed', desired: 'running', createdAt: T0 })));
    const r = log.tx(create('task', dead('d4', 5, 'complete')), create('task', mkTask('new', 's1', 1, { createdAt: T0 + 6 })));
    assert.ok(r.ok);
    assert.deepEqual(r.ids, ['d4', 'new']);
    assert.deepEqual(r.pruned, ['d2']);
    assert.deepEqual(log.store.tasksBySlot('s1', 1).map((t) => t.id).sort(), ['alive', 'd3', 'd4', 'new', 'zombie']);
    assert.equal(log.store.get('task', 'other-slot')!.id, 'other-slot');
    assert.equal(log.store.get('task', 'other-svc')!.id, 'other-svc');
  });

  test('history pruning: global tasks by (service, node); default limit 5 without a cluster', () => {
    const log = new Log();
    for (let i = 0; i < 7; i++) {
      log.ok(create('task', mkTask(`g${i}`, 'sg', 0, { global: true, nodeId: 'n1', state: 'failed', desired: 'shutdown', createdAt: T0 + i })));
    }
    log.ok(create('task', mkTask('g-n2', 'sg', 0, { global: true, nodeId: 'n2', state: 'failed', desired: 'shutdown' })));
    assert.deepEqual(log.store.tasksBySlot('sg', 0, 'n1').map((t) => t.id), ['g2', 'g3', 'g4', 'g5', 'g6']);
    assert.deepEqual(log.store.tasksBySlot('sg', 0, 'n2').map((t) => t.id), ['g-n2']);
  });

  test('pruned tasks produce delete events; limit 0 keeps no history', () => {
    const log = new Log();
    const events: string[] = [];
    log.store.watch((evs) => evs.forEach((e) => e.action !== 'restore' && events.push(`${e.action}:${e.kind}:${e.object.id}`)));
    log.ok(create('cluster', mkCluster({}, 0)), create('task', mkTask('old', 's1', 1, { state: 'complete', desired: 'shutdown' })));
    assert.equal(log.store.get('task', 'old'), null);
    assert.deepEqual(events, ['create:cluster:cluster1', 'create:task:old', 'delete:task:old']);
  });
});

describe('reads', () => {
  test('resolveService / resolveNode: id, name or hostname, unique prefix', () => {
    const log = new Log();
    log.ok(
      create('service', mkService('abc123', 'web')),
      create('service', mkService('abd456', 'api')),
      create('node', mkNode('n1aaaa', 'alpha')),
      create('node', mkNode('n2bbbb', 'beta')),
      create('node', mkNode('n3cccc', 'beta')),
    );
    const st = log.store;
    assert.equal(st.resolveService('abc123').spec.name, 'web');
    assert.equal(st.resolveService('api').id, 'abd456');
    assert.equal(st.resolveService('abc').id, 'abc123');
    assert.throws(() => st.resolveService('ab'), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT') && /ambiguous/.test(e.message));
    assert.throws(() => st.resolveService('zzz'), (e: unknown) => ShoalError.is(e, 'NOT_FOUND'));
    assert.throws(() => st.resolveService(''), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT'));
    assert.equal(st.resolveNode('alpha').id, 'n1aaaa');
    assert.equal(st.resolveNode('n2').id, 'n2bbbb');
    assert.equal(st.resolveNode('n3cccc').description.hostname, 'beta');
    assert.throws(() => st.resolveNode('beta'), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT') && /ambiguous node hostname/.test(e.message));
    assert.throws(() => st.resolveNode('n'), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT') && /ambiguous node id prefix/.test(e.message));
    assert.deepEqual(st.list('node', (n) => n.description.hostname === 'beta').map((n) => n.id), ['n2bbbb', 'n3cccc']);
    assert.equal(st.list('service').length, 2);
  });
});

describe('watches', () => {
  test('events after each successful transaction, with previous on update', () => {
    const log = new Log();
    const got: StoreEvent[][] = [];
    const seenInStore: (Service | null)[] = [];
    log.store.watch((evs) => {
      got.push(evs as StoreEvent[]);
      seenInStore.push(log.store.get('service', 's1'));
    });
    const i1 = log.ok(create('service', mkService('s1', 'web')), create('node', mkNode('n1')));
    const s = log.store.get('service', 's1')!;
    log.tx(create('node', mkNode('n1'))); // fails: no events
    const i3 = log.ok(update('service', { ...s, specVersion: 2 }));
    const i4 = log.ok(del('node', 'n1'));
    assert.equal(got.length, 3);
    assert.deepEqual(
      got[0]!.map((e) => e.action !== 'restore' && [e.kind, e.action, e.object.id, e.index]),
      [
        ['service', 'create', 's1', i1],
        ['node', 'create', 'n1', i1],
      ],
    );
    const [upd] = got[1]!;
    assert.ok(upd && upd.action === 'update' && upd.kind === 'service');
    assert.equal(upd.previous!.specVersion, 1);
    assert.equal(upd.object.specVersion, 2);
    assert.equal(upd.index, i3);
    const [gone] = got[2]!;
    assert.ok(gone && gone.action === 'delete' && gone.object.id === 'n1' && gone.index === i4);
    // Listeners run after the state changed.
    assert.equal(seenInStore[0]!.version, i1);
    assert.ok(Object.isFrozen(got[0]) && Object.isFrozen(got[0]![0]));
  });

  test('filters by kind and id; unsubscribe; a throwing listener does not break apply', () => {
    const errors: unknown[] = [];
    const log = new Log(new ClusterStore({ onListenerError: (e) => errors.push(e) }));
    const tasks: string[] = [];
    const one: string[] = [];
    const all: number[] = [];
    log.store.watch(() => {
      throw new Error('boom');
    });
    const stopTasks = log.store.watch((evs) => evs.forEach((e) => e.action !== 'restore' && tasks.push(e.object.id)), { kinds: ['task'] });
    log.store.watch((evs) => evs.forEach((e) => e.action !== 'restore' && one.push(`${e.action}:${e.object.id}`)), { ids: ['n1'] });
    const stopAll = log.store.watch((evs) => all.push(evs.length));
    log.ok(create('node', mkNode('n1')), create('node', mkNode('n2')), create('task', mkTask('t1', 's', 1)));
    log.ok(create('node', mkNode('n3')));
    stopTasks();
    log.ok(create('task', mkTask('t2', 's', 1)), del('node', 'n1'));
    stopAll();
    log.ok(create('node', mkNode('n4')));
    assert.deepEqual(tasks, ['t1']);
    assert.deepEqual(one, ['create:n1', 'delete:n1']);
    assert.deepEqual(all, [3, 1, 2]);
    assert.equal(errors.length, 4);
    assert.equal(log.store.count('node'), 3);
  });

  test('restore sends one restore event to every listener, whatever its filter', () => {
    const a = new Log();
    a.ok(create('node', mkNode('n1')));
    const b = new Log();
    const got: StoreEvent[][] = [];
    b.store.watch((evs) => got.push([...evs]), { kinds: ['service'], ids: ['x'] });
    b.store.restore(a.store.snapshot());
    assert.deepEqual(got, [[{ action: 'restore', index: 1 }]]);
  });

  test('changes(): the async-iterator form', async () => {
    const log = new Log();
    const ac = new AbortController();
    const it = log.store.changes({ kinds: ['node'] }, { signal: ac.signal });
    log.ok(create('node', mkNode('n1')), create('service', mkService('s1', 'web')));
    log.ok(create('node', mkNode('n2')));
    const seen: string[] = [];
    for await (const e of it) {
      if (e.action !== 'restore') seen.push(e.object.id);
      if (seen.length === 2) break;
    }
    assert.deepEqual(seen, ['n1', 'n2']);
    const it2 = log.store.changes();
    const next = it2.next();
    ac.abort();
    await it2.return!();
    assert.deepEqual(await next, { value: undefined, done: true });
  });
});

describe('snapshots', () => {
  function populate(log: Log): void {
    log.ok(create('cluster', mkCluster({}, 1)), create('node', mkNode('n1', 'alpha')), create('node', mkNode('n2', 'beta')));
    log.ok(create('service', mkService('s1', 'web')), create('service', mkService('s2', 'api', { spec: { ...mkService('x', 'api').spec, labels: { z: '1', a: '2' } } })));
    for (let i = 0; i < 4; i++) {
      log.ok(create('task', mkTask(`t${i}`, 's1', 1, { nodeId: 'n1', state: 'failed', desired: 'shutdown', createdAt: T0 + i })));
    }
    log.tx(create('service', mkService('s3', 'web'))); // a failed transaction is part of the history too
    const s = log.store.get('service', 's2')!;
    log.ok(update('service', { ...s, spec: { ...s.spec, name: 'api2' } }, s.version), del('node', 'n2'));
  }

  test('round trip: a restored store holds the same objects and indexes, and snapshots to the same bytes', () => {
    const a = new Log();
    populate(a);
    const snap = a.store.snapshot();
    const b = new ClusterStore();
    b.restore(snap);
    assert.deepEqual(Buffer.from(b.snapshot()), Buffer.from(snap));
    assert.equal(b.appliedIndex, a.store.appliedIndex);
    assert.deepEqual(b.cluster(), a.store.cluster());
    assert.equal(b.serviceByName('api2')!.id, 's2');
    assert.equal(b.serviceByName('api'), null);
    assert.deepEqual(b.tasksByNode('n1').map((t) => t.id).sort(), a.store.tasksByNode('n1').map((t) => t.id).sort());
    assert.deepEqual(b.tasksBySlot('s1', 1).length, 1);
    assert.equal(b.resolveNode('alpha').id, 'n1');
    assert.ok(Object.isFrozen(b.get('service', 's1')));
    const { header } = readSnapshot(snap);
    assert.equal(header.format, 'shoal-store');
    assert.equal(header.version, 2);
    // Labels are stored in sorted key order (canonical form).
    assert.deepEqual(Object.keys(b.get('service', 's2')!.spec.labels), ['a', 'z']);
  });

  test('deterministic: two stores fed the same commands produce identical snapshot bytes', () => {
    const a = new Log();
    populate(a);
    const b = new Log();
    for (const c of a.commands) b.raw(c);
    assert.deepEqual(Buffer.from(b.store.snapshot()), Buffer.from(a.store.snapshot()));
    // And a store restored midway then fed the rest ends up identical too.
    const c = new Log();
    for (const cmd of a.commands.slice(0, 3)) c.raw(cmd);
    const d = new Log();
    d.store.restore(c.store.snapshot());
    d.index = c.index;
    for (const cmd of a.commands.slice(3)) d.raw(cmd);
    assert.deepEqual(Buffer.from(d.store.snapshot()), Buffer.from(a.store.snapshot()));
  });

  test('a corrupt version-1 snapshot throws CORRUPT_DATA and leaves the state untouched', () => {
    const a = new Log();
    populate(a);
    const good = toV1(a.store.snapshot());
    const store = new ClusterStore();
    store.restore(new TextEncoder().encode(good));
    const events: StoreEvent[] = [];
    store.watch((e) => events.push(...e));
    const mutate = (f: (s: any) => void) => {
      const s = JSON.parse(good);
      f(s);
      return new TextEncoder().encode(JSON.stringify(s));
    };
    const corrupt: [string, Uint8Array][] = [
      ['empty', new Uint8Array(0)],
      ['truncated', new TextEncoder().encode(good.slice(0, good.length / 2))],
      ['not utf-8', new Uint8Array([0xc3, 0x28])],
      ['wrong format', mutate((s) => (s.format = 'kv'))],
      ['future version', mutate((s) => (s.version = 3))],
      ['bad index', mutate((s) => (s.index = -1))],
      ['missing kind', mutate((s) => delete s.objects.task)],
      ['unknown kind', mutate((s) => (s.objects.volume = []))],
      ['bad object', mutate((s) => (s.objects.service[0].spec.replicas = 'many'))],
      ['duplicate id', mutate((s) => s.objects.node.push(s.objects.node[0]))],
      ['duplicate name', mutate((s) => (s.objects.service[1].spec.name = s.objects.service[0].spec.name))],
      ['two clusters', mutate((s) => s.objects.cluster.push({ ...s.objects.cluster[0], id: 'c2' }))],
      ['version past index', mutate((s) => (s.objects.node[0].version = s.index + 1))],
    ];
    for (const [what, data] of corrupt) {
      assert.throws(
        () => store.restore(data),
        (e: unknown) => ShoalError.is(e, 'CORRUPT_DATA') && /^store snapshot: /.test(e.message),
        what,
      );
    }
    assert.deepEqual(Buffer.from(store.snapshot()), Buffer.from(a.store.snapshot()));
    assert.deepEqual(events, []);
  });
});

describe('client helpers', () => {
  test('newId: 25 characters of [a-z0-9], all distinct, every character used', () => {
    const ids = Array.from({ length: 2000 }, newId);
    for (const id of ids) assert.match(id, /^[a-z0-9]{25}$/);
    assert.equal(ID_LENGTH, 25);
    assert.equal(new Set(ids).size, ids.length);
    assert.equal(new Set(ids.join('')).size, 36);
  });

  test('StoreClient.update retries on a version conflict (fake proposer)', async () => {
    const log = new Log();
    log.ok(create('service', mkService('s1', 'web')));
    let proposals = 0;
    let barriers = 0;
    const proposer: StoreProposer = {
      async propose(payload) {
        proposals++;
        // Another writer sneaks in before our first proposal lands.
        if (proposals === 1) {
          const s = log.store.get('service', 's1')!;
          log.ok(update('service', { ...s, spec: { ...s.spec, replicas: 10 } }));
        }
        const index = log.index + 1;
        const result = log.store.apply(payload, index);
        log.index = index;
        return { index, result };
      },
      async readBarrier() {
        barriers++;
        return log.index;
      },
    };
    const client = new StoreClient(proposer, log.store);
    let calls = 0;
    const r = await client.update((st) => {
      calls++;
      const s = st.resolveService('web');
      return [updateOp('service', { ...s, spec: { ...s.spec, replicas: s.spec.replicas + 1 } })];
    });
    assert.equal(calls, 2);
    assert.equal(barriers, 2);
    assert.deepEqual(r.ids, ['s1']);
    assert.equal(log.store.get('service', 's1')!.spec.replicas, 11);

    // Out of retries: the conflict is thrown.
    let n = 0;
    await assert.rejects(
      client.update(
        (st) => {
          n++;
          const s = st.get('service', 's1')!;
          log.ok(update('service', { ...s, specVersion: s.specVersion + 1 })); // always someone faster
          return [updateOp('service', s)];
        },
        { retries: 2 },
      ),
      (e: unknown) => isVersionConflict(e),
    );
    assert.equal(n, 3);
    // Non-conflict failures are not retried; no ops means nothing proposed.
    const before = proposals;
    await assert.rejects(client.update(() => [create('service', mkService('s9', 'web'))]), (e: unknown) => ShoalError.is(e, 'ALREADY_EXISTS'));
    assert.equal(proposals, before + 1);
    const none = await client.update(() => []);
    assert.deepEqual(none, { ok: true, index: log.index, ids: [] });
    assert.equal(proposals, before + 1);
  });
});

describe("an older release's plaintext CA key", () => {
  // What releases before sealing stored: the key's PEM in the cluster object.
  const PEM = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';
  const SEALED = { alg: 'aes-256-gcm' as const, kekId: '0123456789abcdef', nonce: 'AAAAAAAAAAAAAAAA', data: 'c2VhbGVk' };
  const legacy = () => ({ ...mkCluster(), caKey: PEM }) as unknown as ReturnType<typeof mkCluster>;

  test('replays (created, carried over by later writes), then is sealed; never written anew', () => {
    const log = new Log();
    // An old log: the cluster created with the key in the clear, then updated carrying it over.
    const i1 = log.ok(create('cluster', legacy()));
    assert.equal(log.store.cluster()!.caKey, PEM);
    const c1 = log.store.cluster()!;
    const i2 = log.ok(update('cluster', { ...c1, removedNodes: ['n9'] }, i1));
    assert.equal(log.store.cluster()!.caKey, PEM);
    // A different plaintext key is a new write of one: refused, nothing changed.
    failed(log.tx(update('cluster', { ...log.store.cluster()!, caKey: PEM.replace('MIG', 'XIG') }, i2)), 'FAILED_PRECONDITION', /must be stored sealed/);
    // The leader's migration: the sealed form replaces it.
    const i3 = log.ok(update('cluster', { ...log.store.cluster()!, caKey: SEALED }, i2));
    assert.deepEqual(log.store.cluster()!.caKey, SEALED);
    // And no write brings the plaintext back.
    failed(log.tx(update('cluster', { ...log.store.cluster()!, caKey: PEM }, i3)), 'FAILED_PRECONDITION', /must be stored sealed/);
    assert.deepEqual(log.store.cluster()!.caKey, SEALED);
    // An empty string (an old cluster without a key) reads as no key; anything else is refused.
    const other = new Log();
    other.ok(create('cluster', { ...legacy(), caKey: '' }));
    assert.equal(other.store.cluster()!.caKey, null);
    failed(new Log().tx(create('cluster', { ...legacy(), caKey: 'not a key' })), 'INVALID_ARGUMENT', /caKey must be a sealed secret/);
  });

  test("an older release's snapshot with the plaintext key restores", () => {
    const log = new Log();
    log.ok(create('cluster', legacy()), create('node', mkNode('n1')));
    const snap = log.store.snapshot();
    const back = new ClusterStore();
    back.restore(snap);
    assert.equal(back.cluster()!.caKey, PEM);
    assert.ok(back.get('node', 'n1'));
  });

  test('the proposer refuses a new cluster with a plaintext key before it reaches Raft', async () => {
    const log = new Log();
    let proposals = 0;
    const proposer: StoreProposer = {
      async propose(payload) {
        proposals++;
        const index = log.index + 1;
        const result = log.store.apply(payload, index);
        log.index = index;
        return { index, result };
      },
      async readBarrier() {
        return log.index;
      },
    };
    const client = new StoreClient(proposer, log.store);
    await assert.rejects(client.commit([create('cluster', legacy())]), (e: ShoalError) => e.code === 'FAILED_PRECONDITION' && /must be stored sealed/.test(e.message));
    assert.equal(proposals, 0);
    assert.equal(log.store.cluster(), null);
  });
});
