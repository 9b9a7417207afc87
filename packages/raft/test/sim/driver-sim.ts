// The driver simulation: the production Raft driver (src/driver.ts, what RaftNode runs in shoald)
// on 3 or 5 simulated machines, each with an in-memory disk that loses unsynced writes on a power
// loss and can fail writes with ENOSPC/EIO (mem-storage.ts), over an in-memory network (mem-network.ts),
// in virtual time (event-queue.ts). One seed runs a chaos phase of `steps` events (timer ticks,
// deliveries, disk completions, and random faults and client calls among them), then a liveness
// phase (faults off, everything healed and restarted) that must commit a new proposal and converge.
//
// Checked throughout (SafetyChecker, plus the client-visible properties below):
//  - Election Safety, Log Matching on every disk write, State Machine Safety (the state machines'
//    running digests agree at every applied index), durable hard state;
//  - a message only promises what is durable on its sender's disk (survives a power loss);
//  - acknowledged means durable: a proposal whose propose() resolved at index i is applied at i by
//    every node that gets there, across crashes, power losses and restarts; nothing is applied
//    twice, including a client's retries of one sequence number on other nodes;
//  - a read barrier's answer covers every write acknowledged before it was asked;
//  - a failed disk write stops the node at once ('fatal', no message sent after it); the simulated
//    operator then restarts it, like shoald exiting and its supervisor starting it again.

import { type Member, type Message, MessageType, type NodeId, Role } from '../../src/core/types.js';
import { RaftDriver } from '../../src/driver.js';
import type { SnapshotCapture, StateMachine } from '../../src/driver.js';
import { silentLogger } from '../../src/logger.js';
import { LivenessFailure, SafetyChecker, SafetyViolation, describeFailure, entryKeyOf } from './checker.js';
import { EventQueue, Life } from './event-queue.js';
import { MemDisk } from './mem-storage.js';
import { MemNetwork } from './mem-network.js';
import { Rng } from './prng.js';

export interface DriverSimOptions {
  seed: number;
  nodes: 3 | 5;
  steps: number;
  trace?: (line: string) => void;
  skipLiveness?: boolean;
  params?: Partial<DriverSimParams>;
  /**
   * Non-vacuity tests: a broken disk whose fsync does nothing. The sender-side durability check is
   * off in this mode, so that the end-to-end checks (acknowledged proposals) must catch it.
   */
  lyingFsync?: boolean;
}

export interface DriverSimParams {
  tickMs: number;
  heartbeatTicks: number;
  snapshotEntries: number;
  maxMsgBytes: number;
  drop: number;
  dup: number;
  maxLatency: number;
  maxDiskLatency: number;
  crashWeight: number;
  powerLossWeight: number;
  diskFaultWeight: number;
  partitionWeight: number;
  clientWeight: number;
}

export interface DriverSimStats {
  steps: number;
  virtualMs: number;
  leaders: number;
  acked: number;
  retries: number;
  reads: number;
  crashes: number;
  powerLosses: number;
  diskFaults: number;
  fatals: number;
  snapshots: number;
  snapsDelivered: number;
  livenessMs: number;
}

export interface DriverSimResult {
  ok: boolean;
  seed: number;
  nodes: number;
  steps: number;
  params: DriverSimParams;
  stats: DriverSimStats;
  error?: string;
  property?: string;
}

export const nodesForSeed = (seed: number): 3 | 5 => (seed % 2 === 1 ? 3 : 5);

export function driverReplayCommand(seed: number, nodes: number, steps: number): string {
  return `npm run test:sim -- --driver --seed ${seed} --nodes ${nodes} --steps ${steps}`;
}

