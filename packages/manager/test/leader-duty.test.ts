// LeaderDuty on a real Raft node (in-process, real LevelDB and gRPC on loopback): the leader-only
// work begins only once the node has applied an entry of its own term, so it never reads a store
// that lacks what earlier leaders committed; it ends when the owner stops.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RaftNode, raftServerOptions, silentLogger } from '@shoal/raft';
import { ClusterStore } from '@shoal/store';
import { LeaderDuty } from '../src/leader-duty.js';

function bind(server: grpc.Server): Promise<number> {
  return new Promise((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
}

describe('LeaderDuty', () => {
  const cleanup: (() => Promise<void>)[] = [];
  after(async () => {
    for (const f of cleanup.reverse()) await f();
  });

  test('begins once the new leader applied the no-op of its term, not when it wins the election', async () => {
    const server = new grpc.Server(raftServerOptions(4 << 20));
    const addr = `127.0.0.1:${await bind(server)}`;
    const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-duty-'));
    const raft = await RaftNode.open({ id: 'm1', addr, dataDir: dir, server, stateMachine: new ClusterStore(), bootstrap: [{ id: 'm1', addr }], timings: { tickMs: 20 }, logger: silentLogger() });
    cleanup.push(async () => {
      await raft.stop().catch(() => undefined);
      server.forceShutdown();
      await rm(dir, { recursive: true, force: true });
    });
    // The log's end when the node won: its no-op is the last entry then.
    let noop = -1;
    raft.on('leader', (id: string) => {
      if (id === 'm1') noop = raft.status().lastIndex;
    });
    const seen: { applied: number }[] = [];
    let ended = 0;
    const duty = new LeaderDuty(raft, [{ begin: () => seen.push({ applied: raft.status().applied }), end: () => ended++ }]);
    duty.sync();
    assert.equal(duty.leading, false);
    raft.start();
    const deadline = Date.now() + 10_000;
    while (!duty.leading && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    assert.equal(duty.leading, true, 'the duty began');
    assert.equal(seen.length, 1);
    assert.ok(noop > 0, 'the election was seen');
    assert.ok(seen[0]!.applied >= noop, `began at applied ${seen[0]!.applied}, before the no-op at ${noop} was applied`);
    duty.stop();
    assert.equal(duty.leading, false);
    assert.equal(ended, 1, 'stopping ends the duty');
  });

  test('components begin in order and end in reverse; one added later begins at once if leading, never after the stop', () => {
    // Leadership as Raft signals it, driven by hand: the duty only looks at isLeaderReady().
    const listeners = new Map<string, () => void>();
    let ready = false;
    const raft = {
      on: (ev: string, f: () => void) => void listeners.set(ev, f),
      off: (ev: string) => void listeners.delete(ev),
      isLeaderReady: () => ready,
    } as unknown as ConstructorParameters<typeof LeaderDuty>[0];
    const calls: string[] = [];
    const component = (name: string) => ({ begin: () => calls.push(`begin ${name}`), end: () => calls.push(`end ${name}`) });
    const duty = new LeaderDuty(raft, [component('a'), component('b')]);
    duty.sync();
    assert.deepEqual(calls, [], 'nothing begins before leadership');
    ready = true;
    listeners.get('leader-ready')!();
    duty.add(component('late'));
    assert.deepEqual(calls, ['begin a', 'begin b', 'begin late']);
    ready = false;
    listeners.get('leader')!();
    assert.deepEqual(calls.slice(3), ['end late', 'end b', 'end a']);
    ready = true;
    listeners.get('leader-ready')!();
    assert.deepEqual(calls.slice(6), ['begin a', 'begin b', 'begin late'], 'a new term begins them all again');
    duty.stop();
    assert.deepEqual(calls.slice(9), ['end late', 'end b', 'end a']);
    assert.equal(listeners.size, 0, 'the duty no longer listens');
    duty.add(component('after'));
    assert.equal(calls.length, 12, 'nothing begins after the stop');
  });
});
