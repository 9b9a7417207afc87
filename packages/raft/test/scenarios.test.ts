// Deterministic scenario tests of the Raft core, in the spirit of MIT 6.824's Raft lab tests,
// on the in-memory cluster of test/sim/cluster.ts (simulated disks, drivers and network; the
// SafetyChecker watches every run). Time is counted in ticks: one round = every live node ticks
// once, then the network delivers until it is quiet.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ConfChangeType, MessageType, Role, type Message, type NodeId } from '../src/core/types.js';
import {
  Cluster,
  addrOf,
  confIds,
  isLearner,
  isVoter,
  type ClusterOptions,
  type NetOpts,
  type ProposeResult,
} from './sim/cluster.js';

const ELECTION = 10;

function ids(n: number): NodeId[] {
  return Array.from({ length: n }, (_, i) => `n${i + 1}`);
}

function mk(n: number, opts: Partial<ClusterOptions> = {}): Cluster {
  return new Cluster({ voters: ids(n), seed: 7, ...opts, config: { electionTicks: ELECTION, heartbeatTicks: 1, ...opts.config } });
}

function st(c: Cluster, id: NodeId) {
  return c.core(id).status();
}

function refusal(r: ProposeResult): string {
  return r.ok ? 'ok' : r.code;
}

/** Live nodes that are neither `but` nor down. */
function others(c: Cluster, but: NodeId): NodeId[] {
  return c.alive().map((n) => n.id).filter((id) => id !== but);
}

/** Every live node that applied `cmd` did so at the same index; returns how many did. */
function appliedBy(c: Cluster, cmd: string): NodeId[] {
  return c.alive().filter((n) => n.sm!.cmds.has(cmd)).map((n) => n.id);
}

/** Runs rounds until `cond` holds; fails after maxTicks. */
function until(c: Cluster, cond: () => boolean, maxTicks: number, what: string, net: NetOpts = {}): number {
  c.flush(net);
  for (let t = 0; t <= maxTicks; t++) {
    if (cond()) return t;
    c.tickAll();
    c.flush(net);
  }
  assert.fail(`${what}: not within ${maxTicks} ticks: ${c.describe()}`);
}

/** Asserts that all live nodes converged: same applied index and state. */
function assertConverged(c: Cluster): void {
  const nodes = c.alive();
  const a = nodes[0]!.sm!;
  for (const n of nodes) {
    assert.equal(n.sm!.applied, a.applied, `applied differs: ${c.describe()}`);
    assert.equal(n.sm!.digest, a.digest, `${n.id} applied a different history`);
  }
}

describe('elections', () => {
  test('initial election: one leader, all agree, and it stays without failures', () => {
    for (const n of [3, 5]) {
      const c = mk(n);
      const l = c.waitLeader(3 * ELECTION);
      const term = st(c, l).term;
      assert.ok(term >= 2, 'the first election happens in a term after the bootstrap term 1');
      for (const id of c.ids()) {
        assert.equal(st(c, id).leader, l, `${id} knows the leader`);
        assert.equal(st(c, id).term, term);
      }
      c.run(10 * ELECTION);
      assert.equal(c.stableLeader(), l, 'leader changed without failures');
      assert.equal(st(c, l).term, term, 'term changed without failures');
      assert.equal(c.leaders().length, 1);
    }
  });

  test('re-election after the leader is partitioned away, and the old leader rejoining', () => {
    const c = mk(3);
    const l1 = c.waitLeader(3 * ELECTION);
    c.one('a', 3);
    c.disconnect(l1);
    const l2 = c.waitLeader(4 * ELECTION);
    assert.notEqual(l2, l1);
    c.one('b', 2);
    // The old leader rejoins: it must step down and the new leader keep its place.
    c.connect(l1);
    c.run(3 * ELECTION);
    assert.equal(c.stableLeader(), l2);
    assert.equal(st(c, l1).role, Role.Follower);
    c.one('c', 3);

    // No quorum, no leader.
    const [x, y] = others(c, l2);
    c.disconnect(l2);
    c.disconnect(x!);
    c.run(6 * ELECTION);
    assert.equal(c.stableLeader(), undefined, 'a leader without a quorum');
    // A quorum again: a leader is elected.
    c.connect(x!);
    const l3 = c.waitLeader(6 * ELECTION);
    assert.ok(l3 === x || l3 === y);
    c.connect(l2);
    c.one('d', 3);
    assertConverged(c);
  });

  test('re-election after the leader crashes, and its restart', () => {
    const c = mk(5);
    const l1 = c.waitLeader(3 * ELECTION);
    c.one('a', 5);
    c.crash(l1);
    const l2 = c.waitLeader(4 * ELECTION);
    assert.notEqual(l2, l1);
    c.one('b', 4);
    c.crash(l2);
    const l3 = c.waitLeader(4 * ELECTION);
    c.one('c', 3);
    c.start(l1);
    c.start(l2);
    c.one('d', 5);
    assert.equal(c.stableLeader(), l3);
    assertConverged(c);
  });
});

