// The dispatcher's views kept from store events (AssignmentView, MeshIndex) and the paged diffs a
// node reads from them (ChangeLog), with the long polls' bound (LongPolls): with 10,000 tasks every
// answer fits a gRPC message, a node rebuilt from the pages sees what the store says, a change
// costs what it changed, and a node cannot pile up waiting polls.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { getServiceDefinition } from '@shoal/api';
import { ClusterStore, decodeTxResult, encodeTx, type Cluster, type Op, type Service, type Task } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { ChangeLog, decodeCursor, encodeCursor, type Cursor, type Page } from '../src/dispatcher/change-log.js';
import { AssignmentView } from '../src/dispatcher/assignment-view.js';
import { MeshIndex, type MeshEntry } from '../src/dispatcher/mesh-index.js';
import { LongPolls } from '../src/dispatcher/long-polls.js';
import { NetworkIndex, type NetworkEntry, underlayOf } from '../src/dispatcher/network-index.js';
import { completeNetworkSpec } from '@shoal/types';
import { PAGE_BYTES } from '../src/dispatcher/dispatcher.js';

const GRPC_LIMIT = 4 << 20;

/** A store fed transactions with increasing indexes, as Raft would. */
function feeder() {
  const store = new ClusterStore();
  let index = 0;
  const tx = (ops: Op[]) => {
    const r = decodeTxResult(store.apply(encodeTx(ops), ++index));
    assert.ok(r.ok, JSON.stringify(r));
  };
  return { store, tx };
}

function mkCluster(): Cluster {
  return {
    id: 'c1', version: 0, createdAt: T0, updatedAt: T0,
    spec: { name: 'default', heartbeatPeriodMs: 1000, nodeDownAfterBeats: 3, taskHistoryLimit: 5, certExpiryMs: 3600_000 },
    caFingerprint: 'ab'.repeat(32), caCert: 'x', caKey: null, joinTokens: { worker: 'w', manager: 'm' }, removedNodes: [],
    removedNodeExpiry: {}, longestCertExpiryMs: 3600_000, unlockKey: null,
  };
}

function mkService(id: string, over: Partial<Service['spec']> = {}): Service {
  return { id, version: 0, createdAt: T0, updatedAt: T0, spec: mkSpec({ name: `svc-${id}`, ...over }), previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null };
}

let seq = 0;
function mkTask(serviceId: string, nodeId: string, over: Partial<Task> = {}, state: Task['status']['state'] = 'running'): Task {
  const n = ++seq;
  return {
    id: `task${String(n).padStart(8, '0')}`,
    version: 0,
    createdAt: T0,
    updatedAt: T0,
    serviceId,
    serviceName: `svc-${serviceId}`,
    slot: n,
    nodeId,
    desiredState: 'running',
    status: { state, timestamp: T0, message: '', err: '', containerId: `c${n}`, exitCode: 0 },
    spec: mkSpec(),
    specVersion: 1, networks: [], jobIteration: 0,
    ...over,
  };
}

/** Applies a page as the agent's feed does. */
function applyPage<V>(into: Map<string, V>, p: Page<V>): void {
  if (p.reset) into.clear();
  for (const k of p.deletes) into.delete(k);
  for (const u of p.upserts) into.set(u.key, u.value);
}

/** Reads until a page says no more; returns the cursor and how many pages it took. */
function drain<V>(into: Map<string, V>, read: (c: Cursor | undefined) => Page<V>, from?: Cursor): { cursor: Cursor; pages: Page<V>[] } {
  const pages: Page<V>[] = [];
  let c = from;
  for (;;) {
    const p = read(c);
    pages.push(p);
    applyPage(into, p);
    c = decodeCursor(encodeCursor(p.cursor));
    if (!p.more) return { cursor: c!, pages };
  }
}

