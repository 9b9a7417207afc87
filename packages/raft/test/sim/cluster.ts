// An in-memory cluster of RaftCore nodes with simulated disks, state machines, drivers and network.
// Shared by the randomized simulation (sim.ts) and the deterministic scenario tests.
//
// Each node's driver follows the Ready contract of API.md:
//   1. persist rd.snapshot, rd.entries (replacing stored entries at >= their index), rd.hardState
//      (rd.eagerMessages may be sent before this step);
//   2. send rd.messages;
//   3. apply rd.snapshot then rd.committedEntries to the state machine;
//   4. core.advance(rd).
// A crash throws away the RaftCore, the state machine and everything in memory; only the Disk
// survives. A restart builds RaftInitialState from the disk (applied = snapshot index) and rebuilds
// the state machine from the snapshot; the core then hands the committed entries out again.

import { RaftCore, bootstrapEntries, decodeConfChange } from '../../src/core/raft.js';
import {
  ConfChangeType,
  EntryType,
  MessageType,
  NONE,
  Role,
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
  type RaftConfig,
  type RaftInitialState,
  type Ready,
  type Snapshot,
} from '../../src/core/types.js';
import { SafetyChecker } from './checker.js';
import { Rng } from './prng.js';

export type ProposeResult = ReturnType<RaftCore['propose']>;
export type Status = ReturnType<RaftCore['status']>;

const enc = new TextEncoder();
const dec = new TextDecoder();

export const utf8 = (s: string): Uint8Array => enc.encode(s);
export const fromUtf8 = (b: Uint8Array): string => dec.decode(b);

/** An exact string identity of an entry's payload (for comparisons between nodes). */
export function entryKey(type: EntryType, data: Uint8Array): string {
  let s = type === EntryType.Normal ? 'N:' : 'C:';
  for (let i = 0; i < data.length; i++) s += String.fromCharCode(data[i]!);
  return s;
}

const FNV_OFFSET = 0x811c9dc5;
function fnvByte(h: number, b: number): number {
  return Math.imul(h ^ (b & 0xff), 0x01000193) >>> 0;
}
function fnvNum(h: number, n: number): number {
  h = fnvByte(h, n);
  h = fnvByte(h, n >>> 8);
  h = fnvByte(h, n >>> 16);
  return fnvByte(h, n >>> 24);
}
function digestStep(h: number, e: Entry): number {
  h = fnvNum(h, e.index);
  h = fnvNum(h, e.term);
  h = fnvNum(h, e.type);
  h = fnvNum(h, e.data.length);
  for (let i = 0; i < e.data.length; i++) h = fnvByte(h, e.data[i]!);
  return h;
}

export function cloneConf(c: ConfState): ConfState {
  return { voters: c.voters.map((m) => ({ ...m })), learners: c.learners.map((m) => ({ ...m })) };
}

export function confIds(c: ConfState): { voters: string[]; learners: string[] } {
  return { voters: c.voters.map((m) => m.id).sort(), learners: c.learners.map((m) => m.id).sort() };
}

export function confEqual(a: ConfState, b: ConfState): boolean {
  const x = confIds(a);
  const y = confIds(b);
  return x.voters.join(',') === y.voters.join(',') && x.learners.join(',') === y.learners.join(',');
}

export function showConf(c: ConfState): string {
  const x = confIds(c);
  return `{voters: ${x.voters.join(',')}; learners: ${x.learners.join(',')}}`;
}

export const isVoter = (c: ConfState, id: NodeId): boolean => c.voters.some((m) => m.id === id);
export const isLearner = (c: ConfState, id: NodeId): boolean => c.learners.some((m) => m.id === id);
export const isMember = (c: ConfState, id: NodeId): boolean => isVoter(c, id) || isLearner(c, id);

/** Our model of a conf change's effect (invalid changes are no-ops); cross-checked with core.conf(). */
export function applyConfChange(conf: ConfState, cc: ConfChange): ConfState {
  const voters = conf.voters.map((m) => ({ ...m }));
  const learners = conf.learners.map((m) => ({ ...m }));
  const m = { id: cc.nodeId, addr: cc.addr };
  const vi = voters.findIndex((x) => x.id === cc.nodeId);
  const li = learners.findIndex((x) => x.id === cc.nodeId);
  switch (cc.type) {
    case ConfChangeType.AddLearner:
      if (vi >= 0) break;
      if (li >= 0) learners[li] = m;
      else learners.push(m);
      break;
    case ConfChangeType.PromoteLearner:
      if (li < 0) break;
      learners.splice(li, 1);
      voters.push({ id: cc.nodeId, addr: m.addr || conf.learners[li]!.addr });
      break;
    case ConfChangeType.AddVoter:
      if (vi >= 0) break;
      if (li >= 0) learners.splice(li, 1);
      voters.push(m);
      break;
    case ConfChangeType.RemoveNode:
      if (vi >= 0) {
        if (voters.length === 1) break;
        voters.splice(vi, 1);
      }
      if (li >= 0) learners.splice(li, 1);
      break;
  }
  return { voters, learners };
}

/** The replicated state machine: a key/value map of client proposals, plus the applied history's digest. */
export class KvStateMachine {
  applied = 0;
  appliedTerm = 0;
  digest = FNV_OFFSET;
  readonly kv = new Map<string, string>();
  /** proposal id -> index it was applied at */
  readonly cmds = new Map<string, number>();
  conf: ConfState;

  constructor(conf: ConfState) {
    this.conf = cloneConf(conf);
  }

  encode(): Uint8Array {
    return utf8(
      JSON.stringify({
        a: this.applied,
        t: this.appliedTerm,
        d: this.digest,
        kv: [...this.kv],
        c: [...this.cmds],
      }),
    );
  }

  static restore(snap: Snapshot): KvStateMachine {
    const sm = new KvStateMachine(snap.meta.conf);
    const o = JSON.parse(fromUtf8(snap.data)) as {
      a: number;
      t: number;
      d: number;
      kv: [string, string][];
      c: [string, number][];
    };
    sm.applied = o.a;
    sm.appliedTerm = o.t;
    sm.digest = o.d;
    for (const [k, v] of o.kv) sm.kv.set(k, v);
    for (const [k, v] of o.c) sm.cmds.set(k, v);
    return sm;
  }
}

