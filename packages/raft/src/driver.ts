// The Raft driver: runs the pure Raft core (core/raft.ts) against a disk, a network and a clock
// given as small interfaces (driver-io.ts). It runs the Ready loop (persist, send, apply, advance,
// snapshot) and gives callers the client path: exactly-once proposals (forwarded to the leader when
// this node is a follower) and linearizable read barriers. RaftNode (node.ts) is this driver over
// LevelDB and gRPC; the randomized simulation (test/sim) runs this same driver over an in-memory
// disk that loses unsynced writes on a power loss, an in-memory network and a virtual clock.

import { EventEmitter } from 'node:events';
import { ShoalError } from '@shoal/api';
import { RaftCore, bootstrapEntries, encodeConfChange, type ProposeResult, type RaftStatus } from './core/raft.js';
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  type Entry,
  EntryType,
  type Member,
  type Message,
  NONE,
  type NodeId,
  type Ready,
  Role,
  type Snapshot,
  type SoftState,
} from './core/types.js';
import type { LoadedState } from './storage/index.js';
import type { DriverStorage, DriverTransport, DriverTransportHooks, RaftClock, TimerHandle } from './driver-io.js';
import { systemClock } from './driver-io.js';
import { SessionTable, decodeEnvelope, encodeEnvelope, sessionClientId, type Envelope } from './session.js';
import { type PinoLogger, createLogger } from './logger.js';
import { type StateMachine, captureSnapshotData, restoreSnapshotData } from './snapshot-data.js';

export type { SnapshotCapture, StateMachine } from './snapshot-data.js';

export interface RaftTimings {
  /** Milliseconds per logical tick. */
  tickMs: number;
  /** Election timeout in ticks (randomized in [n, 2n)). */
  electionTicks: number;
  heartbeatTicks: number;
}

/**
 * Defaults, etcd's: heartbeat every 200 ms, election after 1–2 s of silence (or 100–300 ms after
 * the connection to the leader breaks). A 100 ms tick gives the randomized timeouts ten steps.
 * Not shorter: a busy manager's event loop can stall a few hundred ms (seen at 1,000 nodes), and
 * 0.5–1 s timeouts called elections then.
 */
export const DEFAULT_TIMINGS: RaftTimings = { tickMs: 100, electionTicks: 10, heartbeatTicks: 2 };

/** Batch size of replication messages (the transport accepts messages up to 4 times this). */
export const DEFAULT_MAX_MSG_BYTES = 1 << 20;

/**
 * The largest proposal payload accepted, in bytes. One entry always travels whole in one message,
 * so an entry must fit the transport's per-message limit (4 x maxMsgBytes) with room to spare, or
 * no follower could ever receive it. Callers that build large transactions split them below this.
 */
export const MAX_PROPOSAL_BYTES = 1 << 20;

/**
 * The proposal limit a driver with these options applies: at most MAX_PROPOSAL_BYTES, and at most
 * half the transport's per-message limit (4 x maxMsgBytes), which leaves room for the envelope and
 * the message around the one entry.
 */
export function proposalLimit(opts: { maxProposalBytes?: number; maxMsgBytes?: number }): number {
  const transportLimit = 4 * (opts.maxMsgBytes ?? DEFAULT_MAX_MSG_BYTES);
  return Math.min(opts.maxProposalBytes ?? MAX_PROPOSAL_BYTES, MAX_PROPOSAL_BYTES, transportLimit / 2);
}

/** Applying a Ready's committed entries lets the event loop turn after this long (ms). */
const APPLY_SLICE_MS = 20;

/** Take a snapshot once the log applied since the last one holds this many bytes of commands. */
export const DEFAULT_SNAPSHOT_BYTES = 64 << 20;

/** What the driver is built from; RaftNodeOptions adds the LevelDB directory and the gRPC server. */
export interface RaftDriverOptions {
  id: NodeId;
  /** This member's Raft address (host:port), as others reach it. */
  addr: string;
  stateMachine: StateMachine;
  /** For a brand-new cluster: its founding voters (this node among them). Ignored on restart. */
  bootstrap?: Member[];
  /** Members to reach before we learn the configuration from the log (joining nodes). */
  peers?: Member[];
  /**
   * Disaster recovery (like etcd's --force-new-cluster): restart this member as the only voter
   * of the same cluster. Every entry this member holds is kept and committed (see
   * forceNewCluster below); every other member is removed by committed configuration entries.
   */
  forceNewCluster?: boolean;
  timings?: Partial<RaftTimings>;
  /** Take a snapshot and compact the log after this many applied entries. */
  snapshotEntries?: number;
  /** ... or once the commands applied since the last snapshot reach this many bytes. */
  snapshotBytes?: number;
  maxMsgBytes?: number;
  maxInflight?: number;
  /** Largest proposal payload accepted (default and upper bound: proposalLimit()). */
  maxProposalBytes?: number;
  logger?: PinoLogger;
  /** Default: the process clock. */
  clock?: RaftClock;
  /** Randomized election timeouts and this node's client id. Default Math.random. */
  random?: () => number;
  /** Told of each proposal's and each disk write's duration (metrics); absent: nobody is. */
  observer?: RaftObserver;
}

/**
 * What the driver tells an observer as it happens, for latency histograms: what can be read at
 * any time instead (term, indexes, leader changes, snapshot size) is in status().
 */
export interface RaftObserver {
  /** A proposal made through this node (propose, proposeAs) ended: applied here, or failed. */
  proposal?(seconds: number, ok: boolean): void;
  /** A write of a Ready to the disk completed; `synced`: it was fsynced. */
  save?(seconds: number, synced: boolean): void;
}

export interface ProposeOptions {
  timeoutMs?: number;
  /**
   * For a leader's own decisions (made from its local state): propose only while this node leads,
   * never through another leader, and fail with NOT_LEADER once it no longer leads. A deposed
   * leader's decision then never commits under its successor, which decides for itself.
   */
  leaderOnly?: boolean;
}

export interface ProposeOutcome {
  index: number;
  result: Uint8Array;
}

interface Waiter<T> {
  resolve(v: T): void;
  reject(e: Error): void;
}

/** What opening the disk gives the driver. */
interface DriverInit {
  core: RaftCore;
  sessions: SessionTable;
  snapshotIndex: number;
  /** The size of the snapshot on disk (0: none). */
  snapshotBytes: number;
}

/** Keeps the envelope around a payload small next to the room proposalLimit() leaves. */
const MAX_CLIENT_ID_LENGTH = 256;
const PEER_REMOVAL_GRACE_MS = 3_000;