describe('ChangeLog', () => {
  test('pages in (seq, key) order within the budget; a reader catching up mid-way sees every change', () => {
    const log = new ChangeLog<string>(0);
    for (let i = 0; i < 1000; i++) log.set(`k${String(i).padStart(4, '0')}`, 'x'.repeat(100), 1);
    const seen = new Map<string, string>();
    const first = log.since(undefined, 10_000, (v) => v.length, 1);
    assert.equal(first.reset, true);
    assert.equal(first.more, true);
    applyPage(seen, first);
    // Between two pages: a key already read changes, one not yet read is deleted, a new one appears.
    log.set('k0000', 'changed', 2);
    log.delete('k0999', 2);
    log.set('new', 'fresh', 2);
    const { cursor, pages } = drain(seen, (c) => log.since(c, 10_000, (v) => v.length, 2), decodeCursor(encodeCursor(first.cursor)));
    assert.ok(pages.every((p) => p.upserts.length + p.deletes.length > 0 || !p.more));
    assert.equal(seen.size, 1000);
    assert.equal(seen.get('k0000'), 'changed');
    assert.equal(seen.has('k0999'), false);
    assert.equal(seen.get('new'), 'fresh');
    assert.deepEqual(cursor, { seq: 2, key: '' });
    // Nothing new: an empty answer, no wake-up.
    assert.equal(log.hasNews(cursor), false);
    const none = log.since(cursor, 10_000, (v) => v.length, 2);
    assert.deepEqual([none.upserts.length, none.deletes.length, none.more, none.reset], [0, 0, false, false]);
  });

  test('an entry larger than the budget still goes, alone: the reader always progresses', () => {
    const log = new ChangeLog<string>(0);
    log.set('a', 'x'.repeat(50), 1);
    log.set('b', 'y'.repeat(50), 1);
    const p = log.since(undefined, 10, (v) => v.length, 1);
    assert.deepEqual(p.upserts.map((u) => u.key), ['a']);
    assert.equal(p.more, true);
  });

  test('forgotten deletions reset a reader that had not seen them; a reader at the head is not reset', () => {
    const log = new ChangeLog<number>(0);
    for (let i = 0; i < 3000; i++) log.set(`k${i}`, i, 1);
    const behind = new Map<string, number>();
    const { cursor: old } = drain(behind, (c) => log.since(c, 1 << 20, () => 8, 1));
    for (let i = 0; i < 3000; i++) log.delete(`k${i}`, 2 + i);
    log.set('survivor', 1, 5000);
    // Far more deletions than live keys: the oldest tombstones went.
    const p = log.since(old, 1 << 20, () => 8, 5000);
    assert.equal(p.reset, true);
    applyPage(behind, p);
    assert.deepEqual([...behind.keys()], ['survivor']);
    const head = p.cursor;
    log.delete('survivor', 5001);
    const q = log.since(head, 1 << 20, () => 8, 5001);
    assert.equal(q.reset, false);
    assert.deepEqual(q.deletes, ['survivor']);
  });
});

