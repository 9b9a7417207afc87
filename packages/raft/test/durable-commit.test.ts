// RaftCore.takeDurableCommitted: what a driver may apply while a Ready's write is in flight. Three
// cores driven by hand (no timers, no disk: "persisting" a Ready is advancing it), so the test can
// hold the leader's write open while the followers acknowledge.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RaftCore, bootstrapEntries } from '../src/core/raft.js';
import { ConfChangeType, EntryType, type Entry, type Message, type NodeId, type Ready } from '../src/core/types.js';

const IDS = ['n1', 'n2', 'n3'];
const enc = new TextEncoder();
const dec = new TextDecoder();

function cluster(): Map<NodeId, RaftCore> {
  const members = IDS.map((id) => ({ id, addr: `${id}:1` }));
  const cores = new Map<NodeId, RaftCore>();
  for (const id of IDS) {
    const entries = bootstrapEntries(members);
    cores.set(
      id,
      new RaftCore(
        { id, electionTicks: 10, heartbeatTicks: 1, maxMsgBytes: 1 << 20, maxInflight: 64, preVote: true, checkQuorum: true, random: () => 0.5 },
        { hardState: { term: 1, vote: '', commit: entries.length }, snapshotMeta: { index: 0, term: 0, conf: { voters: [], learners: [] } }, entries, applied: 0 },
      ),
    );
  }
  return cores;
}

/** Runs every Ready of every core to completion (persist = advance at once) until none has one. */
function settle(cores: Map<NodeId, RaftCore>, hold?: NodeId): void {
  for (let round = 0; round < 100; round++) {
    const out: Message[] = [];
    let busy = false;
    for (const [id, c] of cores) {
      if (id === hold || !c.hasReady()) continue;
      busy = true;
      const rd = c.ready();
      out.push(...rd.eagerMessages, ...rd.messages);
      c.advance(rd);
    }
    for (const m of out) cores.get(m.to)!.step(m);
    if (!busy && out.length === 0) return;
  }
  assert.fail('the cluster did not settle');
}

const texts = (es: Entry[]) => es.filter((e) => e.type === EntryType.Normal && e.data.length > 0).map((e) => dec.decode(e.data));

describe('takeDurableCommitted', () => {
  test('a commit learned during a write hands out only what is durable, stops before a conf change, and the Ready after does not repeat it', () => {
    const cores = cluster();
    const l = cores.get('n1')!;
    settle(cores); // the bootstrap entries install the configuration
    l.campaign();
    settle(cores);
    assert.equal(l.status().leader, 'n1');

    // x, a conf change and y, durable on the leader (their Ready persisted) but not yet sent.
    assert.ok(l.propose(enc.encode('x')).ok);
    assert.ok(l.proposeConfChange({ type: ConfChangeType.AddLearner, nodeId: 'n4', addr: 'n4:1' }).ok);
    assert.ok(l.propose(enc.encode('y')).ok);
    const rd1 = l.ready();
    const held: Message[] = [...rd1.eagerMessages, ...rd1.messages];
    l.advance(rd1);
    // b: its write is in flight (ready() without advance()).
    assert.ok(l.propose(enc.encode('b')).ok);
    const rd2: Ready = l.ready();
    held.push(...rd2.eagerMessages);
    assert.deepEqual(texts(rd2.entries), ['b']);
    assert.equal(l.takeDurableCommitted().length, 0, 'nothing committed yet');

    // The followers store and acknowledge everything while the leader's write is open.
    for (const m of held) cores.get(m.to)!.step(m);
    settle(cores, 'n1');
    const bIndex = rd2.entries[0]!.index;
    assert.equal(l.status().commit, bIndex, 'the followers alone make a quorum for b');

    const early = l.takeDurableCommitted();
    assert.deepEqual(texts(early), ['x'], 'x only: the conf change goes out in a Ready, and b is not durable here yet');
    assert.equal(l.status().applied, early[early.length - 1]!.index);
    assert.equal(l.takeDurableCommitted().length, 0, 'nothing is handed out twice');

    l.advance(rd2);
    const rd3 = l.ready();
    assert.equal(rd3.committedEntries[0]!.type, EntryType.ConfChange);
    assert.deepEqual(texts(rd3.committedEntries), ['y', 'b'], 'the next Ready starts where the early hand-out stopped');
    assert.equal(rd3.committedEntries[0]!.index, early[early.length - 1]!.index + 1);
    l.advance(rd3);
    assert.equal(l.status().applied, bIndex);
  });
});