describe('agreement', () => {
  test('no commit without a quorum', () => {
    const c = mk(5);
    c.waitLeader(3 * ELECTION);
    c.one('a', 5);
    const l = c.stableLeader()!;
    const followers = others(c, l);
    for (const f of followers.slice(0, 3)) c.disconnect(f);
    const commitBefore = st(c, l).commit;
    const r = c.propose(l, 'lonely');
    assert.ok(r.ok);
    c.run(5 * ELECTION);
    assert.equal(appliedBy(c, 'lonely').length, 0, 'applied without a quorum');
    assert.equal(st(c, l).commit, commitBefore, 'commit index moved without a quorum');
    assert.ok(st(c, l).lastIndex >= r.index);
    for (const f of followers) c.connect(f);
    c.one('b', 5);
    assertConverged(c);
  });

  test('agreement after a disconnected follower rejoins', () => {
    const c = mk(3);
    const l = c.waitLeader(3 * ELECTION);
    c.one('101', 3);
    const f = others(c, l)[0]!;
    c.disconnect(f);
    for (const v of ['102', '103', '104', '105']) c.one(v, 2);
    c.run(2 * ELECTION);
    c.connect(f);
    c.one('106', 3);
    until(c, () => c.node(f).sm!.applied === c.node(l).sm!.applied, 3 * ELECTION, 'follower catches up');
    for (const v of ['101', '102', '103', '104', '105', '106'])
      assert.equal(c.node(f).sm!.cmds.get(v), c.node(l).sm!.cmds.get(v), `${v} at the same index`);
    assertConverged(c);
  });

  for (const maxInflight of [1, 4, 256]) {
    test(`a lost App is retransmitted without new proposals (maxInflight ${maxInflight})`, () => {
      const c = mk(3, { config: { maxInflight } });
      const l = c.waitLeader(3 * ELECTION);
      c.one('a', 3);
      c.run(2);
      const f = others(c, l)[0]!;
      // The App carrying 'b' to f is lost (the other follower acknowledges it: it commits).
      c.cut.add(`${l}>${f}`);
      assert.ok(c.propose(l, 'b').ok);
      c.flush();
      c.cut.delete(`${l}>${f}`);
      // Heartbeats go on; nothing else is proposed. f must still get 'b'.
      until(c, () => c.node(f).sm!.cmds.has('b'), 5 * ELECTION, `${f} receives the entry whose App was lost`);
    });
  }

  test('fast backup of divergent logs: rejections are far fewer than divergent entries', (t) => {
    const c = mk(5);
    c.waitLeader(3 * ELECTION);
    c.one('start', 5);
    const l1 = c.stableLeader()!;
    const [f1, a, b, d] = others(c, l1) as [NodeId, NodeId, NodeId, NodeId];
    // The old leader keeps one follower and takes 50 proposals that can never commit.
    c.partition([[l1, f1], [a, b, d]]);
    const DIVERGENT = 50;
    for (let i = 0; i < DIVERGENT; i++) assert.ok(c.propose(l1, `lost${i}`).ok);
    c.run(3);
    assert.ok(st(c, f1).lastIndex >= st(c, a).lastIndex + DIVERGENT, 'the minority holds the divergent entries');
    // The majority elects a leader and commits 50 other entries.
    c.run(4 * ELECTION);
    const l2 = c.stableLeader();
    assert.ok(l2 && [a, b, d].includes(l2), 'the majority elects a leader');
    for (let i = 0; i < DIVERGENT; i++) assert.ok(c.propose(l2, `won${i}`).ok);
    c.run(3);
    // Hand leadership to another member of the majority: it starts probing the old group from the
    // end of its (longer) log, beyond the point of divergence, so it has to back up.
    const l3 = [a, b, d].find((id) => id !== l2)!;
    assert.ok(c.transfer(l2, l3).ok);
    until(c, () => c.stableLeader() === l3, 2 * ELECTION, 'transfer');
    // The old group rejoins: its divergent suffix must be replaced; count the rejections it sends.
    let rejections = 0;
    c.onSend = (m: Message) => {
      if (m.type === MessageType.AppResp && m.reject) rejections++;
    };
    c.heal();
    c.one('end', 5);
    until(c, () => c.alive().every((n) => n.sm!.applied === c.node(l3).sm!.applied), 3 * ELECTION, 'convergence');
    c.onSend = undefined;
    for (const id of [l1, f1]) {
      assert.equal(c.node(id).sm!.cmds.has('lost0'), false);
      assert.ok(c.node(id).sm!.cmds.has(`won${DIVERGENT - 1}`));
    }
    t.diagnostic(`${rejections} rejections for 2 x ${DIVERGENT} divergent entries`);
    assert.ok(rejections >= 2, 'the leader did not have to back up: the test is not meaningful');
    assert.ok(
      rejections <= 6,
      `${rejections} AppResp rejections to replace ${2 * DIVERGENT} divergent entries on 2 followers (expected a few with conflict hints)`,
    );
    assertConverged(c);
  });

  test('6.824 TestBackup: the leader backs up quickly over incorrect follower logs (several terms)', (t) => {
    const c = mk(5);
    c.waitLeader(3 * ELECTION);
    c.one('start', 5);
    const l1 = c.stableLeader()!;
    const o = others(c, l1);
    // 1. The leader and one follower are partitioned away and take 50 commands that can't commit.
    c.partition([[l1, o[0]!], [o[1]!, o[2]!, o[3]!]]);
    for (let i = 0; i < 50; i++) assert.ok(c.propose(l1, `x${i}`).ok);
    c.run(1);
    // 2. The other three elect a leader and commit 50 commands.
    c.run(4 * ELECTION);
    const l2 = c.stableLeader()!;
    assert.ok([o[1], o[2], o[3]].includes(l2));
    for (let i = 0; i < 50; i++) c.one(`y${i}`, 3);
    // 3. That leader and one of its followers are cut off and take 50 commands that can't commit.
    const rest = [o[1]!, o[2]!, o[3]!].filter((id) => id !== l2);
    const other = rest[0]!;
    c.partition([[l2, rest[1]!], [other, l1, o[0]!]]);
    for (let i = 0; i < 50; i++) assert.ok(c.propose(l2, `z${i}`).ok);
    c.run(1);
    // 4. The first group comes back with `other`: they elect a leader and commit 50 commands,
    //    replacing the 50 divergent entries of l1 and o[0].
    let rejections = 0;
    c.onSend = (m: Message) => {
      if (m.type === MessageType.AppResp && m.reject) rejections++;
    };
    c.run(4 * ELECTION);
    const l3 = c.stableLeader()!;
    assert.ok([other, l1, o[0]].includes(l3));
    for (let i = 0; i < 50; i++) c.one(`w${i}`, 3);
    // 5. Everyone: the second group's 50 divergent entries are replaced too.
    c.heal();
    c.one('final', 5);
    until(c, () => c.alive().every((n) => n.sm!.applied === c.node(c.stableLeader()!).sm!.applied), 3 * ELECTION, 'converge');
    c.onSend = undefined;
    for (const n of c.alive()) {
      assert.ok(!n.sm!.cmds.has('x0') && !n.sm!.cmds.has('z0'), `${n.id} applied an uncommitted divergent entry`);
      assert.ok(n.sm!.cmds.has('y49') && n.sm!.cmds.has('w49'));
    }
    t.diagnostic(`${rejections} rejections for 4 x 50 divergent entries`);
    assert.ok(rejections >= 2, 'the leaders did not have to back up: the test is not meaningful');
    assert.ok(rejections <= 12, `${rejections} AppResp rejections to replace 4 x 50 divergent entries`);
    assertConverged(c);
  });
});

