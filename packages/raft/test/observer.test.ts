// What a RaftNode tells its observer (metrics): each proposal's duration and outcome, each disk
// write's, and the counts status() keeps for scrapes (leaders seen, the snapshot's size). One
// real node in-process: real gRPC on loopback, real LevelDB.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { RaftNode } from '../src/node.js';
import { raftServerOptions } from '../src/transport/index.js';
import { silentLogger } from '../src/logger.js';
import { KvStateMachine, encodeKv } from '../src/testing/kv.js';

const TIMINGS = { tickMs: 20, electionTicks: 10, heartbeatTicks: 2 };

function bind(server: grpc.Server): Promise<number> {
  return new Promise((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
}

async function waitFor<T>(what: string, fn: () => T | undefined | false, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const cleanup: (() => Promise<void>)[] = [];
after(async () => {
  for (const c of cleanup.reverse()) await c().catch(() => undefined);
});

async function openNode(dir: string, port: number, server: grpc.Server, observer: Parameters<typeof RaftNode.open>[0]['observer'], sm = new KvStateMachine()) {
  const addr = `127.0.0.1:${port}`;
  return RaftNode.open({ id: 'a', addr, dataDir: dir, server, stateMachine: sm, bootstrap: [{ id: 'a', addr }], timings: TIMINGS, logger: silentLogger(), observer });
}

test('proposals, disk writes, leaders seen and the snapshot size reach the observer and status()', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-observer-'));
  cleanup.push(() => rm(dir, { recursive: true, force: true }));
  const server = new grpc.Server(raftServerOptions(4 << 20));
  const port = await bind(server);
  cleanup.push(async () => server.forceShutdown());
  const proposals: { seconds: number; ok: boolean }[] = [];
  const saves: { seconds: number; synced: boolean }[] = [];
  const observer = { proposal: (seconds: number, ok: boolean) => proposals.push({ seconds, ok }), save: (seconds: number, synced: boolean) => saves.push({ seconds, synced }) };
  const node = await openNode(dir, port, server, observer);
  cleanup.push(() => node.stop());
  assert.equal(node.status().stats.snapshotBytes, 0, 'no snapshot yet');
  node.start();
  await waitFor('leadership', () => node.isLeaderReady());
  assert.equal(node.status().stats.leaderChanges, 1, 'one leader seen: itself');

  for (let i = 0; i < 5; i++) await node.propose(encodeKv({ op: 'put', key: `k${i}`, value: new Uint8Array([i]) }));
  await waitFor('five proposals told', () => proposals.length >= 5);
  assert.equal(proposals.length, 5);
  assert.ok(proposals.every((p) => p.ok && p.seconds >= 0 && p.seconds < 60), JSON.stringify(proposals));
  assert.ok(saves.some((s) => s.synced), 'entries are written with an fsync');
  assert.ok(saves.every((s) => s.seconds >= 0));

  // A proposal refused before it reaches the log is told as failed.
  await assert.rejects(node.propose(new Uint8Array(node.maxProposalBytes + 1)));
  await waitFor('the failure told', () => proposals.length === 6);
  assert.equal(proposals[5]!.ok, false);

  await node.snapshotNow();
  const size = node.status().stats.snapshotBytes;
  assert.ok(size > 0, 'the snapshot taken is measured');

  // Restarted, the node knows the size of the snapshot on its disk before it takes another.
  await node.stop();
  const again = await openNode(dir, port, server, undefined);
  cleanup.push(() => again.stop());
  assert.equal(again.status().stats.snapshotBytes, size);
});