/** A retryable failure of one attempt (we lost leadership, the leader moved): try again. */
class RetryableError extends Error {}

export class RaftDriver extends EventEmitter {
  readonly id: NodeId;
  readonly addr: string;
  protected readonly core: RaftCore;
  private readonly storage: DriverStorage;
  protected readonly transport: DriverTransport;
  private readonly sm: StateMachine;
  private sessions: SessionTable;
  protected readonly log: PinoLogger;
  private readonly timings: RaftTimings;
  private readonly snapshotEntries: number;
  private readonly snapshotBytes: number;
  readonly maxProposalBytes: number;
  private readonly clock: RaftClock;
  private readonly random: () => number;

  private ticker: TimerHandle | undefined;
  private loopScheduled = false;
  private loopRunning = false;
  /**
   * A Ready's write is in flight and nothing of that Ready remains to apply before it completes
   * (no snapshot to restore): committed entries already durable may be applied meanwhile.
   */
  private applyDuringWrite = false;
  /** A snapshot being encoded and written (see maybeSnapshot). */
  private snapshotWrite: Promise<void> | undefined;
  /** The index of the last snapshot received from the leader, from the moment its write starts. */
  private installedIndex = 0;
  private stopped = false;
  private fatal: Error | undefined;

  private role: Role = Role.Follower;
  private leader: NodeId = NONE;
  /** The term in which this node, as leader, applied an entry of its own term (see isLeaderReady). */
  private readyTerm = 0;
  private applied: number;
  private snapshotIndex: number;
  /** Bytes of commands applied since the last snapshot (an estimate of the log to compact). */
  private bytesSinceSnapshot = 0;
  private knownPeers = new Map<NodeId, string>();
  private wasMember = false;
  /** Term and vote as last written, to tell when a hard state must be synced. */
  private savedTerm = -1;
  private savedVote: NodeId = NONE;

  /** This node's own client session for proposals made through it. */
  private readonly clientName: string;
  /** This node's current client session (see sessionClientId), made at its first proposal. */
  private clientId = '';
  private nextSeq = 1;
  private outstanding = new Set<number>();

  private proposalWaiters = new Map<string, Waiter<ProposeOutcome>[]>();
  private confWaiters = new Map<number, { term: number } & Waiter<number>>();
  private readWaiters = new Map<string, Waiter<number>>();
  private appliedWaiters: { index: number; w: Waiter<void> }[] = [];
  private leaderWaiters: (() => void)[] = [];
  private readSeq = 0;
  /**
   * Counters for diagnostics, benchmarks and metrics. leaderChanges: times this node saw a new
   * leader (not the loss of one); snapshotBytes: the size of the snapshot this node holds.
   */
  readonly stats = { readies: 0, saves: 0, savedEntries: 0, saveMs: 0, appliedEntries: 0, snapshots: 0, snapshotMs: 0, leaderChanges: 0, snapshotBytes: 0 };
  private readonly observer: RaftObserver | undefined;

  /** Opens the driver over `storage` (replaying its state, bootstrapping an empty one); call start(). */
  static async openWith(
    opts: RaftDriverOptions & { storage: DriverStorage; transport: (hooks: DriverTransportHooks) => DriverTransport },
  ): Promise<RaftDriver> {
    return new RaftDriver(opts, opts.storage, opts.transport, await RaftDriver.load(opts, opts.storage));
  }

  protected constructor(
    opts: RaftDriverOptions,
    storage: DriverStorage,
    transport: (hooks: DriverTransportHooks) => DriverTransport,
    init: DriverInit,
  ) {
    super();
    this.id = opts.id;
    this.addr = opts.addr;
    this.storage = storage;
    this.core = init.core;
    this.sm = opts.stateMachine;
    this.sessions = init.sessions;
    this.applied = init.snapshotIndex;
    this.snapshotIndex = init.snapshotIndex;
    this.stats.snapshotBytes = init.snapshotBytes;
    this.observer = opts.observer;
    this.timings = { ...DEFAULT_TIMINGS, ...opts.timings };
    this.snapshotEntries = opts.snapshotEntries ?? 100_000;
    this.snapshotBytes = opts.snapshotBytes ?? DEFAULT_SNAPSHOT_BYTES;
    this.maxProposalBytes = proposalLimit(opts);
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? Math.random;
    this.log = opts.logger ?? createLogger('raft', { node: opts.id });
    let tag = '';
    for (let i = 0; i < 3; i++) tag += ((this.random() * 0x10000) >>> 0).toString(16).padStart(4, '0');
    this.clientName = `${opts.id}.${tag}`;
    this.transport = transport({
      handlers: {
        onMessage: (m: Message) => this.onMessage(m),
        onPropose: (req) => this.handleForwardedPropose(req),
        onReadBarrier: () => this.handleForwardedReadBarrier(),
        onStatus: async () => this.statusResponse(),
      },
      onUnreachable: (peer: NodeId) => {
        if (this.stopped) return;
        this.core.reportUnreachable(peer);
        this.kick();
      },
      onSnapshotStatus: (peer: NodeId, ok: boolean) => {
        if (this.stopped) return;
        this.core.reportSnapshot(peer, ok);
        this.kick();
      },
    });
    for (const m of opts.peers ?? []) this.setPeer(m.id, m.addr);
    this.syncPeers(this.core.conf());
    this.wasMember = this.isMember(this.core.conf());
  }

