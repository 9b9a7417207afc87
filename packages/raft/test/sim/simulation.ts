// The randomized simulation: one seed drives a chaos phase (a random scheduler over deliveries,
// drops, duplicates, reorderings, ticks, proposals, reads, membership changes, leadership
// transfers, crashes, restarts and partitions) followed by a liveness phase (everything healed,
// reliable network) that must elect a leader, commit a new proposal and converge.
// The SafetyChecker (through the simulated drivers of cluster.ts) checks every step.

import { ConfChangeType, Role, type NodeId } from '../../src/core/types.js';
import { LivenessFailure, SafetyChecker, SafetyViolation, describeFailure, entryKeyOf } from './checker.js';
import { Cluster, addrOf, isMember, type SimNode } from './cluster.js';
import { Rng } from './prng.js';

export interface SimOptions {
  seed: number;
  nodes: 3 | 5;
  steps: number;
  /** Verbose trace of every event. */
  trace?: (line: string) => void;
  /** Fault injection for the non-vacuity test: disks forget votes across restarts. */
  forgetVote?: boolean;
  /** Fault injection for the non-vacuity test: the driver sends messages before persisting. */
  sendBeforePersist?: boolean;
  /** Bound for the liveness phase: a leader must commit a new proposal within this many ticks. */
  livenessTicks?: number;
  /** Overrides of the per-seed random parameters (experiments, targeted runs). */
  params?: Partial<SimParams>;
  /** Skip the liveness phase (used by fault-injection runs, where liveness is not the point). */
  skipLiveness?: boolean;
}

export interface SimParams {
  electionTicks: number;
  heartbeatTicks: number;
  preVote: boolean;
  checkQuorum: boolean;
  maxMsgBytes: number;
  maxInflight: number;
  maxUncommittedEntries: number | undefined;
  snapshotThreshold: number;
  drop: number;
  dup: number;
  fifo: number;
  autoReady: number;
  eagerFirst: number;
  crashMid: number;
  asyncWrite: number;
  unsyncedCommit: boolean;
  membership: boolean;
  tickWeight: number;
  campaignWeight: number;
  crashWeight: number;
  partitionWeight: number;
}

export interface SimStats {
  steps: number;
  maxTerm: number;
  leaders: number;
  maxApplied: number;
  acked: number;
  readsServed: number;
  snapsDelivered: number;
  compactions: number;
  crashes: number;
  midReadyCrashes: number;
  asyncWrites: number;
  /** Entries applied by takeDurableCommitted while a write was in flight. */
  writeTimeApplies: number;
  confChangesApplied: number;
  transfers: number;
  partitions: number;
  delivered: number;
  dropped: number;
  maxPool: number;
  livenessCommitTick: number;
  livenessConvergeTick: number;
  finalVoters: number;
}

export interface SimResult {
  ok: boolean;
  seed: number;
  nodes: number;
  steps: number;
  params: SimParams;
  stats: SimStats;
  /** The failure, with the seed and the replay command. */
  error?: string;
  /** The checker's property name, if a safety property failed. */
  property?: string;
  failedAtStep?: number;
}

export function replayCommand(seed: number, nodes: number, steps: number): string {
  return `npm run test:sim -- --seed ${seed} --nodes ${nodes} --steps ${steps}`;
}

/** The node count a seed runs with by default (odd seeds: 3 nodes, even seeds: 5), in CI and in the CLI. */
export const nodesForSeed = (seed: number): 3 | 5 => (seed % 2 === 1 ? 3 : 5);
export const DEFAULT_STEPS = 5000;

