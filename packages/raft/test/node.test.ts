// RaftNode in-process (real LevelDB, real gRPC on loopback): the bound on proposals. A payload a
// follower could never receive (one entry travels whole in one message, and the transport drops a
// message above 4 x maxMsgBytes) must be refused up front, and the largest accepted one, bigger than
// maxMsgBytes, must still reach every member, with later writes committing after it.
// And --force-new-cluster as documented: the survivor restarts as the only voter, keeping every
// entry it holds, even one that was never committed.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ShoalError } from '@shoal/api';
import { RaftNode, proposalLimit, raftServerOptions, MAX_PROPOSAL_BYTES } from '../src/index.js';
import { KvStateMachine, encodeKv } from '../src/testing/kv.js';
import { freePort } from '../src/testing/process-cluster.js';

const MAX_MSG = 64 * 1024;

interface Member {
  node: RaftNode;
  sm: KvStateMachine;
  server: grpc.Server;
}

async function startMember(id: string, addr: string, dataDir: string, extra: Partial<Parameters<typeof RaftNode.open>[0]>): Promise<Member> {
  const server = new grpc.Server(raftServerOptions(4 * MAX_MSG));
  const sm = new KvStateMachine();
  const node = await RaftNode.open({ id, addr, dataDir, server, stateMachine: sm, maxMsgBytes: MAX_MSG, ...extra });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  node.start();
  return { node, sm, server };
}

async function stopMember(m: Member): Promise<void> {
  await m.node.stop();
  m.server.forceShutdown();
}

async function eventually(what: string, fn: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('proposal size bound (three in-process RaftNodes, maxMsgBytes 64 KiB)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-raft-node-'));
  const members: Member[] = [];

  before(async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const boot = ports.map((p, i) => ({ id: `n${i + 1}`, addr: `127.0.0.1:${p}` }));
    for (const m of boot) members.push(await startMember(m.id, m.addr, join(dir, m.id), { bootstrap: boot }));
    await eventually('a leader', () => members.some((m) => m.node.isLeader()));
  });

  after(async () => {
    for (const m of members) await stopMember(m);
    rmSync(dir, { recursive: true, force: true });
  });

  test('the limit is half the transport limit here, MAX_PROPOSAL_BYTES by default', () => {
    assert.equal(proposalLimit({ maxMsgBytes: MAX_MSG }), 2 * MAX_MSG);
    assert.equal(proposalLimit({}), MAX_PROPOSAL_BYTES);
    assert.equal(members[0]!.node.maxProposalBytes, 2 * MAX_MSG);
  });

  test('a payload above the limit is refused with RESOURCE_EXHAUSTED, on the leader and on a follower', async () => {
    const limit = members[0]!.node.maxProposalBytes;
    const big = encodeKv({ op: 'put', key: 'too-big', value: new Uint8Array(5 * MAX_MSG) });
    for (const m of members) {
      await assert.rejects(
        m.node.propose(big, { timeoutMs: 5_000 }),
        (e: unknown) =>
          e instanceof ShoalError &&
          e.code === 'RESOURCE_EXHAUSTED' &&
          e.message === `proposal of ${big.length} bytes exceeds the limit of ${limit} bytes`,
      );
    }
    assert.ok(members.every((m) => !m.sm.values.has('too-big')), 'nothing of the refused proposal was applied');
  });

  test('an entry at the limit (twice maxMsgBytes) reaches every member, and later writes commit', async () => {
    const leader = members.find((m) => m.node.isLeader())!;
    const follower = members.find((m) => m !== leader)!;
    const value = new Uint8Array(follower.node.maxProposalBytes - 64).fill(7);
    const payload = encodeKv({ op: 'put', key: 'big', value });
    assert.ok(payload.length > MAX_MSG && payload.length <= follower.node.maxProposalBytes);
    const r = await follower.node.propose(payload, { timeoutMs: 10_000 });
    const after = await leader.node.propose(encodeKv({ op: 'put', key: 'after', value: new Uint8Array([1]) }), { timeoutMs: 10_000 });
    assert.ok(after.index > r.index);
    await eventually('every member applied both', () => members.every((m) => m.sm.values.get('after')?.[0] === 1));
    for (const m of members) assert.equal(m.sm.values.get('big')?.length, value.length);
  });
});

describe('force-new-cluster (in-process RaftNodes)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'shoal-raft-force-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('the survivor restarts as the only voter with every entry it held, even an uncommitted one', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const boot = ports.map((p, i) => ({ id: `n${i + 1}`, addr: `127.0.0.1:${p}` }));
    const members: Member[] = [];
    for (const m of boot) members.push(await startMember(m.id, m.addr, join(dir, m.id), { bootstrap: boot }));
    await eventually('a leader', () => members.some((m) => m.node.isLeader()));
    const leader = members.find((m) => m.node.isLeader())!;
    const put = (m: Member, key: string, timeoutMs: number) =>
      m.node.propose(encodeKv({ op: 'put', key, value: new Uint8Array([1]) }), { timeoutMs });
    await put(leader, 'committed', 10_000);
    // The rest of the cluster is lost; the leader takes one more write it can no longer commit.
    for (const m of members) if (m !== leader) await stopMember(m);
    await assert.rejects(put(leader, 'uncommitted', 300));
    assert.ok(leader.node.status().lastIndex > leader.node.status().commit, 'the last write is in the log, uncommitted');
    await stopMember(leader);

    const id = leader.node.id;
    const addr = boot.find((b) => b.id === id)!.addr;
    const survivor = await startMember(id, addr, join(dir, id), { forceNewCluster: true });
    try {
      await eventually('the survivor leads alone', () => survivor.node.isLeader());
      assert.deepEqual(survivor.node.status().conf.voters.map((v) => v.id), [id]);
      assert.deepEqual(survivor.node.status().conf.learners, []);
      await put(survivor, 'after', 10_000);
      for (const key of ['committed', 'uncommitted', 'after']) assert.equal(survivor.sm.values.get(key)?.[0], 1, key);
    } finally {
      await stopMember(survivor);
    }
  });
});
