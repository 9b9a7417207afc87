// RaftNode's support for a leader's own work, on real nodes in-process (real gRPC on loopback,
// real LevelDB): the read barrier (isLeaderReady / 'leader-ready': a node that just won an
// election is not ready until it applied an entry of its own term, and then its state machine
// holds every write acknowledged under the previous leader), and leaderOnly proposals (never
// passed on to another leader).

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ShoalError } from '@shoal/api';
import { RaftNode } from '../src/node.js';
import type { Member } from '../src/core/types.js';
import { raftServerOptions } from '../src/transport/index.js';
import { silentLogger } from '../src/logger.js';
import { KvStateMachine, encodeKv } from '../src/testing/kv.js';

const TIMINGS = { tickMs: 20, electionTicks: 10, heartbeatTicks: 2 };

interface Member_ {
  id: string;
  node: RaftNode;
  sm: KvStateMachine;
  server: grpc.Server;
  /** What the node saw when it won each election, and when it became ready. */
  elected: { term: number; ready: boolean; lastIndex: number }[];
  ready: { term: number; applied: number; keys: number }[];
}

function bind(server: grpc.Server): Promise<number> {
  return new Promise((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
}

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('a new leader is ready only past its read barrier', () => {
  const members: Member_[] = [];
  const dirs: string[] = [];

  after(async () => {
    for (const m of members) {
      await m.node.stop().catch(() => undefined);
      m.server.forceShutdown();
    }
    await Promise.all(dirs.map((d) => rm(d, { recursive: true, force: true })));
  });

  test('ready after the no-op of its term is applied, with every acknowledged write; followers never', async () => {
    const servers = await Promise.all(
      ['a', 'b', 'c'].map(async (id) => {
        const server = new grpc.Server(raftServerOptions(4 << 20));
        const port = await bind(server);
        const dir = await mkdtemp(path.join(os.tmpdir(), `shoal-ready-${id}-`));
        dirs.push(dir);
        return { id, server, dir, addr: `127.0.0.1:${port}` };
      }),
    );
    const bootstrap: Member[] = servers.map((s) => ({ id: s.id, addr: s.addr }));
    for (const s of servers) {
      const sm = new KvStateMachine();
      const node = await RaftNode.open({ id: s.id, addr: s.addr, dataDir: s.dir, server: s.server, stateMachine: sm, bootstrap, timings: TIMINGS, logger: silentLogger() });
      const m: Member_ = { id: s.id, node, sm, server: s.server, elected: [], ready: [] };
      node.on('leader', (leader: string) => {
        if (leader !== s.id) return;
        const st = node.status();
        m.elected.push({ term: st.term, ready: node.isLeaderReady(), lastIndex: st.lastIndex });
      });
      node.on('leader-ready', (term: number) => m.ready.push({ term, applied: node.status().applied, keys: sm.values.size }));
      members.push(m);
      node.start();
    }

    const check = (leader: Member_) => {
      for (const m of members) if (m !== leader) assert.equal(m.node.isLeaderReady(), false, `follower ${m.id} is not ready`);
      const elected = leader.elected.at(-1)!;
      const ready = leader.ready.at(-1)!;
      assert.equal(elected.ready, false, 'not ready at the moment it won the election');
      assert.equal(ready.term, elected.term);
      assert.ok(ready.applied >= elected.lastIndex, `ready at applied ${ready.applied}, before its no-op at ${elected.lastIndex}`);
      return ready;
    };
    const first = await waitFor('a ready leader', () => members.find((m) => m.node.isLeaderReady()));
    check(first);

    // Acknowledged writes, then the leader goes: the next one must hold them all once ready.
    for (let i = 0; i < 20; i++) await first.node.propose(encodeKv({ op: 'put', key: `k${i}`, value: new Uint8Array([i]) }));
    const acked = first.sm.values.size;
    assert.equal(acked, 20);
    await first.node.stop();
    first.server.forceShutdown();
    members.splice(members.indexOf(first), 1);
    const next = await waitFor('a new ready leader', () => members.find((m) => m.node.isLeaderReady()));
    const ready = check(next);
    assert.equal(ready.keys, acked, 'the new leader is ready with every acknowledged write applied');

    // A leader's own decision is never passed on to another leader: a follower refuses it.
    const follower = members.find((m) => m !== next)!;
    await assert.rejects(
      follower.node.propose(encodeKv({ op: 'put', key: 'decided-by-a-follower', value: new Uint8Array([1]) }), { leaderOnly: true }),
      (err: unknown) => ShoalError.is(err, 'NOT_LEADER'),
    );
    await follower.node.propose(encodeKv({ op: 'put', key: 'forwarded', value: new Uint8Array([1]) }));
    assert.equal(next.sm.values.has('forwarded'), true, 'an ordinary proposal is forwarded');
    assert.equal(next.sm.values.has('decided-by-a-follower'), false);
    await next.node.propose(encodeKv({ op: 'put', key: 'decided-by-the-leader', value: new Uint8Array([1]) }), { leaderOnly: true });
    assert.equal(next.sm.values.has('decided-by-the-leader'), true);
  });
});