describe('persistence', () => {
  for (const threshold of [Infinity, 4]) {
    test(`state survives full-cluster and partial restarts (snapshot threshold ${threshold})`, () => {
      const c = mk(3, { snapshotThreshold: threshold });
      c.waitLeader(3 * ELECTION);
      c.one('p1', 3);
      const term1 = st(c, c.stableLeader()!).term;
      for (const id of c.ids()) c.crash(id);
      for (const id of c.ids()) c.start(id);
      for (const id of c.ids()) {
        assert.ok(st(c, id).term >= term1, 'term persisted');
        assert.ok(c.node(id).sm!.cmds.has('p1'), `${id} rebuilt its state machine`);
      }
      c.one('p2', 3);
      const l = c.stableLeader()!;
      c.restart(l);
      c.one('p3', 3);
      const f = others(c, c.stableLeader()!)[0]!;
      c.crash(f);
      for (let i = 0; i < 10; i++) c.one(`q${i}`, 2);
      c.start(f);
      c.one('p4', 3);
      for (const id of c.ids()) c.crash(id);
      for (const id of c.ids()) c.start(id);
      c.one('p5', 3);
      until(c, () => c.alive().every((n) => n.sm!.applied === c.node(c.stableLeader()!).sm!.applied), 3 * ELECTION, 'converge');
      for (const n of c.alive())
        for (const v of ['p1', 'p2', 'p3', 'p4', 'p5', 'q9']) assert.ok(n.sm!.cmds.has(v), `${n.id} has ${v}`);
      assertConverged(c);
      if (threshold !== Infinity) assert.ok(c.stats.compactions > 0);
    });
  }

  test("Figure 8 of the Raft paper, step by step: an old term's entry replicated on a majority is not committed", () => {
    // One entry per App, so that replication can be stopped between two entries.
    const c = mk(5, { config: { maxMsgBytes: 1 } });
    const [s1, s2, s3, s4, s5] = ids(5) as [NodeId, NodeId, NodeId, NodeId, NodeId];
    c.campaign(s1);
    c.flush();
    assert.equal(c.stableLeader(), s1);
    c.one('base', 5);
    c.run(2);
    const cutFrom = (from: NodeId, tos: NodeId[]): void => tos.forEach((to) => c.cut.add(`${from}>${to}`));
    const deliverWhile = (cond: () => boolean): void => {
      for (let k = 0; k < 10_000 && c.pool.length > 0 && cond(); k++) c.deliver(0);
    };
    // (a) s1, leader, replicates entry i (term T1) to s2 only, then crashes.
    cutFrom(s1, [s3, s4, s5]);
    const x = c.propose(s1, 'x');
    assert.ok(x.ok);
    const i = x.index;
    c.flush();
    assert.equal(c.core(s2).termAt(i), x.term);
    c.crash(s1);
    c.heal();
    // (b) s5 is elected with s3's and s4's votes, appends an entry at i in its term, and crashes
    //     before replicating it.
    c.campaign(s5);
    deliverWhile(() => st(c, s5).role !== Role.Leader);
    assert.equal(st(c, s5).role, Role.Leader);
    const t2 = st(c, s5).term;
    assert.equal(c.core(s5).termAt(i), t2);
    c.disconnect(s5);
    c.flush();
    c.crash(s5);
    // (c) s1 restarts, is elected (term T3), and replicates entry i (term T1) to s3: i is now on a
    //     majority (s1, s2, s3), but its own term's entry i+1 is not (s3 gets no more from s1).
    c.start(s1);
    cutFrom(s1, [s4, s5]);
    for (let k = 0; k < 5 && st(c, s1).role !== Role.Leader; k++) {
      c.campaign(s1);
      deliverWhile(() => st(c, s1).role !== Role.Leader);
    }
    assert.equal(st(c, s1).role, Role.Leader);
    for (let k = 0; k < 50 && c.core(s3).termAt(i) !== x.term; k++) {
      c.tick(s1);
      deliverWhile(() => c.core(s3).termAt(i) !== x.term);
    }
    assert.equal(c.core(s3).termAt(i), x.term, 's3 got entry i from s1');
    cutFrom(s1, [s3]);
    assert.notEqual(c.core(s3).termAt(i + 1), st(c, s1).term, "s3 must not have s1's own entry yet");
    c.flush();
    c.run(3);
    // The leader must not count replicas of an entry of an older term: i is not committed.
    assert.ok(st(c, s1).commit < i, `s1 committed index ${i} (term ${x.term}) by counting replicas in term ${st(c, s1).term}`);
    // (d) s1 crashes; s5 comes back and is elected with s3's and s4's votes: it overwrites i.
    c.crash(s1);
    c.heal();
    c.disconnect(s1);
    c.start(s5);
    for (let k = 0; k < 5 && st(c, s5).role !== Role.Leader; k++) {
      c.campaign(s5);
      c.flush();
    }
    assert.equal(st(c, s5).role, Role.Leader);
    c.one('after', 4);
    assert.equal(c.core(s3).termAt(i), t2, "s5's entry replaced x at index i");
    // Everyone converges; nobody ever applied x (the checker would have thrown on divergence).
    c.connect(s1);
    c.start(s1);
    c.one('final', 5);
    for (const n of c.alive()) assert.ok(!n.sm!.cmds.has('x'));
    assertConverged(c);
  });

  for (const unreliable of [false, true]) {
    test(`Figure 8: crashing leaders at random moments (${unreliable ? 'unreliable' : 'reliable'} network)`, (t) => {
      const c = mk(5, { seed: unreliable ? 88 : 8 });
      const rng = c.rng;
      const net: NetOpts = unreliable ? { drop: 0.1, delay: 0.3, reorder: true, dup: 0.05 } : {};
      c.waitLeader(3 * ELECTION);
      c.one('start', 5);
      let up = 5;
      let seq = 0;
      for (let iter = 0; iter < 1000; iter++) {
        let leader: NodeId | undefined;
        for (const n of c.alive()) {
          if (n.core!.status().role === Role.Leader && c.propose(n.id, `f${++seq}`).ok) leader = n.id;
        }
        // Mostly a short time, sometimes a long one.
        c.run(rng.chance(0.1) ? rng.int(ELECTION * 2) : rng.int(2), net);
        if (leader !== undefined && c.node(leader).alive) {
          c.crash(leader);
          up--;
        }
        if (up < 3) {
          const down = c.ids().filter((id) => !c.node(id).alive);
          c.start(rng.pick(down));
          up++;
        }
      }
      for (const id of c.ids()) if (!c.node(id).alive) c.start(id);
      c.clearNetwork();
      c.one('final', 5, 30 * ELECTION);
      until(c, () => c.alive().every((n) => n.sm!.applied === c.node(c.stableLeader()!).sm!.applied), 3 * ELECTION, 'converge');
      assertConverged(c);
      t.diagnostic(`${c.checker.leaders.size} leaders, ${c.checker.acked.size} proposals acknowledged`);
      assert.ok(c.checker.leaders.size >= 15, `only ${c.checker.leaders.size} leaders`);
    });
  }

  for (const unreliable of [false, true]) {
    test(`churn: random crashes, restarts and disconnections under load (${unreliable ? 'unreliable' : 'reliable'})`, () => {
      const c = mk(5, { seed: unreliable ? 99 : 9, snapshotThreshold: 10 });
      const rng = c.rng;
      const net: NetOpts = unreliable ? { drop: 0.1, delay: 0.2, reorder: true, dup: 0.05 } : {};
      c.waitLeader(3 * ELECTION);
      let seq = 0;
      for (let iter = 0; iter < 300; iter++) {
        for (const l of c.leaders()) c.propose(l.id, `c${++seq}`, `k${seq % 7}`);
        const id = rng.pick(c.ids());
        const r = rng.next();
        if (r < 0.2) c.disconnect(id);
        else if (r < 0.4 && c.node(id).alive) c.crash(id);
        else if (r < 0.6 && !c.node(id).alive) c.start(id);
        else if (r < 0.8) c.connect(id);
        c.run(rng.int(3), net);
      }
      c.heal();
      for (const id of c.ids()) if (!c.node(id).alive) c.start(id);
      c.one('final', 5, 30 * ELECTION);
      until(c, () => c.alive().every((n) => n.sm!.applied === c.node(c.stableLeader()!).sm!.applied), 3 * ELECTION, 'converge');
      assertConverged(c);
      // Every acknowledged proposal survived on every node.
      for (const n of c.alive())
        for (const [cmd, idx] of c.checker.acked) assert.equal(n.sm!.cmds.get(cmd), idx, `${n.id} lost ${cmd}`);
      assert.ok(c.checker.acked.size > 50, `only ${c.checker.acked.size} proposals made it`);
    });
  }
});

