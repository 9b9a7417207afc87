// A demotion on a real 3-member Raft cluster, in-process (real gRPC on 127.0.0.1, real LevelDB):
// the store records the node as a worker before Raft lets it go. The CA issues certificates, and
// the key-encryption key, by the store's role, so the other order left a window in which a
// renewal handed the demoted node a manager certificate and the key.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RaftNode, raftServerOptions, silentLogger, type ConfState } from '@shoal/raft';
import { ClusterStore, StoreClient, type Node } from '@shoal/store';
import { MembershipManager } from '../src/membership.js';
import { mkNode } from './fixtures.js';

const TIMINGS = { tickMs: 20, electionTicks: 10, heartbeatTicks: 2 };

interface Member {
  id: string;
  addr: string;
  dir: string;
  server: grpc.Server;
  store: ClusterStore;
  node: RaftNode;
  client: StoreClient;
}

function bind(server: grpc.Server): Promise<number> {
  return new Promise((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
}

async function waitFor(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('demotion', () => {
  const members: Member[] = [];

  before(async () => {
    const servers = await Promise.all(
      ['m1', 'm2', 'm3'].map(async (id) => {
        const server = new grpc.Server(raftServerOptions(4 << 20));
        const port = await bind(server);
        const dir = await mkdtemp(path.join(os.tmpdir(), `shoal-demote-${id}-`));
        return { id, server, dir, addr: `127.0.0.1:${port}` };
      }),
    );
    const bootstrap = servers.map((s) => ({ id: s.id, addr: s.addr }));
    for (const s of servers) {
      const store = new ClusterStore();
      const node = await RaftNode.open({ id: s.id, addr: s.addr, dataDir: s.dir, server: s.server, stateMachine: store, bootstrap, timings: TIMINGS, logger: silentLogger() });
      node.start();
      members.push({ ...s, store, node, client: new StoreClient(node, store) });
    }
    await waitFor(() => {
      const l = members.find((m) => m.node.isLeader());
      return !!l && members.every((m) => m.node.leaderId() === l.id) && Object.values(l.node.status().progress).filter((p) => p.recentActive).length >= 2;
    }, 'a leader that hears from both followers');
    const managers: Node[] = members.map((m) => {
      const n = mkNode(m.id);
      return { ...n, spec: { ...n.spec, role: 'manager' }, status: { ...n.status, addr: m.addr }, managerStatus: { raftId: m.id, addr: m.addr } };
    });
    await members.find((m) => m.node.isLeader())!.client.commit(managers.map((object) => ({ op: 'create', kind: 'node', object })), { timeoutMs: 5_000 });
  });

  after(async () => {
    for (const m of members) {
      await m.node.stop().catch(() => undefined);
      m.server.forceShutdown();
      await rm(m.dir, { recursive: true, force: true });
    }
  });

  test('the store says worker before Raft lets the node go', async () => {
    const leader = members.find((m) => m.node.isLeader())!;
    const target = members.find((m) => m !== leader)!;
    // What the leader's store says of the node at the moment its Raft configuration drops it: what
    // a renewal answered then would be based on.
    const roles: string[] = [];
    const onConf = (conf: ConfState) => {
      if (![...conf.voters, ...conf.learners].some((x) => x.id === target.id)) roles.push(leader.store.get('node', target.id)!.spec.role);
    };
    leader.node.on('conf', onConf);
    try {
      const membership = new MembershipManager(leader.node, leader.store, leader.client, silentLogger());
      await membership.demote(leader.store.get('node', target.id)!);
      await waitFor(() => roles.length > 0, 'the configuration without the demoted node');
      assert.equal(roles[0], 'worker', 'the role in the store when Raft let the node go');
      assert.equal(leader.store.get('node', target.id)!.managerStatus, null);
      assert.ok(!leader.node.status().conf.voters.some((x) => x.id === target.id));
    } finally {
      leader.node.off('conf', onConf);
    }
  });
});