function chooseParams(rng: Rng): DriverSimParams {
  return {
    tickMs: 10,
    heartbeatTicks: rng.pick([1, 2, 3]),
    snapshotEntries: rng.pick([4, 10, 30, 1000]),
    maxMsgBytes: rng.pick([200, 1 << 20]),
    drop: rng.pick([0, 0.02, 0.1]),
    dup: rng.pick([0, 0.03]),
    maxLatency: rng.pick([2, 6, 15]),
    maxDiskLatency: rng.pick([1, 4, 12]),
    crashWeight: rng.pick([0.3, 1, 3]),
    powerLossWeight: rng.pick([0.3, 1, 3]),
    diskFaultWeight: rng.pick([0, 0.3, 1]),
    partitionWeight: rng.pick([0, 0.3, 1]),
    clientWeight: rng.pick([10, 25]),
  };
}

/** One for every simulated process: making a logger costs more than a simulated restart. */
const QUIET = silentLogger();
const enc = new TextEncoder();
const dec = new TextDecoder();
const FNV_OFFSET = 0x811c9dc5;

function fnv(h: number, s: string, n: number): number {
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  for (let k = 0; k < 4; k++) h = Math.imul(h ^ ((n >>> (8 * k)) & 0xff), 0x01000193) >>> 0;
  return h;
}

/** Operations a snapshot encodes or restores between two pauses (see OpsMachine.pause). */
const SNAPSHOT_STEP_OPS = 8;

interface OpsState {
  d: number;
  l: number;
  o: [string, number][];
}

/**
 * The replicated application: the set of client operations applied, with a running digest. With
 * `pause`, it snapshots like the cluster store: it captures its state at once and encodes it in
 * steps with virtual time passing between them (while the driver applies later entries), and
 * restores in steps, switching its state only at the end (an entry the driver applied before then
 * would break the digests that State Machine Safety compares).
 */
class OpsMachine implements StateMachine {
  digest = FNV_OFFSET;
  lastIndex = 0;
  readonly ops = new Map<string, number>();

  constructor(
    private readonly node: NodeId,
    private readonly sim: DriverSim,
    private readonly pause?: () => Promise<void>,
  ) {
    if (!pause) {
      // Only the synchronous interface (the driver falls back to snapshot() and restore()).
      this.captureSnapshot = undefined;
      this.restoreAsync = undefined;
    }
  }

  apply(command: Uint8Array, index: number): Uint8Array {
    const op = dec.decode(command);
    if (index <= this.lastIndex) this.sim.checker.contract(`${this.node} applied index ${index} after ${this.lastIndex}`);
    const prev = this.ops.get(op);
    if (prev !== undefined) this.sim.checker.proposalAppliedTwice(this.node, op, prev, index);
    this.ops.set(op, index);
    this.lastIndex = index;
    this.digest = fnv(this.digest, op, index);
    this.sim.checker.entryApplied(this.node, index, 0, entryKeyOf({ type: 0, data: command }), this.digest, 0);
    this.sim.opApplied(this.node, op, index);
    return enc.encode(`ok ${op}`);
  }

  snapshot(): Uint8Array {
    return enc.encode(JSON.stringify(this.state()));
  }

  private state(): OpsState {
    return { d: this.digest, l: this.lastIndex, o: [...this.ops] };
  }

  captureSnapshot? = (): SnapshotCapture => {
    const st = this.state();
    return {
      encode: async () => {
        for (let i = 0; i < st.o.length; i += SNAPSHOT_STEP_OPS) await this.pause!();
        return enc.encode(JSON.stringify(st));
      },
    };
  };

  restore(data: Uint8Array): void {
    this.switchTo(JSON.parse(dec.decode(data)) as OpsState);
  }

  restoreAsync? = async (data: Uint8Array): Promise<void> => {
    const st = JSON.parse(dec.decode(data)) as OpsState;
    for (let i = 0; i < st.o.length; i += SNAPSHOT_STEP_OPS) await this.pause!();
    this.switchTo(st);
  };

  private switchTo(st: OpsState): void {
    this.digest = st.d;
    this.lastIndex = st.l;
    this.ops.clear();
    for (const [k, v] of st.o) this.ops.set(k, v);
  }
}

class SimMachine {
  life: Life | null = null;
  driver: RaftDriver | null = null;
  sm: OpsMachine | null = null;
  /** The running process hit a fatal error: it must not send anything any more. */
  fatal = false;
  starting = false;