describe('snapshots', () => {
  test('a lagging follower is sent a snapshot, installs it and catches up', () => {
    const c = mk(3, { snapshotThreshold: 5 });
    const l = c.waitLeader(3 * ELECTION);
    c.one('a', 3);
    const f = others(c, l)[0]!;
    c.disconnect(f);
    for (let i = 0; i < 40; i++) c.one(`s${i}`, 2);
    const leaderSnap = st(c, c.stableLeader()!).snapshotIndex;
    assert.ok(leaderSnap > st(c, f).lastIndex, `leader compacted (${leaderSnap}) past the follower's log (${st(c, f).lastIndex})`);
    let snapsToF = 0;
    c.onDeliver = (m) => {
      if (m.type === MessageType.Snap && m.to === f) snapsToF++;
    };
    c.connect(f);
    c.one('b', 3);
    until(c, () => c.node(f).sm!.applied === c.node(c.stableLeader()!).sm!.applied, 3 * ELECTION, 'follower catches up');
    assert.ok(snapsToF >= 1, 'the follower received a Snap message');
    assert.ok(st(c, f).snapshotIndex >= leaderSnap, 'the follower installed the snapshot');
    for (let i = 0; i < 40; i++) assert.ok(c.node(f).sm!.cmds.has(`s${i}`));
    c.onDeliver = undefined;
    // And it is a full member again: with the other follower down, it forms the quorum.
    const other = others(c, c.stableLeader()!).find((id) => id !== f)!;
    c.crash(other);
    c.one('c', 2);
    assert.ok(c.node(f).sm!.cmds.has('c'));
  });

  test('a restarted leader can still send its snapshot (RaftInitialState.snapshot)', () => {
    const c = mk(3, { snapshotThreshold: 5 });
    const l = c.waitLeader(3 * ELECTION);
    const f = others(c, l)[0]!;
    c.disconnect(f);
    for (let i = 0; i < 20; i++) c.one(`s${i}`, 2);
    for (const id of c.ids()) if (id !== f) c.restart(id);
    c.waitLeader(4 * ELECTION);
    c.connect(f);
    c.one('after', 3);
    until(c, () => c.node(f).sm!.cmds.has('s19'), 3 * ELECTION, 'follower catches up from a snapshot');
  });
});