/** What survives a crash. */
export class Disk {
  hardState: HardState = { term: 0, vote: NONE, commit: 0 };
  snapshot: Snapshot | null = null;
  /** Entries after the snapshot, contiguous. */
  entries: Entry[] = [];
  /** Fault injection (non-vacuity tests only): the disk does not really persist votes. */
  forgetVote = false;
  /**
   * With unsynced commit-only writes (as the real driver does): the last synced hard state, if
   * the current one was written without sync (a crash reverts to it).
   */
  syncedHardState: HardState | null = null;

  /**
   * A founder's disk holds the bootstrap entries (one AddVoter per founder, term 1) with
   * hardState {term 1, commit n}; a joining node's disk starts empty.
   */
  constructor(founders: ConfState | null) {
    if (founders) {
      this.entries = bootstrapEntries(founders.voters);
      this.hardState = { term: 1, vote: NONE, commit: this.entries.length };
    }
  }

  get snapIndex(): number {
    return this.snapshot ? this.snapshot.meta.index : 0;
  }
  get snapTerm(): number {
    return this.snapshot ? this.snapshot.meta.term : 0;
  }
  lastIndex(): number {
    return this.snapIndex + this.entries.length;
  }
  termAt(i: number): number | undefined {
    const s = this.snapIndex;
    if (i === s) return this.snapTerm;
    if (i < s || i > s + this.entries.length) return undefined;
    return this.entries[i - s - 1]!.term;
  }
  entryAt(i: number): Entry | undefined {
    const s = this.snapIndex;
    if (i <= s || i > s + this.entries.length) return undefined;
    return this.entries[i - s - 1];
  }

  /** A crash: writes that were not synced are lost. */
  crashed(): void {
    if (this.syncedHardState) this.hardState = this.syncedHardState;
    this.syncedHardState = null;
  }

  initialState(): RaftInitialState {
    const meta = this.snapshot
      ? { index: this.snapshot.meta.index, term: this.snapshot.meta.term, conf: cloneConf(this.snapshot.meta.conf) }
      : { index: 0, term: 0, conf: { voters: [], learners: [] } };
    if (this.forgetVote) this.hardState = { ...this.hardState, vote: NONE };
    return {
      hardState: { ...this.hardState },
      snapshotMeta: meta,
      entries: this.entries.map((e) => ({ ...e })),
      applied: meta.index,
      ...(this.snapshot ? { snapshot: this.snapshot } : {}),
    };
  }
}

export class SimNode {
  core: RaftCore | null = null;
  sm: KvStateMachine | null = null;
  /** Bumped at every start: messages and snapshot reports of a previous life are not delivered to the new one. */
  incarnation = 0;
  /** The node was a member and then applied a configuration without itself: it shut down for good. */
  selfRemoved = false;
  everMember = false;
  pendingReads: { ctx: string; index: number }[] = [];
  /** A Ready being written asynchronously (the core may be stepped meanwhile), with how many of its
   * committed entries were applied before the write (those already durable). */
  writing: { rd: Ready; applied: number } | null = null;
  /** The highest term and commit index its status showed in this life (they never go back). */
  seenTerm = 0;
  seenCommit = 0;
  readonly disk: Disk;

  constructor(
    readonly id: NodeId,
    founders: ConfState | null,
  ) {
    this.disk = new Disk(founders);
  }

  get alive(): boolean {
    return this.core !== null;
  }

  status(): Status {
    if (!this.core) throw new Error(`${this.id} is down`);
    return this.core.status();
  }
}

interface InFlight {
  msg: Message;
  /** The sender's incarnation when it sent the message. */
  inc: number;
  /** Report the outcome of this Snap message to the sender (not for network duplicates). */
  reportSnap: boolean;
}

export interface NetOpts {
  /** Probability that a message is dropped. */
  drop?: number;
  /** Probability that a message is held back until the next flush (delay / reordering across rounds). */
  delay?: number;
  /** Probability that a delivered message is also kept for a second delivery. */
  dup?: number;
  /** Deliver in random order instead of FIFO. */
  reorder?: boolean;
}

export interface ClusterOptions {
  /** The bootstrap voters (all started). */
  voters: NodeId[];
  seed?: number;
  rng?: Rng;
  config?: Partial<Omit<RaftConfig, 'id' | 'random'>>;
  /** Take a snapshot when the applied log since the last one reaches this many entries (default: never). */
  snapshotThreshold?: number;
  checker?: SafetyChecker;
  trace?: (line: string) => void;
  /** Probability to process a node's Ready right after each input (default 1). */
  autoReadyProb?: number;
  /** Probability to send rd.eagerMessages before persisting (default 0.5). */
  eagerFirstProb?: number;
  /** Probability of a crash after sending eager messages, before persisting (default 0). */
  crashBeforePersistProb?: number;
  /** Probability of a crash after persisting, before sending messages (default 0). */
  crashAfterPersistProb?: number;
  /**
   * Probability that a Ready is written asynchronously, like the real driver (node.ts): eager
   * messages sent, already-durable committed entries applied and read states handed out, then the
   * write is in flight while the core keeps being stepped, ticked and proposed to; it completes in
   * a later event (default 0).
   */
  asyncWriteProb?: number;
  /** Commit-only hard states are written without sync (a crash may lose them), like the real driver. */
  unsyncedCommit?: boolean;
  /** Probability that a dropped message is reported to its sender as unreachable (default 0). */
  reportUnreachableProb?: number;
  /** Fault injection for the non-vacuity test: disks forget votes across restarts. */
  forgetVote?: boolean;
  /**
   * Fault injection for the non-vacuity test: a buggy driver that sends rd.messages before
   * persisting (and may crash in between, with crashBeforePersistProb). The durability checks on
   * sent messages are off in this mode, so that the end-to-end safety checks must catch it.
   */
  sendBeforePersist?: boolean;
}