describe('AssignmentView', () => {
  test('10,000 tasks on one node: every answer fits a gRPC message and the pages add up to the node\'s tasks', () => {
    const { store, tx } = feeder();
    tx([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'node', object: mkNode('n2') }]);
    tx([{ op: 'create', kind: 'service', object: mkService('s1', { replicas: 10_000 }) }]);
    const woken: string[][] = [];
    const view = new AssignmentView(store, (nodes) => woken.push([...nodes]));
    const all: Task[] = [];
    for (let b = 0; b < 10; b++) {
      const batch = Array.from({ length: 1000 }, () => mkTask('s1', 'n1', {}, 'assigned'));
      all.push(...batch);
      tx(batch.map((object) => ({ op: 'create', kind: 'task', object })));
    }
    assert.ok(woken.every((w) => w.length === 1 && w[0] === 'n1'), 'only n1 is woken');
    const serialize = getServiceDefinition('shoal.dispatcher.Dispatcher').Assignments!.responseSerialize;
    const mine = new Map<string, Task>();
    const { pages, cursor } = drain(mine, (c) => view.page('n1', c, PAGE_BYTES));
    assert.ok(pages.length > 1, 'paged');
    for (const p of pages) {
      const bytes = serialize({ token: encodeCursor(p.cursor), tasks: p.upserts.map((u) => u.value), removed: p.deletes, reset: p.reset, more: p.more }).length;
      assert.ok(bytes < GRPC_LIMIT, `a page of ${bytes} bytes`);
    }
    assert.deepEqual([...mine.keys()].sort(), all.map((t) => t.id).sort());
    assert.equal(view.page('n2', undefined, PAGE_BYTES).upserts.length, 0);

    // A status report (the agent's own) wakes nobody but rides along; a desired-state change wakes.
    woken.length = 0;
    const t0 = store.get('task', all[0]!.id)!;
    tx([{ op: 'update', kind: 'task', object: { ...t0, status: { ...t0.status, state: 'running' } } }]);
    assert.deepEqual(woken, []);
    assert.equal(view.hasNews('n1', cursor), false);
    const t1 = store.get('task', all[1]!.id)!;
    tx([{ op: 'update', kind: 'task', object: { ...t1, desiredState: 'shutdown' } }]);
    assert.deepEqual(woken, [['n1']]);
    assert.equal(view.hasNews('n1', cursor), true);
    const d = view.page('n1', cursor, PAGE_BYTES);
    assert.deepEqual(d.upserts.map((u) => u.key).sort(), [t0.id, t1.id].sort());
    assert.equal(d.upserts.find((u) => u.key === t0.id)!.value.status.state, 'running');
    // Deleted: gone from the node's view.
    tx([{ op: 'delete', kind: 'task', id: t1.id }]);
    const e = view.page('n1', d.cursor, PAGE_BYTES);
    assert.deepEqual(e.deletes, [t1.id]);
    view.stop();
  });

  test('a task not yet handed to its node stays out of its view until assigned', () => {
    const { store, tx } = feeder();
    tx([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'service', object: mkService('s1') }]);
    const view = new AssignmentView(store, () => undefined);
    const t = mkTask('s1', 'n1', {}, 'pending');
    tx([{ op: 'create', kind: 'task', object: t }]);
    assert.equal(view.size('n1'), 0);
    const cur = store.get('task', t.id)!;
    tx([{ op: 'update', kind: 'task', object: { ...cur, status: { ...cur.status, state: 'assigned' } } }]);
    assert.equal(view.size('n1'), 1);
    view.stop();
  });

  test('a cursor from another manager (the same Raft indexes) reads on without a reset', () => {
    const { store, tx } = feeder();
    tx([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'service', object: mkService('s1') }]);
    // B has kept its view since it started; A (the leader so far) built its own later.
    const b = new AssignmentView(store, () => undefined);
    tx([{ op: 'create', kind: 'task', object: mkTask('s1', 'n1') }]);
    const a = new AssignmentView(store, () => undefined);
    tx([{ op: 'create', kind: 'task', object: mkTask('s1', 'n1') }]);
    const mine = new Map<string, Task>();
    const { cursor } = drain(mine, (c) => a.page('n1', c, PAGE_BYTES));
    assert.equal(mine.size, 2);
    // B leads now: the node's cursor reads on from where A left it.
    const later = mkTask('s1', 'n1');
    tx([{ op: 'create', kind: 'task', object: later }]);
    const p = b.page('n1', cursor, PAGE_BYTES);
    assert.equal(p.reset, false);
    assert.deepEqual(p.upserts.map((u) => u.key), [later.id]);
    // A view built after the cursor cannot know what the node missed before it: it starts the node afresh.
    const c = new AssignmentView(store, () => undefined);
    assert.equal(c.page('n1', { seq: cursor.seq - 1, key: '' }, PAGE_BYTES).reset, true);
    c.stop();
    b.stop();
    a.stop();
  });
});