describe('membership', () => {
  test('add a learner under load, it catches up, promote it, then remove the leader', () => {
    const c = mk(3, { snapshotThreshold: 8 });
    c.waitLeader(3 * ELECTION);
    let seq = 0;
    const load = (n = 1): void => {
      for (let i = 0; i < n; i++) for (const l of c.leaders()) c.propose(l.id, `m${++seq}`);
    };
    for (let i = 0; i < 20; i++) c.one(`pre${i}`, 3);
    const leader = (): NodeId => c.waitLeader(5 * ELECTION);

    // Add n4 as a learner.
    let r = c.proposeConfChange(leader(), { type: ConfChangeType.AddLearner, nodeId: 'n4', addr: addrOf('n4') });
    assert.ok(r.ok, refusal(r));
    until(
      c,
      () => {
        load();
        return c.alive().every((n) => isLearner(n.sm!.conf, 'n4'));
      },
      5 * ELECTION,
      'n4 is a learner everywhere',
    );
    assert.ok(isLearner(c.core('n4').conf(), 'n4'));
    // It catches up (the leader compacted: this may take a snapshot) while load continues.
    until(
      c,
      () => {
        load();
        return c.node('n4').sm!.applied >= c.node(leader()).sm!.applied - 2;
      },
      5 * ELECTION,
      'n4 catches up',
    );
    assert.equal(st(c, 'n4').role, Role.Follower);
    // A learner never campaigns.
    c.campaign('n4');
    assert.equal(st(c, 'n4').role, Role.Follower);

    // Promote it.
    r = c.proposeConfChange(leader(), { type: ConfChangeType.PromoteLearner, nodeId: 'n4', addr: addrOf('n4') });
    assert.ok(r.ok, refusal(r));
    until(
      c,
      () => {
        load();
        return c.alive().every((n) => isVoter(n.sm!.conf, 'n4'));
      },
      5 * ELECTION,
      'n4 is a voter everywhere',
    );
    assert.deepEqual(confIds(c.core('n1').conf()).voters, ['n1', 'n2', 'n3', 'n4']);
    c.one('with-n4', 4);

    // Remove the leader itself.
    const old = leader();
    r = c.proposeConfChange(old, { type: ConfChangeType.RemoveNode, nodeId: old, addr: addrOf(old) });
    assert.ok(r.ok, refusal(r));
    until(c, () => c.node(old).selfRemoved, 5 * ELECTION, 'the removed leader shuts down');
    const nl = leader();
    assert.notEqual(nl, old);
    assert.deepEqual(
      confIds(c.core(nl).conf()).voters,
      ['n1', 'n2', 'n3', 'n4'].filter((id) => id !== old),
    );
    c.one('after-remove', 3);
    // Quorum is now 2 of 3: one more crash is survivable.
    const victim = others(c, nl)[0]!;
    c.crash(victim);
    c.one('two-of-three', 2);
    c.start(victim);
    c.one('end', 3);
    assertConverged(c);
  });

  test('remove a follower and a learner under load; the cluster keeps committing', () => {
    const c = mk(5);
    const l = c.waitLeader(3 * ELECTION);
    c.one('a', 5);
    const f = others(c, l)[0]!;
    let r = c.proposeConfChange(l, { type: ConfChangeType.RemoveNode, nodeId: f, addr: addrOf(f) });
    assert.ok(r.ok, refusal(r));
    for (let i = 0; i < 5; i++) c.propose(l, `x${i}`);
    until(c, () => c.node(f).selfRemoved, 3 * ELECTION, 'the removed follower shuts down');
    c.one('b', 4);
    assert.deepEqual(confIds(c.core(l).conf()).voters.length, 4);
    // Learner added then removed.
    r = c.proposeConfChange(l, { type: ConfChangeType.AddLearner, nodeId: 'n9', addr: addrOf('n9') });
    assert.ok(r.ok, refusal(r));
    until(c, () => c.node('n9').sm!.applied >= c.node(l).sm!.applied, 3 * ELECTION, 'learner catches up');
    r = c.proposeConfChange(l, { type: ConfChangeType.RemoveNode, nodeId: 'n9', addr: addrOf('n9') });
    assert.ok(r.ok, refusal(r));
    until(c, () => c.node('n9').selfRemoved, 3 * ELECTION, 'the removed learner shuts down');
    c.one('c', 4);
    assertConverged(c);
  });

  test('a new leader refuses a conf change until it committed an entry of its term; one at a time', () => {
    const c = mk(3);
    const l1 = c.waitLeader(3 * ELECTION);
    c.one('a', 3);
    const f = others(c, l1)[0]!;
    // f wins an election; stop right when it becomes leader, before its no-op commits.
    c.campaign(f);
    for (let k = 0; k < 1000 && st(c, f).role !== Role.Leader; k++) {
      assert.ok(c.pool.length > 0, `f did not win: ${c.describe()}`);
      c.deliver(0);
    }
    assert.equal(st(c, f).role, Role.Leader);
    const cc = { type: ConfChangeType.AddLearner, nodeId: 'n4', addr: addrOf('n4') };
    let r = c.proposeConfChange(f, cc);
    assert.equal(refusal(r), 'no-entry-in-term');
    c.flush();
    r = c.proposeConfChange(f, cc);
    assert.ok(r.ok, refusal(r));
    const r2 = c.proposeConfChange(f, { type: ConfChangeType.AddLearner, nodeId: 'n5', addr: addrOf('n5') });
    assert.equal(refusal(r2), 'conf-change-pending');
    c.flush();
    c.run(2);
    const r3 = c.proposeConfChange(f, { type: ConfChangeType.AddLearner, nodeId: 'n5', addr: addrOf('n5') });
    assert.ok(r3.ok, refusal(r3));
    // Invalid ones.
    c.run(2);
    assert.equal(refusal(c.proposeConfChange(f, { type: ConfChangeType.PromoteLearner, nodeId: l1, addr: '' })), 'invalid-conf-change');
    assert.equal(refusal(c.proposeConfChange(f, { type: ConfChangeType.RemoveNode, nodeId: 'nope', addr: '' })), 'invalid-conf-change');
    assert.equal(refusal(c.proposeConfChange(l1, cc)), 'not-leader');
  });
});