  /** Replays the disk (bootstrapping or force-new-cluster first if asked) into a core. */
  protected static async load(opts: RaftDriverOptions, storage: DriverStorage): Promise<DriverInit> {
    let state = await storage.load();
    if (!state || (state.entries.length === 0 && !state.snapshot && state.hardState.term === 0)) {
      if (opts.bootstrap && opts.bootstrap.length > 0) {
        if (!opts.bootstrap.some((m) => m.id === opts.id)) {
          throw new ShoalError('INVALID_ARGUMENT', `bootstrap members must include this node (${opts.id})`);
        }
        const entries = bootstrapEntries(opts.bootstrap);
        await storage.save({ hardState: { term: 1, vote: NONE, commit: entries.length }, entries });
      }
      state = await storage.load();
    }
    if (opts.forceNewCluster) {
      if (!state || (state.entries.length === 0 && !state.snapshot)) {
        throw new ShoalError('FAILED_PRECONDITION', 'force-new-cluster needs the data dir of an existing member');
      }
      await forceNewCluster(storage, state, opts.id, opts.addr);
      state = await storage.load();
    }
    const hardState = state?.hardState ?? { term: 0, vote: NONE, commit: 0 };
    const snapshot = state?.snapshot ?? undefined;
    let sessions = new SessionTable();
    if (snapshot && snapshot.meta.index > 0) sessions = await restoreSnapshotData(snapshot.data, opts.stateMachine);
    const timings = { ...DEFAULT_TIMINGS, ...opts.timings };
    const snapshotMeta = snapshot?.meta ?? { index: 0, term: 0, conf: state?.bootstrapConf ?? { voters: [], learners: [] } };
    const core = new RaftCore(
      {
        id: opts.id,
        electionTicks: timings.electionTicks,
        heartbeatTicks: timings.heartbeatTicks,
        maxMsgBytes: opts.maxMsgBytes ?? DEFAULT_MAX_MSG_BYTES,
        maxInflight: opts.maxInflight ?? 256,
        preVote: true,
        checkQuorum: true,
        random: opts.random ?? Math.random,
        maxUncommittedEntries: 100_000,
      },
      {
        hardState,
        snapshotMeta,
        entries: state?.entries ?? [],
        applied: snapshotMeta.index,
        snapshot: snapshot && snapshot.meta.index > 0 ? snapshot : undefined,
      },
    );
    return { core, sessions, snapshotIndex: snapshotMeta.index, snapshotBytes: snapshot && snapshot.meta.index > 0 ? snapshot.data.length : 0 };
  }

  start(): void {
    if (this.ticker !== undefined || this.stopped) return;
    let due = this.clock.now() + this.timings.tickMs;
    const tick = () => {
      if (this.stopped) return;
      // A tick this late means the process ran nothing for that long (a blocked event loop, a
      // starved CPU): the peers may have called an election meanwhile; say so, it explains one.
      const now = this.clock.now();
      const late = now - due;
      if (late >= (this.timings.tickMs * this.timings.electionTicks) / 2) {
        this.log.warn({ lateMs: Math.round(late), electionTimeoutMs: this.timings.tickMs * this.timings.electionTicks }, 'raft tick late: this process was blocked or starved of CPU');
      }
      due = now + this.timings.tickMs;
      this.ticker = this.clock.setTimeout(tick, this.timings.tickMs);
      this.core.tick();
      this.kick();
    };
    this.ticker = this.clock.setTimeout(tick, this.timings.tickMs);
    this.kick();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise<void>((r) => this.clock.setTimeout(r, ms));
  }

  // ------------------------------------------------------------------ the Ready loop

  private onMessage(m: Message): void {
    if (this.stopped) return;
    this.core.step(m);
    if (this.applyDuringWrite) this.applyDurableCommitted();
    this.kick();
  }

  /**
   * Applies what committed while a Ready's entries are being written, if it is durable here
   * already (a follower's acknowledgement reaching the leader, a follower learning the commit
   * index): its proposer gets its answer now, not after this write and the next Ready's.
   */
  private applyDurableCommitted(): void {
    try {
      const ents = this.core.takeDurableCommitted();
      if (ents.length === 0) return;
      this.stats.appliedEntries += ents.length;
      for (const e of ents) {
        this.applyEntry(e);
        this.applied = e.index;
      }
      this.afterApplied(true);
    } catch (err) {
      this.die(err as Error);
    }
  }

  private kick(): void {
    if (this.loopScheduled || this.stopped) return;
    this.loopScheduled = true;
    this.clock.defer(() => {
      this.loopScheduled = false;
      void this.runLoop();
    });
  }

  private async runLoop(): Promise<void> {
    if (this.loopRunning || this.stopped) return;
    this.loopRunning = true;
    try {
      while (!this.stopped && this.core.hasReady()) {
        const rd = this.core.ready();
        await this.handleReady(rd);
      }
    } catch (err) {
      this.die(err as Error);
    } finally {
      this.loopRunning = false;
    }
  }

  private async handleReady(rd: Ready): Promise<void> {
    if (rd.softState) this.onSoftState(rd.softState);
    this.stats.readies++;
    if (rd.eagerMessages.length > 0) this.transport.send(rd.eagerMessages);
    const hs = rd.hardState;
    let saving: Promise<void> | undefined;
    const t0 = performance.now();
    if (rd.snapshot || rd.entries.length > 0 || hs) {
      // Term, vote and entries must be durable before any message that depends on them leaves.
      // A commit index alone is written without a sync: it must stay close to the truth (a
      // restarted node rebuilds its membership from the entries up to it, so a stale one could
      // make it believe in an old configuration), but a process crash keeps unsynced writes.
      const sync = !!rd.snapshot || rd.entries.length > 0 || (!!hs && (hs.term !== this.savedTerm || hs.vote !== this.savedVote));
      if (rd.snapshot) this.installedIndex = rd.snapshot.meta.index;
      saving = this.storage.save({ hardState: hs, entries: rd.entries, snapshot: rd.snapshot, sync });
      // Timed as the write resolves, not as it is awaited below (after the applying meanwhile).
      if (this.observer?.save) {
        const observe = this.observer.save.bind(this.observer);
        saving.then(() => observe((performance.now() - t0) / 1000, sync), () => undefined);
      }
      saving.catch(() => undefined); // awaited below; this only keeps a failure from counting as unhandled meanwhile
      // The storage starts its write a microtask later: let it, so the applying below runs
      // while the disk syncs instead of before.
      await Promise.resolve();
    }
    // Committed entries below this Ready's new entries are already durable here: apply them while
    // the new ones are written (this is what lets a leader answer clients during its next fsync).
    const firstNew = rd.snapshot ? 0 : rd.entries.length > 0 ? rd.entries[0].index : Infinity;
    let confChanged = false;
    let k = 0;
    const committed = rd.committedEntries;
    let slice = this.clock.now();
    for (; k < committed.length && committed[k].index < firstNew; k++) {
      if (this.applyEntry(committed[k])) confChanged = true;
      this.applied = committed[k].index;
      if (k + 1 < committed.length && this.clock.now() - slice >= APPLY_SLICE_MS) {
        await this.yieldApplying();
        if (this.stopped) return;
        slice = this.clock.now();
      }
    }
    if (k > 0) this.releaseAppliedWaiters();
    // A read index is the commit index the leader confirmed; it does not wait for our disk.
    for (const rs of rd.readStates) {
      const key = Buffer.from(rs.context).toString('hex');
      const w = this.readWaiters.get(key);
      if (w) {
        this.readWaiters.delete(key);
        w.resolve(rs.index);
      }
    }
    if (saving) {
      this.applyDuringWrite = !rd.snapshot;
      try {
        await saving;
      } finally {
        this.applyDuringWrite = false;
      }
      if (hs) {
        this.savedTerm = hs.term;
        this.savedVote = hs.vote;
      }
      this.stats.saves++;
      this.stats.savedEntries += rd.entries.length;
      this.stats.saveMs += performance.now() - t0;
    }
    if (this.stopped) return;
    if (rd.messages.length > 0) this.transport.send(rd.messages);
    if (rd.snapshot) {
      // Restored in steps: this Ready (and so every later one, with the entries that follow the
      // snapshot) waits for it, while messages keep being stepped into the core and ticks keep
      // counting, so the heartbeats that arrive meanwhile keep this follower from campaigning.
      this.sessions = await restoreSnapshotData(rd.snapshot.data, this.sm);
      if (this.stopped) return;
      this.applied = rd.snapshot.meta.index;
      this.snapshotIndex = rd.snapshot.meta.index;
      this.stats.snapshotBytes = rd.snapshot.data.length;
      this.bytesSinceSnapshot = 0;
      confChanged = true;
    }
    this.stats.appliedEntries += committed.length;
    slice = this.clock.now();
    for (; k < committed.length; k++) {
      if (this.applyEntry(committed[k])) confChanged = true;
      this.applied = committed[k].index;
      if (k + 1 < committed.length && this.clock.now() - slice >= APPLY_SLICE_MS) {
        await this.yieldApplying();
        if (this.stopped) return;
        slice = this.clock.now();
      }
    }
    this.core.advance(rd);
    if (confChanged) {
      this.syncPeers(this.core.conf());
      this.emit('conf', this.core.conf());
      // 'removed' only for a node that was a member: a joining node replays the membership
      // history before the entry that adds it.
      const member = this.isMember(this.core.conf());
      if (member) this.wasMember = true;
      else if (this.wasMember) {
        this.wasMember = false;
        this.emit('removed');
      }
    }
    this.afterApplied(rd.committedEntries.length > 0);
  }

