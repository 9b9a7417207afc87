// The cluster events on a real ClusterStore: store changes become docker-style events with
// versions that depend only on the log (index, position); the journal's ring keeps the last ones,
// serves a resume after a version, refuses one below its floor (evicted, or skipped by a snapshot
// install), and drops a subscriber that lets too many wait.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ShoalError } from '@shoal/api';
import { ClusterStore, decodeTxResult, encodeTx, type Op, type Service, type StoreEvent, type Task } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import {
  type ClusterEvent,
  EVENTS_FELL_BEHIND,
  EVENTS_GAP,
  EventJournal,
  clusterEventsOf,
  compareVersions,
  matchesFilters,
  parseEventFilters,
  parseEventTime,
  parseVersion,
  serveEvents,
} from '../src/events/index.js';

const spec = mkSpec();

function service(over: Partial<Service> = {}): Service {
  return { id: 'svc1', version: 0, createdAt: T0, updatedAt: T0, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null, ...over };
}

function task(id: string, slot: number, state: Task['status']['state'] = 'new'): Task {
  return {
    id, version: 0, createdAt: T0, updatedAt: T0, serviceId: 'svc1', serviceName: 'web', slot, nodeId: 'n1', desiredState: 'running',
    status: { state, timestamp: T0, message: '', err: '', containerId: '', exitCode: 0 }, spec, specVersion: 1, networks: [], jobIteration: 0,
  };
}

/** A store and a way to commit at the next index. */
function world() {
  const store = new ClusterStore();
  let index = 0;
  const commit = (ops: Op[]): number => {
    const r = decodeTxResult(store.apply(encodeTx(ops), ++index));
    assert.ok(r.ok, JSON.stringify(r));
    return index;
  };
  return { store, commit, skip: (n: number) => (index += n) };
}

async function take(it: AsyncIterator<ClusterEvent>, n: number): Promise<ClusterEvent[]> {
  const out: ClusterEvent[] = [];
  for (let i = 0; i < n; i++) {
    const r = await it.next();
    assert.ok(!r.done, `the stream ended after ${i} of ${n} events`);
    out.push(r.value);
  }
  return out;
}

