// The scheduler's placement with CPU and memory reservations (a pure function of nodes and tasks).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node, ServiceSpec, Task } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { schedule } from '../src/scheduler/scheduler.js';

const GiB = 1 << 30;

const node = (id: string, cpus: number, memoryBytes: number) => mkNode(id, { cpus, memoryBytes });

function spec(reserveCpus: number, reserveMemory: number): ServiceSpec {
  return mkSpec({
    replicas: 1,
    resources: { limits: { nanoCpus: 0, memoryBytes: 0 }, reservations: { nanoCpus: reserveCpus * 1e9, memoryBytes: reserveMemory } },
  });
}

let ids = 0;
function task(s: ServiceSpec, nodeId = '', state: Task['status']['state'] = nodeId ? 'running' : 'pending', desired: Task['desiredState'] = 'running'): Task {
  const id = `t${++ids}`;
  return {
    id, version: 1, createdAt: T0 + ids, updatedAt: T0, serviceId: 'svc', serviceName: 'web', slot: ids, nodeId, desiredState: desired,
    status: { state, timestamp: T0, message: '', err: '', containerId: '', exitCode: 0 }, spec: s, specVersion: 1, networks: [], jobIteration: 0,
  };
}

/** What one pass decides for each pending task: its node, or its error. */
function place(nodes: Node[], tasks: Task[]): string[] {
  const ops = schedule(nodes, tasks, T0);
  return ops.map((op) => (op.op === 'update' && op.kind === 'task' ? op.object.nodeId || op.object.status.err : '?'));
}

describe('scheduler: reservations', () => {
  test('tasks go where their reservation is free; the rest wait and say why', () => {
    const s = spec(1, 256 << 20);
    const nodes = [node('a', 2, GiB), node('b', 1, GiB)];
    const out = place(nodes, [task(s), task(s), task(s), task(s)]);
    assert.deepEqual(out.slice(0, 3).sort(), ['a', 'a', 'b']);
    assert.equal(out[3], 'no suitable node (2 nodes: insufficient resources (1 CPU to reserve))');
  });

  test('memory too: and both at once name both', () => {
    const nodes = [node('a', 1, GiB)];
    assert.deepEqual(place(nodes, [task(spec(0, 2 * GiB))]), ['no suitable node (1 node: insufficient resources (2 GiB of memory to reserve))']);
    assert.deepEqual(place(nodes, [task(spec(4, 2 * GiB))]), ['no suitable node (1 node: insufficient resources (4 CPUs and 2 GiB of memory to reserve))']);
  });

  test('running tasks hold their reservations, and so do tasks still shutting down; stopped ones do not', () => {
    const s = spec(1, 0);
    const nodes = [node('a', 2, GiB)];
    assert.match(place(nodes, [task(s, 'a'), task(s, 'a', 'running', 'shutdown'), task(s)])[0]!, /insufficient resources/);
    assert.deepEqual(place(nodes, [task(s, 'a'), task(s, 'a', 'shutdown', 'shutdown'), task(s)]), ['a']);
  });

  test('without reservations nothing is counted', () => {
    assert.deepEqual(place([node('a', 1, GiB)], [task(spec(0, 0)), task(spec(0, 0)), task(spec(0, 0))]), ['a', 'a', 'a']);
  });
});

describe('scheduler: placement preferences', () => {
  const zoned = (id: string, zone?: string): Node => {
    const n = mkNode(id, { cpus: 4 });
    const labels: Record<string, string> = zone ? { zone } : {};
    return { ...n, spec: { ...n.spec, labels } };
  };

  test('spread=node.labels.zone: the zones get equal shares first, then the nodes within them', () => {
    const s = mkSpec({ replicas: 4, placementPrefs: ['spread=node.labels.zone'] });
    const nodes = [zoned('a', 'x'), zoned('b', 'x'), zoned('c', 'y')];
    const out = place(nodes, [task(s), task(s), task(s), task(s)]);
    assert.deepEqual(out.sort(), ['a', 'b', 'c', 'c'], 'zone y (one node) takes half');
    // Without the preference, nodes share equally.
    const plain = place(nodes, [task(mkSpec()), task(mkSpec()), task(mkSpec())]);
    assert.deepEqual(plain.sort(), ['a', 'b', 'c']);
  });

  test('tasks already running count; nodes without the label are one more value', () => {
    const s = mkSpec({ placementPrefs: ['spread=node.labels.zone'] });
    const nodes = [zoned('a', 'x'), zoned('b', 'y'), zoned('c')];
    // x has one already: the next go to y and to the unlabelled node, then x again.
    const out = place(nodes, [task(s, 'a'), task(s), task(s), task(s)]);
    assert.deepEqual(out.slice(0, 2).sort(), ['b', 'c']);
    assert.equal(out.length, 3);
  });
});
