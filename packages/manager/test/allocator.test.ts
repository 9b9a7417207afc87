// The network allocator in the leader's pass: tasks get their addresses before placement (in the
// transaction that creates them), serially; a full network makes tasks wait in state new, saying
// why, and they go on as soon as addresses are free. Driven through the orchestrator's loop on a
// real store (orchestrator-world.ts).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Network, type Service, type Task, updateOp } from '@shoal/store';
import { completeNetworkSpec } from '@shoal/types';
import { Allocator } from '../src/allocator/allocator.js';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { waitFor, world } from './orchestrator-world.js';

function network(id: string, name: string, subnet: string): Network {
  return { id, version: 0, createdAt: T0, updatedAt: T0, spec: completeNetworkSpec({ name, ipam: { subnet, gateway: '' } }), subnet: '', gateway: '', vni: 0 };
}

const onNets = (id: string, name: string, replicas: number, nets: string[]): Service => ({
  id,
  version: 0,
  createdAt: T0,
  updatedAt: T0,
  spec: mkSpec({ name, replicas, networks: nets.map((target) => ({ target, aliases: [] })) }),
  previousSpec: null,
  specVersion: 1,
  updateStatus: null,
  endpoint: { virtualIps: [] }, jobStatus: null,
});

const addrs = (ts: Task[], net: string) => ts.map((t) => t.networks.find((a) => a.networkId === net)?.addr).sort();

describe('network allocator', () => {
  test('tasks are created holding one address per network, distinct, and only then placed', async () => {
    const w = world();
    await w.client.commit([
      { op: 'create', kind: 'node', object: mkNode('n1') },
      { op: 'create', kind: 'network', object: network('a', 'front', '10.5.0.0/24') },
      { op: 'create', kind: 'network', object: network('b', 'back', '10.6.0.0/24') },
      { op: 'create', kind: 'service', object: onNets('s1', 'web', 3, ['a', 'b']) },
    ]);
    w.orchestrator.begin();
    try {
      const tasks = await waitFor('3 tasks placed', () => {
        const ts = w.tasks('web');
        return ts.length === 3 && ts.every((t) => t.status.state === 'assigned') ? ts : undefined;
      });
      // .1 the gateway, .2 the service's VIP, then one after another.
      assert.deepEqual(addrs(tasks, 'a'), ['10.5.0.3/24', '10.5.0.4/24', '10.5.0.5/24']);
      assert.deepEqual(addrs(tasks, 'b'), ['10.6.0.3/24', '10.6.0.4/24', '10.6.0.5/24']);
      // Created with them: no task was ever written without its addresses.
      const creates = w.committed.flatMap((c) => c.ops).filter((op) => op.op === 'create' && op.kind === 'task');
      assert.equal(creates.length, 3);
      for (const op of creates) assert.equal((op as { object: Task }).object.networks.length, 2);
    } finally {
      w.orchestrator.end();
    }
  });

  test('a full network: tasks wait in new saying why, then go on when addresses are freed', async () => {
    const w = world();
    // A /29: 5 addresses to give; the VIP takes one, four tasks the rest.
    await w.client.commit([
      { op: 'create', kind: 'node', object: mkNode('n1') },
      { op: 'create', kind: 'network', object: network('a', 'tiny', '10.7.0.0/29') },
      { op: 'create', kind: 'service', object: onNets('s1', 'web', 6, ['a']) },
    ]);
    w.orchestrator.begin();
    try {
      const waiting = await waitFor('4 placed, 2 waiting', () => {
        const ts = w.tasks('web');
        const w2 = ts.filter((t) => t.status.state === 'new');
        return ts.length === 6 && w2.length === 2 && ts.filter((t) => t.status.state === 'assigned').length === 4 ? w2 : undefined;
      });
      for (const t of waiting) {
        assert.equal(t.status.err, 'no free address left in network "tiny" (10.7.0.0/29)');
        assert.deepEqual(t.networks, []);
      }
      assert.deepEqual(addrs(w.tasks('web').filter((t) => t.status.state === 'assigned'), 'a'), ['10.7.0.3/29', '10.7.0.4/29', '10.7.0.5/29', '10.7.0.6/29']);
      // One placed task stops for good: its address goes to a task that waited for one (the slot's
      // replacement, as new as the others, waits too: still four addresses for six slots).
      const [victim] = w.tasks('web').filter((t) => t.status.state === 'assigned');
      await w.client.commit([updateOp('task', { ...victim!, desiredState: 'shutdown', status: { ...victim!.status, state: 'shutdown' } })]);
      await waitFor('a waiting task placed with the freed address', () => {
        const live = w.tasks('web').filter((t) => t.desiredState === 'running');
        const placed = live.filter((t) => t.status.state === 'assigned');
        return placed.length === 4 && addrs(placed, 'a').includes(victim!.networks[0]!.addr) ? true : undefined;
      });
      // Scaled down to what fits: the waiting tasks go (never given to an agent: deleted).
      const svc = w.store.get('service', 's1')!;
      await w.client.commit([updateOp('service', { ...svc, spec: { ...svc.spec, replicas: 4 }, specVersion: svc.specVersion })]);
      await waitFor('no task waiting', () => (w.tasks('web').some((t) => t.status.state === 'new') ? undefined : true));
    } finally {
      w.orchestrator.end();
    }
  });

  test('serial: a freed address is given again only after the rest of the subnet', () => {
    const a = new Allocator();
    const net = { ...network('a', 'front', '10.8.0.0/29'), subnet: '10.8.0.0/29', gateway: '10.8.0.1', vni: 4096 };
    const held = new Set<string>();
    const book = { network: () => net, holder: (_: string, addr: string) => (held.has(addr) ? 'x' : undefined) };
    const spec = mkSpec({ networks: [{ target: 'a', aliases: [] }] });
    const mk = (id: string): Task => ({
      id, version: 0, createdAt: T0, updatedAt: T0, serviceId: 's', serviceName: 'web', slot: 1, nodeId: '', desiredState: 'running',
      status: { state: 'pending', timestamp: T0, message: '', err: '', containerId: '', exitCode: 0 }, spec, specVersion: 1, networks: [], jobIteration: 0,
    });
    const give = (id: string) => {
      const [t] = a.allocate(book, [mk(id)], new Set([id]), T0);
      const addr = t!.networks[0]?.addr;
      if (addr) held.add(addr);
      return addr ?? t!.status.err;
    };
    assert.deepEqual([give('t1'), give('t2')], ['10.8.0.2/29', '10.8.0.3/29']);
    held.delete('10.8.0.2/29');
    assert.deepEqual([give('t3'), give('t4'), give('t5'), give('t6')], ['10.8.0.4/29', '10.8.0.5/29', '10.8.0.6/29', '10.8.0.2/29']);
    assert.equal(give('t7'), 'no free address left in network "front" (10.8.0.0/29)');
  });
});