/** The mesh view as the dispatcher computed it from scratch before (the reference). */
function meshFromScratch(store: ClusterStore) {
  const ports: { port: number; protocol: string; serviceId: string; backends: string[] }[] = [];
  for (const s of store.list('service')) {
    for (const p of s.spec.ports.filter((x) => x.publishMode === 'ingress')) {
      const backends = store
        .tasksByService(s.id)
        .filter((t) => t.desiredState === 'running' && t.status.state === 'running' && store.get('node', t.nodeId)?.status.state === 'ready')
        .map((t) => `${t.id}@${t.nodeId}:${t.status.containerId}:${store.get('node', t.nodeId)!.status.meshAddr}`)
        .sort();
      ports.push({ port: p.publishedPort, protocol: p.protocol, serviceId: s.id, backends });
    }
  }
  return { ports: ports.sort(byPort), removed: [...(store.cluster()?.removedNodes ?? [])].sort() };
}

const byPort = (a: { port: number; protocol: string }, b: { port: number; protocol: string }) => a.port - b.port || a.protocol.localeCompare(b.protocol);

/** The same, rebuilt from the log's entries as the agent's feed does. */
function meshFromEntries(entries: Map<string, MeshEntry>) {
  const ports: { port: number; protocol: string; serviceId: string; backends: string[] }[] = [];
  const removed: string[] = [];
  const backends = new Map<string, string[]>();
  for (const e of entries.values()) {
    if ('backend' in e) {
      const b = e.backend;
      backends.set(b.serviceId, [...(backends.get(b.serviceId) ?? []), `${b.taskId}@${b.nodeId}:${b.containerId}:${b.via}`]);
    }
  }
  for (const e of entries.values()) {
    if ('port' in e) ports.push({ port: e.port.port, protocol: e.port.protocol, serviceId: e.port.serviceId, backends: (backends.get(e.port.serviceId) ?? []).sort() });
    if ('removedNode' in e) removed.push(e.removedNode);
  }
  return { ports: ports.sort(byPort), removed: removed.sort() };
}