  /** What follows applying entries: waiters released, 'applied' and 'leader-ready' told, maybe a snapshot. */
  private afterApplied(anyApplied: boolean): void {
    this.releaseAppliedWaiters();
    if (anyApplied) this.emit('applied', this.applied);
    const appliedTerm = this.role === Role.Leader ? this.core.termAt(this.applied) : undefined;
    if (appliedTerm !== undefined && appliedTerm !== this.readyTerm && appliedTerm === this.core.status().term) {
      this.readyTerm = appliedTerm;
      this.emit('leader-ready', appliedTerm);
    }
    this.maybeSnapshot();
  }

  /**
   * Between two committed entries whose applying took a slice's worth: answers the proposals
   * applied so far and lets the event loop turn (heartbeats in and out, ticks), as the wait for the
   * disk does. A Ready of many large transactions (a follower catching up, a burst of 1 MiB
   * writes of hundreds of tasks each) would otherwise hold the loop for longer than an election
   * timeout. The core is not advanced meanwhile; messages stepped into it wait for the next Ready.
   */
  private async yieldApplying(): Promise<void> {
    this.releaseAppliedWaiters();
    await new Promise<void>((resolve) => this.clock.defer(resolve));
  }

  private applyEntry(e: Entry): boolean {
    if (e.type === EntryType.ConfChange) {
      const w = this.confWaiters.get(e.index);
      if (w) {
        this.confWaiters.delete(e.index);
        if (w.term === e.term) w.resolve(e.index);
        else w.reject(new RetryableError('the membership change was overwritten by a new leader'));
      }
      return true;
    }
    if (e.data.length === 0) return false; // a leader's no-op
    this.bytesSinceSnapshot += e.data.length;
    let env: Envelope;
    try {
      env = decodeEnvelope(e.data);
    } catch (err) {
      // Every member decodes the same bytes, so skipping keeps them identical.
      this.log.error({ index: e.index, err: (err as Error).message }, 'skipping malformed command');
      return false;
    }
    const outcome = this.sessions.apply(e.index, env, (payload) => this.sm.apply(payload, e.index));
    const key = `${env.clientId}/${env.seq}`;
    const waiters = this.proposalWaiters.get(key);
    if (waiters) {
      this.proposalWaiters.delete(key);
      for (const w of waiters) {
        if (outcome.kind === 'stale') {
          w.reject(
            new ShoalError('FAILED_PRECONDITION', `request ${key} is stale: its client session forgot it, so it was not applied again`, {
              details: { reason: STALE_REASON },
            }),
          );
        } else {
          w.resolve({ index: outcome.index, result: outcome.result });
        }
      }
    }
    return false;
  }

  private onSoftState(ss: SoftState): void {
    const wasLeader = this.role === Role.Leader;
    const leaderChanged = ss.leader !== this.leader;
    this.role = ss.role;
    this.leader = ss.leader;
    if (wasLeader && ss.role !== Role.Leader) {
      // Answers we promised as leader may never come from us: let the callers retry at the new
      // leader (safe: a retry carries the same client id and seq).
      this.failLeaderWaiters(new RetryableError('lost leadership'));
    }
    if (leaderChanged) {
      if (ss.leader !== NONE) this.stats.leaderChanges++;
      this.log.info({ leader: ss.leader, role: ss.role, term: this.core.status().term }, 'leader changed');
      this.emit('leader', ss.leader);
      if (ss.leader !== NONE) {
        const ws = this.leaderWaiters;
        this.leaderWaiters = [];
        for (const w of ws) w();
      }
    }
  }

  /**
   * Takes a snapshot once enough was applied since the last one (entries or bytes). The state
   * machine's state (and the session table) is captured here, at the applied index; encoding it
   * (hundreds of milliseconds for a large store, in steps if the state machine can) and writing it
   * (possibly tens of MB) go on off the loop, so Readys keep flowing and entries keep applying
   * meanwhile. The log is compacted once the snapshot is durable.
   */
  private maybeSnapshot(): void {
    if (this.snapshotWrite) return;
    if (this.applied - this.snapshotIndex < this.snapshotEntries && this.bytesSinceSnapshot < this.snapshotBytes) return;
    this.startSnapshot();
  }

