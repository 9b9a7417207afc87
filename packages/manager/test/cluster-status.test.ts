// `cluster status` on a real Raft node (in-process, real LevelDB and gRPC on loopback): a manager
// the store has and Raft has not taken in yet is listed as pending (the reconciler is not started
// here, so it stays out of Raft), next to the Raft members.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RaftNode, raftServerOptions, silentLogger } from '@shoal/raft';
import { ClusterStore, StoreClient } from '@shoal/store';
import { MembershipManager } from '../src/membership.js';
import { MembershipReconciler } from '../src/membership-reconciler.js';
import { mkNode } from './fixtures.js';

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const f of cleanup.reverse()) await f();
});

function bind(server: grpc.Server): Promise<number> {
  return new Promise((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
}

test('a manager the store has and Raft does not yet is listed as pending', async () => {
  const server = new grpc.Server(raftServerOptions(4 << 20));
  const addr = `127.0.0.1:${await bind(server)}`;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-status-'));
  const store = new ClusterStore();
  const raft = await RaftNode.open({ id: 'm1', addr, dataDir: dir, server, stateMachine: store, bootstrap: [{ id: 'm1', addr }], timings: { tickMs: 20 }, logger: silentLogger() });
  cleanup.push(async () => {
    await raft.stop().catch(() => undefined);
    server.forceShutdown();
    await rm(dir, { recursive: true, force: true });
  });
  raft.start();
  const client = new StoreClient(raft, store);
  const log = silentLogger();
  const membership = new MembershipManager(raft, store, client, log, new MembershipReconciler(raft, store, client, log), 'unused');
  const m2 = mkNode('m2', { hostname: 'm2' });
  const w1 = mkNode('w1', { hostname: 'w1' });
  await client.commit(
    [
      { op: 'create', kind: 'node', object: { ...m2, spec: { ...m2.spec, role: 'manager' }, managerStatus: { raftId: 'm2', addr: '10.0.0.2:4242' } } },
      { op: 'create', kind: 'node', object: w1 },
    ],
    { timeoutMs: 10_000 },
  );
  const st = await membership.clusterStatus('c1');
  assert.deepEqual(
    st.members.map((m) => [m.nodeId, m.raftRole]),
    [['m1', 'leader'], ['m2', 'pending']],
    'the Raft member, then the pending manager; never the worker',
  );
  assert.deepEqual(st.members[1], { nodeId: 'm2', addr: '10.0.0.2:4242', raftRole: 'pending', reachable: false, commitIndex: 0, appliedIndex: 0 });
});