  constructor(
    readonly id: NodeId,
    readonly disk: MemDisk,
  ) {}

  get up(): boolean {
    return this.life !== null && !this.life.dead && this.driver !== null;
  }
}

/** An external client: one operation at a time, retried (same seq) on other nodes until answered. */
interface Client {
  id: string;
  seq: number;
  inFlight: boolean;
}

class DriverSim {
  readonly rng: Rng;
  readonly params: DriverSimParams;
  readonly checker = new SafetyChecker();
  readonly queue = new EventQueue();
  readonly net: MemNetwork;
  readonly machines = new Map<NodeId, SimMachine>();
  readonly members: Member[];
  /** op -> the index its propose() resolved with. */
  readonly acked = new Map<string, number>();
  /** index -> the op acknowledged there. */
  readonly ackedAt = new Map<number, string>();
  private lastAcked: string | undefined;
  private maxAckedIndex = 0;
  private opSeq = 0;
  private readonly clients: Client[] = [];
  step = 0;
  readonly stats: DriverSimStats = {
    steps: 0,
    virtualMs: 0,
    leaders: 0,
    acked: 0,
    retries: 0,
    reads: 0,
    crashes: 0,
    powerLosses: 0,
    diskFaults: 0,
    fatals: 0,
    snapshots: 0,
    snapsDelivered: 0,
    livenessMs: -1,
  };
  private chaos = true;
  /**
   * Two seeds in three snapshot in steps (captureSnapshot, restoreAsync), the others in one piece.
   * The pauses draw from a stream of their own, so the other choices stay what they were.
   */
  private readonly steppedSnapshots: boolean;
  private readonly pauseRng: Rng;
  /** An exception thrown inside an event or a promise callback, rethrown by the main loop. */
  private failure: unknown;

  constructor(readonly opts: DriverSimOptions) {
    this.rng = new Rng(opts.seed);
    this.steppedSnapshots = opts.seed % 3 !== 0;
    this.pauseRng = new Rng(opts.seed ^ 0x5a5a5a5a);
    this.params = { ...chooseParams(this.rng.fork()), ...opts.params };
    const p = this.params;
    this.net = new MemNetwork(this.queue, this.rng.fork(), {
      drop: p.drop,
      dup: p.dup,
      minLatency: 1,
      maxLatency: p.maxLatency,
      reportUnreachable: 0.3,
    });
    this.members = Array.from({ length: opts.nodes }, (_, i) => ({ id: `n${i + 1}`, addr: `sim://n${i + 1}` }));
    for (const m of this.members) {
      const disk = new MemDisk(m.id, this.rng.fork(), this.checker, opts.trace ? (l) => this.log(l) : undefined);
      if (opts.lyingFsync) disk.ignoreSync = true;
      this.machines.set(m.id, new SimMachine(m.id, disk));
    }
    for (let i = 0; i < 3; i++) this.clients.push({ id: `c${i + 1}`, seq: 0, inFlight: false });
    this.log(`params: ${JSON.stringify(this.params)}`);
  }

  /** A step of a snapshot's encoding or restore: some virtual time passes (ticks, deliveries). */
  private snapshotPause(life: Life): Promise<void> {
    return new Promise<void>((resolve) => this.queue.after(this.pauseRng.int(4), resolve, life));
  }

  log(s: string): void {
    this.opts.trace?.(`[${this.step} @${this.queue.now}] ${s}`);
  }

  /** Runs fn, keeping an exception for the main loop (callbacks run outside it). */
  private guard(fn: () => void): void {
    try {
      fn();
    } catch (e) {
      this.failure ??= e;
    }
  }

  // ------------------------------------------------------------------ processes

