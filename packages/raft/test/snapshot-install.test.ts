// A state machine that snapshots in steps (captureSnapshot, restoreAsync), on three in-process
// RaftNodes (real LevelDB, real gRPC on loopback). The leader's snapshots are captured at their
// index and encoded later; a lagging member installs one whose restore is held open by the test:
// meanwhile it applies nothing (its applied index stays put), keeps following the leader (no
// election: the heartbeats are stepped while it restores), and once the restore completes it
// applies the entries after the snapshot and catches up.

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { RaftNode, raftServerOptions, silentLogger, type SnapshotCapture } from '../src/index.js';
import { KvStateMachine, encodeKv } from '../src/testing/kv.js';
import { freePort } from '../src/testing/process-cluster.js';

const TIMINGS = { tickMs: 20, electionTicks: 10, heartbeatTicks: 2 };

/** KvStateMachine with step-wise snapshots; its restores wait for `gate` when one is set. */
class SteppedKv extends KvStateMachine {
  captures = 0;
  restoring = false;
  restores = 0;
  appliedWhileRestoring = 0;
  gate: Promise<void> | undefined;

  override apply(command: Uint8Array, index: number): Uint8Array {
    if (this.restoring) this.appliedWhileRestoring++;
    return super.apply(command, index);
  }

  captureSnapshot(): SnapshotCapture {
    this.captures++;
    const copy = new KvStateMachine();
    copy.lastIndex = this.lastIndex;
    for (const [k, n] of this.writes) copy.writes.set(k, n);
    for (const [k, v] of this.values) copy.values.set(k, v);
    return {
      encode: async () => {
        await new Promise((r) => setTimeout(r, 5));
        return copy.snapshot();
      },
    };
  }

  async restoreAsync(data: Uint8Array): Promise<void> {
    this.restoring = true;
    try {
      await this.gate;
      this.restores++;
      this.restore(data);
    } finally {
      this.restoring = false;
    }
  }
}

interface Member {
  id: string;
  addr: string;
  dir: string;
  node: RaftNode;
  sm: SteppedKv;
  server: grpc.Server;
}

async function eventually(what: string, fn: () => boolean, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!fn()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('snapshots in steps on three in-process RaftNodes', () => {
  const root = mkdtempSync(join(tmpdir(), 'shoal-raft-snapinstall-'));
  const members: Member[] = [];

  async function start(id: string, addr: string, boot: { id: string; addr: string }[], sm = new SteppedKv()): Promise<Member> {
    const server = new grpc.Server(raftServerOptions(4 << 20));
    const dir = join(root, id);
    const node = await RaftNode.open({ id, addr, dataDir: dir, server, stateMachine: sm, bootstrap: boot, timings: TIMINGS, snapshotEntries: 20, logger: silentLogger() });
    await new Promise<void>((resolve, reject) => server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (e) => (e ? reject(e) : resolve())));
    node.start();
    return { id, addr, dir, node, sm, server };
  }

  after(async () => {
    for (const m of members) {
      await m.node.stop().catch(() => undefined);
      m.server.forceShutdown();
    }
    rmSync(root, { recursive: true, force: true });
  });

  test('a lagging member installs a snapshot whose restore is held: it applies nothing and deposes no one meanwhile', async () => {
    const ports = [await freePort(), await freePort(), await freePort()];
    const boot = ports.map((p, i) => ({ id: `n${i + 1}`, addr: `127.0.0.1:${p}` }));
    for (const b of boot) members.push(await start(b.id, b.addr, boot));
    await eventually('a leader', () => members.some((m) => m.node.isLeader()));
    const leader = members.find((m) => m.node.isLeader())!;
    const lagging = members.find((m) => m !== leader)!;
    await lagging.node.stop();
    lagging.server.forceShutdown();

    const put = (i: number) => leader.node.propose(encodeKv({ op: 'put', key: `k${i}`, value: new TextEncoder().encode(`v${i}`) }));
    for (let i = 0; i < 60; i++) await put(i);
    await eventually('a compacted log on the leader', () => leader.node.status().stats.snapshots > 0);
    assert.ok(leader.sm.captures > 0, 'the leader captured its snapshots through captureSnapshot');

    let open!: () => void;
    const sm = new SteppedKv();
    sm.gate = new Promise<void>((r) => (open = r));
    const term = leader.node.status().term;
    const again = await start(lagging.id, lagging.addr, boot, sm);
    members[members.indexOf(lagging)] = again;
    await eventually('the snapshot restore to start', () => sm.restoring);
    const appliedAtStart = again.node.status().applied;
    // While the restore is held: more writes commit (on the other two), for several election timeouts.
    for (let i = 60; i < 80; i++) {
      await put(i);
      await new Promise((r) => setTimeout(r, 40));
    }
    assert.equal(sm.restoring, true);
    assert.equal(sm.appliedWhileRestoring, 0, 'nothing applied while the restore runs');
    assert.equal(again.node.status().applied, appliedAtStart, 'the applied index waits for the restore');
    assert.equal(again.node.status().term, term, 'the restoring member kept following (no election)');
    assert.ok(leader.node.isLeader());
    assert.equal(leader.node.status().term, term);

    open();
    const commit = leader.node.status().commit;
    await eventually('the member to catch up', () => again.node.status().applied >= commit);
    assert.equal(sm.restores, 1);
    assert.equal(sm.appliedWhileRestoring, 0);
    for (let i = 0; i < 80; i++) assert.equal(new TextDecoder().decode(sm.values.get(`k${i}`)), `v${i}`, `k${i}`);
    assert.equal(leader.node.status().term, term);
  });
});