  /**
   * Takes a snapshot at the applied index now, whatever the thresholds say (after any snapshot
   * already being written), and compacts the log; resolves with the index of the snapshot held.
   * For operators and tests that want the log short now (e.g. before adding a member).
   */
  async snapshotNow(): Promise<number> {
    this.checkRunning();
    for (;;) {
      if (this.stopped) return this.snapshotIndex;
      if (this.snapshotWrite) {
        await this.snapshotWrite;
        continue;
      }
      // Mid-Ready (applying, or waiting for the disk) the state machine is ahead of the core's
      // applied index, and the log may not be compacted past the core's: wait for them to agree.
      if (this.core.status().applied !== this.applied) {
        await this.sleep(Math.max(1, this.timings.tickMs / 10));
        continue;
      }
      break;
    }
    if (this.applied > this.snapshotIndex) {
      this.startSnapshot();
      await this.snapshotWrite;
    }
    return this.snapshotIndex;
  }

  private startSnapshot(): void {
    const index = this.applied;
    const term = this.core.termAt(index);
    if (term === undefined) return;
    const meta = { index, term, conf: this.core.conf() };
    const captured = captureSnapshotData(this.sessions, this.sm);
    this.bytesSinceSnapshot = 0;
    const t0 = performance.now();
    this.snapshotWrite = this.writeSnapshot(meta, captured, t0)
      .catch((err: unknown) => this.die(err as Error))
      .finally(() => {
        this.snapshotWrite = undefined;
      });
  }

  private async writeSnapshot(meta: Snapshot['meta'], captured: ReturnType<typeof captureSnapshotData>, t0: number): Promise<void> {
    const data = await captured.encode();
    // A newer snapshot from the leader was installed while this one was encoded: this one is
    // obsolete, and the disk refuses a snapshot older than the one it holds.
    if (this.stopped || meta.index <= Math.max(this.snapshotIndex, this.installedIndex)) return;
    const snap: Snapshot = { meta, data };
    await this.storage.saveSnapshot(snap);
    if (this.stopped || meta.index <= Math.max(this.snapshotIndex, this.installedIndex)) return;
    this.core.compact(snap);
    this.snapshotIndex = meta.index;
    this.stats.snapshotBytes = data.length;
    this.stats.snapshots++;
    this.stats.snapshotMs += performance.now() - t0;
    this.log.debug({ index: meta.index, bytes: data.length }, 'snapshot taken, log compacted');
  }

  private die(err: Error): void {
    if (this.fatal) return;
    this.fatal = err;
    this.log.fatal({ err: err.message }, 'raft node stopped on an unrecoverable error');
    this.stopped = true;
    if (this.ticker !== undefined) this.clock.clearTimeout(this.ticker);
    this.ticker = undefined;
    const all = new ShoalError('UNAVAILABLE', `raft node failed: ${err.message}`);
    this.failAllWaiters(all);
    this.emit('fatal', err);
  }

  /** Rejects what only a leader answers: its proposals, membership changes and read indexes. */
  private failLeaderWaiters(err: Error): void {
    for (const ws of this.proposalWaiters.values()) for (const w of ws) w.reject(err);
    this.proposalWaiters.clear();
    for (const w of this.confWaiters.values()) w.reject(err);
    this.confWaiters.clear();
    for (const w of this.readWaiters.values()) w.reject(err);
    this.readWaiters.clear();
  }

  private failAllWaiters(err: Error): void {
    this.failLeaderWaiters(err);
    for (const { w } of this.appliedWaiters) w.reject(err);
    this.appliedWaiters = [];
  }

  // ------------------------------------------------------------------ membership & peers

  private isMember(conf: ConfState): boolean {
    return conf.voters.some((m) => m.id === this.id) || conf.learners.some((m) => m.id === this.id);
  }

  private setPeer(id: NodeId, addr: string): void {
    if (id === this.id || !addr) return;
    if (this.knownPeers.get(id) === addr) return;
    this.knownPeers.set(id, addr);
    this.transport.addPeer(id, addr);
  }

  private syncPeers(conf: ConfState): void {
    const members = [...conf.voters, ...conf.learners];
    const ids = new Set(members.map((m) => m.id));
    for (const m of members) this.setPeer(m.id, m.addr);
    // Forget removed members, but only once the configuration is known (a joining node starts
    // with an empty one and must keep the peers it was given).
    if (members.length === 0) return;
    for (const id of [...this.knownPeers.keys()]) {
      if (!ids.has(id)) {
        this.knownPeers.delete(id);
        // Keep the connection a little longer so the final messages (telling it that its
        // removal committed) reach the removed member.
        this.clock.setTimeout(
          () => {
            if (!this.knownPeers.has(id) && !this.stopped) this.transport.removePeer(id);
          },
          PEER_REMOVAL_GRACE_MS,
          true,
        );
      }
    }
  }

  // ------------------------------------------------------------------ client path

  private checkRunning(): void {
    if (this.fatal) throw new ShoalError('UNAVAILABLE', `raft node failed: ${this.fatal.message}`);
    if (this.stopped) throw new ShoalError('UNAVAILABLE', 'raft node is stopped');
  }

  /**
   * Replicates a command and returns the state machine's answer once it is applied. Applied
   * exactly once, even across retries and leader changes: the command travels with this node's
   * client id and a sequence number, and the replicated session table answers a retry.
   */
  propose(payload: Uint8Array, opts: ProposeOptions = {}): Promise<ProposeOutcome> {
    return this.observed(this.proposeOnce(payload, opts));
  }

  /** `p`, its duration told to the observer. */
  private observed(p: Promise<ProposeOutcome>): Promise<ProposeOutcome> {
    const proposal = this.observer?.proposal;
    if (!proposal) return p;
    const t0 = performance.now();
    const tell = (ok: boolean) => proposal.call(this.observer, (performance.now() - t0) / 1000, ok);
    p.then(() => tell(true), () => tell(false));
    return p;
  }

  private async proposeOnce(payload: Uint8Array, opts: ProposeOptions): Promise<ProposeOutcome> {
    this.checkProposalSize(payload);
    for (let attempt = 0; ; attempt++) {
      if (!this.clientId) this.newSession();
      const clientId = this.clientId;
      const outstanding = this.outstanding;
      const seq = this.nextSeq++;
      outstanding.add(seq);
      try {
        let ackedBelow = seq;
        for (const s of outstanding) if (s < ackedBelow) ackedBelow = s;
        return await this.proposeEnvelope({ clientId, seq, ackedBelow, payload }, opts.timeoutMs ?? 10_000, opts.leaderOnly);
      } catch (err) {
        // Our session was refused as possibly evicted (it began before the table's last
        // eviction): none of its commands was applied, so retrying in a new session is safe.
        if (!isStaleSession(err) || attempt > 0) throw err;
        if (this.clientId === clientId) this.clientId = '';
      } finally {
        outstanding.delete(seq);
      }
    }
  }