export function chooseParams(rng: Rng): SimParams {
  return {
    electionTicks: 10,
    heartbeatTicks: rng.pick([1, 2, 3]),
    preVote: rng.chance(0.5),
    checkQuorum: rng.chance(0.5),
    maxMsgBytes: rng.pick([80, 300, 1 << 20]),
    maxInflight: rng.pick([1, 2, 4, 64]),
    maxUncommittedEntries: rng.chance(0.3) ? rng.range(3, 30) : undefined,
    snapshotThreshold: rng.pick([3, 6, 12, 25, 60]),
    drop: rng.pick([0, 0.02, 0.1, 0.2]),
    dup: rng.pick([0, 0.02, 0.1]),
    fifo: rng.pick([1, 0.8, 0.4, 0]),
    autoReady: rng.pick([1, 0.7, 0.3]),
    eagerFirst: rng.pick([0, 0.5, 1]),
    crashMid: rng.pick([0, 0.003, 0.02]),
    asyncWrite: rng.pick([0, 0, 0.5, 1]),
    unsyncedCommit: rng.chance(0.5),
    membership: rng.chance(0.6),
    tickWeight: rng.pick([8, 15, 30]),
    campaignWeight: rng.pick([0, 0.5, 2]),
    crashWeight: rng.pick([0, 0.3, 1, 3]),
    partitionWeight: rng.pick([0, 0.2, 0.6]),
  };
}

class Sim {
  readonly rng: Rng;
  readonly params: SimParams;
  readonly c: Cluster;
  readonly checker = new SafetyChecker();
  step = 0;
  private propSeq = 0;
  private idSeq: number;
  readonly stats: SimStats;

  constructor(readonly opts: SimOptions) {
    this.rng = new Rng(opts.seed);
    this.params = { ...chooseParams(this.rng.fork()), ...opts.params };
    const p = this.params;
    const ids = Array.from({ length: opts.nodes }, (_, i) => `n${i + 1}`);
    this.idSeq = opts.nodes;
    const trace = opts.trace;
    trace?.(`params: ${JSON.stringify(this.params)}`);
    this.c = new Cluster({
      voters: ids,
      rng: this.rng.fork(),
      checker: this.checker,
      config: {
        electionTicks: p.electionTicks,
        heartbeatTicks: p.heartbeatTicks,
        preVote: p.preVote,
        checkQuorum: p.checkQuorum,
        maxMsgBytes: p.maxMsgBytes,
        maxInflight: p.maxInflight,
        ...(p.maxUncommittedEntries !== undefined ? { maxUncommittedEntries: p.maxUncommittedEntries } : {}),
      },
      snapshotThreshold: p.snapshotThreshold,
      autoReadyProb: p.autoReady,
      eagerFirstProb: p.eagerFirst,
      crashBeforePersistProb: p.crashMid,
      crashAfterPersistProb: p.crashMid,
      asyncWriteProb: p.asyncWrite,
      unsyncedCommit: p.unsyncedCommit,
      reportUnreachableProb: 0.3,
      forgetVote: opts.forgetVote ?? false,
      sendBeforePersist: opts.sendBeforePersist ?? false,
      ...(trace ? { trace: (l: string) => trace(`[${this.step}] ${l}`) } : {}),
    });
    this.stats = {
      steps: 0,
      maxTerm: 0,
      leaders: 0,
      maxApplied: 0,
      acked: 0,
      readsServed: 0,
      snapsDelivered: 0,
      compactions: 0,
      crashes: 0,
      midReadyCrashes: 0,
      asyncWrites: 0,
      writeTimeApplies: 0,
      confChangesApplied: 0,
      transfers: 0,
      partitions: 0,
      delivered: 0,
      dropped: 0,
      maxPool: 0,
      livenessCommitTick: -1,
      livenessConvergeTick: -1,
      finalVoters: 0,
    };
  }

  private log(s: string): void {
    this.c.log(() => s);
  }

  private aliveNodes(): SimNode[] {
    return this.c.alive();
  }

  private randomLeader(): SimNode | undefined {
    const ls = this.aliveNodes().filter((n) => n.core!.status().role === Role.Leader);
    return ls.length > 0 ? this.rng.pick(ls) : undefined;
  }