describe('store events -> cluster events', () => {
  test('creates, updates and removes read as docker does, with what an update changed', () => {
    const { store } = world();
    const seen: StoreEvent[] = [];
    store.watch((evs) => seen.push(...evs));
    store.apply(encodeTx([{ op: 'create', kind: 'node', object: mkNode('n1', { hostname: 'host1' }) }, { op: 'create', kind: 'service', object: service() }]), 1);
    const n = store.get('node', 'n1')!;
    store.apply(encodeTx([{ op: 'update', kind: 'node', object: { ...n, spec: { ...n.spec, availability: 'drain' }, status: { ...n.status, state: 'down' } } }]), 2);
    const s = store.get('service', 'svc1')!;
    store.apply(encodeTx([{ op: 'update', kind: 'service', object: { ...s, spec: { ...s.spec, replicas: 5 } } }]), 3);
    store.apply(encodeTx([{ op: 'delete', kind: 'service', id: 'svc1' }]), 4);
    const evs = seen.flatMap(clusterEventsOf);
    assert.deepEqual(evs.map((e) => `${e.type} ${e.action} ${e.actor.id}`), ['node create n1', 'service create svc1', 'node update n1', 'service update svc1', 'service remove svc1']);
    assert.equal(evs[0]!.actor.attributes['name'], 'host1');
    assert.deepEqual(
      [evs[2]!.actor.attributes['state.old'], evs[2]!.actor.attributes['state.new'], evs[2]!.actor.attributes['availability.old'], evs[2]!.actor.attributes['availability.new']],
      ['ready', 'down', 'active', 'drain'],
    );
    assert.equal(evs[2]!.actor.attributes['role.old'], undefined, 'an unchanged field has no old/new');
    assert.deepEqual([evs[3]!.actor.attributes['replicas.old'], evs[3]!.actor.attributes['replicas.new'], evs[3]!.actor.attributes['name']], ['3', '5', 'web']);
  });

  test("a task's state changes are events; a write that changes neither state nor node is not", () => {
    const { store, commit } = world();
    commit([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'service', object: service() }]);
    const seen: StoreEvent[] = [];
    store.watch((evs) => seen.push(...evs));
    commit([{ op: 'create', kind: 'task', object: task('t1', 1, 'running') }]);
    const t = store.get('task', 't1')!;
    commit([{ op: 'update', kind: 'task', object: { ...t, status: { ...t.status, message: 'still running' } } }]);
    const t2 = store.get('task', 't1')!;
    commit([{ op: 'update', kind: 'task', object: { ...t2, status: { ...t2.status, state: 'failed', err: 'exit 1' } } }]);
    const evs = seen.flatMap(clusterEventsOf);
    assert.deepEqual(evs.map((e) => `${e.type} ${e.action}`), ['task create', 'task update']);
    const a = evs[1]!.actor.attributes;
    assert.deepEqual([a['name'], a['service.name'], a['state.old'], a['state.new'], a['error']], ['web.1.t1', 'web', 'running', 'failed', 'exit 1']);
    assert.deepEqual(clusterEventsOf({ action: 'restore', index: 9 }), []);
  });

  test('versions order by index then position, whatever their text', () => {
    assert.deepEqual(parseVersion('12.3'), { index: 12, position: 3 });
    assert.equal(parseVersion('12')!.position, Number.MAX_SAFE_INTEGER);
    assert.equal(parseVersion('x'), undefined);
    assert.equal(parseVersion('1.2.3'), undefined);
    assert.ok(compareVersions(parseVersion('12.10')!, parseVersion('12.9')!) > 0);
    assert.ok(compareVersions(parseVersion('12.10')!, parseVersion('13.0')!) < 0);
  });

  test("filters: docker's keys; one key's values are alternatives, keys must all match", () => {
    const ev = (type: ClusterEvent['type'], action: string, id: string, attributes: Record<string, string>): ClusterEvent =>
      ({ type, action, actor: { id, attributes }, timeMs: 0, index: 1, position: 0, version: '1.0' });
    const svc = ev('service', 'create', 'svc1', { name: 'web' });
    const tsk = ev('task', 'update', 't1', { 'service.id': 'svc1', 'service.name': 'web', 'node.id': 'n1' });
    const node = ev('node', 'update', 'n1', { name: 'host1' });
    const f = (...l: string[]) => parseEventFilters(l);
    assert.ok(matchesFilters(svc, f('type=service', 'type=node')));
    assert.ok(!matchesFilters(tsk, f('type=service', 'type=node')));
    assert.ok(matchesFilters(svc, f('service=web')) && matchesFilters(tsk, f('service=web')) && !matchesFilters(node, f('service=web')));
    assert.ok(matchesFilters(tsk, f('service=svc')), 'an id prefix names it too');
    assert.ok(matchesFilters(node, f('node=host1')) && matchesFilters(tsk, f('node=n1')) && !matchesFilters(svc, f('node=n1')));
    assert.ok(matchesFilters(tsk, f('type=task', 'event=update')) && !matchesFilters(tsk, f('type=task', 'event=create')));
    assert.throws(() => f('color=red'), (e: unknown) => ShoalError.is(e) && e.code === 'INVALID_ARGUMENT' && /key must be one of type, service, node, event/.test(e.message));
    assert.throws(() => f('type=volume'), /type must be one of/);
    assert.throws(() => f('type='), /expected type=VALUE/);
    assert.equal(parseEventTime('2026-12-08T01:02:03.5Z', 'since'), Date.parse('2026-12-08T01:02:03.500Z'));
    assert.equal(parseEventTime('1700000000.25', 'since'), 1_700_000_000_250);
    assert.equal(parseEventTime('', 'since'), undefined);
    assert.throws(() => parseEventTime('yesterday', 'since'), /invalid since "yesterday"/);
  });
});

