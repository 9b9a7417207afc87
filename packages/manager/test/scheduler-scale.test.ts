// The scheduler with thousands of nodes (a pure function of nodes and tasks, one pass each):
// spread even over equal nodes (also once nodes are added), constraints on labels, role and
// hostname, max replicas per node, placement preferences and reservations all still honoured
// when a single pass places ten thousand tasks.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node, ServiceSpec, Task } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { schedule } from '../src/scheduler/scheduler.js';

let ids = 0;
function task(s: ServiceSpec, serviceId = 'svc', nodeId = ''): Task {
  const n = ++ids;
  return {
    id: `t${n}`, version: 1, createdAt: T0 + n, updatedAt: T0, serviceId, serviceName: serviceId, slot: n, nodeId, desiredState: 'running',
    status: { state: nodeId ? 'running' : 'pending', timestamp: T0, message: '', err: '', containerId: '', exitCode: 0 }, spec: s, specVersion: 1, networks: [], jobIteration: 0,
  };
}
const tasks = (count: number, s: ServiceSpec, serviceId = 'svc') => Array.from({ length: count }, () => task(s, serviceId));

/** `count` nodes named prefix0..., each as `shape` makes it. */
function nodes(count: number, prefix = 'n', shape: (n: Node, i: number) => Node = (n) => n, opts: Parameters<typeof mkNode>[1] = {}): Node[] {
  return Array.from({ length: count }, (_, i) => shape(mkNode(`${prefix}${String(i).padStart(5, '0')}`, opts), i));
}
const labelled = (labels: Record<string, string>) => (n: Node): Node => ({ ...n, spec: { ...n.spec, labels } });

/** One pass: the node of each task placed, the errors of those left waiting. */
function place(ns: Node[], ts: Task[]): { placed: Task[]; waiting: string[] } {
  const placed: Task[] = [];
  const waiting: string[] = [];
  for (const op of schedule(ns, ts, T0)) {
    assert.ok(op.op === 'update' && op.kind === 'task');
    if (op.object.nodeId) placed.push(op.object);
    else waiting.push(op.object.status.err);
  }
  return { placed, waiting };
}

/** Tasks per node over `over` (nodes with none count as 0). */
function perNode(ts: readonly Task[], over: readonly Node[]): Map<string, number> {
  const m = new Map(over.map((n) => [n.id, 0]));
  for (const t of ts) if (m.has(t.nodeId)) m.set(t.nodeId, m.get(t.nodeId)! + 1);
  return m;
}
function spreadOf(counts: Map<string, number>): { min: number; max: number } {
  const v = [...counts.values()];
  return { min: Math.min(...v), max: Math.max(...v) };
}