  /** One random event of the chaos phase. */
  chaosStep(): void {
    const c = this.c;
    const p = this.params;
    const rng = this.rng;
    const alive = this.aliveNodes();
    const down = [...c.nodes.values()].filter((n) => !n.core && !n.selfRemoved);
    const pending = p.autoReady < 1 || p.asyncWrite > 0 ? alive.filter((n) => !n.writing && n.core!.hasReady()) : [];
    const writing = p.asyncWrite > 0 ? c.writing() : [];
    const partitioned = c.groups !== null || c.isolated.size > 0 || c.cut.size > 0;
    const weights = [
      c.pool.length > 0 ? 45 : 0, // 0 deliver
      alive.length > 0 ? p.tickWeight : 0, // 1 tick
      pending.length > 0 ? 20 : 0, // 2 process a Ready
      alive.length > 0 ? 6 : 0, // 3 propose
      alive.length > 0 ? 1.5 : 0, // 4 read
      p.membership && alive.length > 0 ? 0.4 : 0, // 5 membership change
      alive.length > 0 ? 0.2 : 0, // 6 leadership transfer
      alive.length > 0 ? p.crashWeight : 0, // 7 crash
      down.length > 0 ? 1 + 2 * p.crashWeight : 0, // 8 restart
      p.partitionWeight, // 9 partition
      partitioned ? 1 : 0, // 10 heal
      alive.length > 0 ? p.crashWeight / 2 : 0, // 11 crash a leader
      alive.length > 0 ? p.campaignWeight : 0, // 12 an election timeout fires now
      writing.length > 0 ? 25 : 0, // 13 an asynchronous write completes
    ];
    switch (rng.weighted(weights)) {
      case 0: {
        const i = rng.chance(p.fifo) ? 0 : rng.int(c.pool.length);
        if (rng.chance(p.drop)) c.drop(i);
        else c.deliver(i, rng.chance(p.dup));
        break;
      }
      case 1:
        c.tick(rng.pick(alive).id);
        break;
      case 2:
        c.processOne(rng.pick(pending).id);
        break;
      case 3: {
        const target = (rng.chance(0.85) ? this.randomLeader() : undefined) ?? rng.pick(alive);
        c.propose(target.id, `p${++this.propSeq}`, `k${rng.int(5)}`);
        break;
      }
      case 4: {
        const target = (rng.chance(0.85) ? this.randomLeader() : undefined) ?? rng.pick(alive);
        c.readIndex(target.id);
        break;
      }
      case 5:
        this.membershipChange();
        break;
      case 6: {
        const l = this.randomLeader();
        if (!l) break;
        const voters = l.core!.conf().voters.map((m) => m.id).filter((id) => id !== l.id);
        if (voters.length === 0) break;
        if (c.transfer(l.id, rng.pick(voters)).ok) this.stats.transfers++;
        break;
      }
      case 7:
        c.crash(rng.pick(alive).id);
        break;
      case 8:
        c.start(rng.pick(down).id);
        break;
      case 9:
        this.partition();
        break;
      case 10:
        c.heal();
        break;
      case 11: {
        const l = this.randomLeader();
        if (l) c.crash(l.id);
        break;
      }
      case 12:
        c.campaign(rng.pick(alive).id);
        break;
      case 13:
        c.completeWrite(rng.pick(writing).id);
        break;
    }
  }

  private membershipChange(): void {
    const l = this.randomLeader();
    if (!l) return;
    const rng = this.rng;
    const conf = l.core!.conf();
    const voters = conf.voters.map((m) => m.id);
    const learners = conf.learners.map((m) => m.id);
    const minVoters = 3;
    const maxVoters = this.opts.nodes + 1;
    let type: ConfChangeType;
    let target: NodeId;
    if (learners.length > 0 && voters.length < maxVoters && rng.chance(0.6)) {
      type = ConfChangeType.PromoteLearner;
      target = rng.pick(learners);
    } else if (voters.length > minVoters && rng.chance(0.5)) {
      type = ConfChangeType.RemoveNode;
      target = rng.pick(voters);
    } else if (learners.length > 0 && rng.chance(0.3)) {
      type = ConfChangeType.RemoveNode;
      target = rng.pick(learners);
    } else if (voters.length + learners.length < maxVoters + 1) {
      type = ConfChangeType.AddLearner;
      target = `n${++this.idSeq}`;
    } else return;
    this.c.proposeConfChange(l.id, { type, nodeId: target, addr: addrOf(target) });
  }

