// Snapshots of a large store: encoding and restoring in steps that let the event loop turn (a
// Raft node's heartbeats must keep flowing while 10,000 tasks are encoded or validated), a capture
// that keeps its index while transactions go on applying, all-or-nothing restores of the line
// format, and the version-1 format of earlier releases. No timings are asserted (too noisy on a
// shared machine): event-loop turns are counted instead.

import { before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ShoalError } from '@shoal/api';
import { ClusterStore, type StoreEvent } from '../src/index.js';
import { Log, create, mkCluster, mkNode, mkService, mkTask, update } from './fixtures.js';
import { readSnapshot, toV1 } from './snapshot-fixtures.js';
import { V1_SNAPSHOT } from './v1-snapshot.js';
import { serviceSpecShape } from '@shoal/types';

const TASKS = 10_000;

function bigLog(tasks: number): Log {
  const log = new Log();
  log.ok(create('cluster', mkCluster()), create('node', mkNode('n1', 'alpha')), create('node', mkNode('n2', 'beta')));
  log.ok(create('service', mkService('svc1', 'web')), create('service', mkService('svc2', 'api')));
  for (let b = 0; b < tasks; b += 500) {
    const ops = [];
    for (let i = b; i < Math.min(tasks, b + 500); i++) {
      ops.push(create('task', mkTask(`t${String(i).padStart(5, '0')}`, i % 2 ? 'svc1' : 'svc2', i + 1, { nodeId: i % 3 ? 'n1' : 'n2' })));
    }
    log.ok(...ops);
  }
  return log;
}

/**
 * Runs `work` while a setImmediate ticker counts event-loop turns, calling `onTurn` at each: a
 * step-wise job lets the loop turn many times, a job done in one piece lets it turn at most once.
 */
async function countTurns<T>(work: () => Promise<T>, onTurn: () => void = () => {}): Promise<{ value: T; turns: number }> {
  let turns = 0;
  let running = true;
  const tick = () => {
    if (!running) return;
    turns++;
    onTurn();
    setImmediate(tick);
  };
  setImmediate(tick);
  try {
    return { value: await work(), turns };
  } finally {
    running = false;
  }
}

const isCorrupt = (e: unknown) => ShoalError.is(e, 'CORRUPT_DATA') && /^store snapshot: /.test((e as Error).message);