describe('PreVote and CheckQuorum', () => {
  for (const checkQuorum of [false, true]) {
    test(`PreVote: a partitioned follower does not bump its term, nor depose the leader on rejoining (checkQuorum ${checkQuorum})`, () => {
      const c = mk(3, { config: { preVote: true, checkQuorum } });
      const l = c.waitLeader(3 * ELECTION);
      c.one('a', 3);
      const term = st(c, l).term;
      const f = others(c, l)[0]!;
      c.disconnect(f);
      for (let i = 0; i < 5; i++) c.one(`b${i}`, 2);
      c.run(10 * ELECTION);
      assert.equal(st(c, f).term, term, 'the isolated follower bumped its term');
      assert.notEqual(st(c, f).role, Role.Candidate);
      c.connect(f);
      // Worst case: its election timer fires right as it rejoins.
      c.campaign(f);
      c.run(3 * ELECTION);
      assert.equal(c.stableLeader(), l, 'the leader was deposed');
      for (const id of c.ids()) assert.equal(st(c, id).term, term, `${id}'s term changed`);
      c.one('c', 3);
    });
  }

  for (const checkQuorum of [false, true]) {
    test(`PreVote: a rejoining follower with an up-to-date log (idle cluster) does not depose the leader (checkQuorum ${checkQuorum})`, () => {
      const c = mk(3, { config: { preVote: true, checkQuorum } });
      const l = c.waitLeader(3 * ELECTION);
      c.one('a', 3);
      c.run(2);
      const term = st(c, l).term;
      const f = others(c, l)[0]!;
      c.disconnect(f);
      c.run(10 * ELECTION);
      assert.equal(st(c, f).term, term);
      // Worst case: it rejoins and its timer fires before it hears from the leader (the leader's
      // messages to it are still lost for a moment), so its pre-vote round completes first.
      c.cut.add(`${l}>${f}`);
      c.connect(f);
      c.campaign(f);
      c.run(2);
      c.cut.delete(`${l}>${f}`);
      c.run(3 * ELECTION);
      assert.equal(c.stableLeader(), l, `the leader was deposed: ${c.describe()}`);
      for (const id of c.ids()) assert.equal(st(c, id).term, term, `${id}'s term changed`);
    });
  }

  test('without PreVote, the same partitioned follower does bump its term (the test above is meaningful)', () => {
    const c = mk(3, { config: { preVote: false } });
    const l = c.waitLeader(3 * ELECTION);
    const term = st(c, l).term;
    const f = others(c, l)[0]!;
    c.disconnect(f);
    c.run(10 * ELECTION);
    assert.ok(st(c, f).term > term + 2);
  });

  test('CheckQuorum: a leader partitioned from the majority steps down', () => {
    const c = mk(5, { config: { checkQuorum: true } });
    const l = c.waitLeader(3 * ELECTION);
    c.one('a', 5);
    const [a] = others(c, l);
    c.partition([[l, a!], others(c, l).slice(1)]);
    const t = until(c, () => st(c, l).role !== Role.Leader, 3 * ELECTION, 'the isolated leader steps down');
    assert.ok(t <= 2 * ELECTION + 1, `stepped down after ${t} ticks`);
    const l2 = c.waitLeader(4 * ELECTION);
    assert.notEqual(l2, l);
    c.heal();
    c.one('b', 5);
  });

  test('without CheckQuorum, the partitioned leader stays leader (the test above is meaningful)', () => {
    const c = mk(5, { config: { checkQuorum: false } });
    const l = c.waitLeader(3 * ELECTION);
    c.disconnect(l);
    c.run(5 * ELECTION);
    assert.equal(st(c, l).role, Role.Leader);
  });
});