  start(id: NodeId): void {
    const m = this.machines.get(id)!;
    if (m.life && !m.life.dead) return;
    const life = new Life();
    m.life = life;
    m.driver = null;
    m.fatal = false;
    m.starting = true;
    const sm = new OpsMachine(id, this, this.steppedSnapshots ? () => this.snapshotPause(life) : undefined);
    m.sm = sm;
    const p = this.params;
    const storage = m.disk.open(this.queue, life, () => this.rng.int(p.maxDiskLatency + 1));
    this.log(`start ${id}`);
    RaftDriver.openWith({
      id,
      addr: `sim://${id}`,
      stateMachine: sm,
      bootstrap: this.members,
      timings: { tickMs: p.tickMs, electionTicks: 10, heartbeatTicks: p.heartbeatTicks },
      snapshotEntries: p.snapshotEntries,
      maxMsgBytes: p.maxMsgBytes,
      logger: QUIET,
      clock: this.queue.clock(life),
      random: this.rng.fork().fn(),
      storage,
      transport: (hooks) => this.net.attach(id, life, hooks, (msg) => this.guard(() => this.onSend(m, life, msg))),
    }).then(
      (d) => {
        if (life.dead) return;
        m.starting = false;
        m.driver = d;
        d.on('fatal', (err: Error) =>
          this.guard(() => {
            if (life.dead) return;
            this.log(`${id} fatal: ${err.message}: exits`);
            this.stats.fatals++;
            m.fatal = true;
            this.crash(id, 'exit');
          }),
        );
        d.on('leader', () =>
          this.guard(() => {
            const st = d.status();
            if (st.role === Role.Leader) this.checker.leader(id, st.term);
          }),
        );
        d.start();
      },
      (err: unknown) =>
        this.guard(() => {
          if (life.dead) return;
          // Opening failed on a disk fault (the bootstrap write): the process exits; try again later.
          if ((err as { code?: string }).code === 'ENOSPC' || (err as { code?: string }).code === 'EIO') {
            this.crash(id, 'exit');
            return;
          }
          throw err;
        }),
    );
  }

  crash(id: NodeId, how: 'crash' | 'power' | 'exit'): void {
    const m = this.machines.get(id)!;
    if (!m.life || m.life.dead) return;
    this.log(`${how} ${id}`);
    m.life.dead = true;
    if (m.driver) this.stats.snapshots += m.driver.stats.snapshots;
    m.driver = null;
    m.sm = null;
    m.starting = false;
    m.disk.processCrashed();
    if (how === 'power') {
      m.disk.powerLost();
      this.stats.powerLosses++;
    } else if (how === 'crash') this.stats.crashes++;
  }

  // ------------------------------------------------------------------ checks

  /** A message may only promise what survives a power loss on its sender. */
  private onSend(m: SimMachine, life: Life, msg: Message): void {
    if (life.dead) return;
    if (this.opts.trace)
      this.log(`send ${MessageType[msg.type]} ${msg.from}->${msg.to} t${msg.term} i${msg.index}${msg.reject ? ' reject' : ''} n${msg.entries.length} c${msg.commit}`);
    if (m.fatal || m.disk.failedLife === life) {
      this.checker.violation('Fatal storage error', `${m.id} sent ${MessageType[msg.type]} after a failed disk write`);
    }
    if (this.opts.lyingFsync) return;
    if (msg.type === MessageType.PreVote || msg.type === MessageType.PreVoteResp) return;
    const d = m.disk.durable;
    const where = `${m.id} sent ${MessageType[msg.type]} to ${msg.to} in term ${msg.term}`;
    if (msg.term > d.hardState.term) this.checker.contract(`${where} before its term was durable (disk: ${d.hardState.term})`);
    if (msg.term < d.hardState.term) return;
    if (msg.type === MessageType.VoteResp && !msg.reject && d.hardState.vote !== msg.to)
      this.checker.contract(`${where}: granted a vote not durable (disk vote: ${d.hardState.vote || 'none'})`);
    if (msg.type === MessageType.AppResp && !msg.reject && msg.index > m.disk.lastIndex(d))
      this.checker.contract(`${where}: acknowledged entries through ${msg.index}, durable through ${m.disk.lastIndex(d)}`);
  }

