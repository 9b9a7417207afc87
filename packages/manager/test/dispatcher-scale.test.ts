// The dispatcher with 2,000 nodes, in process: each node is a small loop that does what the agent
// does (AgentSession: first beat at a random point of the period, then the period the dispatcher
// answers; after losing its session a random wait of reconnectSpreadMs; a retry hint obeyed), on
// a clock the test moves in 10 ms steps, against a Dispatcher over a real ClusterStore whose client
// commits straight into it (every proposal recorded). What must hold at that size: a heartbeat
// writes nothing and scans nothing, beats are spread over the period, dead nodes are marked down in
// one transaction and their tasks replaced in one orchestrator pass, sessions that need a write
// are bounded and the refused come back, and a failover to another dispatcher keeps every node
// ready and writes nothing at all.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NOOP_LOGGER, ShoalError } from '@shoal/api';
import type { RaftNode } from '@shoal/raft';
import { ClusterStore, StoreClient, decodeTx, newId, type Cluster, type KindMap, type Node, type ObjectKind, type Op, type Service, type Task } from '@shoal/store';
import { HEARTBEAT_JITTER, RETRY_AFTER_DETAIL, reconnectSpreadMs } from '@shoal/types';
import { Dispatcher } from '../src/dispatcher/dispatcher.js';
import { Orchestrator } from '../src/orchestrator/orchestrator.js';
import { newTask } from '../src/orchestrator/task-ops.js';
import { T0, mkNode, mkSpec } from './fixtures.js';

const PERIOD = 1_000;
const DOWN_AFTER = 3;
const NODES = 2_000;
const STEP = 10;

/** Counts the scans of each kind (list), so a test can tell a heartbeat never walks the nodes. */
class CountingStore extends ClusterStore {
  scans = 0;
  counting = false;
  override list<K extends ObjectKind>(kind: K, filter?: (obj: KindMap[K]) => boolean): KindMap[K][] {
    if (this.counting) this.scans++;
    return super.list(kind, filter);
  }
}

function mkCluster(): Cluster {
  return {
    id: 'c1', version: 0, createdAt: T0, updatedAt: T0,
    spec: { name: 'default', heartbeatPeriodMs: PERIOD, nodeDownAfterBeats: DOWN_AFTER, taskHistoryLimit: 5, certExpiryMs: 3600_000 },
    caFingerprint: 'ab'.repeat(32), caCert: 'x', caKey: null, joinTokens: { worker: 'w', manager: 'm' }, removedNodes: [],
    removedNodeExpiry: {}, longestCertExpiryMs: 3600_000, unlockKey: null,
  };
}

