// The store as the state machine of a real 3-member Raft cluster, in-process: real gRPC on
// 127.0.0.1, real LevelDB in temp dirs.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ShoalError } from '@shoal/api';
import { RaftNode, raftServerOptions, silentLogger, type Member } from '@shoal/raft';
import { ClusterStore, StoreClient, isVersionConflict, newId, updateOp, type StoreEvent } from '../src/index.js';
import { create, mkNode, mkService, mkTask } from './fixtures.js';

interface Member_ {
  id: string;
  addr: string;
  port: number;
  dir: string;
  server: grpc.Server;
  store: ClusterStore;
  node: RaftNode;
  client: StoreClient;
  events: StoreEvent[];
}

const TIMINGS = { tickMs: 20, electionTicks: 10, heartbeatTicks: 2 };
const SNAPSHOT_ENTRIES = 8;

function bind(server: grpc.Server, addr: string): Promise<number> {
  return new Promise((res, rej) => server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
}

async function waitFor(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function open(m: Pick<Member_, 'id' | 'addr' | 'dir' | 'server'>, bootstrap: Member[]): Promise<Member_> {
  const store = new ClusterStore();
  const events: StoreEvent[] = [];
  store.watch((evs) => events.push(...evs));
  const node = await RaftNode.open({
    id: m.id,
    addr: m.addr,
    dataDir: m.dir,
    server: m.server,
    stateMachine: store,
    bootstrap,
    timings: TIMINGS,
    snapshotEntries: SNAPSHOT_ENTRIES,
    logger: silentLogger(),
  });
  node.start();
  return { ...m, port: Number(m.addr.split(':')[1]), store, node, client: new StoreClient(node, store), events };
}

describe('ClusterStore on a 3-member Raft cluster', () => {
  const members: Member_[] = [];
  const dirs: string[] = [];

  before(async () => {
    const servers = await Promise.all(
      ['m1', 'm2', 'm3'].map(async (id) => {
        const server = new grpc.Server(raftServerOptions(4 << 20));
        const port = await bind(server, '127.0.0.1:0');
        const dir = await mkdtemp(path.join(os.tmpdir(), `shoal-store-${id}-`));
        dirs.push(dir);
        return { id, server, dir, addr: `127.0.0.1:${port}` };
      }),
    );
    const bootstrap = servers.map((s) => ({ id: s.id, addr: s.addr }));
    for (const s of servers) members.push(await open(s, bootstrap));
    await waitFor(() => {
      const leader = members.find((m) => m.node.isLeader());
      return !!leader && members.every((m) => m.node.leaderId() === leader.node.id);
    }, 'a leader all members agree on');
  });

  after(async () => {
    for (const m of members) {
      await m.node.stop().catch(() => undefined);
      m.server.forceShutdown();
    }
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  const leader = () => members.find((m) => m.node.isLeader())!;
  const followers = () => members.filter((m) => !m.node.isLeader());

  test('a transaction committed through a follower is visible on every member after a read barrier', async () => {
    const f = followers()[0]!;
    const sid = newId();
    const r = await f.client.commit([create('service', mkService(sid, 'web')), create('node', mkNode('n1', 'alpha'))], { timeoutMs: 5000 });
    assert.deepEqual(r.ids, [sid, 'n1']);
    // Read-your-writes on the proposing member without a barrier.
    assert.equal(f.store.get('service', sid)!.version, r.index);
    for (const m of members) {
      const st = await m.client.read({ timeoutMs: 5000 });
      assert.equal(st.resolveService('web').id, sid, `on ${m.id}`);
      assert.equal(st.get('service', sid)!.version, r.index);
      assert.equal(st.resolveNode('alpha').id, 'n1');
      assert.ok(m.events.some((e) => e.action === 'create' && e.object.id === sid && e.index === r.index), `watch on ${m.id}`);
    }
    // A rejected transaction comes back as its ShoalError, from any member.
    await assert.rejects(f.client.commit([create('service', mkService(newId(), 'web'))]), (e: unknown) => ShoalError.is(e, 'ALREADY_EXISTS'));
  });

  test('a version-conflicting update through another member is rejected', async () => {
    const [a, b] = [followers()[0]!, leader()];
    const stale = (await a.client.read()).resolveService('web');
    const fresh = (await b.client.read()).resolveService('web');
    assert.equal(stale.version, fresh.version);
    // b wins the race...
    await b.client.commit([updateOp('service', { ...fresh, spec: { ...fresh.spec, replicas: 3 } })]);
    // ...so a's edit, based on the version it read, is refused, and changes nothing.
    await assert.rejects(
      a.client.commit([updateOp('service', { ...stale, spec: { ...stale.spec, replicas: 7 } })]),
      (e: unknown) => isVersionConflict(e) && /^version conflict on service/.test((e as Error).message),
    );
    for (const m of members) assert.equal((await m.client.read()).resolveService('web').spec.replicas, 3, `on ${m.id}`);
  });

  test('concurrent read-modify-write loops from every member all land (update() retries conflicts)', async () => {
    const bump = (m: Member_) =>
      m.client.update(
        (st) => {
          const s = st.resolveService('web');
          return [updateOp('service', { ...s, spec: { ...s.spec, replicas: s.spec.replicas + 1 } })];
        },
        { retries: 20 },
      );
    await Promise.all(members.flatMap((m) => [bump(m), bump(m)]));
    for (const m of members) assert.equal((await m.client.read()).resolveService('web').spec.replicas, 3 + 6, `on ${m.id}`);
  });

  test('a member restarted from its Raft snapshot and log rebuilds the same store', async () => {
    const l = leader();
    const sid = l.store.resolveService('web').id;
    // Enough entries for every member to take at least one snapshot.
    for (let i = 1; i <= SNAPSHOT_ENTRIES + 2; i++) await l.client.commit([create('task', mkTask(`t${i}`, sid, i, { nodeId: 'n1' }))]);
    const victim = followers()[0]!;
    await victim.client.read();
    const snapBefore = Buffer.from(victim.store.snapshot());
    assert.ok(victim.node.status().stats.snapshots > 0, 'the member took a Raft snapshot');
    await victim.node.stop();
    victim.server.forceShutdown();

    const server = new grpc.Server(raftServerOptions(4 << 20));
    await bind(server, victim.addr);
    const again = await open({ id: victim.id, addr: victim.addr, dir: victim.dir, server }, []);
    members[members.indexOf(victim)] = again;
    await again.client.read({ timeoutMs: 5000 });
    assert.deepEqual(again.events[0], { action: 'restore', index: again.events[0]?.index }, 'restored from the Raft snapshot');
    assert.deepEqual(Buffer.from(again.store.snapshot()), snapBefore);
    assert.equal(again.store.tasksByNode('n1').length, SNAPSHOT_ENTRIES + 2);
    assert.deepEqual(Buffer.from(again.store.snapshot()), Buffer.from(leader().store.snapshot()));
  });
});