describe('event journal', () => {
  test('events get (index, position) versions; a resume after one gets exactly the rest, live ones included', async () => {
    const { store, commit } = world();
    let clock = T0;
    const j = new EventJournal(store, { now: () => ++clock });
    commit([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'service', object: service() }]);
    commit([{ op: 'create', kind: 'task', object: task('t1', 1) }, { op: 'create', kind: 'task', object: task('t2', 2) }, { op: 'create', kind: 'task', object: task('t3', 3) }]);
    assert.deepEqual(j.events().map((e) => e.version), ['1.0', '1.1', '2.0', '2.1', '2.2']);
    assert.equal(j.lastVersion, '2.2');
    const it = j.subscribe({ resumeAfter: parseVersion('2.0')! });
    commit([{ op: 'delete', kind: 'service', id: 'svc1' }]);
    assert.deepEqual((await take(it, 3)).map((e) => `${e.version} ${e.type} ${e.action} ${e.actor.id}`), ['2.1 task create t2', '2.2 task create t3', '3.0 service remove svc1']);
    // The leader change is placed after the index applied when it was seen.
    j.noteLeader('n1', '', 2, 'host1');
    const [lead] = await take(it, 1);
    assert.deepEqual([lead!.version, lead!.type, lead!.action, lead!.actor.id, lead!.actor.attributes['name'], lead!.actor.attributes['term']], ['3.1', 'cluster', 'leader', 'n1', 'host1', '2']);
    // A bare index resumes after all of its events.
    const after2 = j.subscribe({ resumeAfter: parseVersion('2')! });
    assert.deepEqual((await take(after2, 2)).map((e) => e.version), ['3.0', '3.1']);
    await it.return!();
    await after2.return!();
    assert.equal(j.subscriberCount, 0);
    j.stop();
  });

  test('two journals on stores fed the same log give the same versions', () => {
    const a = world();
    const b = world();
    const ja = new EventJournal(a.store);
    const jb = new EventJournal(b.store);
    for (const w of [a, b]) {
      w.commit([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'service', object: service() }]);
      w.commit([{ op: 'create', kind: 'task', object: task('t1', 1) }]);
    }
    const key = (e: ClusterEvent) => `${e.version} ${e.type} ${e.action} ${e.actor.id}`;
    assert.deepEqual(ja.events().map(key), jb.events().map(key));
  });

  test('the ring keeps the last N; a resume below what it holds is FAILED_PRECONDITION, at the edge it is not', async () => {
    const { store, commit } = world();
    const j = new EventJournal(store, { capacity: 3 });
    commit([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'service', object: service() }]);
    for (let i = 1; i <= 3; i++) commit([{ op: 'create', kind: 'task', object: task(`t${i}`, i) }]);
    assert.deepEqual(j.events().map((e) => e.version), ['2.0', '3.0', '4.0']);
    assert.deepEqual(j.floor, { index: 1, position: 1 });
    assert.throws(
      () => j.subscribe({ resumeAfter: parseVersion('1.0')! }),
      (e: unknown) => ShoalError.is(e) && e.code === 'FAILED_PRECONDITION' && e.details.reason === EVENTS_GAP && /no longer holds the events after 1\.0/.test(e.message),
    );
    const it = j.subscribe({ resumeAfter: parseVersion('1.1')! });
    assert.deepEqual((await take(it, 3)).map((e) => e.version), ['2.0', '3.0', '4.0']);
    await it.return!();
    // Before this manager's first event: what it applied before the journal began is not held.
    const late = world();
    late.commit([{ op: 'create', kind: 'node', object: mkNode('n1') }]);
    const jl = new EventJournal(late.store);
    assert.throws(() => jl.subscribe({ resumeAfter: parseVersion('0.0')! }), /no longer holds/);
    jl.subscribe({ resumeAfter: parseVersion('1')! }).return!();
  });

  test('a snapshot install is a gap: live subscribers end with FAILED_PRECONDITION and resumes from before it are refused', async () => {
    const src = world();
    src.commit([{ op: 'create', kind: 'node', object: mkNode('n1') }]);
    src.commit([{ op: 'create', kind: 'service', object: service() }]);
    const snap = src.store.snapshot();
    const { store, commit } = world();
    const j = new EventJournal(store);
    commit([{ op: 'create', kind: 'node', object: mkNode('n1') }]);
    const it = j.subscribe({ resumeAfter: parseVersion('0')! });
    assert.equal((await take(it, 1))[0]!.version, '1.0');
    store.restore(snap);
    await assert.rejects(it.next(), (e: unknown) => ShoalError.is(e) && e.code === 'FAILED_PRECONDITION' && e.details.reason === EVENTS_GAP && /installed a snapshot at index 2/.test(e.message));
    assert.throws(() => j.subscribe({ resumeAfter: parseVersion('1.0')! }), /no longer holds/);
    assert.deepEqual(j.floor, { index: 2, position: Number.MAX_SAFE_INTEGER });
    const next = j.subscribe({ resumeAfter: parseVersion('2')! });
    store.apply(encodeTx([{ op: 'create', kind: 'task', object: task('t1', 1) }]), 3);
    assert.equal((await take(next, 1))[0]!.version, '3.0', 'numbering goes on after the snapshot');
    await next.return!();
  });

  test('a subscriber that lets more than its bound wait is dropped with RESOURCE_EXHAUSTED; others go on', async () => {
    const { store, commit } = world();
    const j = new EventJournal(store);
    commit([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'service', object: service() }]);
    const slow = j.subscribe({ maxQueued: 2 });
    const other = j.subscribe({ maxQueued: 100 });
    for (let i = 1; i <= 3; i++) commit([{ op: 'create', kind: 'task', object: task(`t${i}`, i) }]);
    await assert.rejects(slow.next(), (e: unknown) => ShoalError.is(e) && e.code === 'RESOURCE_EXHAUSTED' && e.details.reason === EVENTS_FELL_BEHIND && /resume after the last version/.test(e.message));
    assert.equal((await take(other, 3)).length, 3);
    await other.return!();
    assert.equal(j.subscriberCount, 0);
  });

  test('--since replays the held events from that time; without it only live events come', async () => {
    const { store, commit } = world();
    let clock = T0;
    const j = new EventJournal(store, { now: () => clock });
    commit([{ op: 'create', kind: 'node', object: mkNode('n1') }]);
    clock = T0 + 10_000;
    commit([{ op: 'create', kind: 'service', object: service() }]);
    const since = j.subscribe({ sinceMs: T0 + 5_000 });
    const live = j.subscribe({});
    commit([{ op: 'create', kind: 'task', object: task('t1', 1) }]);
    assert.deepEqual((await take(since, 2)).map((e) => e.type), ['service', 'task']);
    assert.deepEqual((await take(live, 1)).map((e) => e.type), ['task']);
    await since.return!();
    await live.return!();
  });
});