/** What each node tells about itself when it opens a session (as the store already has it). */
const infoOf = (n: Node) => ({
  hostname: n.description.hostname, os: n.description.platform.os, arch: n.description.platform.arch,
  nanoCpus: n.description.resources.nanoCpus, memoryBytes: n.description.resources.memoryBytes,
  engineVersion: n.description.engineVersion, error: '', condition: '', addr: n.status.addr, meshAddr: n.status.meshAddr,
});

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Managers m1..mN over one store (a failover here is one dispatcher ending and another beginning
 * on the same data, as a new leader's replica holds it), a clock, and every proposal made.
 */
function world(opts: { nodes?: number; managers?: number; proposeMs?: number; nodeState?: Node['status']['state']; sessionLimit?: number } = {}) {
  const store = new CountingStore();
  let index = 0;
  const tx = (ops: Op[]) => store.apply(new TextEncoder().encode(JSON.stringify({ ops })), ++index);
  tx([{ op: 'create', kind: 'cluster', object: mkCluster() }]);
  const ids = Array.from({ length: opts.nodes ?? NODES }, (_, i) => `node${String(i).padStart(5, '0')}`);
  for (let i = 0; i < ids.length; i += 500) {
    tx(ids.slice(i, i + 500).map((id) => ({ op: 'create', kind: 'node', object: mkNode(id, { state: opts.nodeState ?? 'ready', cpus: 4, memoryBytes: 8 * 2 ** 30 }) }) as Op));
  }
  const proposals: Op[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  let barriers = 0;
  const client = new StoreClient(
    {
      propose: async (payload) => {
        proposals.push(decodeTx(payload).ops);
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        try {
          if (opts.proposeMs) await sleep(opts.proposeMs);
          const i = ++index;
          return { index: i, result: store.apply(payload, i) };
        } finally {
          inFlight--;
        }
      },
      readBarrier: async () => {
        barriers++;
        return index;
      },
    },
    store,
  );
  const clock = { t: 0 };
  let leader = 'm1';
  let statusCalls = 0;
  const voters = Array.from({ length: opts.managers ?? 1 }, (_, i) => ({ id: `m${i + 1}`, addr: `m${i + 1}` }));
  const raftOf = (id: string) =>
    ({
      isLeader: () => leader === id,
      leaderId: () => leader,
      leaderAddr: () => (leader ? leader : undefined),
      status: () => {
        statusCalls++;
        return { conf: { voters, learners: [] } };
      },
    }) as unknown as RaftNode;
  const dispatchers = new Map(
    voters.map((m) => [m.addr, new Dispatcher(raftOf(m.id), store, client, NOOP_LOGGER, undefined, () => clock.t, undefined, { sessionLimit: opts.sessionLimit, sweepTimer: false })]),
  );
  return {
    store, client, clock, ids, dispatchers, proposals, tx,
    get maxInFlight() { return maxInFlight; },
    get barriers() { return barriers; },
    get statusCalls() { return statusCalls; },
    setLeader: (id: string) => (leader = id),
    nodes: () => store.list('node'),
    stop: () => {
      for (const d of dispatchers.values()) d.stop();
    },
  };
}

type World = ReturnType<typeof world>;

/** One node's agent, as far as its session goes (AgentSession's timing). */
class SimNode {
  sessionId = '';
  period = PERIOD;
  next: { at: number; what: 'session' | 'beat' } | undefined = { at: 0, what: 'session' };
  dead = false;
  /** Fake times at which this node's heartbeats reached the dispatcher. */
  readonly beats: number[] = [];
  /** Fake times at which this node opened its sessions. */
  readonly opened: number[] = [];
  readonly refusals: number[] = [];
  /** Drops the connection of its long poll (its process died): set while it has one. */
  private dropConnection: (() => void) | undefined;

  constructor(
    readonly id: string,
    private readonly w: World,
    public addr: string,
    private readonly info: ReturnType<typeof infoOf>,
    /** Keeps an assignments long poll open, as the task runner does. */
    private readonly polls = false,
  ) {}

  /** The node dies: its process is killed (its connections drop) or its host goes silent. */
  die(how: 'killed' | 'silent'): void {
    this.dead = true;
    if (how === 'killed') this.dropConnection?.();
  }

  private async poll(d: Dispatcher, sessionId: string): Promise<void> {
    let known = '';
    while (!this.dead && this.sessionId === sessionId) {
      const call = { on: (_ev: 'cancelled', f: () => void) => void (this.dropConnection = f) };
      try {
        known = (await d.assignments({ nodeId: this.id, sessionId, known, waitMs: known ? 30_000 : 0 }, call)).token;
      } catch {
        return;
      }
    }
  }

  /** Does what is due at the current time (if anything). */
  act(): Promise<void> | undefined {
    const t = this.w.clock.t;
    if (this.dead || !this.next || this.next.at > t) return undefined;
    const d = this.w.dispatchers.get(this.addr)!;
    if (this.next.what === 'session') {
      this.next = undefined;
      return d.session({ nodeId: this.id, info: this.info }).then(
        (res) => {
          this.sessionId = res.sessionId;
          this.period = Number(res.heartbeatPeriodMs);
          this.opened.push(t);
          this.next = { at: t + Math.random() * this.period, what: 'beat' };
          if (this.polls) void this.poll(d, res.sessionId);
        },
        (err: unknown) => this.failed(t, err),
      );
    }
    this.next = undefined;
    // The heartbeat runs to its end within this call when it writes nothing: scans counted here
    // are the heartbeat's own.
    this.w.store.counting = true;
    let beat: ReturnType<Dispatcher['heartbeat']>;
    try {
      beat = d.heartbeat({ nodeId: this.id, sessionId: this.sessionId });
    } finally {
      this.w.store.counting = false;
    }
    return beat.then(
      (res) => {
        this.beats.push(t);
        this.period = Number(res.heartbeatPeriodMs);
        this.next = { at: t + this.period, what: 'beat' };
      },
      (err: unknown) => this.failed(t, err),
    );
  }

  /** As AgentSession: a hint is obeyed; a lost session waits a random part of the spread; else a quick retry. */
  private failed(t: number, err: unknown): void {
    const lost = this.sessionId !== '';
    this.sessionId = '';
    if (ShoalError.is(err, 'NOT_LEADER') && err.details['leaderAddr']) this.addr = err.details['leaderAddr'];
    const hint = ShoalError.is(err) ? Number(err.details[RETRY_AFTER_DETAIL] ?? NaN) : NaN;
    let wait: number;
    if (Number.isFinite(hint)) {
      this.refusals.push(hint);
      wait = hint;
    } else if (lost) wait = Math.random() * reconnectSpreadMs(this.period);
    else wait = 100 * (0.5 + Math.random());
    this.next = { at: t + wait, what: 'session' };
  }
}

/** The nodes of a world, all talking to `addr` first; `engineVersion`: what they now run. */
function fleet(w: World, addr = 'm1', engineVersion?: string, polls = false): SimNode[] {
  return w.nodes().map((n) => new SimNode(n.id, w, addr, { ...infoOf(n), ...(engineVersion ? { engineVersion } : {}) }, polls));
}

/** How many events of `times` fell in the busiest 100 ms. */
function busiest100ms(times: number[]): number {
  const buckets = new Map<number, number>();
  for (const t of times) buckets.set(Math.floor(t / 100), (buckets.get(Math.floor(t / 100)) ?? 0) + 1);
  return Math.max(...buckets.values());
}

/**
 * Moves the clock to `until` in STEP ms steps; at each, every node acts (all at once, as calls
 * arriving together); every half period each dispatcher sweeps, as its timer would. `each` runs
 * after every step.
 */
async function run(w: World, nodes: SimNode[], until: number, each?: () => void | Promise<void>): Promise<void> {
  while (w.clock.t < until) {
    w.clock.t += STEP;
    const acts: Promise<void>[] = [];
    for (const n of nodes) {
      const p = n.act();
      if (p) acts.push(p);
    }
    await Promise.all(acts);
    if (w.clock.t % (PERIOD / 2) === 0) for (const d of w.dispatchers.values()) await d.sweep();
    await each?.();
  }
}

describe('Dispatcher with 2,000 nodes', () => {
  const worlds: World[] = [];
  after(() => {
    for (const w of worlds) w.stop();
  });
  const mk = (opts?: Parameters<typeof world>[0]) => {
    const w = world(opts);
    worlds.push(w);
    return w;
  };

  /** Three managers, every node in session with m1 (the leader) for a few periods. */
  const threeManagersSettled = async () => {
    const w = mk({ managers: 3 });
    const [m1, m2] = [w.dispatchers.get('m1')!, w.dispatchers.get('m2')!];
    m1.begin();
    const nodes = fleet(w);
    await run(w, nodes, 3 * PERIOD);
    assert.equal(m1.stats().sessions, NODES);
    return { w, m1, m2, nodes };
  };

  test('heartbeats write nothing and scan nothing; beats are spread over the period; nobody is marked down', async () => {
    const w = mk();
    const d = w.dispatchers.get('m1')!;
    d.begin();
    const nodes = fleet(w);
    await run(w, nodes, 2 * PERIOD);
    assert.equal(d.stats().sessions, NODES, 'every node has a session');
    // From here on: heartbeats only. No store scan inside a heartbeat (the sweeps scan once each).
    const beatsBefore = d.stats().heartbeats;
    const statusBefore = w.statusCalls;
    await run(w, nodes, 12 * PERIOD);
    const beats = d.stats().heartbeats - beatsBefore;
    assert.ok(beats > NODES * 8, `${beats} heartbeats in 10 periods`);
    assert.equal(w.store.scans, 0, 'a heartbeat lists no objects');
    assert.ok(w.statusCalls - statusBefore <= 12, `Raft's status read ${w.statusCalls - statusBefore} times for ${beats} heartbeats`);
    // Not one write, not one read barrier: the sessions of ready nodes with nothing new cost none either.
    assert.deepEqual(w.proposals, []);
    assert.equal(w.barriers, 0);
    assert.equal(d.stats().statusWrites, 0);
    assert.ok(w.nodes().every((n) => n.status.state === 'ready'));
    assert.equal(d.stats().markedDown, 0);

    // The answers carry the period plus an epsilon of up to a quarter of it.
    const periods = new Set<number>();
    for (const n of nodes.slice(0, 100)) periods.add(n.period);
    assert.ok([...periods].every((p) => p >= PERIOD && p < PERIOD * (1 + HEARTBEAT_JITTER)), [...periods].join(','));
    assert.ok(periods.size > 10, 'answers vary');
    // Spread: beats per 100 ms over the last 8 periods, none far above the mean (all sessions
    // opened at the same moment: without the spread, each period would see one burst of 2,000).
    const buckets = new Map<number, number>();
    for (const n of nodes) for (const t of n.beats) if (t >= 4 * PERIOD && t < 12 * PERIOD) buckets.set(Math.floor(t / 100), (buckets.get(Math.floor(t / 100)) ?? 0) + 1);
    const counts = [...buckets.values()];
    const mean = counts.reduce((a, b) => a + b, 0) / 80;
    assert.equal(buckets.size, 80, 'beats in every 100 ms');
    assert.ok(Math.max(...counts) < mean * 1.5, `the busiest 100 ms had ${Math.max(...counts)} beats, the mean is ${mean.toFixed(0)}`);
    assert.ok(Math.min(...counts) > mean * 0.5, `the quietest 100 ms had ${Math.min(...counts)} beats, the mean is ${mean.toFixed(0)}`);
    d.end();
  });

  test('100 dead nodes of 2,000: marked down together in one transaction, their tasks replaced in one pass', async () => {
    const w = mk();
    const d = w.dispatchers.get('m1')!;
    // A service with a task on every node, running (as the orchestrator and the agents left it).
    const service: Service = { id: 'svc1', version: 0, createdAt: T0, updatedAt: T0, spec: mkSpec({ name: 'web', replicas: NODES }), previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null };
    w.tx([{ op: 'create', kind: 'service', object: service }]);
    const ctx = { now: T0, newId, restartDelayLeft: () => 0 };
    const tasks = w.ids.map((id, i) => {
      const t = newTask(service, i + 1, id, ctx);
      return { ...t, status: { ...t.status, state: 'running' as const, message: 'started' } };
    });
    for (let i = 0; i < tasks.length; i += 200) w.tx(tasks.slice(i, i + 200).map((object) => ({ op: 'create', kind: 'task', object }) as Op));
    const orchestrator = new Orchestrator(w.store, w.client, NOOP_LOGGER);
    orchestrator.begin();
    d.begin();
    const nodes = fleet(w, 'm1', undefined, true);
    await run(w, nodes, 5 * PERIOD);
    assert.equal(d.stats().sessions, NODES);
    assert.equal(nodes.filter((n) => d.waitingPolls(n.id) === 1).length, NODES, 'every node has its long poll waiting');
    const byNode = new Map(w.store.list('task').map((t) => [t.nodeId, t]));
    assert.equal(byNode.size, NODES, 'one task per node');
    assert.equal(d.stats().assignmentsSent, NODES, 'each node was sent its task once (the metric of assignments sent)');

    // 100 nodes' processes are killed at once: their long polls' connections drop.
    const killed = nodes.filter((_, i) => i % 20 === 7);
    for (const n of killed) n.die('killed');
    const killedAt = w.clock.t;
    const before = w.proposals.length;
    let downAt = 0;
    await run(w, nodes, killedAt + 3 * PERIOD, () => {
      if (!downAt && w.proposals.length > before) downAt = w.clock.t;
    });
    const nodeTxs = (from: number) => w.proposals.slice(from).filter((ops) => ops.some((o) => o.kind === 'node'));
    const marks = nodeTxs(before);
    assert.equal(marks.length, 1, 'one transaction marks them all down');
    assert.deepEqual(marks[0]!.map((o) => (o as { object: Node }).object.id).sort(), killed.map((n) => n.id).sort());
    assert.ok(downAt - killedAt > PERIOD && downAt - killedAt <= 2 * PERIOD, `marked down ${downAt - killedAt} ms (simulated) after their connections dropped`);
    const deadIds = new Set(killed.map((n) => n.id));
    assert.deepEqual(w.nodes().filter((n) => n.status.state === 'down').map((n) => n.id).sort(), [...deadIds].sort());

    // The orchestrator: the dead nodes' tasks orphaned, a replacement for each on a live node.
    const original = new Set([...byNode.values()].map((t) => t.id));
    const replacements = () => w.store.list('task').filter((t) => !original.has(t.id) && t.desiredState === 'running' && t.nodeId && !deadIds.has(t.nodeId));
    const settled = Date.now() + 60_000;
    while (replacements().length < killed.length) {
      assert.ok(Date.now() < settled, `${replacements().length} of ${killed.length} replaced`);
      await sleep(20);
    }
    assert.ok(w.store.list('task').filter((t) => deadIds.has(t.nodeId)).every((t) => t.status.state === 'orphaned'), "the dead nodes' tasks are orphaned");
    const orchestratorTxs = w.proposals.slice(before).filter((ops) => ops.some((o) => o.kind === 'task'));
    const created = orchestratorTxs.flat().filter((o) => o.op === 'create' && o.kind === 'task');
    assert.equal(created.length, killed.length, 'one replacement each, none twice');
    assert.ok(orchestratorTxs.length <= 2, `the replacements took ${orchestratorTxs.length} transactions`);

    // 100 more go silent without a word (a switch failed: no connection drops): each is judged
    // when its own silence runs out; a sweep marks all it finds at once.
    const silent = nodes.filter((_, i) => i % 20 === 11);
    for (const n of silent) n.die('silent');
    const silentAt = w.clock.t;
    const before2 = w.proposals.length;
    await run(w, nodes, silentAt + 5 * PERIOD);
    const marks2 = nodeTxs(before2);
    assert.ok(marks2.length <= 4, `${marks2.length} transactions for 100 silent nodes (sweeps every half period)`);
    assert.deepEqual(marks2.flat().map((o) => (o as { object: Node }).object.id).sort(), silent.map((n) => n.id).sort());
    assert.equal(d.stats().markedDown, 200);
    orchestrator.end();
    d.end();
  });

  test('sessions that need a write are bounded: the rest are told when to retry, and every node comes back without being judged', async () => {
    // Every node comes back with a new engine (upgraded while the leader was away): each session
    // must write its node. Four at a time: 2,000 need longer than a new leader's grace.
    const w = mk({ proposeMs: 1, sessionLimit: 4 });
    const d = w.dispatchers.get('m1')!;
    d.begin();
    const nodes = fleet(w, 'm1', '28.0');
    const deadline = Date.now() + 120_000;
    let allAt = 0;
    await run(w, nodes, 12 * PERIOD, () => {
      assert.ok(Date.now() < deadline, 'in time');
      if (!allAt && d.stats().sessions === NODES) allAt = w.clock.t;
    });
    assert.ok(allAt > (PERIOD * (DOWN_AFTER + HEARTBEAT_JITTER) + reconnectSpreadMs(PERIOD)), `all in at ${allAt} ms: after the grace of a new leader`);
    assert.ok(w.maxInFlight <= 4, `${w.maxInFlight} writes in flight at once`);
    assert.ok(w.nodes().every((n) => n.description.engineVersion === '28.0'));
    assert.ok(d.stats().sessionsRefused > 0, 'sessions were refused');
    const hints = nodes.flatMap((n) => n.refusals);
    assert.ok(hints.every((h) => h >= 100 && h <= 100 + reconnectSpreadMs(PERIOD)), 'hints within 100 ms + the reconnect spread');
    assert.ok(new Set(hints).size > 50, 'hints drawn at random');
    assert.equal(d.stats().sessions, NODES, 'every node has a session');
    assert.ok(w.nodes().every((n) => n.status.state === 'ready'));
    assert.equal(d.stats().markedDown, 0);
    d.end();
  });

  test('a failover: every node opens a session with the new leader, none is marked down, nothing is written', async () => {
    const { w, m1, m2, nodes } = await threeManagersSettled();
    const before = w.proposals.length;
    // m1 is deposed; no leader for 800 ms (an election), then m2 leads.
    m1.end();
    w.setLeader('');
    const lostAt = w.clock.t;
    await run(w, nodes, lostAt + 800);
    w.setLeader('m2');
    m2.begin();
    let allBackAt = 0;
    await run(w, nodes, lostAt + 10 * PERIOD, () => {
      if (!allBackAt && m2.stats().sessions === NODES) allBackAt = w.clock.t;
    });
    assert.ok(allBackAt > 0, 'every node has a session with the new leader');
    assert.ok(allBackAt - lostAt < 5 * PERIOD, `all back ${allBackAt - lostAt} ms (simulated) after the leader was lost`);
    assert.ok(nodes.every((n) => n.addr === 'm2'));
    assert.deepEqual(w.proposals.slice(before), [], 'no node and no task written');
    assert.ok(w.nodes().every((n) => n.status.state === 'ready'));
    assert.equal(m2.stats().markedDown, 0);
    assert.ok(nodes.every((n) => n.opened.length === 2), 'one session each with each leader');
    // The reconnections were spread: no 100 ms saw more than a fifth of the nodes.
    const second = nodes.map((n) => n.opened[1]!);
    assert.ok(busiest100ms(second) < NODES / 5, `${busiest100ms(second)} sessions opened in the busiest 100 ms`);
    m2.end();
  });

  test('a failover whose reconnections outlast the grace: nodes still arriving are not judged; those that died with the leader are, after the last arrival', async () => {
    const { w, m1, m2, nodes } = await threeManagersSettled();
    m1.end();
    w.setLeader('m2');
    const lostAt = w.clock.t;
    m2.begin();
    // The old leader's nodes reach m2 over three times a new leader's grace (their handshakes
    // queue up), in order; 20 died with the leader and never come back.
    const grace = PERIOD * (DOWN_AFTER + HEARTBEAT_JITTER) + reconnectSpreadMs(PERIOD);
    const dead = new Set(nodes.filter((_, i) => i % 100 === 7).map((n) => n.id));
    nodes.forEach((n, i) => {
      n.sessionId = '';
      n.addr = 'm2';
      if (dead.has(n.id)) n.die('silent');
      else n.next = { at: lostAt + STEP + Math.floor((i / NODES) * 3 * grace), what: 'session' };
    });
    const lastArrival = lostAt + STEP + Math.floor(((NODES - 1) / NODES) * 3 * grace);
    let downAt = 0;
    await run(w, nodes, lostAt + 3 * grace + 2 * grace, () => {
      if (!downAt && m2.stats().markedDown > 0) downAt = w.clock.t;
    });
    assert.equal(m2.stats().sessions, NODES - dead.size, 'every live node back');
    assert.deepEqual(w.nodes().filter((n) => n.status.state !== 'ready').map((n) => n.id).sort(), [...dead].sort(), 'exactly the dead ones down');
    assert.equal(m2.stats().markedDown, dead.size);
    assert.ok(downAt > lastArrival, `judged at ${downAt - lostAt} ms, after the last arrival at ${lastArrival - lostAt} ms`);
    m2.end();
  });
});

describe('Task status reports of 2,000 nodes', () => {
  test('stored together: a few transactions for all nodes, each node answered with its own refusals', async () => {
    const w = world({ proposeMs: 2 });
    const d = w.dispatchers.get('m1')!;
    const service: Service = { id: 'svc1', version: 0, createdAt: T0, updatedAt: T0, spec: mkSpec({ name: 'web', replicas: NODES + 600 }), previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null };
    w.tx([{ op: 'create', kind: 'service', object: service }]);
    const ctx = { now: T0, newId, restartDelayLeft: () => 0 };
    // One task per node, and 600 more on the first node (its call is cut into parts).
    const tasks = [...w.ids.map((id, i) => newTask(service, i + 1, id, ctx)), ...Array.from({ length: 600 }, (_, i) => newTask(service, NODES + i + 1, w.ids[0]!, ctx))];
    for (let i = 0; i < tasks.length; i += 200) w.tx(tasks.slice(i, i + 200).map((object) => ({ op: 'create', kind: 'task', object }) as Op));
    d.begin();
    const sessions = new Map<string, string>();
    for (const id of w.ids) sessions.set(id, (await d.session({ nodeId: id, info: infoOf(w.store.get('node', id)!) })).sessionId);
    const byNode = new Map<string, string[]>();
    for (const t of tasks) byNode.set(t.nodeId, [...(byNode.get(t.nodeId) ?? []), t.id]);
    type State = Task['status']['state'];
    const report = (nodeId: string, state: State, extra: { taskId: string; status: { state: State } }[] = []) =>
      d.updateTaskStatus({ nodeId, sessionId: sessions.get(nodeId), updates: [...byNode.get(nodeId)!.map((taskId) => ({ taskId, status: { state } })), ...extra] });
    const before = w.proposals.length;
    for (const state of ['accepted', 'preparing', 'starting', 'running'] as const) {
      // Every node at once; node 2 also reports node 1's task, and one of its own twice.
      const answers = await Promise.all(
        w.ids.map((id, i) =>
          report(id, state, i === 2 ? [{ taskId: byNode.get(w.ids[1]!)![0]!, status: { state } }, { taskId: byNode.get(id)![0]!, status: { state } }] : []),
        ),
      );
      assert.deepEqual(answers[2]!.rejected, [`${byNode.get(w.ids[1]!)![0]}: not assigned to this node`, `${byNode.get(w.ids[2]!)![0]}: given twice`]);
      assert.ok(answers.every((a, i) => i === 2 || a.rejected.length === 0), 'the others are stored whole');
    }
    assert.ok(w.store.list('task').every((t) => t.status.state === 'running'), 'every task runs');
    const txs = w.proposals.length - before;
    const reports = tasks.length * 4;
    assert.equal(d.stats().reportTransactions, txs);
    assert.ok(txs <= reports / 20, `${reports} reports of ${NODES} nodes in ${txs} transactions`);
    assert.ok(w.maxInFlight <= 4, `${w.maxInFlight} transactions in flight at once`);
    d.end();
    w.stop();
  });
});
