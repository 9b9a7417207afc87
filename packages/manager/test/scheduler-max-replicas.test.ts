// The scheduler's max-replicas-per-node filter (a pure function of nodes and tasks): a node that
// holds that many of the service's live tasks takes no more of them, as in Swarm.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Node, ServiceSpec, Task } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { schedule } from '../src/scheduler/scheduler.js';

let ids = 0;
function task(s: ServiceSpec, nodeId = '', opts: { state?: Task['status']['state']; desired?: Task['desiredState']; serviceId?: string } = {}): Task {
  const id = `t${++ids}`;
  return {
    id, version: 1, createdAt: T0 + ids, updatedAt: T0, serviceId: opts.serviceId ?? 'svc', serviceName: 'web', slot: ids, nodeId, desiredState: opts.desired ?? 'running',
    status: { state: opts.state ?? (nodeId ? 'running' : 'pending'), timestamp: T0, message: '', err: '', containerId: '', exitCode: 0 }, spec: s, specVersion: 1, networks: [], jobIteration: 0,
  };
}

function place(nodes: Node[], tasks: Task[]): string[] {
  return schedule(nodes, tasks, T0).map((op) => (op.op === 'update' && op.kind === 'task' ? op.object.nodeId || op.object.status.err : '?'));
}

describe('scheduler: max replicas per node', () => {
  test('no node takes more than the limit; the rest wait, saying so in Swarm\'s words', () => {
    const s = mkSpec({ maxReplicasPerNode: 2 });
    const out = place([mkNode('a'), mkNode('b')], [task(s), task(s), task(s), task(s), task(s)]);
    assert.deepEqual(out.slice(0, 4).sort(), ['a', 'a', 'b', 'b']);
    assert.equal(out[4], 'no suitable node (2 nodes: max replicas per node limit exceed)');
  });

  test("running tasks count; tasks told to stop, ended ones and other services' do not", () => {
    const s = mkSpec({ maxReplicasPerNode: 1 });
    const nodes = [mkNode('a')];
    assert.match(place(nodes, [task(s, 'a'), task(s)])[0]!, /max replicas per node limit exceed/);
    assert.deepEqual(place(nodes, [task(s, 'a', { desired: 'shutdown' }), task(s)]), ['a']);
    assert.deepEqual(place(nodes, [task(s, 'a', { state: 'failed' }), task(s)]), ['a']);
    assert.deepEqual(place(nodes, [task(s, 'a', { serviceId: 'other' }), task(s)]), ['a']);
  });

  test('0 is no limit', () => {
    const s = mkSpec({ maxReplicasPerNode: 0 });
    assert.deepEqual(place([mkNode('a')], [task(s), task(s), task(s)]), ['a', 'a', 'a']);
  });
});