  /** A state machine applied `op` at `index`. */
  opApplied(node: NodeId, op: string, index: number): void {
    const at = this.acked.get(op);
    if (at !== undefined && at !== index)
      this.checker.violation('Durable proposals', `${op} was acknowledged at index ${at} but ${node} applied it at ${index}`);
    const other = this.ackedAt.get(index);
    if (other !== undefined && other !== op)
      this.checker.violation('Durable proposals', `${other} was acknowledged at index ${index} but ${node} applied ${op} there`);
  }

  /** A client got its answer: the operation is acknowledged at `index`. */
  private ack(node: NodeId, op: string, index: number): void {
    const prev = this.acked.get(op);
    if (prev !== undefined && prev !== index)
      this.checker.violation('Durable proposals', `${op} acknowledged twice, at ${prev} and ${index}`);
    const other = this.ackedAt.get(index);
    if (other !== undefined && other !== op)
      this.checker.violation('Durable proposals', `index ${index} acknowledged for ${other} and for ${op}`);
    this.acked.set(op, index);
    this.ackedAt.set(index, op);
    this.lastAcked = op;
    if (index > this.maxAckedIndex) this.maxAckedIndex = index;
    // Every state machine already past the index must hold the operation there.
    for (const m of this.machines.values()) {
      if (!m.sm || m.sm.lastIndex < index) continue;
      const at = m.sm.ops.get(op);
      if (at !== index)
        this.checker.violation('Durable proposals', `${op} acknowledged at ${index} (by ${node}) but ${m.id} applied through ${m.sm.lastIndex} without it`);
    }
  }

  /** After every event: a node whose write failed must have stopped. */
  private afterEvent(): void {
    for (const m of this.machines.values()) {
      const d = m.driver;
      if (!d || !m.life || m.life.dead) continue;
      if (m.disk.failedLife === m.life && !m.fatal) {
        this.checker.violation('Fatal storage error', `${m.id} carried on after a failed disk write (no 'fatal')`);
      }
    }
  }

  // ------------------------------------------------------------------ clients

  private live(): SimMachine[] {
    return [...this.machines.values()].filter((m) => m.up);
  }

  private propose(): void {
    const live = this.live();
    if (live.length === 0) return;
    const m = this.rng.pick(live);
    const op = `p${++this.opSeq}`;
    this.log(`propose ${op} on ${m.id}`);
    m.driver!.propose(enc.encode(op), { timeoutMs: 300 }).then(
      (out) =>
        this.guard(() => {
          this.log(`ack ${op} at ${out.index} from ${m.id}`);
          this.ack(m.id, op, out.index);
        }),
      () => undefined,
    );
  }

  /** An external client sends its next operation, or retries the one in flight elsewhere. */
  private clientCall(): void {
    const live = this.live();
    if (live.length === 0) return;
    const c = this.rng.pick(this.clients);
    if (!c.inFlight) {
      c.seq++;
      c.inFlight = true;
    } else this.stats.retries++;
    const seq = c.seq;
    const op = `${c.id}.${seq}`;
    const m = this.rng.pick(live);
    this.log(`client ${op} on ${m.id}`);
    m.driver!.proposeAs({ clientId: c.id, seq, ackedBelow: seq, payload: enc.encode(op) }, { timeoutMs: 300 }).then(
      (out) =>
        this.guard(() => {
          this.log(`ack ${op} at ${out.index} from ${m.id}`);
          this.ack(m.id, op, out.index);
          if (c.seq === seq) c.inFlight = false;
        }),
      () => undefined,
    );
  }

  private read(): void {
    const live = this.live();
    if (live.length === 0) return;
    const m = this.rng.pick(live);
    const life = m.life!;
    const want = this.lastAcked;
    const minIndex = this.maxAckedIndex;
    m.driver!.readBarrier({ timeoutMs: 300 }).then(
      (index) =>
        this.guard(() => {
          if (life.dead || !m.sm) return;
          this.stats.reads++;
          if (index < minIndex)
            this.checker.violation('Linearizable reads', `${m.id} answered a read at ${index}, below ${minIndex} acknowledged before it`);
          if (want !== undefined && !m.sm.ops.has(want))
            this.checker.violation('Linearizable reads', `${m.id} served a read without ${want}, acknowledged before it`);
        }),
      () => undefined,
    );
  }