describe('leadership transfer', () => {
  test('transfer to an up-to-date follower', () => {
    const c = mk(3);
    const l = c.waitLeader(3 * ELECTION);
    c.one('a', 3);
    const term = st(c, l).term;
    const to = others(c, l)[1]!;
    const r = c.transfer(l, to);
    assert.ok(r.ok, refusal(r));
    c.flush();
    assert.equal(st(c, to).role, Role.Leader, `transfer did not complete: ${c.describe()}`);
    assert.equal(st(c, to).term, term + 1);
    c.run(2);
    assert.equal(c.stableLeader(), to);
    c.one('b', 3);
  });

  test('transfer to a lagging follower: it is caught up first; proposals wait; PreVote/CheckQuorum do not block it', () => {
    const c = mk(3, { config: { preVote: true, checkQuorum: true } });
    const l = c.waitLeader(3 * ELECTION);
    const to = others(c, l)[0]!;
    c.disconnect(to);
    for (let i = 0; i < 10; i++) c.one(`x${i}`, 2);
    c.connect(to);
    const r = c.transfer(l, to);
    assert.ok(r.ok, refusal(r));
    assert.equal(refusal(c.propose(l, 'during')), 'transfer-in-progress');
    until(c, () => c.stableLeader() === to, 2 * ELECTION, 'transfer to the lagging follower');
    assert.ok(c.node(to).sm!.cmds.has('x9'));
    c.one('after', 3);
  });

  test('a transfer to an unreachable node is abandoned after an election timeout', () => {
    const c = mk(3);
    const l = c.waitLeader(3 * ELECTION);
    c.one('a', 3);
    const to = others(c, l)[0]!;
    c.disconnect(to);
    assert.ok(c.transfer(l, to).ok);
    assert.equal(refusal(c.propose(l, 'p')), 'transfer-in-progress');
    c.run(ELECTION + 1);
    assert.equal(st(c, l).role, Role.Leader);
    assert.ok(c.propose(l, 'p2').ok, 'proposals accepted again');
    c.connect(to);
    c.one('b', 3);
  });
});

