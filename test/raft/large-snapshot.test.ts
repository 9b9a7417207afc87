// A large snapshot (about 36 MB of state), triggered by the bytes of log since the last one, taken on the leader and installed on a member that missed
// the compacted log, across real processes: the leader stays leader throughout (nobody campaigns
// while the snapshot is encoded, written, sent in chunks and restored), and the member catches up.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ProcessCluster } from '@shoal/raft/testing';

interface Status {
  term: number;
  commit: number;
  applied: number;
  snapshotIndex: number;
}

async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('a large snapshot on three raft processes', () => {
  let c: ProcessCluster;
  before(async () => {
    // Snapshots by bytes only: 100,000 entries would never be reached here.
    c = await ProcessCluster.start({ size: 3, snapshotEntries: 100_000, snapshotBytes: 16 << 20 });
  });
  after(async () => {
    await c.stop();
  });

  test('installing ~36 MB of state on a lagging member changes no leader', async () => {
    const leader = await c.waitLeader();
    const lagging = c.members.find((m) => m !== leader)!;
    await lagging.kill();
    const value = 'x'.repeat(900_000);
    for (let i = 0; i < 40; i++) await leader.request({ cmd: 'put', key: `big-${i}`, value: `${i}:${value}`, timeoutMs: 20_000 });
    const lst = await leader.request<Status>({ cmd: 'status' });
    assert.ok(lst.snapshotIndex > 0, 'the leader compacted its log into a snapshot (by bytes)');
    const events = c.members.map((m) => m.leaderEvents.length);
    await lagging.start();
    await eventually('the lagging member to install the snapshot and catch up', async () => {
      const st = await lagging.request<Status>({ cmd: 'status' });
      return st.applied >= lst.commit && st.snapshotIndex > 0 ? st : undefined;
    });
    const got = await lagging.request<{ value: string | null }>({ cmd: 'get', key: 'big-39' });
    assert.equal(got.value?.length, value.length + 3);
    // Nobody saw a new leader or term while the snapshot moved (the restarted member only learns
    // the current one).
    const now = await leader.request<Status & { role: string }>({ cmd: 'status' });
    assert.equal(now.role, 'leader');
    assert.equal(now.term, lst.term);
    for (const [i, m] of c.members.entries()) {
      if (m === lagging) continue;
      assert.deepEqual(m.leaderEvents.slice(events[i]), [], `${m.id} saw a leader change`);
    }
  });
});