describe('snapshots of 10,000 tasks, in steps', () => {
  let log: Log;
  let snap: Uint8Array;
  before(() => {
    log = bigLog(TASKS);
    snap = log.store.snapshot();
  });

  test('encoding a capture lets the event loop turn, and gives the bytes of snapshot()', async () => {
    const capture = log.store.captureSnapshot();
    const { value, turns } = await countTurns(() => capture.encode());
    assert.ok(turns >= 5, `the event loop turned ${turns} times while 10,000 tasks were encoded`);
    assert.deepEqual(Buffer.from(value), Buffer.from(snap));
    assert.equal(readSnapshot(value).header.counts.task, TASKS);
  });

  test('a capture encodes the state at its index, while later transactions apply', async () => {
    const own = bigLog(2_000);
    const atCapture = own.store.snapshot();
    const index = own.store.appliedIndex;
    const capture = own.store.captureSnapshot();
    let k = 0;
    // Each turn of the loop applies a transaction, as a Raft node keeps applying during the encode.
    const { value, turns } = await countTurns(
      () => capture.encode(),
      () => {
        const id = `t${String(k++).padStart(5, '0')}`;
        const t = own.store.get('task', id)!;
        own.ok(update('task', { ...t, status: { ...t.status, state: 'running', message: 'moved on' } }), create('node', mkNode(`late${k}`)));
      },
    );
    assert.ok(turns >= 2 && k >= 2, `transactions applied during the encode (${k})`);
    assert.ok(own.store.appliedIndex > index);
    assert.deepEqual(Buffer.from(value), Buffer.from(atCapture));
    assert.equal(readSnapshot(value).header.index, index);
    assert.notDeepEqual(Buffer.from(own.store.snapshot()), Buffer.from(atCapture));
  });

  test('restoreAsync lets the event loop turn, shows the old state until done, then the same state', async () => {
    const b = new Log();
    b.ok(create('service', mkService('old', 'old')));
    const events: StoreEvent[] = [];
    b.store.watch((e) => events.push(...e));
    const seen = new Set<string>();
    const { turns } = await countTurns(
      () => b.store.restoreAsync(snap),
      () => seen.add(`${b.store.appliedIndex}/${b.store.count('task')}/${b.store.count('service')}`),
    );
    assert.ok(turns >= 5, `the event loop turned ${turns} times while 10,000 tasks were restored`);
    // Never half restored: every turn saw the old state.
    assert.deepEqual([...seen], ['1/0/1']);
    assert.deepEqual(events, [{ action: 'restore', index: log.store.appliedIndex }]);
    assert.deepEqual(Buffer.from(b.store.snapshot()), Buffer.from(snap));
    assert.equal(b.store.appliedIndex, log.store.appliedIndex);
    assert.equal(b.store.tasksByService('svc1').length, TASKS / 2);
    assert.equal(b.store.tasksByNode('n2').length, log.store.tasksByNode('n2').length);
    assert.equal(b.store.serviceByName('old'), null);
    assert.ok(Object.isFrozen(b.store.get('task', 't00042')));
  });

  test('a corrupt object deep in the snapshot: rejected after many steps, the state untouched', async () => {
    const text = Buffer.from(snap).toString();
    const lines = text.split('\n');
    lines[8_000] = lines[8_000]!.replace('"slot":', '"slot":"x","slut":');
    const bad = new TextEncoder().encode(lines.join('\n'));
    const b = new Log();
    b.ok(create('node', mkNode('keep')));
    const before = Buffer.from(b.store.snapshot());
    const events: StoreEvent[] = [];
    b.store.watch((e) => events.push(...e));
    let err: unknown;
    const { turns } = await countTurns(() => b.store.restoreAsync(bad).catch((e: unknown) => (err = e)));
    assert.ok(isCorrupt(err), String(err));
    assert.ok(turns >= 5, `validated in steps (${turns} turns) before the bad object`);
    assert.deepEqual(Buffer.from(b.store.snapshot()), before);
    assert.deepEqual(events, []);
  });

  test('the same state in the version-1 form restores (in steps) to the same state', async () => {
    const v1 = new TextEncoder().encode(toV1(snap));
    const b = new ClusterStore();
    const { turns } = await countTurns(() => b.restoreAsync(v1));
    assert.ok(turns >= 5, `validated in steps (${turns} turns)`);
    assert.deepEqual(Buffer.from(b.snapshot()), Buffer.from(snap));
    const c = new ClusterStore();
    c.restore(v1);
    assert.deepEqual(Buffer.from(c.snapshot()), Buffer.from(snap));
  });
});