describe('MeshIndex', () => {
  test('kept from events, it says what a from-scratch view says, through random changes', () => {
    const { store, tx } = feeder();
    // TCP, UDP, or both on the same number (UDP ports are keyed apart: p:PORT/udp).
    const ingress = (port: number, protocols: string[] = ['tcp']) =>
      protocols.map((protocol) => ({ protocol, targetPort: 80, publishedPort: port, publishMode: 'ingress', proxyProtocol: false })) as Service['spec']['ports'];
    tx([
      { op: 'create', kind: 'cluster', object: mkCluster() },
      ...['n1', 'n2', 'n3'].map((id) => ({ op: 'create' as const, kind: 'node' as const, object: { ...mkNode(id), status: { ...mkNode(id).status, meshAddr: `${id}:7946` } } })),
      { op: 'create', kind: 'service', object: mkService('web', { ports: ingress(8080) }) },
      { op: 'create', kind: 'service', object: mkService('db') },
    ]);
    let wakes = 0;
    const index = new MeshIndex(store, () => wakes++);
    const agent = new Map<string, MeshEntry>();
    let cursor: Cursor | undefined;
    let rnd = 42;
    // mulberry32: a small seeded generator (the run is the same every time).
    const rand = (n: number) => {
      rnd = (rnd + 0x6d2b79f5) | 0;
      let x = Math.imul(rnd ^ (rnd >>> 15), 1 | rnd);
      x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x;
      return ((x ^ (x >>> 14)) >>> 0) % n;
    };
    let checks = 0;
    let backendsSeen = 0;
    const nodes = ['n1', 'n2', 'n3'];
    for (let step = 0; step < 400; step++) {
      const tasks = store.list('task');
      const r = rand(10);
      if (r < 3 || tasks.length === 0) {
        const svc = rand(2) ? 'web' : 'db';
        tx([{ op: 'create', kind: 'task', object: mkTask(svc, nodes[rand(3)]!, {}, rand(2) ? 'running' : 'assigned') }]);
      } else if (r < 5) {
        const t = tasks[rand(tasks.length)]!;
        // A desired state only moves forward (the store's rule): a stopped task's slot gets a new
        // task on the same node instead, as the orchestrator gives it.
        tx([t.desiredState === 'running' ? { op: 'update', kind: 'task', object: { ...t, desiredState: 'shutdown' } } : { op: 'create', kind: 'task', object: mkTask(t.serviceId, t.nodeId, {}, t.status.state) }]);
      } else if (r < 6) {
        const t = tasks[rand(tasks.length)]!;
        tx([{ op: 'delete', kind: 'task', id: t.id }]);
      } else if (r < 7) {
        const n = store.get('node', nodes[rand(3)]!)!;
        tx([{ op: 'update', kind: 'node', object: { ...n, status: { ...n.status, state: n.status.state === 'ready' ? 'down' : 'ready', meshAddr: `${n.id}:${7000 + rand(1000)}` } } }]);
      } else if (r < 8) {
        const s = store.get('service', rand(2) ? 'web' : 'db')!;
        const port = 8000 + rand(3);
        const taken = store.list('service').some((x) => x.id !== s.id && x.spec.ports.some((p) => p.publishedPort === port));
        // (By the port's number: the random sequence, and so the run, stays what it was.)
        const protocols = [['tcp'], ['udp'], ['tcp', 'udp']][port % 3]!;
        tx([{ op: 'update', kind: 'service', object: { ...s, spec: { ...s.spec, ports: s.spec.ports.length || taken ? [] : ingress(port, protocols) } } }]);
      } else if (r < 9) {
        const c = store.cluster()!;
        const id = `gone${rand(4)}`;
        tx([{ op: 'update', kind: 'cluster', object: { ...c, removedNodes: c.removedNodes.includes(id) ? c.removedNodes.filter((x) => x !== id) : [...c.removedNodes, id] } }]);
      } else {
        // A node's agent reading now and then (a small page size: many pages).
        cursor = drain(agent, (c) => index.page(c, 300), cursor).cursor;
        assert.deepEqual(meshFromEntries(agent), meshFromScratch(store), `step ${step}`);
        checks++;
        backendsSeen += meshFromScratch(store).ports.reduce((a, p) => a + p.backends.length, 0);
      }
    }
    cursor = drain(agent, (c) => index.page(c, 300), cursor).cursor;
    assert.deepEqual(meshFromEntries(agent), meshFromScratch(store));
    assert.ok(wakes > 0);
    assert.ok(checks > 20 && backendsSeen > 100, `${checks} checks, ${backendsSeen} backends seen: the run must exercise the view`);
    index.stop();
  });

  test('a change costs what it changed: a task report never lists the store', () => {
    const { store, tx } = feeder();
    tx([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'service', object: mkService('web', { ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress', proxyProtocol: false }] }) }]);
    const tasks = Array.from({ length: 2000 }, () => mkTask('web', 'n1', {}, 'starting'));
    tx(tasks.map((object) => ({ op: 'create', kind: 'task', object })));
    const calls = { list: 0, tasksByService: 0, tasksByNode: 0 };
    for (const m of Object.keys(calls) as (keyof typeof calls)[]) {
      const orig = (store[m] as Function).bind(store);
      (store as unknown as Record<string, Function>)[m] = (...a: unknown[]) => (calls[m]++, orig(...a));
    }
    const mesh = new MeshIndex(store, () => undefined);
    const assigned = new AssignmentView(store, () => undefined);
    const built = { ...calls };
    for (const t of tasks.slice(0, 500)) {
      const cur = store.get('task', t.id)!;
      tx([{ op: 'update', kind: 'task', object: { ...cur, status: { ...cur.status, state: 'running' } } }]);
    }
    assert.deepEqual(calls, built, 'no listing per event');
    const p = mesh.page(undefined, PAGE_BYTES);
    assert.equal(p.upserts.filter((u) => 'backend' in u.value).length, 500);
    mesh.stop();
    assigned.stop();
  });
});

describe('NetworkIndex', () => {
  test('networks, services on them with their VIPs, and running tasks on ready nodes with their underlay', () => {
    const { store, tx } = feeder();
    const n1 = mkNode('n1');
    tx([
      { op: 'create', kind: 'node', object: { ...n1, status: { ...n1.status, addr: '192.0.2.1:4242' } } },
      { op: 'create', kind: 'node', object: mkNode('n2') },
      { op: 'create', kind: 'network', object: { id: 'net1', version: 0, createdAt: T0, updatedAt: T0, spec: completeNetworkSpec({ name: 'front', internal: true }), subnet: '', gateway: '', vni: 0 } },
    ]);
    const woken: number[] = [];
    const index = new NetworkIndex(store, () => woken.push(1));
    const nets = [{ target: 'net1', aliases: ['www'] }];
    tx([{ op: 'create', kind: 'service', object: mkService('s1', { networks: nets }) }, { op: 'create', kind: 'service', object: mkService('s2') }]);
    const onNet = (node: string, addr: string, state: Task['status']['state'] = 'running') =>
      mkTask('s1', node, { spec: mkSpec({ networks: nets }), networks: [{ networkId: 'net1', addr }] }, state);
    const a = onNet('n1', '10.0.0.3/24');
    const b = onNet('n2', '10.0.0.4/24');
    const c = onNet('n1', '10.0.0.5/24', 'starting');
    tx([a, b, c].map((object) => ({ op: 'create', kind: 'task', object })));
    const seen = new Map<string, NetworkEntry>();
    const { cursor, pages } = drain(seen, (cur) => index.page(cur, PAGE_BYTES));
    const serialize = getServiceDefinition('shoal.dispatcher.Dispatcher').NetworkView!.responseSerialize;
    for (const p of pages) assert.ok(serialize({ token: encodeCursor(p.cursor), deleted: p.deletes, reset: p.reset, more: p.more }).length > 0);
    assert.deepEqual(seen.get('n:net1'), { network: { id: 'net1', name: 'front', vni: 4096, subnet: '10.0.0.0/24', gateway: '10.0.0.1', internal: true, ingress: false } });
    assert.deepEqual(seen.get('s:s1'), { service: { serviceId: 's1', name: 'svc-s1', endpointMode: 'vip', networks: [{ networkId: 'net1', vip: '10.0.0.2/24', aliases: ['www'] }] } });
    assert.equal(seen.has('s:s2'), false, 'a service on no network is not in the view');
    // Running only: the starting task is not yet an endpoint.
    assert.deepEqual([...seen.keys()].filter((k) => k.startsWith('e:')).sort(), [`e:${a.id}`, `e:${b.id}`].sort());
    assert.deepEqual(seen.get(`e:${a.id}`), { endpoint: { taskId: a.id, serviceId: 's1', nodeId: 'n1', slot: a.slot, underlay: '192.0.2.1', addresses: [{ networkId: 'net1', addr: '10.0.0.3/24' }] } });
    // A task asked to stop leaves at once (before it has stopped); a node going down takes its tasks.
    woken.length = 0;
    const cur = store.get('task', a.id)!;
    tx([{ op: 'update', kind: 'task', object: { ...cur, desiredState: 'shutdown' } }]);
    const node2 = store.get('node', 'n2')!;
    tx([{ op: 'update', kind: 'node', object: { ...node2, status: { ...node2.status, state: 'down' } } }]);
    assert.equal(woken.length, 2);
    const next = index.page(cursor, PAGE_BYTES);
    assert.deepEqual(next.deletes.sort(), [`e:${a.id}`, `e:${b.id}`].sort());
    index.stop();
  });

  test('each node holding an ingress address is in the view with its underlay, down or not, until it has none', () => {
    const { store, tx } = feeder();
    const ing = { id: 'ing', version: 0, createdAt: T0, updatedAt: T0, spec: { ...completeNetworkSpec({ name: 'ingress', ipam: { subnet: '10.255.0.0/16' } }), ingress: true }, subnet: '', gateway: '', vni: 0 };
    const n1 = mkNode('n1');
    tx([
      { op: 'create', kind: 'network', object: ing },
      { op: 'create', kind: 'node', object: { ...n1, status: { ...n1.status, addr: '192.0.2.1:4242' }, attachments: [{ networkId: 'ing', addr: '10.255.0.2/16' }] } },
      { op: 'create', kind: 'node', object: mkNode('n2') },
    ]);
    const woken: number[] = [];
    const index = new NetworkIndex(store, () => woken.push(1));
    const seen = new Map<string, NetworkEntry>();
    const { cursor } = drain(seen, (cur) => index.page(cur, PAGE_BYTES));
    assert.equal((seen.get('n:ing') as { network: { ingress: boolean } }).network.ingress, true);
    assert.deepEqual(seen.get('i:n1'), { ingressNode: { nodeId: 'n1', addr: '10.255.0.2/16', underlay: '192.0.2.1', serving: false } });
    assert.equal(seen.has('i:n2'), false, 'a node without an ingress address is not in it');
    const node2 = store.get('node', 'n2')!;
    tx([{ op: 'update', kind: 'node', object: { ...node2, attachments: [{ networkId: 'ing', addr: '10.255.0.3/16' }] } }]);
    const next = index.page(cursor, PAGE_BYTES);
    assert.deepEqual(next.upserts.map((u) => u.value), [{ ingressNode: { nodeId: 'n2', addr: '10.255.0.3/16', underlay: '10.0.0.1', serving: false } }]);
    // Serving its ingress address in the kernel: others may send it connections.
    const n2 = store.get('node', 'n2')!;
    tx([{ op: 'update', kind: 'node', object: { ...n2, status: { ...n2.status, meshMode: 'kernel+ingress' } } }]);
    const served = index.page(next.cursor, PAGE_BYTES);
    assert.deepEqual(served.upserts.map((u) => u.value), [{ ingressNode: { nodeId: 'n2', addr: '10.255.0.3/16', underlay: '10.0.0.1', serving: true } }]);
    tx([{ op: 'delete', kind: 'node', id: 'n2', expectVersion: store.get('node', 'n2')!.version }]);
    assert.deepEqual(index.page(served.cursor, PAGE_BYTES).deletes, ['i:n2']);
    assert.ok(woken.length >= 2);
    index.stop();
  });

  test('the underlay of HOST:PORT, [V6]:PORT and a bare host', () => {
    assert.equal(underlayOf('192.0.2.7:4242'), '192.0.2.7');
    assert.equal(underlayOf('[2001:db8::1]:4242'), '2001:db8::1');
    assert.equal(underlayOf('192.0.2.7'), '192.0.2.7');
  });
});

describe('LongPolls', () => {
  test('a node opening one poll too many ends its oldest; a wake answers only when ready', async () => {
    const polls = new LongPolls(2);
    let ready = false;
    const order: string[] = [];
    const a = polls.wait('n1/assignments', { waitMs: 30_000 }, () => ready).then(() => order.push('a'));
    const b = polls.wait('n1/assignments', { waitMs: 30_000 }, () => ready).then(() => order.push('b'));
    assert.equal(polls.count('n1/assignments'), 2);
    const c = polls.wait('n1/assignments', { waitMs: 30_000 }, () => ready).then(() => order.push('c'));
    await a;
    assert.deepEqual(order, ['a']);
    assert.equal(polls.count('n1/assignments'), 2);
    polls.wake('n1/assignments');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['a'], 'not ready: still waiting');
    ready = true;
    polls.wake('n2/assignments');
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(order, ['a'], 'another node\'s wake');
    polls.wake('n1/assignments');
    await Promise.all([b, c]);
    assert.equal(polls.count('n1/assignments'), 0);
  });

  test('a cancelled poll leaves at once', async () => {
    const polls = new LongPolls(2);
    let cancel: () => void = () => undefined;
    const p = polls.wait('n1/mesh', { waitMs: 30_000, onCancel: (f) => (cancel = f) }, () => false);
    assert.equal(polls.count('n1/mesh'), 1);
    cancel();
    await p;
    assert.equal(polls.count('n1/mesh'), 0);
  });
});