  // ------------------------------------------------------------------ chaos

  private chaosAction(): void {
    const p = this.params;
    const rng = this.rng;
    const all = [...this.machines.values()];
    const live = this.live();
    const down = all.filter((m) => !m.life || m.life.dead);
    const weights = [
      p.clientWeight, // 0 propose through a node's own session
      p.clientWeight / 2, // 1 an external client's call or retry
      3, // 2 read barrier
      live.length > 0 ? p.crashWeight : 0, // 3 process crash
      live.length > 0 ? p.powerLossWeight : 0, // 4 power loss
      live.length > 0 ? p.diskFaultWeight : 0, // 5 the next write fails
      p.partitionWeight, // 6 partition
      this.net.partitioned ? 1 : 0, // 7 heal
      down.length > 0 ? 4 : 0, // 8 restart
      live.length > 0 ? 0.3 : 0, // 9 leadership transfer
    ];
    switch (rng.weighted(weights)) {
      case 0:
        this.propose();
        break;
      case 1:
        this.clientCall();
        break;
      case 2:
        this.read();
        break;
      case 3:
        this.crash(rng.pick(live).id, 'crash');
        break;
      case 4: {
        // Often the leader: what it acknowledged must survive its power loss.
        const l = live.find((m) => m.driver!.isLeader());
        this.crash((l && rng.chance(0.5) ? l : rng.pick(live)).id, 'power');
        break;
      }
      case 5: {
        const m = rng.pick(live);
        m.disk.fault = rng.chance(0.5) ? 'ENOSPC' : 'EIO';
        this.stats.diskFaults++;
        this.log(`${m.id}'s next write fails with ${m.disk.fault}`);
        break;
      }
      case 6:
        this.partition();
        break;
      case 7:
        this.log('heal');
        this.net.heal();
        break;
      case 8:
        this.start(rng.pick(down).id);
        break;
      case 9: {
        const l = live.find((m) => m.driver!.isLeader());
        if (l) l.driver!.transferLeadership(undefined, 200).catch(() => undefined);
        break;
      }
    }
  }

  private partition(): void {
    const ids = [...this.machines.keys()];
    const rng = this.rng;
    switch (rng.int(3)) {
      case 0: {
        const id = rng.pick(ids);
        this.log(`isolate ${id}`);
        this.net.isolated.add(id);
        break;
      }
      case 1: {
        const sh = rng.shuffle(ids.slice());
        const k = Math.floor(sh.length / 2);
        this.log(`partition ${sh.slice(0, k).join(',')} | ${sh.slice(k).join(',')}`);
        this.net.groups = new Map(sh.map((id, i) => [id, i < k ? 1 : 0]));
        break;
      }
      case 2: {
        const a = rng.pick(ids);
        const b = rng.pick(ids);
        if (a !== b) {
          this.log(`cut ${a}>${b}`);
          this.net.cut.add(`${a}>${b}`);
        }
        break;
      }
    }
  }

  private scheduleChaos(): void {
    this.queue.after(1 + this.rng.int(8), () => {
      if (!this.chaos) return;
      this.guard(() => this.chaosAction());
      this.scheduleChaos();
    });
  }

  private async runEvent(): Promise<void> {
    if (!(await this.queue.runNext())) throw new Error('the event queue ran dry');
    if (this.failure) throw this.failure;
    this.afterEvent();
  }

  // ------------------------------------------------------------------ phases

  async run(): Promise<void> {
    for (const m of this.members) this.start(m.id);
    this.scheduleChaos();
    for (this.step = 1; this.step <= this.opts.steps; this.step++) await this.runEvent();
    this.step = this.opts.steps + 1;
    if (!this.opts.skipLiveness) await this.liveness();
  }