describe('snapshot formats', () => {
  test('a version-1 snapshot written by the previous release restores, and snapshots again in version 2', async () => {
    for (const restore of ['sync', 'async'] as const) {
      const s = new ClusterStore();
      if (restore === 'sync') s.restore(new TextEncoder().encode(V1_SNAPSHOT));
      else await s.restoreAsync(new TextEncoder().encode(V1_SNAPSHOT));
      assert.equal(s.appliedIndex, 3);
      assert.equal(s.cluster()!.id, 'cluster1');
      assert.equal(s.resolveNode('alpha').id, 'n1');
      assert.equal(s.serviceByName('web')!.id, 's1');
      assert.deepEqual(s.tasksByNode('n1').map((t) => t.id).sort(), ['t1', 't2']);
      const again = readSnapshot(s.snapshot());
      assert.equal(again.header.version, 2);
      // The same objects, with the spec fields added since that release at their defaults.
      const expected = JSON.parse(V1_SNAPSHOT) as {
        objects: {
          cluster: { unlockKey?: null }[];
          node: { attachments?: object[]; status: { meshMode?: string } }[];
          service: { spec: object; endpoint?: object; jobStatus?: null }[];
          task: { spec: object; networks?: object[]; jobIteration?: number }[];
        };
      };
      for (const o of [...expected.objects.service, ...expected.objects.task]) o.spec = serviceSpecShape(o.spec, 'spec');
      // The fields of objects added since: none allocated on any network.
      for (const o of expected.objects.service) Object.assign(o, { endpoint: { virtualIps: [] }, jobStatus: null });
      for (const o of expected.objects.task) Object.assign(o, { networks: [], jobIteration: 0 });
      // Autolock off.
      for (const o of expected.objects.cluster) o.unlockKey = null;
      for (const o of expected.objects.node) {
        o.attachments = [];
        o.status.meshMode = '';
      }
      // And the kinds added since, empty.
      Object.assign(expected.objects, { network: [], secret: [], config: [] });
      assert.deepEqual(JSON.parse(toV1(s.snapshot())), expected);
    }
  });

  test('a corrupt version-2 snapshot throws CORRUPT_DATA (sync and async) and leaves the state untouched', async () => {
    const a = new Log();
    a.ok(create('cluster', mkCluster()), create('node', mkNode('n1', 'alpha')), create('node', mkNode('n2', 'beta')));
    a.ok(create('service', mkService('s1', 'web')), create('service', mkService('s2', 'api')));
    a.ok(create('task', mkTask('t1', 's1', 1)), create('task', mkTask('t2', 's1', 2)));
    const good = Buffer.from(a.store.snapshot()).toString();
    const lines = good.split('\n');
    const edit = (f: (header: any, objs: string[]) => void) => {
      const header = JSON.parse(lines[0]!);
      const objs = lines.slice(1, -1);
      f(header, objs);
      return new TextEncoder().encode([JSON.stringify(header), ...objs, ''].join('\n'));
    };
    const obj = (objs: string[], i: number, f: (o: any) => void) => {
      const o = JSON.parse(objs[i]!);
      f(o);
      objs[i] = JSON.stringify(o);
    };
    // Lines: 0 cluster, 1-2 nodes, 3-4 services, 5-6 tasks.
    const corrupt: [string, Uint8Array][] = [
      ['truncated mid-line', new TextEncoder().encode(good.slice(0, good.length - 20))],
      ['truncated at a line end', new TextEncoder().encode(lines.slice(0, -2).join('\n') + '\n')],
      ['no final newline', new TextEncoder().encode(good.slice(0, -1))],
      ['header not JSON', new TextEncoder().encode('{"format"\n' + lines.slice(1).join('\n'))],
      ['not utf-8', new Uint8Array([...Buffer.from(lines[0]! + '\n'), 0xc3, 0x28, 0x0a])],
      ['wrong format', edit((h) => (h.format = 'kv'))],
      ['future version', edit((h) => (h.version = 3))],
      ['version 1 header on lines', edit((h) => (h.version = 1))],
      ['bad index', edit((h) => (h.index = -1))],
      ['missing count', edit((h) => delete h.counts.task)],
      ['bad count', edit((h) => (h.counts.task = -1))],
      ['unknown kind', edit((h) => (h.counts.volume = 0))],
      ['more lines than counted', edit((h) => (h.counts.task = 1))],
      ['fewer lines than counted', edit((h) => (h.counts.task = 3))],
      ['an empty line', edit((_h, o) => o.splice(5, 0, ''))],
      ['bad object', edit((_h, o) => obj(o, 3, (s) => (s.spec.replicas = 'many')))],
      ['object of another kind', edit((_h, o) => ([o[2], o[5]] = [o[5]!, o[2]!]))],
      ['duplicate id', edit((_h, o) => (o[2] = o[1]!))],
      ['duplicate name', edit((_h, o) => obj(o, 4, (s) => (s.spec.name = 'web')))],
      ['two clusters', edit((h, o) => (h.counts.cluster = 2, o.splice(1, 0, JSON.stringify({ ...JSON.parse(o[0]!), id: 'c2' }))))],
      ['version past index', edit((h, o) => obj(o, 1, (n) => (n.version = h.index + 1)))],
    ];
    const store = new ClusterStore();
    store.restore(new TextEncoder().encode(good));
    const events: StoreEvent[] = [];
    store.watch((e) => events.push(...e));
    for (const [what, data] of corrupt) {
      assert.throws(() => store.restore(data), isCorrupt, what);
      await assert.rejects(store.restoreAsync(data), isCorrupt, what);
    }
    assert.equal(Buffer.from(store.snapshot()).toString(), good);
    assert.deepEqual(events, []);
  });
});