  private partition(): void {
    const c = this.c;
    const rng = this.rng;
    const ids = c.ids();
    this.stats.partitions++;
    switch (rng.int(4)) {
      case 0: // random groups
        c.partition([0, 1, 2].map((g) => ids.filter(() => rng.int(3) === g)).filter((g) => g.length > 0));
        break;
      case 1: // isolate one node
        c.disconnect(rng.pick(ids));
        break;
      case 2: {
        // majority / minority
        const sh = rng.shuffle(ids.slice());
        const k = Math.floor(sh.length / 2);
        c.partition([sh.slice(0, k), sh.slice(k)]);
        break;
      }
      case 3: // a few one-way link failures
        for (let i = 0; i < 1 + rng.int(3); i++) {
          const a = rng.pick(ids);
          const b = rng.pick(ids);
          if (a !== b) {
            c.cut.add(`${a}>${b}`);
            this.log(`cut ${a}>${b}`);
          }
        }
        break;
    }
  }

  /** Log Matching on the in-memory logs too (the persisted ones are checked as they are written). */
  checkMemoryLogs(): void {
    for (const n of this.aliveNodes()) {
      const core = n.core!;
      for (const e of core.entries()) {
        this.checker.entryStored(`${n.id}(memory)`, e.index, e.term, entryKeyOf(e), core.termAt(e.index - 1));
      }
    }
  }

  /** The configuration applied by the most advanced state machine. */
  latestConf() {
    let best: SimNode | undefined;
    for (const n of this.c.nodes.values()) if (n.sm && (!best || n.sm.applied > best.sm!.applied)) best = n;
    return best?.sm?.conf;
  }

  /** Heal everything and check that the cluster elects a leader, commits, and converges. */
  liveness(): void {
    const c = this.c;
    const bound = this.opts.livenessTicks ?? 200;
    this.log('=== liveness phase ===');
    c.heal();
    c.autoReadyProb = 1;
    c.crashBeforePersistProb = 0;
    c.crashAfterPersistProb = 0;
    c.asyncWriteProb = 0;
    for (const n of c.nodes.values()) if (!n.core && !n.selfRemoved) c.start(n.id);
    c.flush();
    let cmd = '';
    let attempts = 0;
    let sinceAttempt = Infinity;
    for (let t = 1; t <= bound + 100; t++) {
      // The operator runs exactly the members of the latest configuration.
      const conf = this.latestConf();
      if (conf) {
        for (const n of c.nodes.values()) {
          const member = isMember(conf, n.id);
          if (member && !n.core && !n.selfRemoved) c.start(n.id);
          else if (!member && n.core && n.everMember) c.crash(n.id);
        }
      }
      c.tickAll();
      c.flush();
      if (this.stats.livenessCommitTick < 0) {
        if (cmd && c.nApplied(cmd).count > 0) {
          this.stats.livenessCommitTick = t;
        } else if (sinceAttempt >= 3 * this.params.electionTicks || !cmd) {
          const l = c.stableLeader();
          if (l) {
            const id = `final${++attempts}`;
            if (c.propose(l, id).ok) {
              cmd = id;
              sinceAttempt = 0;
              c.flush();
            }
          }
        }
        sinceAttempt++;
        if (this.stats.livenessCommitTick < 0 && t >= bound)
          throw new LivenessFailure(
            `no leader committed a new proposal within ${bound} ticks after healing: ${c.describe()}${this.progressOfLeaders()}`,
          );
      }
      if (this.stats.livenessCommitTick >= 0 && this.converged()) {
        this.stats.livenessConvergeTick = t;
        this.checkFinalState();
        return;
      }
    }
    throw new LivenessFailure(
      `the members did not converge within ${bound + 100} ticks: ${c.describe()}${this.progressOfLeaders()}`,
    );
  }