  /** Starts a client session that begins after everything this node applied. */
  private newSession(): void {
    this.clientId = sessionClientId(this.clientName, this.applied);
    this.nextSeq = 1;
    this.outstanding = new Set();
  }

  /** Like propose(), for a client that manages its own id and sequence numbers (its retries). */
  proposeAs(env: Envelope, opts: ProposeOptions = {}): Promise<ProposeOutcome> {
    return this.observed(this.proposeAsOnce(env, opts));
  }

  private async proposeAsOnce(env: Envelope, opts: ProposeOptions): Promise<ProposeOutcome> {
    if (!env.clientId || !Number.isSafeInteger(env.seq) || env.seq < 1) {
      throw new ShoalError('INVALID_ARGUMENT', 'a proposal needs a client id and a positive integer sequence number');
    }
    if (env.clientId.length > MAX_CLIENT_ID_LENGTH) {
      throw new ShoalError('INVALID_ARGUMENT', `a client id is at most ${MAX_CLIENT_ID_LENGTH} characters`);
    }
    this.checkProposalSize(env.payload);
    return this.proposeEnvelope(env, opts.timeoutMs ?? 10_000);
  }

  /**
   * Refuses a payload above maxProposalBytes: one entry travels whole in one message, so a larger
   * one could leave followers unable to receive the log (and every later write uncommitted).
   */
  private checkProposalSize(payload: Uint8Array): void {
    if (payload.length > this.maxProposalBytes) {
      throw new ShoalError(
        'RESOURCE_EXHAUSTED',
        `proposal of ${payload.length} bytes exceeds the limit of ${this.maxProposalBytes} bytes`,
        { details: { bytes: String(payload.length), limit: String(this.maxProposalBytes) } },
      );
    }
  }

  private async proposeEnvelope(env: Envelope, timeoutMs: number, leaderOnly = false): Promise<ProposeOutcome> {
    const deadline = this.clock.now() + timeoutMs;
    let lastErr: Error | undefined;
    while (this.clock.now() < deadline) {
      this.checkRunning();
      if (leaderOnly && this.role !== Role.Leader) throw notLeader(this.leader);
      const remaining = deadline - this.clock.now();
      try {
        if (this.role === Role.Leader) return await this.proposeLocally(env, remaining);
        if (this.leader !== NONE && this.knownPeers.has(this.leader)) {
          const out = await this.transport.propose(
            this.leader,
            { client_id: env.clientId, seq: env.seq, acked_below: env.ackedBelow, payload: env.payload },
            remaining,
          );
          const res = { index: Number(out.index), result: new Uint8Array(out.result ?? []) };
          // Read-your-writes through this node: wait until we applied it too.
          await this.waitApplied(res.index, deadline - this.clock.now());
          return res;
        }
        await this.awaitLeaderAddress(remaining);
        continue;
      } catch (err) {
        if (!isRetryable(err)) throw err;
        lastErr = err as Error;
      }
      await this.sleep(Math.min(20, Math.max(0, deadline - this.clock.now())));
    }
    throw new ShoalError('UNAVAILABLE', `proposal timed out after ${timeoutMs} ms: ${lastErr?.message ?? 'no leader'}`);
  }

  private proposeLocally(env: Envelope, timeoutMs: number): Promise<ProposeOutcome> {
    const r = this.core.propose(encodeEnvelope(env));
    if (!r.ok) return Promise.reject(refusalError(r));
    const key = `${env.clientId}/${env.seq}`;
    this.kick();
    return this.withTimeout(
      new Promise<ProposeOutcome>((resolve, reject) => {
        const list = this.proposalWaiters.get(key) ?? [];
        list.push({ resolve, reject });
        this.proposalWaiters.set(key, list);
      }),
      timeoutMs,
      () => this.proposalWaiters.delete(key),
    );
  }

  private async handleForwardedPropose(req: {
    client_id: string;
    seq: number;
    acked_below?: number;
    payload: Uint8Array;
  }): Promise<{ index: number; result: Uint8Array }> {
    this.checkRunning();
    if (this.role !== Role.Leader) throw notLeader(this.leader);
    if (!req.client_id || !Number.isSafeInteger(Number(req.seq)) || Number(req.seq) < 1) {
      throw new ShoalError('INVALID_ARGUMENT', 'a forwarded proposal needs a client id and a positive sequence number');
    }
    if (req.client_id.length > MAX_CLIENT_ID_LENGTH) {
      throw new ShoalError('INVALID_ARGUMENT', `a client id is at most ${MAX_CLIENT_ID_LENGTH} characters`);
    }
    this.checkProposalSize(req.payload);
    try {
      return await this.proposeLocally(
        { clientId: req.client_id, seq: Number(req.seq), ackedBelow: Number(req.acked_below ?? 0), payload: new Uint8Array(req.payload) },
        5_000,
      );
    } catch (err) {
      if (err instanceof RetryableError) throw notLeader(this.leader);
      throw err;
    }
  }