describe('the ingress network', () => {
  test('the leader makes it once; every node gets its own address on it, a joining one too, and it cannot be removed', async () => {
    const w = world();
    await w.client.commit([{ op: 'create', kind: 'node', object: mkNode('n1') }, { op: 'create', kind: 'node', object: mkNode('n2') }]);
    w.orchestrator.begin();
    try {
      const ingress = await waitFor('the ingress network', () => w.store.list('network').find((n) => n.spec.ingress));
      assert.equal(ingress.spec.name, 'ingress');
      assert.equal(ingress.subnet, '10.255.0.0/16');
      const held = () => w.store.list('node').map((n) => n.attachments.find((a) => a.networkId === ingress.id)?.addr);
      await waitFor('both nodes addressed', () => (held().every(Boolean) ? true : undefined));
      await w.client.commit([{ op: 'create', kind: 'node', object: mkNode('n3') }]);
      const all = await waitFor('the new node addressed', () => (held().length === 3 && held().every(Boolean) ? held() : undefined));
      assert.deepEqual([...all].sort(), ['10.255.0.2/16', '10.255.0.3/16', '10.255.0.4/16']);
      assert.equal(w.store.list('network').filter((n) => n.spec.ingress).length, 1, 'made once');
      await assert.rejects(w.client.commit([{ op: 'delete', kind: 'network', id: ingress.id }]), /ingress network: it cannot be removed/);
      // A second one (a racing leader's) is refused by the store.
      const twin = { ...network('x', 'ingress2', '10.254.0.0/16'), spec: { ...network('x', 'ingress2', '10.254.0.0/16').spec, ingress: true } };
      await assert.rejects(w.client.commit([{ op: 'create', kind: 'network', object: twin }]), /already has an ingress network/);
      // The store refuses one address for two nodes.
      const n1 = w.store.get('node', 'n1')!;
      const n2 = w.store.get('node', 'n2')!;
      await assert.rejects(w.client.commit([updateOp('node', { ...n2, attachments: n1.attachments })]), /already held by node n1/);
    } finally {
      w.orchestrator.end();
    }
  });

  test('a node given up frees its address; a user network on 10.255.0.0/16 sends the ingress to the default pool', async () => {
    const w = world();
    await w.client.commit([{ op: 'create', kind: 'network', object: network('u', 'mine', '10.255.7.0/24') }, { op: 'create', kind: 'node', object: mkNode('n1') }]);
    w.orchestrator.begin();
    try {
      const ingress = await waitFor('the ingress network', () => w.store.list('network').find((n) => n.spec.ingress));
      assert.equal(ingress.subnet, '10.0.0.0/24');
      const addr = await waitFor('n1 addressed', () => w.store.get('node', 'n1')!.attachments[0]?.addr);
      assert.equal(w.store.addressHolder(ingress.id, addr), 'n1');
      await w.client.commit([{ op: 'delete', kind: 'node', id: 'n1' }]);
      assert.equal(w.store.addressHolder(ingress.id, addr), undefined);
    } finally {
      w.orchestrator.end();
    }
  });
});
