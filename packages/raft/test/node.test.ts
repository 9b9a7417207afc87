// RaftNode in-process (real LevelDB, real gRPC on loopback): the bound on proposals. A payload a
// follower could never receive (one entry travels whole in one message, and the transport drops a
// message above 4 x maxMsgBytes) must be refused up front, and the largest accepted one, bigger than
// maxMsgBytes, must still reach every member, with later writes committing after it.

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
    for (const m of boot) {
      const server = new grpc.Server(raftServerOptions(4 * MAX_MSG));
      const sm = new KvStateMachine();
      const node = await RaftNode.open({
        id: m.id,
        addr: m.addr,
        dataDir: join(dir, m.id),
        server,
        stateMachine: sm,
        bootstrap: boot,
        maxMsgBytes: MAX_MSG,
      });
      await new Promise<void>((resolve, reject) =>
        server.bindAsync(m.addr, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
      );
      node.start();
      members.push({ node, sm, server });
    }
    await eventually('a leader', () => members.some((m) => m.node.isLeader()));
  });

  after(async () => {
    for (const m of members) {
      await m.node.stop();
      m.server.forceShutdown();
    }
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