describe('scheduler at scale: one pass over thousands of nodes', () => {
  test('10,000 tasks on 2,000 equal nodes: five each; 3,001 tasks: max - min <= 1', () => {
    const ns = nodes(2000);
    const { placed, waiting } = place(ns, tasks(10_000, mkSpec()));
    assert.equal(waiting.length, 0);
    assert.equal(placed.length, 10_000);
    assert.deepEqual(spreadOf(perNode(placed, ns)), { min: 5, max: 5 });
    assert.ok(placed.every((t) => t.status.state === 'assigned'));

    const uneven = place(ns, tasks(3001, mkSpec())).placed;
    const s = spreadOf(perNode(uneven, ns));
    assert.ok(s.max - s.min <= 1, `min ${s.min}, max ${s.max}`);
  });

  test("nodes added: a service's new tasks fill them until the spread is even again", () => {
    const old = nodes(1000, 'old');
    const running = old.flatMap((n) => Array.from({ length: 10 }, () => task(mkSpec(), 'svc', n.id)));
    const added = nodes(1000, 'new');
    const { placed } = place([...old, ...added], [...running, ...tasks(10_000, mkSpec())]);
    assert.equal(placed.length, 10_000);
    assert.ok(placed.every((t) => t.nodeId.startsWith('new')), 'every new task went to a new node');
    const all = perNode([...running, ...placed], [...old, ...added]);
    assert.deepEqual(spreadOf(all), { min: 10, max: 10 });
    // Fewer new tasks than would even it out: the new nodes take them, evenly.
    const some = place([...old, ...added], [...running, ...tasks(2500, mkSpec())]).placed;
    assert.deepEqual(spreadOf(perNode(some, added)), { min: 2, max: 3 });
  });

  test("other services' tasks weigh only after the service's own: spread per service, then overall", () => {
    const ns = nodes(1000);
    // Another service fills the first half of the nodes.
    const busy = ns.slice(0, 500).flatMap((n) => Array.from({ length: 4 }, () => task(mkSpec(), 'other', n.id)));
    const { placed } = place(ns, [...busy, ...tasks(500, mkSpec(), 'svc')]);
    assert.ok(placed.every((t) => ns.indexOf(ns.find((n) => n.id === t.nodeId)!) >= 500), 'the idle half takes them');
    assert.deepEqual(spreadOf(perNode(placed, ns.slice(500))), { min: 1, max: 1 });
  });

  test('constraints: node.labels, node.role, node.hostname', () => {
    const ns = nodes(2000, 'n', (n, i) => ({ ...n, spec: { ...n.spec, labels: { zone: `z${i % 4}` }, role: i < 3 ? 'manager' : 'worker' } }));
    const zoned = place(ns, tasks(5000, mkSpec({ constraints: ['node.labels.zone==z1'] }))).placed;
    const z1 = ns.filter((n) => n.spec.labels.zone === 'z1');
    assert.equal(zoned.length, 5000);
    assert.ok(zoned.every((t) => ns.find((n) => n.id === t.nodeId)!.spec.labels.zone === 'z1'));
    assert.deepEqual(spreadOf(perNode(zoned, z1)), { min: 10, max: 10 });

    const notZ1 = place(ns, tasks(1500, mkSpec({ constraints: ['node.labels.zone!=z1', 'node.role==worker'] }))).placed;
    assert.ok(notZ1.every((t) => { const n = ns.find((x) => x.id === t.nodeId)!; return n.spec.labels.zone !== 'z1' && n.spec.role === 'worker'; }));

    const managers = place(ns, tasks(3000, mkSpec({ constraints: ['node.role==manager'] }))).placed;
    assert.deepEqual(spreadOf(perNode(managers, ns.slice(0, 3))), { min: 1000, max: 1000 });

    const one = place(ns, tasks(100, mkSpec({ constraints: ['node.hostname==n01234'] }))).placed;
    assert.ok(one.length === 100 && one.every((t) => t.nodeId === 'n01234'));

    const none = place(ns, tasks(10_000, mkSpec({ constraints: ['node.labels.zone==z9'] })));
    assert.equal(none.placed.length, 0);
    assert.equal(none.waiting.length, 10_000);
    assert.ok(none.waiting.every((e) => e === 'no suitable node (2000 nodes: does not satisfy node.labels.zone==z9)'), none.waiting[0]);
  });

  test('--replicas-max-per-node 2 on 2,000 nodes: 4,000 placed, the rest wait and say why', () => {
    const ns = nodes(2000);
    const { placed, waiting } = place(ns, tasks(5000, mkSpec({ maxReplicasPerNode: 2 })));
    assert.equal(placed.length, 4000);
    assert.deepEqual(spreadOf(perNode(placed, ns)), { min: 2, max: 2 });
    assert.equal(waiting.length, 1000);
    assert.ok(waiting.every((e) => e === 'no suitable node (2000 nodes: max replicas per node limit exceed)'), waiting[0]);
  });

  test('placement preference spread=node.labels.zone over unequal zones: equal shares per zone, even within each', () => {
    // 1,000 nodes in zone a, 600 in b, 400 in c.
    const ns = nodes(2000, 'n', (n, i) => labelled({ zone: i < 1000 ? 'a' : i < 1600 ? 'b' : 'c' })(n));
    const { placed } = place(ns, tasks(9000, mkSpec({ placementPrefs: ['spread=node.labels.zone'] })));
    assert.equal(placed.length, 9000);
    const zoneOf = new Map(ns.map((n) => [n.id, n.spec.labels.zone!]));
    const byZone = new Map<string, number>();
    for (const t of placed) byZone.set(zoneOf.get(t.nodeId)!, (byZone.get(zoneOf.get(t.nodeId)!) ?? 0) + 1);
    assert.deepEqual(Object.fromEntries(byZone), { a: 3000, b: 3000, c: 3000 });
    for (const zone of ['a', 'b', 'c']) {
      const s = spreadOf(perNode(placed, ns.filter((n) => n.spec.labels.zone === zone)));
      assert.ok(s.max - s.min <= 1, `zone ${zone}: min ${s.min}, max ${s.max}`);
    }
  });

  test('two preferences: the first splits evenly, the second within the whole', () => {
    const ns = nodes(1200, 'n', (n, i) => labelled({ dc: `d${i % 2}`, rack: `r${i % 6}` })(n));
    const { placed } = place(ns, tasks(6000, mkSpec({ placementPrefs: ['spread=node.labels.dc', 'spread=node.labels.rack'] })));
    const count = (label: string) => {
      const m = new Map<string, number>();
      for (const t of placed) {
        const v = ns.find((n) => n.id === t.nodeId)!.spec.labels[label]!;
        m.set(v, (m.get(v) ?? 0) + 1);
      }
      return m;
    };
    assert.deepEqual([...count('dc').values()], [3000, 3000]);
    assert.deepEqual([...count('rack').values()].sort(), [1000, 1000, 1000, 1000, 1000, 1000]);
    assert.deepEqual(spreadOf(perNode(placed, ns)), { min: 5, max: 5 });
  });

  test('reservations: 2-CPU nodes take two 1-CPU tasks each; the rest wait and say why', () => {
    const ns = nodes(2000, 'n', (n) => n, { cpus: 2 });
    const s = mkSpec({ resources: { limits: { nanoCpus: 0, memoryBytes: 0 }, reservations: { nanoCpus: 1e9, memoryBytes: 0 } } });
    const { placed, waiting } = place(ns, tasks(4500, s));
    assert.equal(placed.length, 4000);
    assert.deepEqual(spreadOf(perNode(placed, ns)), { min: 2, max: 2 });
    assert.equal(waiting.length, 500);
    assert.ok(waiting.every((e) => e === 'no suitable node (2000 nodes: insufficient resources (1 CPU to reserve))'), waiting[0]);
  });

  test('nodes not ready or not active take nothing; several services in one pass each spread evenly', () => {
    const ns = nodes(2000, 'n', (n, i) =>
      i % 10 === 0 ? { ...n, status: { ...n.status, state: 'down' } } : i % 10 === 1 ? { ...n, spec: { ...n.spec, availability: 'drain' } } : i % 10 === 2 ? { ...n, spec: { ...n.spec, availability: 'pause' } } : n,
    );
    const usable = ns.filter((_, i) => i % 10 > 2);
    const { placed } = place(ns, [...tasks(2800, mkSpec(), 'a'), ...tasks(1400, mkSpec(), 'b'), ...tasks(2800, mkSpec(), 'c')]);
    assert.equal(placed.length, 7000);
    for (const svc of ['a', 'b', 'c']) {
      const s = spreadOf(perNode(placed.filter((t) => t.serviceId === svc), usable));
      assert.ok(s.max - s.min <= 1, `${svc}: min ${s.min}, max ${s.max}`);
      assert.ok(placed.filter((t) => t.serviceId === svc).every((t) => usable.some((n) => n.id === t.nodeId)));
    }
    assert.deepEqual(spreadOf(perNode(placed, usable)), { min: 5, max: 5 });
  });
});