  /**
   * A linearizable read barrier: resolves with an index once this node's state machine has
   * applied everything committed before the call, so a read of local state after it is current.
   */
  async readBarrier(opts: ProposeOptions = {}): Promise<number> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = this.clock.now() + timeoutMs;
    let lastErr: Error | undefined;
    while (this.clock.now() < deadline) {
      this.checkRunning();
      const remaining = deadline - this.clock.now();
      try {
        let index: number;
        if (this.role === Role.Leader) index = await this.leaderReadIndex(remaining);
        else if (this.leader !== NONE && this.knownPeers.has(this.leader)) {
          const out = await this.transport.readBarrier(this.leader, { from: this.id }, remaining);
          index = Number(out.index);
        } else {
          await this.awaitLeaderAddress(remaining);
          continue;
        }
        await this.waitApplied(index, deadline - this.clock.now());
        return index;
      } catch (err) {
        if (!isRetryable(err)) throw err;
        lastErr = err as Error;
      }
      await this.sleep(Math.min(20, Math.max(0, deadline - this.clock.now())));
    }
    throw new ShoalError('UNAVAILABLE', `read barrier timed out after ${timeoutMs} ms: ${lastErr?.message ?? 'no leader'}`);
  }

  private leaderReadIndex(timeoutMs: number): Promise<number> {
    const ctx = Buffer.alloc(12);
    ctx.writeUInt32BE(++this.readSeq >>> 0, 0);
    ctx.writeUInt32BE((this.random() * 2 ** 32) >>> 0, 4);
    ctx.writeUInt32BE((this.random() * 2 ** 32) >>> 0, 8);
    const key = ctx.toString('hex');
    const r = this.core.readIndex(new Uint8Array(ctx));
    if (!r.ok) return Promise.reject(refusalError(r));
    this.kick();
    return this.withTimeout(
      new Promise<number>((resolve, reject) => this.readWaiters.set(key, { resolve, reject })),
      timeoutMs,
      () => this.readWaiters.delete(key),
    );
  }

  private async handleForwardedReadBarrier(): Promise<{ index: number }> {
    this.checkRunning();
    if (this.role !== Role.Leader) throw notLeader(this.leader);
    try {
      return { index: await this.leaderReadIndex(5_000) };
    } catch (err) {
      if (err instanceof RetryableError) throw notLeader(this.leader);
      throw err;
    }
  }

  /** Resolves once this node applied through `index`. */
  waitApplied(index: number, timeoutMs: number): Promise<void> {
    if (this.applied >= index) return Promise.resolve();
    const entry = { index, w: undefined as unknown as Waiter<void> };
    return this.withTimeout(
      new Promise<void>((resolve, reject) => {
        entry.w = { resolve, reject };
        this.appliedWaiters.push(entry);
      }),
      timeoutMs,
      () => {
        const i = this.appliedWaiters.indexOf(entry);
        if (i >= 0) this.appliedWaiters.splice(i, 1);
      },
    );
  }

  private releaseAppliedWaiters(): void {
    if (this.appliedWaiters.length === 0) return;
    const keep: typeof this.appliedWaiters = [];
    for (const e of this.appliedWaiters) {
      if (e.index <= this.applied) e.w.resolve();
      else keep.push(e);
    }
    this.appliedWaiters = keep;
  }

  /**
   * No leader to send to: wait for one. A leader known without an address (a restarted member
   * hears from it before it re-applies the membership entries) is waited out a tick at a time:
   * going round again at once would spin without ever yielding to the event loop.
   */
  private awaitLeaderAddress(remaining: number): Promise<void> {
    if (this.leader !== NONE) return this.sleep(Math.max(1, Math.min(remaining, this.timings.tickMs)));
    return this.waitForLeader(Math.min(remaining, this.timings.tickMs * this.timings.electionTicks));
  }

  private waitForLeader(timeoutMs: number): Promise<void> {
    if (this.leader !== NONE) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const clock = this.clock;
      const t = clock.setTimeout(done, Math.max(1, timeoutMs));
      this.leaderWaiters.push(done);
      function done() {
        clock.clearTimeout(t);
        resolve();
      }
    });
  }

  private withTimeout<T>(p: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const t = this.clock.setTimeout(() => {
        onTimeout();
        reject(new RetryableError(`no answer within ${ms} ms`));
      }, Math.max(1, ms));
      p.then(
        (v) => {
          this.clock.clearTimeout(t);
          resolve(v);
        },
        (e) => {
          this.clock.clearTimeout(t);
          reject(e);
        },
      );
    });
  }

  // ------------------------------------------------------------------ membership API (leader)

  /** Proposes a membership change on the leader and resolves once it is applied here. */
  async changeMembership(cc: ConfChange, timeoutMs = 10_000): Promise<number> {
    this.checkRunning();
    if (this.role !== Role.Leader) throw notLeader(this.leader);
    if (cc.type === ConfChangeType.AddLearner || cc.type === ConfChangeType.PromoteLearner) {
      if (cc.addr) this.setPeer(cc.nodeId, cc.addr);
    }
    const r = this.core.proposeConfChange(cc);
    if (!r.ok) throw refusalError(r);
    this.kick();
    try {
      return await this.withTimeout(
        new Promise<number>((resolve, reject) => this.confWaiters.set(r.index, { term: r.term, resolve, reject })),
        timeoutMs,
        () => this.confWaiters.delete(r.index),
      );
    } catch (err) {
      if (err instanceof RetryableError) throw new ShoalError('UNAVAILABLE', `membership change not confirmed: ${err.message}`);
      throw err;
    }
  }

  addLearner(id: NodeId, addr: string, timeoutMs?: number): Promise<number> {
    return this.changeMembership({ type: ConfChangeType.AddLearner, nodeId: id, addr }, timeoutMs);
  }

  /**
   * Adds a member the safe way: as a learner first, promoted to voter once its log has caught up
   * with the leader's commit index (so adding it never stalls commits while it copies the log).
   */
  async addVoter(id: NodeId, addr: string, timeoutMs = 60_000): Promise<number> {
    const deadline = this.clock.now() + timeoutMs;
    const conf = this.core.conf();
    if (!conf.learners.some((m) => m.id === id)) await this.addLearner(id, addr, timeoutMs);
    for (;;) {
      if (this.role !== Role.Leader) throw notLeader(this.leader);
      const st = this.core.status();
      const p = st.progress[id];
      if (p && p.match >= st.commit) break;
      if (this.clock.now() > deadline) {
        throw new ShoalError('UNAVAILABLE', `learner ${id} did not catch up within ${timeoutMs} ms (at ${p?.match ?? 0} of ${st.commit})`);
      }
      await this.sleep(this.timings.tickMs / 4);
    }
    return this.promote(id, Math.max(1, deadline - this.clock.now()));
  }

  promote(id: NodeId, timeoutMs?: number): Promise<number> {
    const m = this.core.conf().learners.find((l) => l.id === id);
    return this.changeMembership({ type: ConfChangeType.PromoteLearner, nodeId: id, addr: m?.addr ?? '' }, timeoutMs);
  }

  removeMember(id: NodeId, timeoutMs?: number): Promise<number> {
    return this.changeMembership({ type: ConfChangeType.RemoveNode, nodeId: id, addr: '' }, timeoutMs);
  }

  /**
   * Hands leadership to `to` (or the most up-to-date other voter) and waits until this node is no
   * longer the leader. Used for graceful shutdown and demotion.
   */
  async transferLeadership(to?: NodeId, timeoutMs?: number): Promise<NodeId> {
    this.checkRunning();
    if (this.role !== Role.Leader) throw notLeader(this.leader);
    const st = this.core.status();
    let target = to;
    if (!target) {
      let best = -1;
      for (const v of st.conf.voters) {
        if (v.id === this.id) continue;
        const p = st.progress[v.id];
        if (p && p.match > best) {
          best = p.match;
          target = v.id;
        }
      }
    }
    if (!target) throw new ShoalError('FAILED_PRECONDITION', 'no other voter to hand leadership to');
    const r = this.core.transferLeadership(target);
    if (!r.ok) throw refusalError(r);
    this.kick();
    const limit = timeoutMs ?? this.timings.tickMs * this.timings.electionTicks * 2;
    const deadline = this.clock.now() + limit;
    while (this.clock.now() < deadline) {
      if (this.role !== Role.Leader) return this.leader;
      await this.sleep(5);
    }
    throw new ShoalError('UNAVAILABLE', `leadership transfer to ${target} did not complete within ${limit} ms`);
  }

  // ------------------------------------------------------------------ status & lifecycle

  status(): RaftStatus & { peers: Record<NodeId, string>; stats: RaftDriver['stats'] } {
    return { ...this.core.status(), applied: this.applied, peers: Object.fromEntries(this.knownPeers), stats: { ...this.stats } };
  }

  /** Asks a member for its Raft status over gRPC (undefined if it does not answer in time). */
  async memberStatus(id: NodeId, timeoutMs = 1_000) {
    const addr = id === this.id ? this.addr : this.knownPeers.get(id);
    if (!addr) return undefined;
    if (id === this.id) return this.statusResponse();
    try {
      return await this.transport.status(addr, timeoutMs);
    } catch {
      return undefined;
    }
  }

  isLeader(): boolean {
    return this.role === Role.Leader;
  }

  /**
   * Whether this node leads and has applied an entry of its own term (the no-op a new leader
   * appends): only then does its state machine hold everything committed before it took over, so
   * decisions read from local state cannot undo what an earlier leader committed. A new leader
   * emits 'leader-ready' (with its term) once this becomes true.
   */
  isLeaderReady(): boolean {
    return this.role === Role.Leader && this.readyTerm === this.core.status().term;
  }

  leaderId(): NodeId {
    return this.leader;
  }

  leaderAddr(): string | undefined {
    return this.leader === this.id ? this.addr : this.knownPeers.get(this.leader);
  }

  private statusResponse() {
    const st = this.core.status();
    return {
      id: this.id,
      term: st.term,
      leader: st.leader,
      role: st.role,
      commit: st.commit,
      applied: this.applied,
      last_index: st.lastIndex,
      recent_active:
        st.role === Role.Leader ? [this.id, ...Object.entries(st.progress).filter(([id, p]) => id !== this.id && p.recentActive).map(([id]) => id)] : [],
    };
  }

  /** Stops the node; with transfer, a leader first hands leadership to another voter. */
  async stop(opts: { transfer?: boolean } = {}): Promise<void> {
    if (this.stopped && this.ticker === undefined) return;
    if (opts.transfer && this.role === Role.Leader && !this.fatal) {
      try {
        await this.transferLeadership();
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'leadership transfer before stop failed');
      }
    }
    this.stopped = true;
    if (this.ticker !== undefined) this.clock.clearTimeout(this.ticker);
    this.ticker = undefined;
    // Let an in-flight save finish before closing the database under it.
    while (this.loopRunning) await this.sleep(2);
    await this.snapshotWrite;
    this.failAllWaiters(new ShoalError('UNAVAILABLE', 'raft node is stopping'));
    this.transport.close();
    await this.storage.close();
  }
}