  /** Faults off, everything healed and running: a new proposal must commit, and all converge. */
  private async liveness(): Promise<void> {
    this.chaos = false;
    this.log('=== liveness phase ===');
    this.net.heal();
    this.net.params = { ...this.net.params, drop: 0, dup: 0 };
    for (const m of this.machines.values()) m.disk.fault = undefined;
    const t0 = this.queue.now;
    const deadline = t0 + 20_000;
    let committed = false;
    let attempt = 0;
    let nextTry = t0;
    while (this.queue.now < deadline) {
      for (const m of this.machines.values()) if (!m.life || m.life.dead) this.start(m.id);
      if (!committed && this.queue.now >= nextTry) {
        const live = this.live();
        if (live.length > 0) {
          const m = this.rng.pick(live);
          const op = `final${++attempt}`;
          nextTry = this.queue.now + 500;
          m.driver!.propose(enc.encode(op), { timeoutMs: 450 }).then(
            (out) =>
              this.guard(() => {
                this.ack(m.id, op, out.index);
                committed = true;
              }),
            () => undefined,
          );
        }
      }
      await this.runEvent();
      if (committed && this.converged()) {
        this.stats.livenessMs = this.queue.now - t0;
        this.checkFinal();
        return;
      }
    }
    throw new LivenessFailure(`no new proposal committed and applied everywhere within 20 s (virtual) after healing: ${this.describe()}`);
  }

  private converged(): boolean {
    let first: OpsMachine | undefined;
    for (const m of this.machines.values()) {
      if (!m.up || !m.sm) return false;
      const st = m.driver!.status();
      if (st.applied !== st.commit || st.commit !== st.lastIndex) return false;
      if (!first) first = m.sm;
      else if (m.sm.digest !== first.digest || m.sm.lastIndex !== first.lastIndex) return false;
    }
    return true;
  }

  /** Every acknowledged operation is in every final state machine, at its index. */
  private checkFinal(): void {
    for (const m of this.machines.values()) {
      for (const [op, index] of this.acked) {
        const at = m.sm!.ops.get(op);
        if (at !== index)
          throw new SafetyViolation(
            'Durable proposals',
            `acknowledged ${op} (index ${index}) is ${at === undefined ? 'missing' : `at index ${at}`} in ${m.id}'s final state`,
          );
      }
    }
  }

  describe(): string {
    return [...this.machines.values()]
      .map((m) => {
        if (!m.up) return `${m.id}:down`;
        const s = m.driver!.status();
        return `${m.id}:${s.role}/t${s.term}/c${s.commit}/a${s.applied}/l${s.lastIndex}`;
      })
      .join(' ');
  }

  collectStats(): void {
    const s = this.stats;
    s.steps = Math.min(this.step, this.opts.steps);
    s.virtualMs = this.queue.now;
    s.leaders = this.checker.leaders.size;
    s.acked = this.acked.size;
    s.snapsDelivered = this.net.stats.snaps;
    for (const m of this.machines.values()) if (m.driver) s.snapshots += m.driver.stats.snapshots;
  }
}

/** Runs one seed. Never throws: failures are reported in the result. */
export async function runDriverSim(opts: DriverSimOptions): Promise<DriverSimResult> {
  const sim = new DriverSim(opts);
  const base = { seed: opts.seed, nodes: opts.nodes, steps: opts.steps, params: sim.params };
  try {
    await sim.run();
    sim.collectStats();
    return { ok: true, ...base, stats: sim.stats };
  } catch (e) {
    sim.collectStats();
    const { property, error } = describeFailure(e as Error, {
      ...base, step: sim.step, label: ', driver', replay: driverReplayCommand(opts.seed, opts.nodes, opts.steps),
    });
    return { ok: false, ...base, stats: sim.stats, error, property };
  }
}

/** Replays a seed with tracing on and returns the last `lines` lines of the trace. */
export async function driverTraceTail(opts: DriverSimOptions, lines = 60): Promise<string[]> {
  const buf: string[] = [];
  await runDriverSim({
    ...opts,
    trace: (l) => {
      buf.push(l);
      if (buf.length > lines * 4) buf.splice(0, buf.length - lines);
    },
  });
  return buf.slice(-lines);
}