export interface ClusterStats {
  sent: number;
  delivered: number;
  dropped: number;
  snapsDelivered: number;
  compactions: number;
  crashes: number;
  restarts: number;
  midReadyCrashes: number;
  asyncWrites: number;
  /** Entries applied by takeDurableCommitted while a write was in flight. */
  writeTimeApplies: number;
  proposalsAccepted: number;
  confChangesApplied: number;
  readsServed: number;
  appRejects: number;
}

export interface ReadLogEntry {
  node: NodeId;
  ctx: string;
  index: number;
}

export const DEFAULT_CONFIG: Omit<RaftConfig, 'id' | 'random'> = {
  electionTicks: 10,
  heartbeatTicks: 1,
  maxMsgBytes: 1 << 20,
  maxInflight: 256,
  preVote: false,
  checkQuorum: false,
};

export class Cluster {
  readonly nodes = new Map<NodeId, SimNode>();
  readonly rng: Rng;
  readonly checker: SafetyChecker;
  readonly bootstrap: ConfState;
  readonly config: Omit<RaftConfig, 'id' | 'random'>;
  readonly opts: ClusterOptions;
  snapshotThreshold: number;
  autoReadyProb: number;
  crashBeforePersistProb: number;
  crashAfterPersistProb: number;
  asyncWriteProb: number;
  trace: ((line: string) => void) | undefined;

  /** Messages in flight. */
  pool: InFlight[] = [];
  private deferred: InFlight[] = [];
  readonly isolated = new Set<NodeId>();
  groups: Map<NodeId, number> | null = null;
  /** Directed links that are cut: `${from}>${to}`. */
  readonly cut = new Set<string>();

  /** `${index}/${term}` -> the ConfChange proposed there (to cross-check the entries applied). */
  readonly confChanges = new Map<string, ConfChange>();
  /** Every ReadState produced (for scenario assertions). */
  readonly readLog: ReadLogEntry[] = [];
  /** Called on each message delivered to a node (before it is stepped). */
  onDeliver: ((m: Message) => void) | undefined;
  /** Called on each message a node sends. */
  onSend: ((m: Message) => void) | undefined;

  readonly stats: ClusterStats = {
    sent: 0,
    delivered: 0,
    dropped: 0,
    snapsDelivered: 0,
    compactions: 0,
    crashes: 0,
    restarts: 0,
    midReadyCrashes: 0,
    asyncWrites: 0,
    writeTimeApplies: 0,
    proposalsAccepted: 0,
    confChangesApplied: 0,
    readsServed: 0,
    appRejects: 0,
  };

  private readSeq = 0;

  constructor(opts: ClusterOptions) {
    this.opts = opts;
    this.rng = opts.rng ?? new Rng(opts.seed ?? 1);
    this.checker = opts.checker ?? new SafetyChecker();
    this.config = { ...DEFAULT_CONFIG, ...opts.config };
    this.snapshotThreshold = opts.snapshotThreshold ?? Infinity;
    this.autoReadyProb = opts.autoReadyProb ?? 1;
    this.crashBeforePersistProb = opts.crashBeforePersistProb ?? 0;
    this.crashAfterPersistProb = opts.crashAfterPersistProb ?? 0;
    this.asyncWriteProb = opts.asyncWriteProb ?? 0;
    this.trace = opts.trace;
    this.bootstrap = { voters: opts.voters.map((id) => ({ id, addr: addrOf(id) })), learners: [] };
    for (const id of opts.voters) this.addNode(id, true);
  }

  // ---------------------------------------------------------------------------------------------
  // Nodes

  node(id: NodeId): SimNode {
    const n = this.nodes.get(id);
    if (!n) throw new Error(`no node ${id}`);
    return n;
  }

  core(id: NodeId): RaftCore {
    const c = this.node(id).core;
    if (!c) throw new Error(`${id} is down`);
    return c;
  }

  ids(): NodeId[] {
    return [...this.nodes.keys()];
  }

