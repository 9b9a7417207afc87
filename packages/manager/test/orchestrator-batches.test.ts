// The orchestrator's passes against the store's size bound, on a real one-member Raft (LevelDB
// in a temp dir, gRPC on loopback): a pass too large for one transaction is committed in bounded
// transactions until done (10,000 replicas, their removal, a node with thousands of tasks lost),
// a small one still in a single transaction; a global service's tasks on a removed node go away.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RaftNode, raftServerOptions, silentLogger } from '@shoal/raft';
import { ClusterStore, MAX_TX_BYTES, StoreClient, type Node, type Op, type Service, type ServiceSpec, type Task, deleteOp, encodeTx, updateOp } from '@shoal/store';
import { Orchestrator } from '../src/orchestrator/orchestrator.js';
import { batchAt, firstBatch } from '../src/orchestrator/plan.js';
import { LeaderDuty } from '../src/leader-duty.js';
import { T0, mkNode, mkSpec } from './fixtures.js';

async function waitFor(what: string, cond: () => boolean, ms = 60_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('orchestrator passes in bounded transactions', () => {
  let dir: string;
  let server: grpc.Server;
  let raft: RaftNode;
  const store = new ClusterStore();
  let client: StoreClient;
  let orchestrator: Orchestrator;
  let duty: LeaderDuty;
  /** The size of every transaction proposed, in order. */
  const proposed: number[] = [];
  let ids = 0;

  const commit = (...ops: Op[]) => client.commit(ops);
  const service = (spec: ServiceSpec): Service => ({ id: `svc${++ids}`, version: 0, createdAt: T0, updatedAt: T0, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null });
  const tasksOf = (name: string) => store.list('task').filter((t) => t.serviceName === name);
  const largest = () => Math.max(0, ...proposed);

  before(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-orch-'));
    server = new grpc.Server(raftServerOptions(4 << 20));
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
    const addr = `127.0.0.1:${port}`;
    raft = await RaftNode.open({ id: 'm1', addr, dataDir: dir, server, stateMachine: store, bootstrap: [{ id: 'm1', addr }], timings: { tickMs: 20 }, logger: silentLogger() });
    raft.start();
    client = new StoreClient(
      {
        propose: (payload, opts) => {
          proposed.push(payload.length);
          return raft.propose(payload, opts);
        },
        readBarrier: (opts) => raft.readBarrier(opts),
      },
      store,
    );
    await waitFor('a leader', () => raft.isLeader());
    await commit(...['n1', 'n2'].map((id) => ({ op: 'create', kind: 'node', object: mkNode(id) }) as Op));
    orchestrator = new Orchestrator(store, client, silentLogger());
    duty = new LeaderDuty(raft, [orchestrator]);
    duty.sync();
  });

  after(async () => {
    duty.stop();
    await raft.stop();
    server.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  });

  test('a small service is created and placed in one transaction', async () => {
    await commit({ op: 'create', kind: 'service', object: service(mkSpec({ name: 'small', replicas: 3 })) });
    await waitFor('3 tasks', () => tasksOf('small').length === 3);
    const tasks = tasksOf('small');
    assert.equal(new Set(tasks.map((t) => t.version)).size, 1, 'all three tasks come from one transaction');
    assert.ok(tasks.every((t) => t.status.state === 'assigned' && t.nodeId !== ''));
  });

  test('10,000 replicas that no node can take: created in bounded transactions, then removed the same way', async () => {
    const svc = service(mkSpec({ name: 'huge', replicas: 10_000, constraints: ['node.hostname==nowhere'] }));
    proposed.length = 0;
    await commit({ op: 'create', kind: 'service', object: svc });
    await waitFor('10,000 tasks', () => tasksOf('huge').length === 10_000);
    const tasks = tasksOf('huge');
    assert.deepEqual(new Set(tasks.map((t) => t.slot)).size, 10_000, 'one task per slot');
    assert.ok(tasks.every((t) => t.status.state === 'pending' && t.status.err.includes('node.hostname==nowhere')), 'each task says why it waits');
    assert.ok(new Set(tasks.map((t) => t.version)).size > 1, 'in several transactions');
    assert.ok(largest() <= MAX_TX_BYTES, `a transaction of ${largest()} bytes was proposed`);

    proposed.length = 0;
    await commit({ op: 'delete', kind: 'service', id: svc.id });
    await waitFor('no task left', () => tasksOf('huge').length === 0);
    assert.ok(largest() <= MAX_TX_BYTES, `a transaction of ${largest()} bytes was proposed`);
  });

  test('a node holding 3,000 tasks goes down: every task is orphaned and replaced, in bounded transactions', async () => {
    await commit({ op: 'create', kind: 'service', object: service(mkSpec({ name: 'pinned', replicas: 3000, constraints: ['node.hostname==n1'] })) });
    await waitFor('3,000 tasks on n1', () => tasksOf('pinned').filter((t) => t.nodeId === 'n1').length === 3000);
    proposed.length = 0;
    const n1 = store.get('node', 'n1') as Node;
    await commit(updateOp('node', { ...n1, status: { ...n1.status, state: 'down' } }));
    await waitFor('3,000 orphaned and 3,000 replacements', () => {
      const ts = tasksOf('pinned');
      return ts.filter((t) => t.status.state === 'orphaned').length === 3000 && ts.filter((t) => t.desiredState === 'running' && t.nodeId === '').length === 3000;
    });
    assert.ok(proposed.length > 1 && largest() <= MAX_TX_BYTES, `transactions of ${proposed.join(', ')} bytes`);
  });

  test("a removed node's tasks of a global service are deleted", async () => {
    await commit({ op: 'create', kind: 'node', object: mkNode('n3') });
    await commit({ op: 'create', kind: 'service', object: service(mkSpec({ name: 'everywhere', mode: 'global', replicas: 0 })) });
    await waitFor('a task on n3', () => tasksOf('everywhere').some((t) => t.nodeId === 'n3'));
    const n3 = store.get('node', 'n3') as Node;
    await commit(deleteOp('node', n3));
    await waitFor('no task on n3', () => !tasksOf('everywhere').some((t) => t.nodeId === 'n3'));
    assert.ok(tasksOf('everywhere').some((t) => t.nodeId === 'n2' && t.desiredState === 'running'), 'the other nodes keep theirs');
  });
});