describe('the Events stream (server side)', () => {
  /** A sink as gRPC's call is: writes collected, never full. */
  function sink() {
    const written: ClusterEvent[] = [];
    const on: Record<string, () => void> = {};
    return {
      written,
      cancel: () => on['cancelled']?.(),
      call: { cancelled: false, write: (e: ClusterEvent) => (written.push(e), true), once: () => undefined, on: (ev: string, fn: () => void) => ((on[ev] = fn), undefined) },
    };
  }

  test('an --until in the past sends the held window and ends; bad requests are one-line INVALID_ARGUMENTs', async () => {
    const { store, commit } = world();
    let clock = T0;
    const j = new EventJournal(store, { now: () => clock });
    commit([{ op: 'create', kind: 'node', object: mkNode('n1') }]);
    clock += 1000;
    commit([{ op: 'create', kind: 'service', object: service() }]);
    clock += 1000;
    commit([{ op: 'create', kind: 'task', object: task('t1', 1) }]);
    const s = sink();
    await serveEvents(j, { since: String(T0 / 1000), until: String((T0 + 1000) / 1000), filters: [] }, s.call, { now: () => T0 + 60_000 });
    assert.deepEqual(s.written.map((e) => e.type), ['node', 'service']);
    const s2 = sink();
    await serveEvents(j, { until: String((T0 + 5000) / 1000), filters: ['type=task'] }, s2.call, { now: () => T0 + 60_000 });
    assert.deepEqual(s2.written.map((e) => e.type), ['task']);
    await assert.rejects(serveEvents(j, { resumeAfter: 'latest' }, sink().call), /invalid resume_after "latest"/);
    await assert.rejects(serveEvents(j, { filters: ['colour=red'] }, sink().call), /invalid filter "colour=red"/);
    await assert.rejects(serveEvents(j, { since: '2026-12-08T00:00:00Z', until: '2026-12-07T00:00:00Z' }, sink().call), /is before since/);
  });

  test('a live stream follows until the client leaves', async () => {
    const { store, commit } = world();
    const j = new EventJournal(store);
    const s = sink();
    const done = serveEvents(j, { filters: ['type=service'] }, s.call);
    commit([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'service', object: service() }]);
    while (s.written.length < 1) await new Promise((r) => setImmediate(r));
    s.cancel();
    await done;
    assert.deepEqual(s.written.map((e) => `${e.type} ${e.action}`), ['service create']);
    assert.equal(j.subscriberCount, 0);
  });
});