describe('ReadIndex', () => {
  test('a read on the leader is answered at or after the commit index and served once applied', () => {
    const c = mk(3);
    const l = c.waitLeader(3 * ELECTION);
    const w = c.one('w', 3);
    const { ctx, res } = c.readIndex(l);
    assert.ok(res.ok);
    c.flush();
    const rs = c.readLog.find((r) => r.ctx === ctx);
    assert.ok(rs, 'no ReadState');
    assert.equal(rs.node, l);
    assert.ok(rs.index >= w.index);
    assert.ok(c.checker.readsServed >= 1);
  });

  test('a deposed leader never answers a read once a new leader committed something', () => {
    for (const checkQuorum of [false, true]) {
      const c = mk(5, { config: { checkQuorum } });
      const l = c.waitLeader(3 * ELECTION);
      c.one('a', 5);
      c.disconnect(l);
      // A read issued right when the leader is cut off: it can't be confirmed by a quorum.
      const asked: string[] = [];
      const r1 = c.readIndex(l);
      assert.ok(r1.res.ok);
      asked.push(r1.ctx);
      const l2 = c.waitLeader(4 * ELECTION);
      const w = c.one('w', 4);
      // Without CheckQuorum the old leader still believes it leads: ask it again.
      if (st(c, l).role === Role.Leader) {
        const r2 = c.readIndex(l);
        assert.ok(r2.res.ok);
        asked.push(r2.ctx);
      } else assert.ok(checkQuorum, 'only CheckQuorum makes the isolated leader step down');
      c.run(3 * ELECTION);
      c.connect(l);
      c.run(3 * ELECTION);
      assert.notEqual(st(c, l).role, Role.Leader);
      for (const ctx of asked) assert.equal(c.readLog.find((r) => r.ctx === ctx), undefined, 'the deposed leader answered a read');
      // The new leader answers.
      const { ctx, res } = c.readIndex(l2);
      assert.ok(res.ok);
      c.flush();
      const rs = c.readLog.find((r) => r.ctx === ctx);
      assert.ok(rs && rs.index >= w.index);
    }
  });

  test('a new leader answers reads only after committing an entry of its term', () => {
    const c = mk(3);
    const l1 = c.waitLeader(3 * ELECTION);
    c.one('a', 3);
    const f = others(c, l1)[0]!;
    c.campaign(f);
    for (let k = 0; k < 1000 && st(c, f).role !== Role.Leader; k++) c.deliver(0);
    assert.equal(st(c, f).role, Role.Leader);
    const { ctx, res } = c.readIndex(f);
    assert.ok(res.ok);
    const noop = st(c, f).lastIndex;
    c.flush();
    const rs = c.readLog.find((r) => r.ctx === ctx);
    assert.ok(rs, 'read never answered');
    assert.ok(rs.index >= noop, `read answered at ${rs.index}, before the leader's no-op at ${noop}`);
  });

  test('reads on a follower are refused (not-leader)', () => {
    const c = mk(3);
    const l = c.waitLeader(3 * ELECTION);
    const f = others(c, l)[0]!;
    const { res } = c.readIndex(f);
    assert.equal(refusal(res), 'not-leader');
    assert.equal(!res.ok && res.leader, l);
  });
});

describe('back-pressure', () => {
  test('the leader refuses proposals beyond maxUncommittedEntries and accepts again after commit', () => {
    const c = mk(3, { config: { maxUncommittedEntries: 5 } });
    const l = c.waitLeader(3 * ELECTION);
    c.one('a', 3);
    for (const f of others(c, l)) c.disconnect(f);
    let accepted = 0;
    let refused: string | undefined;
    for (let i = 0; i < 10; i++) {
      const r = c.propose(l, `b${i}`);
      if (r.ok) accepted++;
      else refused = r.code;
    }
    assert.equal(accepted, 5);
    assert.equal(refused, 'too-many-uncommitted');
    c.heal();
    c.run(3);
    assert.ok(c.propose(l, 'c').ok);
  });
});