/**
 * Rewrites the stored log so that this node is the only voter. Every entry this node holds is
 * kept and treated as committed: the stored commit index may lag (it is not written on its own),
 * and with the rest of the cluster gone, an entry that reached this survivor may have been
 * acknowledged to a client. Then RemoveNode entries for every other member follow, in a new term.
 */
async function forceNewCluster(
  storage: DriverStorage,
  state: LoadedState,
  id: NodeId,
  addr: string,
): Promise<void> {
  const hs = state.hardState;
  const snapshotMeta = state.snapshot?.meta ?? { index: 0, term: 0, conf: state.bootstrapConf ?? { voters: [], learners: [] } };
  const last = state.entries.length > 0 ? state.entries[state.entries.length - 1].index : snapshotMeta.index;
  // Replay the whole log in a throwaway core to learn the resulting membership.
  const probe = new RaftCore(
    { id, electionTicks: 10, heartbeatTicks: 1, maxMsgBytes: 1 << 20, maxInflight: 1, preVote: true, checkQuorum: true, random: () => 0 },
    { hardState: { ...hs, commit: last }, snapshotMeta, entries: state.entries, applied: snapshotMeta.index },
  );
  probe.ready();
  const conf = probe.conf();
  const term = Math.max(hs.term, state.entries.length > 0 ? state.entries[state.entries.length - 1].term : snapshotMeta.term) + 1;
  let index = last;
  const entries: Entry[] = [];
  const add = (cc: ConfChange) => entries.push({ term, index: ++index, type: EntryType.ConfChange, data: encodeConfChange(cc) });
  if (!conf.voters.some((m) => m.id === id)) add({ type: ConfChangeType.AddVoter, nodeId: id, addr });
  for (const m of [...conf.voters, ...conf.learners]) {
    if (m.id !== id) add({ type: ConfChangeType.RemoveNode, nodeId: m.id, addr: '' });
  }
  if (entries.length === 0) {
    if (hs.commit < last) await storage.save({ entries: [], hardState: { ...hs, commit: last } });
    return;
  }
  await storage.save({ entries, hardState: { term, vote: id, commit: index } });
}

const STALE_REASON = 'stale-session';

function isStaleSession(err: unknown): boolean {
  return err instanceof ShoalError && err.code === 'FAILED_PRECONDITION' && err.details.reason === STALE_REASON;
}

function isRetryable(err: unknown): boolean {
  if (err instanceof RetryableError) return true;
  if (err instanceof ShoalError) return err.code === 'NOT_LEADER' || err.code === 'UNAVAILABLE';
  return false;
}

function notLeader(leader: NodeId): ShoalError {
  return new ShoalError('NOT_LEADER', 'this node is not the leader', { details: { leader } });
}

function refusalError(r: Extract<ProposeResult, { ok: false }>): Error {
  switch (r.code) {
    case 'not-leader':
    case 'transfer-in-progress':
    case 'too-many-uncommitted':
      return new RetryableError(r.message);
    case 'conf-change-pending':
    case 'no-entry-in-term':
      return new ShoalError('FAILED_PRECONDITION', r.message);
    case 'invalid-conf-change':
      return new ShoalError('INVALID_ARGUMENT', r.message);
  }
}