  alive(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.core !== null);
  }

  /**
   * Creates a brand-new node and starts it: a founder's disk holds the bootstrap entries, a joining
   * node's disk is empty (it learns the membership from the log or a snapshot).
   */
  addNode(id: NodeId, founder = false): SimNode {
    if (this.nodes.has(id)) throw new Error(`node ${id} exists`);
    const n = new SimNode(id, founder ? this.bootstrap : null);
    n.disk.forgetVote = this.opts.forgetVote ?? false;
    for (const e of n.disk.entries)
      this.checker.entryStored(id, e.index, e.term, entryKey(e.type, e.data), n.disk.termAt(e.index - 1));
    this.nodes.set(id, n);
    this.start(id);
    return n;
  }

  makeConfig(id: NodeId): RaftConfig {
    const r = this.rng.fork();
    return { ...this.config, id, random: () => r.next() };
  }

  start(id: NodeId): void {
    const n = this.node(id);
    if (n.core) throw new Error(`${id} is already running`);
    if (n.selfRemoved) throw new Error(`${id} was removed`);
    const init = n.disk.initialState();
    n.sm = n.disk.snapshot ? KvStateMachine.restore(n.disk.snapshot) : new KvStateMachine({ voters: [], learners: [] });
    n.incarnation++;
    n.pendingReads = [];
    n.seenTerm = 0;
    n.seenCommit = 0;
    if (n.incarnation > 1) this.stats.restarts++;
    this.log(
      () =>
        `start ${id} (life ${n.incarnation}) hs=${JSON.stringify(init.hardState)} snap=${init.snapshotMeta.index}/${init.snapshotMeta.term} entries=${init.entries.length}`,
    );
    n.core = new RaftCore(this.makeConfig(id), init);
    if (isMember(n.sm.conf, id)) n.everMember = true;
    this.afterInput(n);
  }

  crash(id: NodeId): void {
    const n = this.node(id);
    if (!n.core) return;
    this.log(() => `crash ${id}${n.writing ? ' (losing the Ready being written)' : ''}`);
    n.core = null;
    n.sm = null;
    n.pendingReads = [];
    n.writing = null;
    n.disk.crashed();
    this.stats.crashes++;
  }

  restart(id: NodeId): void {
    this.crash(id);
    this.start(id);
  }

  // ---------------------------------------------------------------------------------------------
  // Inputs

  tick(id: NodeId): void {
    const n = this.node(id);
    n.core!.tick();
    this.afterInput(n);
  }

  tickAll(): void {
    for (const n of this.nodes.values()) if (n.core) this.tick(n.id);
  }

  campaign(id: NodeId): void {
    const n = this.node(id);
    this.log(() => `campaign ${id}`);
    n.core!.campaign();
    this.afterInput(n);
  }

  /** Proposes client command `cmdId` (a unique proposal id) writing key `key`. */
  propose(id: NodeId, cmdId: string, key = 'k'): ProposeResult {
    const n = this.node(id);
    const res = n.core!.propose(utf8(`put ${cmdId} ${key}`));
    this.log(() => `propose ${cmdId} on ${id}: ${JSON.stringify(res)}`);
    if (res.ok) this.stats.proposalsAccepted++;
    this.afterInput(n);
    return res;
  }

  proposeConfChange(id: NodeId, cc: ConfChange): ProposeResult {
    const n = this.node(id);
    const res = n.core!.proposeConfChange(cc);
    this.log(() => `confchange ${ConfChangeType[cc.type]} ${cc.nodeId} on ${id}: ${JSON.stringify(res)}`);
    if (res.ok) {
      this.confChanges.set(`${res.index}/${res.term}`, { ...cc });
      if (cc.type === ConfChangeType.AddLearner && !this.nodes.has(cc.nodeId)) this.addNode(cc.nodeId);
    }
    this.afterInput(n);
    return res;
  }

  /** Issues a ReadIndex request on `id`; returns its context if the core accepted it. */
  readIndex(id: NodeId): { ctx: string; res: ProposeResult } {
    const n = this.node(id);
    const ctx = `r${++this.readSeq}`;
    this.checker.readIssued(id, ctx);
    const res = n.core!.readIndex(utf8(ctx));
    this.log(() => `readIndex ${ctx} on ${id}: ${JSON.stringify(res)}`);
    this.afterInput(n);
    return { ctx, res };
  }

  transfer(id: NodeId, to: NodeId): ProposeResult {
    const n = this.node(id);
    const res = n.core!.transferLeadership(to);
    this.log(() => `transfer ${id} -> ${to}: ${JSON.stringify(res)}`);
    this.afterInput(n);
    return res;
  }

  private afterInput(n: SimNode): void {
    if (!n.core) return;
    this.observe(n);
    // As the real driver does when a message arrives during a write: apply what committed and is
    // durable already, without waiting for the write (takeDurableCommitted).
    if (n.writing && this.rng.chance(0.5)) {
      const ents = n.core.takeDurableCommitted();
      if (ents.length > 0) {
        this.stats.writeTimeApplies++;
        const term = n.core.status().term;
        for (const e of ents) this.applyEntry(n, e, term);
      }
    }
    if (this.autoReadyProb >= 1 || this.rng.chance(this.autoReadyProb)) this.drain(n.id);
  }

  /** Records what a node's status tells the checker: leadership and the leader's commit index. */
  private observe(n: SimNode): void {
    const st = n.core!.status();
    if (st.term < n.seenTerm) this.checker.violation('Monotonic state', `${n.id}'s term went back from ${n.seenTerm} to ${st.term}`);
    if (st.commit < n.seenCommit)
      this.checker.violation('Monotonic state', `${n.id}'s commit index went back from ${n.seenCommit} to ${st.commit}`);
    n.seenTerm = st.term;
    n.seenCommit = st.commit;
    if (st.role === Role.Leader) {
      this.checker.leader(n.id, st.term);
      if (st.commit > this.checker.maxObservedCommit) this.checker.commitObserved(st.commit, st.term);
    }
  }

  /** Processes Readys until the node has none. */
  drain(id: NodeId): void {
    const n = this.node(id);
    let k = 0;
    while (n.core && !n.writing && n.core.hasReady()) {
      this.processReady(n);
      if (++k > 1000) this.checker.contract(`${id}: hasReady() still true after 1000 Readys`);
    }
  }

  /** Processes one Ready of the node, if it has one (and is not writing one). */
  processOne(id: NodeId): void {
    const n = this.node(id);
    if (n.core && !n.writing && n.core.hasReady()) this.processReady(n);
  }

  /** Nodes with an asynchronous write in flight. */
  writing(): SimNode[] {
    return [...this.nodes.values()].filter((n) => n.core !== null && n.writing !== null);
  }

  /** The asynchronous write of the node's Ready completes: persist, send, apply, advance. */
  completeWrite(id: NodeId): void {
    const n = this.node(id);
    const w = n.writing;
    if (!n.core || !w) return;
    n.writing = null;
    this.log(() => `${id} write completes`);
    this.finishReady(n, w.rd, w.applied, false);
    if (n.core) this.afterInput(n);
  }

  hasReady(id: NodeId): boolean {
    const c = this.node(id).core;
    return c !== null && c.hasReady();
  }

  // ---------------------------------------------------------------------------------------------
  // The driver

  private processReady(n: SimNode): void {
    const core = n.core!;
    const rd = core.ready();
    const id = n.id;
    if (this.trace) this.log(() => `ready ${id}: ${fmtReady(rd)}`);

    const buggy = this.opts.sendBeforePersist === true;
    if (!buggy && this.rng.chance(this.asyncWriteProb)) {
      // The real driver's way: eager messages leave, the committed entries below the first new
      // one (durable already) are applied and read states handed out, then the write is in flight
      // while the core keeps being stepped; completeWrite() finishes the Ready.
      for (const m of rd.eagerMessages) this.send(n, m);
      const firstNew = rd.snapshot ? 0 : rd.entries.length > 0 ? rd.entries[0]!.index : Infinity;
      let k = 0;
      if (rd.committedEntries.length > 0 && rd.committedEntries[0]!.index < firstNew) {
        const term = core.status().term;
        for (; k < rd.committedEntries.length && rd.committedEntries[k]!.index < firstNew; k++)
          this.applyEntry(n, rd.committedEntries[k]!, term);
      }
      this.takeReadStates(n, rd);
      n.writing = { rd, applied: k };
      this.stats.asyncWrites++;
      return;
    }
    const eagerFirst = buggy || this.rng.chance(this.opts.eagerFirstProb ?? 0.5);
    if (eagerFirst) {
      for (const m of rd.eagerMessages) this.send(n, m);
      if (buggy) for (const m of rd.messages) this.send(n, m);
      if (this.rng.chance(this.crashBeforePersistProb)) {
        this.log(() => `${id} crashes after sending eager messages, before persisting`);
        this.stats.midReadyCrashes++;
        this.crash(id);
        return;
      }
    }
    this.takeReadStates(n, rd);
    this.finishReady(n, rd, 0, !eagerFirst);
  }

  /** Persist, (maybe crash,) send, apply (from committedEntries[applied]), advance. */
  private finishReady(n: SimNode, rd: Ready, applied: number, sendEager: boolean): void {
    const core = n.core!;
    const id = n.id;
    this.persist(n, rd);
    if (this.rng.chance(this.crashAfterPersistProb)) {
      this.log(() => `${id} crashes after persisting, before sending`);
      this.stats.midReadyCrashes++;
      this.crash(id);
      return;
    }
    if (sendEager) for (const m of rd.eagerMessages) this.send(n, m);
    if (this.opts.sendBeforePersist !== true) for (const m of rd.messages) this.send(n, m);

    // Apply.
    if (rd.snapshot) this.applySnapshot(n, rd.snapshot);
    if (rd.committedEntries.length > applied) {
      const term = core.status().term;
      for (let k = applied; k < rd.committedEntries.length; k++) this.applyEntry(n, rd.committedEntries[k]!, term);
    }
    core.advance(rd);
    this.afterAdvance(n);
  }

  private takeReadStates(n: SimNode, rd: Ready): void {
    for (const rs of rd.readStates) {
      const ctx = fromUtf8(rs.context);
      this.checker.readState(n.id, ctx, rs.index);
      this.readLog.push({ node: n.id, ctx, index: rs.index });
      n.pendingReads.push({ ctx, index: rs.index });
    }
  }

  private persist(n: SimNode, rd: Ready): void {
    const d = n.disk;
    const id = n.id;
    if (rd.snapshot) {
      const s = rd.snapshot;
      if (s.meta.index < d.snapIndex)
        this.checker.contract(`${id}: Ready.snapshot at ${s.meta.index} is older than the stored one at ${d.snapIndex}`);
      if (s.meta.index <= d.hardState.commit && d.termAt(s.meta.index) !== undefined && d.termAt(s.meta.index) !== s.meta.term)
        this.checker.violation(
          'Committed entry overwritten',
          `${id}: snapshot (${s.meta.index}, term ${s.meta.term}) contradicts committed entry of term ${d.termAt(s.meta.index)}`,
        );
      d.snapshot = s;
      // Like etcd's MemoryStorage.ApplySnapshot: the snapshot replaces the whole log.
      d.entries = [];
    }
    if (rd.entries.length > 0) {
      const first = rd.entries[0]!.index;
      for (let i = 1; i < rd.entries.length; i++)
        if (rd.entries[i]!.index !== first + i) this.checker.contract(`${id}: Ready.entries are not contiguous`);
      if (first <= d.snapIndex)
        this.checker.contract(`${id}: Ready.entries start at ${first}, at or below the snapshot ${d.snapIndex}`);
      if (first > d.lastIndex() + 1)
        this.checker.contract(`${id}: Ready.entries start at ${first} but the stored log ends at ${d.lastIndex()}`);
      for (const e of rd.entries) {
        if (e.index > d.hardState.commit) break;
        const old = d.termAt(e.index);
        if (old !== undefined && old !== e.term)
          this.checker.violation(
            'Committed entry overwritten',
            `${id}: entry ${e.index} (term ${old}) is committed (commit ${d.hardState.commit}) but replaced by term ${e.term}`,
          );
      }
      d.entries.length = first - d.snapIndex - 1;
      for (const e of rd.entries) {
        const prevTerm = d.termAt(e.index - 1);
        d.entries.push({ term: e.term, index: e.index, type: e.type, data: e.data });
        this.checker.entryStored(id, e.index, e.term, entryKey(e.type, e.data), prevTerm);
      }
    }
    if (rd.hardState) {
      const hs = { ...rd.hardState };
      this.checker.hardStatePersisted(id, d.hardState, hs);
      const commitOnly =
        !rd.snapshot && rd.entries.length === 0 && hs.term === d.hardState.term && hs.vote === d.hardState.vote;
      if (commitOnly && this.opts.unsyncedCommit) {
        if (!d.syncedHardState) d.syncedHardState = d.hardState;
      } else d.syncedHardState = null;
      d.hardState = hs;
    } else if (rd.snapshot || rd.entries.length > 0) d.syncedHardState = null;
    if (d.hardState.commit > d.lastIndex())
      this.checker.contract(`${id}: persisted commit ${d.hardState.commit} beyond the persisted log (last ${d.lastIndex()})`);
  }

  private send(n: SimNode, m: Message): void {
    if (m.from !== n.id) this.checker.contract(`${n.id} sent a message from ${m.from}`);
    if (m.to === n.id) this.checker.contract(`${n.id} sent a message to itself: ${fmtMsg(m)}`);
    if (m.type === MessageType.Hup || m.type === MessageType.TransferLeader || m.type === MessageType.Unreachable || m.type === MessageType.SnapStatus)
      this.checker.contract(`${n.id} sent a local-only message: ${fmtMsg(m)}`);
    // What a message promises must already be durable (checks off under the sendBeforePersist fault).
    if (!this.opts.sendBeforePersist) this.checkDurable(n, m);
    if (m.type === MessageType.AppResp && m.reject) this.stats.appRejects++;
    this.stats.sent++;
    this.onSend?.(m);
    this.pool.push({ msg: m, inc: n.incarnation, reportSnap: m.type === MessageType.Snap });
  }

  /**
   * A message may only promise what is durable. (A message of an older term than the persisted one
   * is exempt: the node moved on to a later term within the same Ready, as etcd allows, and can
   * never vote or accept entries in that older term again.)
   */
  private checkDurable(n: SimNode, m: Message): void {
    const d = n.disk;
    if (m.type === MessageType.PreVote || m.type === MessageType.PreVoteResp) return;
    if (m.term > d.hardState.term)
      this.checker.contract(`${n.id} sent ${fmtMsg(m)} before persisting term ${m.term} (disk has ${d.hardState.term})`);
    if (m.term < d.hardState.term) return;
    if (m.type === MessageType.VoteResp && !m.reject && d.hardState.vote !== m.to)
      this.checker.contract(
        `${n.id} granted its vote to ${m.to} in term ${m.term} before persisting it (disk: term ${d.hardState.term}, vote ${d.hardState.vote || 'none'})`,
      );
    if (m.type === MessageType.AppResp && !m.reject && m.index > d.lastIndex())
      this.checker.contract(`${n.id} acknowledged index ${m.index} before persisting it (disk ends at ${d.lastIndex()})`);
  }

  private applySnapshot(n: SimNode, snap: Snapshot): void {
    const sm = KvStateMachine.restore(snap);
    if (sm.applied !== snap.meta.index) this.checker.contract(`${n.id}: snapshot data does not match its metadata`);
    if (n.sm && snap.meta.index < n.sm.applied)
      this.checker.contract(`${n.id}: restoring snapshot ${snap.meta.index} below applied ${n.sm.applied}`);
    this.checker.snapshotRestored(n.id, snap.meta.index, snap.meta.term, sm.digest);
    this.log(() => `${n.id} restores snapshot ${snap.meta.index}/${snap.meta.term} conf ${showConf(snap.meta.conf)}`);
    n.sm = sm;
  }

  private applyEntry(n: SimNode, e: Entry, nodeTerm: number): void {
    const sm = n.sm!;
    const id = n.id;
    if (e.index !== sm.applied + 1)
      this.checker.contract(`${id}: committed entry ${e.index} handed out but the state machine applied ${sm.applied}`);
    const stored = n.disk.entryAt(e.index);
    if (!stored || stored.term !== e.term)
      this.checker.contract(
        `${id}: committed entry (${e.index}, term ${e.term}) is not in the persisted log (${stored ? `term ${stored.term}` : 'absent'})`,
      );
    const key = entryKey(e.type, e.data);
    sm.digest = digestStep(sm.digest, e);
    sm.applied = e.index;
    sm.appliedTerm = e.term;
    this.checker.entryApplied(id, e.index, e.term, key, sm.digest, nodeTerm);
    if (e.type === EntryType.Normal) {
      if (e.data.length > 0) {
        const parts = fromUtf8(e.data).split(' ');
        if (parts[0] !== 'put' || parts.length !== 3) this.checker.contract(`${id}: unknown command ${fromUtf8(e.data)}`);
        const cmdId = parts[1]!;
        const prev = sm.cmds.get(cmdId);
        if (prev !== undefined) this.checker.proposalAppliedTwice(id, cmdId, prev, e.index);
        sm.cmds.set(cmdId, e.index);
        sm.kv.set(parts[2]!, cmdId);
        this.checker.proposalApplied(id, cmdId, e.index);
      }
    } else if (e.type === EntryType.ConfChange) {
      const cc = decodeConfChange(e.data);
      const proposed = this.confChanges.get(`${e.index}/${e.term}`);
      if (proposed ? proposed.type !== cc.type || proposed.nodeId !== cc.nodeId : cc.type !== ConfChangeType.AddVoter)
        this.checker.contract(`${id}: applied a ConfChange entry (${e.index}, ${e.term}) that nobody proposed`);
      const before = sm.conf;
      sm.conf = applyConfChange(sm.conf, cc);
      this.stats.confChangesApplied++;
      this.log(
        () => `${id} applies ${ConfChangeType[cc.type]} ${cc.nodeId} at ${e.index}: ${showConf(before)} -> ${showConf(sm.conf)}`,
      );
    } else {
      this.checker.contract(`${id}: entry of unknown type ${e.type as number}`);
    }
  }

  private afterAdvance(n: SimNode): void {
    const core = n.core!;
    const sm = n.sm!;
    const d = n.disk;
    const id = n.id;

    // Serve the reads whose index is applied.
    if (n.pendingReads.length > 0) {
      const keep: { ctx: string; index: number }[] = [];
      for (const r of n.pendingReads) {
        if (r.index <= sm.applied) {
          this.checker.readServed(id, r.ctx, sm.applied, (pid) => sm.cmds.has(pid));
          this.stats.readsServed++;
        } else keep.push(r);
      }
      n.pendingReads = keep;
    }

    // (A snapshot stepped in while this Ready was being written already set the core's
    // configuration; the state machine gets it with the next Ready.)
    const coreConf = core.conf();
    if (!confEqual(coreConf, sm.conf) && core.status().snapshotIndex <= sm.applied)
      this.checker.contract(`${id}: core.conf() ${showConf(coreConf)} differs from the applied configuration ${showConf(sm.conf)}`);

    if (!core.hasReady()) {
      const st = core.status();
      if (st.lastIndex !== d.lastIndex())
        this.checker.contract(`${id}: status().lastIndex ${st.lastIndex} but the persisted log ends at ${d.lastIndex()}`);
      if (st.applied !== sm.applied)
        this.checker.contract(`${id}: status().applied ${st.applied} but the state machine applied ${sm.applied}`);
      if (st.role === Role.Leader) this.checker.leaderLog(id, st.term, d.snapIndex, (i) => d.termAt(i));
    }

    // Snapshot + compaction.
    if (sm.applied - d.snapIndex >= this.snapshotThreshold) {
      const snap: Snapshot = {
        meta: { index: sm.applied, term: sm.appliedTerm, conf: cloneConf(sm.conf) },
        data: sm.encode(),
      };
      // Entries applied during a write (takeDurableCommitted) may lie beyond the commit index the
      // disk holds until the next Ready: a restart takes the snapshot's index as committed.
      const commit = Math.max(d.hardState.commit, core.status().commit);
      if (sm.applied > commit) this.checker.contract(`${id}: applied ${sm.applied} beyond the commit index ${commit}`);
      d.entries = d.entries.slice(snap.meta.index - d.snapIndex);
      d.snapshot = snap;
      this.log(() => `${id} compacts at ${snap.meta.index}`);
      core.compact(snap);
      this.stats.compactions++;
    }

    // Membership: a removed node shuts itself down.
    if (isMember(sm.conf, id)) n.everMember = true;
    else if (n.everMember) {
      this.log(() => `${id} applied its own removal: shutting down`);
      n.selfRemoved = true;
      n.core = null;
      n.sm = null;
      return;
    }
    this.observe(n);
  }

  // ---------------------------------------------------------------------------------------------
  // Network

  connected(a: NodeId, b: NodeId): boolean {
    if (this.isolated.has(a) || this.isolated.has(b)) return false;
    if (this.groups && (this.groups.get(a) ?? 0) !== (this.groups.get(b) ?? 0)) return false;
    return !this.cut.has(`${a}>${b}`);
  }

  disconnect(id: NodeId): void {
    this.log(() => `disconnect ${id}`);
    this.isolated.add(id);
  }

  connect(id: NodeId): void {
    this.log(() => `connect ${id}`);
    this.isolated.delete(id);
  }

  /** Splits the nodes into groups; nodes not listed join the first group. */
  partition(groups: NodeId[][]): void {
    this.log(() => `partition ${groups.map((g) => `[${g.join(',')}]`).join(' ')}`);
    this.groups = new Map();
    groups.forEach((g, i) => g.forEach((id) => this.groups!.set(id, i)));
  }

  heal(): void {
    this.log(() => 'heal');
    this.isolated.clear();
    this.groups = null;
    this.cut.clear();
  }

  /** Delivers (or drops, if the link is down or the destination is down) pool[i]. Returns true if delivered. */
  deliver(i: number, dup = false): boolean {
    const f = this.pool[i]!;
    if (dup) this.pool.push({ ...f, reportSnap: false });
    this.pool.splice(i, 1);
    const m = f.msg;
    const to = this.nodes.get(m.to);
    if (!to || !to.core || !this.connected(m.from, m.to)) {
      this.dropFlight(f, 'unreachable');
      return false;
    }
    this.stats.delivered++;
    if (m.type === MessageType.Snap) this.stats.snapsDelivered++;
    if (this.trace) this.log(() => `deliver ${fmtMsg(m)}`);
    this.onDeliver?.(m);
    to.core.step(m);
    this.afterInput(to);
    if (f.reportSnap) this.reportSnap(f, true);
    return true;
  }

  /** Drops pool[i] (network loss). */
  drop(i: number): void {
    const f = this.pool[i]!;
    this.pool.splice(i, 1);
    this.dropFlight(f, 'lost');
  }

  private dropFlight(f: InFlight, why: string): void {
    this.stats.dropped++;
    if (this.trace) this.log(() => `drop (${why}) ${fmtMsg(f.msg)}`);
    if (f.reportSnap) this.reportSnap(f, false);
    else if (this.rng.chance(this.opts.reportUnreachableProb ?? 0)) {
      const s = this.nodes.get(f.msg.from);
      if (s && s.core && s.incarnation === f.inc) {
        s.core.reportUnreachable(f.msg.to);
        this.afterInput(s);
      }
    }
  }

  private reportSnap(f: InFlight, ok: boolean): void {
    const s = this.nodes.get(f.msg.from);
    if (s && s.core && s.incarnation === f.inc) {
      this.log(() => `report snapshot to ${f.msg.to} ${ok ? 'ok' : 'failed'} on ${s.id}`);
      s.core.reportSnapshot(f.msg.to, ok);
      this.afterInput(s);
    }
  }

  /** Delivers every message in flight (and those they cause) until the network is quiet. */
  flush(net: NetOpts = {}, max = 1_000_000): void {
    if (this.deferred.length > 0) {
      this.pool.push(...this.deferred);
      this.deferred = [];
    }
    let k = 0;
    for (;;) {
      while (this.pool.length > 0) {
        if (++k > max) throw new Error(`flush: more than ${max} deliveries (message storm?)`);
        const i = net.reorder ? this.rng.int(this.pool.length) : 0;
        if (net.delay && this.rng.chance(net.delay)) {
          this.deferred.push(this.pool.splice(i, 1)[0]!);
          continue;
        }
        if (net.drop && this.rng.chance(net.drop)) {
          this.drop(i);
          continue;
        }
        this.deliver(i, net.dup !== undefined && this.rng.chance(net.dup));
      }
      // Writes in flight complete; Readys that were deferred (autoReadyProb < 1) are processed.
      for (const n of this.nodes.values()) {
        if (n.core && n.writing) this.completeWrite(n.id);
        if (n.core && n.core.hasReady()) this.drain(n.id);
      }
      if (this.pool.length === 0 && this.writing().length === 0) return;
    }
  }

  /** Drops everything in flight. */
  clearNetwork(): void {
    this.pool = [];
    this.deferred = [];
  }

  /** `ticks` rounds of: tick every live node, then deliver until quiet. */
  run(ticks: number, net: NetOpts = {}): void {
    for (let t = 0; t < ticks; t++) {
      this.tickAll();
      this.flush(net);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Queries

  /** Live leaders, highest term first. */
  leaders(): SimNode[] {
    return this.alive()
      .filter((n) => n.core!.status().role === Role.Leader)
      .sort((a, b) => b.core!.status().term - a.core!.status().term);
  }

  /**
   * A leader acknowledged by a quorum of its voters (live, connected to it, same term, same leader),
   * or undefined.
   */
  stableLeader(): NodeId | undefined {
    for (const l of this.leaders()) {
      const st = l.core!.status();
      const voters = l.core!.conf().voters.map((m) => m.id);
      let acks = 0;
      for (const v of voters) {
        if (v === l.id) {
          acks++;
          continue;
        }
        const n = this.nodes.get(v);
        if (!n || !n.core || !this.connected(l.id, v) || !this.connected(v, l.id)) continue;
        const s = n.core.status();
        if (s.term === st.term && s.leader === l.id) acks++;
      }
      if (acks > voters.length / 2) return l.id;
    }
    return undefined;
  }

  /** Runs rounds until there is a stable leader; returns it. Throws after maxTicks. */
  waitLeader(maxTicks = 100, net: NetOpts = {}): NodeId {
    this.flush(net);
    for (let t = 0; t <= maxTicks; t++) {
      const l = this.stableLeader();
      if (l !== undefined) return l;
      this.tickAll();
      this.flush(net);
    }
    throw new Error(`no stable leader after ${maxTicks} ticks: ${this.describe()}`);
  }

  /** How many live nodes applied proposal `cmdId` (and at which index). */
  nApplied(cmdId: string): { count: number; index: number } {
    let count = 0;
    let index = 0;
    for (const n of this.nodes.values()) {
      const i = n.sm?.cmds.get(cmdId);
      if (n.core && i !== undefined) {
        count++;
        index = i;
      }
    }
    return { count, index };
  }

  /**
   * Like 6.824's cfg.one(): gets `cmd` committed and applied by at least `expected` live nodes,
   * proposing it on whichever node is leader (fresh attempt ids `cmd`, `cmd~1`, ... if an attempt
   * is lost). Returns the index and the id of the attempt that made it.
   */
  one(cmd: string, expected: number, maxTicks = 200, net: NetOpts = {}): { index: number; id: string } {
    const attempts: string[] = [];
    let sinceAttempt = Infinity;
    const done = (): { index: number; id: string } | undefined => {
      for (const a of attempts) {
        const r = this.nApplied(a);
        if (r.count >= expected) return { index: r.index, id: a };
      }
      return undefined;
    };
    for (let ticks = 0; ticks < maxTicks; ticks++) {
      // A new attempt (with a fresh id, so that two attempts both committing is not a duplicate)
      // when there is none yet or the last one has not made it in 2 election timeouts.
      if (sinceAttempt >= 2 * this.config.electionTicks) {
        for (const l of this.leaders()) {
          const id = attempts.length === 0 ? cmd : `${cmd}~${attempts.length}`;
          if (this.propose(l.id, id).ok) {
            attempts.push(id);
            sinceAttempt = 0;
            break;
          }
        }
      }
      this.flush(net);
      const r = done();
      if (r) return r;
      this.tickAll();
      this.flush(net);
      sinceAttempt++;
      const r2 = done();
      if (r2) return r2;
    }
    throw new Error(`one(${cmd}): not applied by ${expected} nodes within ${maxTicks} ticks: ${this.describe()}`);
  }

  describe(): string {
    const parts: string[] = [];
    for (const n of this.nodes.values()) {
      if (!n.core) {
        parts.push(`${n.id}:${n.selfRemoved ? 'removed' : 'down'}`);
        continue;
      }
      const s = n.core.status();
      parts.push(
        `${n.id}:${s.role}/t${s.term}/c${s.commit}/a${s.applied}/l${s.lastIndex}${this.isolated.has(n.id) ? '/isolated' : ''}`,
      );
    }
    return parts.join(' ');
  }

  log(f: () => string): void {
    if (this.trace) this.trace(f());
  }
}

export function addrOf(id: NodeId): string {
  return `sim://${id}`;
}

export function fmtMsg(m: Message): string {
  let s = `${MessageType[m.type]} ${m.from}->${m.to} t${m.term}`;
  switch (m.type) {
    case MessageType.App:
      s += ` prev=${m.index}/${m.logTerm} n=${m.entries.length} c=${m.commit}`;
      break;
    case MessageType.AppResp:
      s += ` i=${m.index}${m.reject ? ` REJECT hint=${m.rejectHint}/${m.hintTerm}` : ''}`;
      break;
    case MessageType.Vote:
    case MessageType.PreVote:
      s += ` last=${m.index}/${m.logTerm}`;
      break;
    case MessageType.VoteResp:
    case MessageType.PreVoteResp:
      s += m.reject ? ' REJECT' : ' GRANT';
      break;
    case MessageType.Heartbeat:
      s += ` c=${m.commit}`;
      break;
    case MessageType.Snap:
      s += ` snap=${m.snapshot?.meta.index}/${m.snapshot?.meta.term}`;
      break;
    default:
      break;
  }
  return s;
}

function fmtReady(rd: Ready): string {
  const p: string[] = [];
  if (rd.softState) p.push(`soft=${rd.softState.role}/${rd.softState.leader || '-'}`);
  if (rd.hardState) p.push(`hard=t${rd.hardState.term}/v${rd.hardState.vote || '-'}/c${rd.hardState.commit}`);
  if (rd.snapshot) p.push(`snap=${rd.snapshot.meta.index}/${rd.snapshot.meta.term}`);
  if (rd.entries.length) p.push(`entries=${rd.entries[0]!.index}..${rd.entries[rd.entries.length - 1]!.index}`);
  if (rd.committedEntries.length)
    p.push(`commit=${rd.committedEntries[0]!.index}..${rd.committedEntries[rd.committedEntries.length - 1]!.index}`);
  if (rd.messages.length) p.push(`msgs=${rd.messages.length}`);
  if (rd.eagerMessages.length) p.push(`eager=${rd.eagerMessages.length}`);
  if (rd.readStates.length) p.push(`reads=${rd.readStates.map((r) => `${fromUtf8(r.context)}@${r.index}`).join(',')}`);
  return p.join(' ');
}