  private progressOfLeaders(): string {
    let s = '';
    for (const l of this.c.leaders()) {
      const pr = l.core!.status().progress;
      s += `; ${l.id}'s progress: ` + Object.entries(pr).map(([id, p]) => `${id}=${p.state}/m${p.match}/n${p.next}`).join(' ');
    }
    return s;
  }

  private converged(): boolean {
    const conf = this.latestConf();
    if (!conf) return false;
    const members = [...conf.voters, ...conf.learners].map((m) => m.id);
    let applied = -1;
    let digest = -1;
    for (const id of members) {
      const n = this.c.nodes.get(id);
      if (!n || !n.core || !n.sm) return false;
      if (applied < 0) {
        applied = n.sm.applied;
        digest = n.sm.digest;
      } else if (n.sm.applied !== applied || n.sm.digest !== digest) return false;
      if (n.core.status().commit !== n.sm.applied) return false;
    }
    this.stats.finalVoters = conf.voters.length;
    return true;
  }

  /** Every acknowledged proposal is in every member's state machine, at its index. */
  private checkFinalState(): void {
    const conf = this.latestConf()!;
    for (const m of [...conf.voters, ...conf.learners]) {
      const sm = this.c.nodes.get(m.id)!.sm!;
      for (const [id, idx] of this.checker.acked) {
        if (idx > sm.applied) continue;
        const at = sm.cmds.get(id);
        if (at !== idx)
          throw new SafetyViolation(
            'Durable proposals',
            `acknowledged proposal ${id} (index ${idx}) is ${at === undefined ? 'missing' : `at index ${at}`} in ${m.id}'s final state`,
          );
      }
    }
  }

  run(): void {
    const steps = this.opts.steps;
    for (this.step = 1; this.step <= steps; this.step++) {
      this.chaosStep();
      if (this.c.pool.length > this.stats.maxPool) this.stats.maxPool = this.c.pool.length;
      if (this.step % 64 === 0) this.checkMemoryLogs();
    }
    this.checkMemoryLogs();
    if (!this.opts.skipLiveness) this.liveness();
  }

  collectStats(): void {
    const s = this.stats;
    const cs = this.c.stats;
    s.steps = Math.min(this.step, this.opts.steps);
    s.maxTerm = Math.max(0, ...this.checker.leaders.keys());
    s.leaders = this.checker.leaders.size;
    s.maxApplied = this.checker.maxApplied;
    s.acked = this.checker.acked.size;
    s.readsServed = cs.readsServed;
    s.snapsDelivered = cs.snapsDelivered;
    s.compactions = cs.compactions;
    s.crashes = cs.crashes;
    s.midReadyCrashes = cs.midReadyCrashes;
    s.asyncWrites = cs.asyncWrites;
    s.writeTimeApplies = cs.writeTimeApplies;
    s.confChangesApplied = cs.confChangesApplied;
    s.delivered = cs.delivered;
    s.dropped = cs.dropped;
  }
}


/** Runs one seed. Never throws: failures are reported in the result. */
export function runSim(opts: SimOptions): SimResult {
  const sim = new Sim(opts);
  const base = { seed: opts.seed, nodes: opts.nodes, steps: opts.steps, params: sim.params };
  try {
    sim.run();
    sim.collectStats();
    return { ok: true, ...base, stats: sim.stats };
  } catch (e) {
    sim.collectStats();
    const { property, error } = describeFailure(e as Error, { ...base, step: sim.step, label: '', replay: replayCommand(opts.seed, opts.nodes, opts.steps) });
    return { ok: false, ...base, stats: sim.stats, error, property, failedAtStep: sim.step };
  }
}

/** Replays a failing seed with tracing on and returns the last `lines` lines of the trace. */
export function traceTail(opts: SimOptions, lines = 60): string[] {
  const buf: string[] = [];
  runSim({
    ...opts,
    trace: (l) => {
      buf.push(l);
      if (buf.length > lines * 4) buf.splice(0, buf.length - lines);
    },
  });
  return buf.slice(-lines);
}