describe('firstBatch', () => {
  const op = (id: string, bytes: number): Op => ({ op: 'delete', kind: 'task', id: `${id}${'x'.repeat(bytes)}` });

  test('takes whole groups while they fit, and says more remain', () => {
    const groups = [[op('a', 100)], [op('b', 100), op('c', 100)], [op('d', 100)]];
    const all = firstBatch(groups, 10_000);
    assert.equal(all.ops.length, 4);
    assert.equal(all.more, false);
    const some = firstBatch(groups, 450);
    assert.deepEqual(some.ops.map((o) => (o as { id: string }).id[0]), ['a', 'b', 'c']);
    assert.equal(some.more, true);
    // Never splits a group: b and c come together or not at all.
    assert.deepEqual(firstBatch(groups, 250).ops.length, 1);
  });

  test('batchAt cuts a pass of tasks sharing a spec exactly at the bound, batch after batch', () => {
    const spec = mkSpec({ name: 'web', env: ['A=1', 'B=2'], labels: { tier: 'front' } });
    const task = (i: number): Task => ({
      id: `task${i}`, version: 0, createdAt: T0, updatedAt: T0, serviceId: 'svc', serviceName: 'web', slot: i, nodeId: i % 2 ? 'n1' : '', desiredState: 'running',
      status: { state: i % 2 ? 'assigned' : 'pending', timestamp: T0, message: 'é', err: '', containerId: '', exitCode: 0 }, spec, specVersion: 1, networks: [], jobIteration: 0,
    });
    const groups: Op[][] = Array.from({ length: 500 }, (_, i) => (i % 3 ? [{ op: 'create', kind: 'task', object: task(i) }] : [updateOp('task', task(i)), deleteOp('task', task(i + 1000))]));
    const bound = 16 << 10;
    const seen: Op[] = [];
    for (let start = 0; start < groups.length; ) {
      const b = batchAt(groups, start, bound);
      assert.ok(encodeTx(b.ops).length <= bound);
      if (b.more) assert.ok(encodeTx([...b.ops, ...groups[b.next]!]).length > bound, 'one more group would not have fit');
      seen.push(...b.ops);
      start = b.next;
    }
    assert.deepEqual(seen, groups.flat());
  });

  test('a group larger than the bound is taken alone (the store client then refuses it)', () => {
    const b = firstBatch([[op('a', 5000)], [op('b', 10)]], 1000);
    assert.equal(b.ops.length, 1);
    assert.equal(b.more, true);
  });
});
