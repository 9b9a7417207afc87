import { RaftLog, RaftInvariantError } from './log.js';
import { Progress, ProgressState } from './progress.js';
import {
  type ConfChange,
  ConfChangeType,
  type ConfState,
  EMPTY,
  type Entry,
  EntryType,
  type HardState,
  type Member,
  type Message,
  MessageType,
  NONE,
  type NodeId,
  type RaftConfig,
  type RaftInitialState,
  type ReadState,
  type Ready,
  Role,
  type Snapshot,
  type SoftState,
  emptyMessage,
} from './types.js';

export type ProposeRefusal =
  | 'not-leader'
  | 'transfer-in-progress'
  | 'too-many-uncommitted'
  | 'conf-change-pending'
  | 'no-entry-in-term'
  | 'invalid-conf-change';

export type ProposeResult =
  | { ok: true; index: number; term: number }
  | { ok: false; code: ProposeRefusal; leader: NodeId; message: string };

export interface ProgressStatus {
  match: number;
  next: number;
  state: ProgressState;
  learner: boolean;
  recentActive: boolean;
}

export interface RaftStatus {
  id: NodeId;
  term: number;
  vote: NodeId;
  leader: NodeId;
  role: Role;
  commit: number;
  applied: number;
  lastIndex: number;
  snapshotIndex: number;
  conf: ConfState;
  /** Leader only: what it knows of each member's log. */
  progress: Record<NodeId, ProgressStatus>;
  leadTransferee: NodeId;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeConfChange(cc: ConfChange): Uint8Array {
  return enc.encode(JSON.stringify({ type: cc.type, nodeId: cc.nodeId, addr: cc.addr }));
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  const v = JSON.parse(dec.decode(data)) as ConfChange;
  if (typeof v.nodeId !== 'string' || typeof v.addr !== 'string' || !(v.type in ConfChangeType)) {
    throw new RaftInvariantError('malformed conf change entry');
  }
  return v;
}

/**
 * The first entries of a new cluster's log: one AddVoter per founding member, at term 1, in id
 * order so every founder writes the same log. Keeping the founding membership in the log (not
 * only in a snapshot) lets a member that joins later rebuild it by replaying the log.
 */
export function bootstrapEntries(members: Member[]): Entry[] {
  return [...members]
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))
    .map((m, i) => ({
      term: 1,
      index: i + 1,
      type: EntryType.ConfChange,
      data: encodeConfChange({ type: ConfChangeType.AddVoter, nodeId: m.id, addr: m.addr }),
    }));
}

/** Vote requests sent on behalf of a leadership transfer carry this context: they bypass leases. */
const TRANSFER_CONTEXT = enc.encode('transfer');

const ctxKey = (c: Uint8Array): string => Buffer.from(c.buffer, c.byteOffset, c.byteLength).toString('hex');

interface PendingRead {
  index: number;
  context: Uint8Array;
  acks: Set<NodeId>;
}

/**
 * The Raft consensus algorithm as a deterministic state machine (see API.md). Everything it does
 * comes from method calls; everything it wants done comes out of ready().
 */
export class RaftCore {
  readonly id: NodeId;
  private readonly cfg: RaftConfig;
  private readonly log: RaftLog;

  private term: number;
  private vote: NodeId;
  private leader: NodeId = NONE;
  private role: Role = Role.Follower;

  private voters = new Map<NodeId, Member>();
  private learners = new Map<NodeId, Member>();
  private prs = new Map<NodeId, Progress>();
  private votes = new Map<NodeId, boolean>();

  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTimeout = 0;

  /** A conf change at an index > applying blocks another one. */
  private pendingConfIndex = 0;
  private leadTransferee: NodeId = NONE;
  /** Leader: ReadIndex requests waiting for a heartbeat quorum, oldest first. */
  private readQueue: PendingRead[] = [];
  /** Leader: ReadIndex requests waiting for the leader to commit an entry of its term. */
  private readsBeforeCommit: Uint8Array[] = [];
  private readStates: ReadState[] = [];
  /** Leader: entries were appended since the last broadcast; flushed when a Ready is built. */
  private needBroadcast = false;
  /** Leader: reads were queued since the last heartbeat round. */
  private needReadBeat = false;

  private msgs: Message[] = [];
  private eagerMsgs: Message[] = [];
  private prevHard: HardState;
  private prevSoft: SoftState;

  constructor(cfg: RaftConfig, init: RaftInitialState) {
    if (cfg.heartbeatTicks <= 0 || cfg.electionTicks <= cfg.heartbeatTicks) {
      throw new RangeError(`electionTicks (${cfg.electionTicks}) must exceed heartbeatTicks (${cfg.heartbeatTicks}) > 0`);
    }
    this.id = cfg.id;
    this.cfg = cfg;
    const hs = init.hardState;
    this.log = new RaftLog(init.snapshotMeta, init.entries, hs.commit, init.applied, init.snapshot);
    this.term = hs.term;
    this.vote = hs.vote;
    this.setConf(init.snapshotMeta.conf);
    // Conf changes the state machine already applied are part of our configuration now; later
    // committed ones are applied again as they are handed out.
    for (let i = this.log.firstIndex(); i <= this.log.applied; i++) {
      const e = this.log.entry(i)!;
      if (e.type === EntryType.ConfChange) this.applyConfChange(decodeConfChange(e.data));
    }
    this.prevHard = { term: this.term, vote: this.vote, commit: this.log.committed };
    this.prevSoft = { leader: NONE, role: Role.Follower };
    this.becomeFollower(this.term, NONE);
  }

  // ---------------------------------------------------------------- configuration

  private setConf(conf: ConfState): void {
    this.voters = new Map(conf.voters.map((m) => [m.id, { ...m }]));
    this.learners = new Map(conf.learners.map((m) => [m.id, { ...m }]));
    this.resetProgress();
  }

  conf(): ConfState {
    return {
      voters: [...this.voters.values()].map((m) => ({ ...m })),
      learners: [...this.learners.values()].map((m) => ({ ...m })),
    };
  }

  private promotable(): boolean {
    return this.voters.has(this.id);
  }

  private quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  private resetProgress(): void {
    const next = this.log.lastIndex() + 1;
    const prs = new Map<NodeId, Progress>();
    for (const [id, learner] of [
      ...[...this.voters.keys()].map((id) => [id, false] as const),
      ...[...this.learners.keys()].map((id) => [id, true] as const),
    ]) {
      const p = new Progress(next, learner, this.cfg.maxInflight);
      if (id === this.id) {
        p.match = this.log.unstableFrom - 1;
        p.recentActive = true;
      }
      prs.set(id, p);
    }
    this.prs = prs;
  }

  private applyConfChange(cc: ConfChange): void {
    const next = this.log.lastIndex() + 1;
    switch (cc.type) {
      case ConfChangeType.AddLearner:
        if (this.voters.has(cc.nodeId) || this.learners.has(cc.nodeId)) return;
        this.learners.set(cc.nodeId, { id: cc.nodeId, addr: cc.addr });
        this.prs.set(cc.nodeId, new Progress(next, true, this.cfg.maxInflight));
        break;
      case ConfChangeType.PromoteLearner: {
        const m = this.learners.get(cc.nodeId);
        if (!m) return;
        this.learners.delete(cc.nodeId);
        this.voters.set(cc.nodeId, { id: cc.nodeId, addr: cc.addr || m.addr });
        const p = this.prs.get(cc.nodeId);
        if (p) p.isLearner = false;
        else this.prs.set(cc.nodeId, new Progress(next, false, this.cfg.maxInflight));
        break;
      }
      case ConfChangeType.AddVoter:
        if (this.voters.has(cc.nodeId)) return;
        this.learners.delete(cc.nodeId);
        this.voters.set(cc.nodeId, { id: cc.nodeId, addr: cc.addr });
        this.prs.set(cc.nodeId, new Progress(next, false, this.cfg.maxInflight));
        if (cc.nodeId === this.id) this.prs.get(cc.nodeId)!.match = this.log.unstableFrom - 1;
        break;
      case ConfChangeType.RemoveNode:
        if (this.role === Role.Leader && cc.nodeId !== this.id) this.sendFinalAppend(cc.nodeId);
        this.voters.delete(cc.nodeId);
        this.learners.delete(cc.nodeId);
        this.prs.delete(cc.nodeId);
        break;
    }
    if (this.role !== Role.Leader) return;
    if (cc.type === ConfChangeType.RemoveNode && cc.nodeId === this.id) {
      // Removed from the configuration: a leader that is no longer a member steps down, first
      // telling the others the new commit index (so they stop counting it as a voter at once).
      this.bcastAppend();
      this.becomeFollower(this.term, NONE);
      return;
    }
    if (cc.nodeId === this.leadTransferee && cc.type === ConfChangeType.RemoveNode) this.leadTransferee = NONE;
    // The quorum may have shrunk: entries may commit now, and reads may have their acks.
    if (this.maybeCommit()) this.needBroadcast = true;
    this.releaseReads();
    this.needBroadcast = true;
  }

  // ---------------------------------------------------------------- role changes

  private reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = NONE;
    }
    this.leader = NONE;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.randomizedElectionTimeout =
      this.cfg.electionTicks + Math.floor(this.cfg.random() * this.cfg.electionTicks);
    this.votes.clear();
    this.leadTransferee = NONE;
    this.readQueue = [];
    this.readsBeforeCommit = [];
    this.needBroadcast = false;
    this.needReadBeat = false;
    this.resetProgress();
  }

  private becomeFollower(term: number, leader: NodeId): void {
    this.reset(term);
    this.role = Role.Follower;
    this.leader = leader;
  }

  private becomePreCandidate(): void {
    // A pre-candidate keeps its term and vote: it only asks whether it could win.
    this.role = Role.PreCandidate;
    this.votes.clear();
    this.leader = NONE;
  }

  private becomeCandidate(): void {
    this.reset(this.term + 1);
    this.vote = this.id;
    this.role = Role.Candidate;
  }

  private becomeLeader(): void {
    this.reset(this.term);
    this.role = Role.Leader;
    this.leader = this.id;
    for (const p of this.prs.values()) p.recentActive = true;
    // Any conf change in the uncommitted tail must apply before another may be proposed.
    this.pendingConfIndex = this.log.lastIndex();
    // The no-op of the new term: committing it commits everything before it (Figure 8).
    this.appendEntries([{ term: this.term, index: 0, type: EntryType.Normal, data: EMPTY }]);
  }

  // ---------------------------------------------------------------- ticks

  tick(): void {
    if (this.role === Role.Leader) this.tickLeader();
    else this.tickElection();
  }

  private tickElection(): void {
    this.electionElapsed++;
    if (this.promotable() && this.electionElapsed >= this.randomizedElectionTimeout) {
      this.electionElapsed = 0;
      this.campaign();
    }
  }

  private tickLeader(): void {
    this.heartbeatElapsed++;
    this.electionElapsed++;
    if (this.electionElapsed >= this.cfg.electionTicks) {
      this.electionElapsed = 0;
      if (this.cfg.checkQuorum && !this.quorumActive()) {
        this.becomeFollower(this.term, NONE);
        return;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.leadTransferee = NONE;
    }
    if (this.heartbeatElapsed >= this.cfg.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.bcastHeartbeat(this.readQueue.length > 0 ? this.readQueue[this.readQueue.length - 1].context : EMPTY);
    }
  }

  /** CheckQuorum: did a majority of voters talk to us during the last election timeout? */
  private quorumActive(): boolean {
    let active = 0;
    for (const [id, p] of this.prs) {
      if (id === this.id) {
        if (this.voters.has(id)) active++;
        continue;
      }
      if (p.recentActive && !p.isLearner) active++;
      p.recentActive = false;
    }
    return active >= this.quorum();
  }

  // ---------------------------------------------------------------- elections

  /** Start an election now (the election timer fired, or the application asked). */
  campaign(transfer = false): void {
    if (this.role === Role.Leader || !this.promotable()) return;
    if (this.hasUnappliedConfChange()) return; // our view of the membership may be stale
    if (this.cfg.preVote && !transfer) {
      this.becomePreCandidate();
      this.requestVotes(MessageType.PreVote, this.term + 1, EMPTY);
    } else {
      this.becomeCandidate();
      this.requestVotes(MessageType.Vote, this.term, transfer ? TRANSFER_CONTEXT : EMPTY);
    }
  }

  private hasUnappliedConfChange(): boolean {
    for (let i = this.log.applying + 1; i <= this.log.committed; i++) {
      const e = this.log.entry(i);
      if (e && e.type === EntryType.ConfChange) return true;
    }
    return false;
  }

  private requestVotes(type: MessageType.PreVote | MessageType.Vote, term: number, context: Uint8Array): void {
    const respType = type === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp;
    if (this.poll(this.id, respType, true)) return; // a single-voter cluster wins at once
    for (const id of this.voters.keys()) {
      if (id === this.id) continue;
      const m = emptyMessage(type, this.id, id, term);
      m.index = this.log.lastIndex();
      m.logTerm = this.log.lastTerm();
      m.context = context;
      this.send(m);
    }
  }

  /** Record a vote; returns true if the election was decided. */
  private poll(from: NodeId, type: MessageType, granted: boolean): boolean {
    if (!this.voters.has(from)) return false; // learners and strangers don't vote
    if (!this.votes.has(from)) this.votes.set(from, granted);
    let yes = 0;
    let no = 0;
    for (const v of this.votes.values()) (v ? yes++ : no++);
    if (yes >= this.quorum()) {
      if (type === MessageType.PreVoteResp) {
        this.becomeCandidate();
        this.requestVotes(MessageType.Vote, this.term, EMPTY);
      } else {
        this.becomeLeader();
      }
      return true;
    }
    if (no >= this.voters.size - this.quorum() + 1) {
      this.becomeFollower(this.term, NONE);
      return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- input: messages

  step(m: Message): void {
    // Local messages first: they carry no term.
    switch (m.type) {
      case MessageType.Hup:
        this.campaign();
        return;
      case MessageType.TransferLeader:
        this.transferLeadership(m.from);
        return;
      case MessageType.SnapStatus:
        this.reportSnapshot(m.from, !m.reject);
        return;
      case MessageType.Unreachable:
        this.reportUnreachable(m.from);
        return;
      case MessageType.Prop:
      case MessageType.ReadIndex:
      case MessageType.ReadIndexResp:
        return; // reserved: proposals and reads are forwarded by the driver, not the core
    }
    if (m.from === this.id || m.from === NONE) return;
    // Only voters of our configuration may ask for votes: a removed member that missed its
    // removal must not bump our term or win an election.
    if ((m.type === MessageType.Vote || m.type === MessageType.PreVote) && !this.voters.has(m.from)) return;

    if (m.term > this.term) {
      if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
        const forced = ctxKey(m.context) === ctxKey(TRANSFER_CONTEXT);
        // (Raft thesis 9.6: with pre-vote, a server that heard from a leader within the minimum
        // election timeout grants no pre-vote; with check-quorum, no vote either.)
        const inLease =
          (this.cfg.checkQuorum || this.cfg.preVote) &&
          this.leader !== NONE &&
          this.electionElapsed < this.cfg.electionTicks;
        // A node that heard from a live leader recently ignores vote requests: this is what
        // stops a node rejoining from a partition from deposing a healthy leader.
        if (!forced && inLease) return;
      }
      if (m.type === MessageType.PreVote) {
        // Never change our term for a pre-vote.
      } else if (m.type === MessageType.PreVoteResp && !m.reject) {
        // A granted pre-vote carries the future term; we adopt it only by campaigning.
      } else if (m.type === MessageType.App || m.type === MessageType.Heartbeat || m.type === MessageType.Snap) {
        this.becomeFollower(m.term, m.from);
      } else {
        this.becomeFollower(m.term, NONE);
      }
    } else if (m.term < this.term) {
      if ((this.cfg.checkQuorum || this.cfg.preVote) && (m.type === MessageType.Heartbeat || m.type === MessageType.App)) {
        // A stale leader that can't reach the others would otherwise never learn of our term.
        this.send(emptyMessage(MessageType.AppResp, this.id, m.from, this.term));
      } else if (m.type === MessageType.PreVote) {
        const r = emptyMessage(MessageType.PreVoteResp, this.id, m.from, this.term);
        r.reject = true;
        this.send(r);
      }
      return;
    }

    if (m.type === MessageType.Vote || m.type === MessageType.PreVote) {
      this.handleVoteRequest(m);
      return;
    }

    switch (this.role) {
      case Role.Leader:
        this.stepLeader(m);
        break;
      case Role.Candidate:
      case Role.PreCandidate:
        this.stepCandidate(m);
        break;
      case Role.Follower:
        this.stepFollower(m);
        break;
    }
  }

  private handleVoteRequest(m: Message): void {
    const canVote =
      this.vote === m.from ||
      (this.vote === NONE && this.leader === NONE) ||
      (m.type === MessageType.PreVote && m.term > this.term);
    const respType = m.type === MessageType.Vote ? MessageType.VoteResp : MessageType.PreVoteResp;
    if (canVote && this.log.isUpToDate(m.index, m.logTerm)) {
      // A granted pre-vote answers with the term asked about, so the pre-candidate counts it.
      const r = emptyMessage(respType, this.id, m.from, m.term);
      this.send(r);
      if (m.type === MessageType.Vote) {
        this.electionElapsed = 0;
        this.vote = m.from;
      }
    } else {
      const r = emptyMessage(respType, this.id, m.from, this.term);
      r.reject = true;
      this.send(r);
    }
  }

  private stepCandidate(m: Message): void {
    const myResp = this.role === Role.PreCandidate ? MessageType.PreVoteResp : MessageType.VoteResp;
    switch (m.type) {
      case MessageType.App:
        this.becomeFollower(m.term, m.from);
        this.handleAppend(m);
        break;
      case MessageType.Heartbeat:
        this.becomeFollower(m.term, m.from);
        this.handleHeartbeat(m);
        break;
      case MessageType.Snap:
        this.becomeFollower(m.term, m.from);
        this.handleSnapshot(m);
        break;
      case MessageType.PreVoteResp:
      case MessageType.VoteResp:
        if (m.type !== myResp) return; // an answer to an earlier round
        this.poll(m.from, m.type, !m.reject);
        break;
      case MessageType.TimeoutNow:
        break;
    }
  }

  private stepFollower(m: Message): void {
    switch (m.type) {
      case MessageType.App:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleAppend(m);
        break;
      case MessageType.Heartbeat:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleHeartbeat(m);
        break;
      case MessageType.Snap:
        this.electionElapsed = 0;
        this.leader = m.from;
        this.handleSnapshot(m);
        break;
      case MessageType.TimeoutNow:
        // The leader hands over to us: campaign at once, skipping pre-vote and leases.
        this.campaign(true);
        break;
    }
  }

  private handleAppend(m: Message): void {
    if (m.index < this.log.committed) {
      const r = emptyMessage(MessageType.AppResp, this.id, m.from, this.term);
      r.index = this.log.committed;
      this.send(r);
      return;
    }
    const lastNew = this.log.maybeAppend(m.index, m.logTerm, m.commit, m.entries);
    const r = emptyMessage(MessageType.AppResp, this.id, m.from, this.term);
    if (lastNew !== undefined) {
      r.index = lastNew;
    } else {
      // Tell the leader where to look next: the last index whose term is <= the leader's term
      // at m.index, which skips a whole divergent term in one round trip.
      const hint = this.log.findConflictByTerm(Math.min(m.index, this.log.lastIndex()), m.logTerm);
      r.index = m.index;
      r.reject = true;
      r.rejectHint = hint;
      r.hintTerm = this.log.term(hint) ?? 0;
    }
    this.send(r);
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit, this.log.lastIndex()));
    const r = emptyMessage(MessageType.HeartbeatResp, this.id, m.from, this.term);
    r.context = m.context;
    this.send(r);
  }

  private handleSnapshot(m: Message): void {
    const s = m.snapshot;
    const r = emptyMessage(MessageType.AppResp, this.id, m.from, this.term);
    if (!s) return;
    if (s.meta.index <= this.log.committed) {
      r.index = this.log.committed;
    } else if (this.log.matchTerm(s.meta.index, s.meta.term)) {
      // We already have this prefix: just learn it is committed. Only the snapshot's index is
      // known to match the leader (what follows it was not checked), so that is what we confirm.
      this.log.commitTo(s.meta.index);
      r.index = s.meta.index;
    } else {
      this.log.restore(s);
      this.setConf(s.meta.conf);
      r.index = this.log.lastIndex();
    }
    this.send(r);
  }

  private stepLeader(m: Message): void {
    const pr = this.prs.get(m.from);
    if (!pr) return; // not a member (anymore): ignore
    switch (m.type) {
      case MessageType.AppResp:
        pr.recentActive = true;
        if (m.reject) {
          let hint = m.rejectHint;
          if (m.hintTerm > 0) hint = this.log.findConflictByTerm(m.rejectHint, m.hintTerm);
          if (pr.maybeDecrTo(m.index, hint)) {
            if (pr.state === ProgressState.Replicate) pr.becomeProbe();
            this.sendAppend(m.from);
          }
          return;
        }
        {
          const wasPaused = pr.isPaused();
          if (!pr.maybeUpdate(m.index)) {
            // Even a stale success tells us the follower is alive; resume a stalled probe.
            if (pr.state === ProgressState.Probe && wasPaused && pr.match < this.log.lastIndex()) {
              pr.probeSent = false;
              this.sendAppend(m.from);
            }
            return;
          }
          if (pr.state === ProgressState.Probe) pr.becomeReplicate();
          else if (pr.state === ProgressState.Snapshot && pr.match >= pr.pendingSnapshot) {
            pr.becomeProbe();
            pr.becomeReplicate();
          } else if (pr.state === ProgressState.Replicate) pr.freeInflightUpTo(m.index);

          if (this.maybeCommit()) {
            this.onCommitAdvanced();
          }
          // Keep the pipe full.
          while (this.sendAppend(m.from, false)) {
            /* send until paused or caught up */
          }
          if (m.from === this.leadTransferee && pr.match === this.log.lastIndex()) {
            this.send(emptyMessage(MessageType.TimeoutNow, this.id, m.from, this.term));
          }
        }
        break;
      case MessageType.HeartbeatResp:
        pr.recentActive = true;
        pr.probeSent = false;
        // A full window that the follower has stopped acknowledging means Apps were lost (the
        // window would otherwise drain): resend from what it has confirmed.
        if (pr.state === ProgressState.Replicate && pr.inflightFull() && pr.match < this.log.lastIndex()) pr.becomeProbe();
        if (pr.match < this.log.lastIndex()) this.sendAppend(m.from);
        if (m.context.length > 0) this.ackRead(m.from, m.context);
        break;
      case MessageType.TransferLeader:
        break;
    }
  }

  private onCommitAdvanced(): void {
    // Followers learn the new commit index from the next append; send one now.
    this.needBroadcast = true;
    if (this.readsBeforeCommit.length > 0 && this.committedInTerm()) {
      const waiting = this.readsBeforeCommit;
      this.readsBeforeCommit = [];
      for (const c of waiting) this.readIndex(c);
    }
  }

  // ---------------------------------------------------------------- leader: replication

  private appendEntries(entries: Entry[]): void {
    let i = this.log.lastIndex();
    for (const e of entries) {
      e.term = this.term;
      e.index = ++i;
    }
    this.log.append(entries);
    // Our own match advances only once the entries are durable (advance): a leader must not
    // count itself towards a commit on the strength of an entry it could still lose.
    this.needBroadcast = true;
  }

  /** Sends an App (or a snapshot) to a follower; returns whether anything was sent. */
  private sendAppend(to: NodeId, sendIfEmpty = true): boolean {
    const pr = this.prs.get(to);
    if (!pr || to === this.id || pr.isPaused()) return false;
    const prevIndex = pr.next - 1;
    const prevTerm = this.log.term(prevIndex);
    if (prevTerm === undefined) return this.sendSnapshot(to, pr);
    const entries = this.log.slice(pr.next, this.log.lastIndex() + 1, this.cfg.maxMsgBytes);
    if (entries.length === 0 && !sendIfEmpty) return false;
    const m = emptyMessage(MessageType.App, this.id, to, this.term);
    m.index = prevIndex;
    m.logTerm = prevTerm;
    m.entries = entries;
    m.commit = this.log.committed;
    this.send(m);
    pr.sentEntries(entries.length > 0 ? entries[entries.length - 1].index : prevIndex, entries.length);
    return true;
  }

  /**
   * A member being removed would otherwise never learn that its removal committed (we stop
   * replicating to it at once): send it what it lacks, with the commit index, one last time.
   */
  private sendFinalAppend(to: NodeId): void {
    const pr = this.prs.get(to);
    if (!pr) return;
    const prevTerm = this.log.term(pr.match);
    if (prevTerm === undefined) return;
    const m = emptyMessage(MessageType.App, this.id, to, this.term);
    m.index = pr.match;
    m.logTerm = prevTerm;
    m.entries = this.log.slice(pr.match + 1, this.log.lastIndex() + 1, this.cfg.maxMsgBytes);
    m.commit = this.log.committed;
    this.send(m);
  }

  private sendSnapshot(to: NodeId, pr: Progress): boolean {
    const s = this.log.snapshot;
    if (!s) return false; // nothing to send until we compact again
    const m = emptyMessage(MessageType.Snap, this.id, to, this.term);
    m.snapshot = s;
    pr.becomeSnapshot(s.meta.index);
    this.send(m);
    return true;
  }

  private bcastAppend(): void {
    for (const id of this.prs.keys()) if (id !== this.id) this.sendAppend(id);
  }

  private bcastHeartbeat(context: Uint8Array): void {
    for (const [id, pr] of this.prs) {
      if (id === this.id) continue;
      const m = emptyMessage(MessageType.Heartbeat, this.id, id, this.term);
      // Never tell a follower to commit beyond what it has confirmed matching our log.
      m.commit = Math.min(pr.match, this.log.committed);
      m.context = context;
      this.send(m);
    }
  }

  private maybeCommit(): boolean {
    const matches: number[] = [];
    for (const id of this.voters.keys()) matches.push(this.prs.get(id)?.match ?? 0);
    if (matches.length === 0) return false;
    matches.sort((a, b) => b - a);
    const idx = matches[this.quorum() - 1];
    // Only entries of the current term commit by counting replicas (the paper's Figure 8).
    if (idx > this.log.committed && this.log.term(idx) === this.term) {
      this.log.commitTo(idx);
      return true;
    }
    return false;
  }

  private committedInTerm(): boolean {
    return this.log.term(this.log.committed) === this.term;
  }

  // ---------------------------------------------------------------- input: application requests

  private refuse(code: ProposeRefusal, message: string): ProposeResult {
    return { ok: false, code, leader: this.leader, message };
  }

  propose(data: Uint8Array): ProposeResult {
    if (this.role !== Role.Leader) return this.refuse('not-leader', 'this node is not the leader');
    if (this.leadTransferee !== NONE) return this.refuse('transfer-in-progress', 'leadership transfer in progress');
    const max = this.cfg.maxUncommittedEntries;
    if (max !== undefined && this.log.lastIndex() - this.log.committed >= max) {
      return this.refuse('too-many-uncommitted', `more than ${max} entries await commit`);
    }
    this.appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data }]);
    return { ok: true, index: this.log.lastIndex(), term: this.term };
  }

  proposeConfChange(cc: ConfChange): ProposeResult {
    if (this.role !== Role.Leader) return this.refuse('not-leader', 'this node is not the leader');
    if (this.leadTransferee !== NONE) return this.refuse('transfer-in-progress', 'leadership transfer in progress');
    if (this.pendingConfIndex > this.log.applying) {
      return this.refuse('conf-change-pending', 'another membership change is not yet applied');
    }
    if (!this.committedInTerm()) {
      // The single-server-change bug: a new leader must commit in its own term first.
      return this.refuse('no-entry-in-term', 'the leader has not yet committed an entry of its term');
    }
    const isVoter = this.voters.has(cc.nodeId);
    const isLearner = this.learners.has(cc.nodeId);
    switch (cc.type) {
      case ConfChangeType.AddLearner:
        if (isVoter || isLearner) return this.refuse('invalid-conf-change', `${cc.nodeId} is already a member`);
        if (!cc.nodeId) return this.refuse('invalid-conf-change', 'empty node id');
        break;
      case ConfChangeType.PromoteLearner:
        if (!isLearner) return this.refuse('invalid-conf-change', `${cc.nodeId} is not a learner`);
        break;
      case ConfChangeType.RemoveNode:
        if (!isVoter && !isLearner) return this.refuse('invalid-conf-change', `${cc.nodeId} is not a member`);
        if (isVoter && this.voters.size === 1) return this.refuse('invalid-conf-change', 'cannot remove the last voter');
        break;
      case ConfChangeType.AddVoter:
        return this.refuse('invalid-conf-change', 'a new member joins as a learner and is promoted once caught up');
      default:
        return this.refuse('invalid-conf-change', `unknown conf change type ${String(cc.type)}`);
    }
    this.appendEntries([{ term: 0, index: 0, type: EntryType.ConfChange, data: encodeConfChange(cc) }]);
    this.pendingConfIndex = this.log.lastIndex();
    return { ok: true, index: this.log.lastIndex(), term: this.term };
  }

  /**
   * A linearizable read: once a ReadState with this context comes out of ready(), reads at or
   * after its index (once applied) reflect every write committed before readIndex() was called.
   */
  readIndex(context: Uint8Array): ProposeResult {
    if (this.role !== Role.Leader) return this.refuse('not-leader', 'this node is not the leader');
    if (!this.committedInTerm()) {
      // Our commit index may lag what earlier leaders committed until our no-op commits.
      this.readsBeforeCommit.push(context);
      return { ok: true, index: 0, term: this.term };
    }
    if (this.voters.size === 1 && this.voters.has(this.id)) {
      this.readStates.push({ index: this.log.committed, context });
      return { ok: true, index: this.log.committed, term: this.term };
    }
    const r: PendingRead = { index: this.log.committed, context, acks: new Set([this.id]) };
    this.readQueue.push(r);
    // Confirm we are still the leader: a quorum must answer a heartbeat sent after the read.
    // One heartbeat round (flushed with the next Ready) serves every read queued before it.
    this.needReadBeat = true;
    return { ok: true, index: r.index, term: this.term };
  }

  private ackRead(from: NodeId, context: Uint8Array): void {
    const key = ctxKey(context);
    const r = this.readQueue.find((q) => ctxKey(q.context) === key);
    if (!r) return;
    r.acks.add(from);
    this.releaseReads();
  }

  /** Release every read up to the newest one a quorum acknowledged (acks imply earlier ones). */
  private releaseReads(): void {
    let upTo = -1;
    for (let i = 0; i < this.readQueue.length; i++) {
      let n = 0;
      for (const id of this.readQueue[i].acks) if (this.voters.has(id)) n++;
      if (n >= this.quorum()) upTo = i;
    }
    if (upTo < 0) return;
    for (const r of this.readQueue.splice(0, upTo + 1)) this.readStates.push({ index: r.index, context: r.context });
  }

  transferLeadership(to: NodeId): ProposeResult {
    if (this.role !== Role.Leader) return this.refuse('not-leader', 'this node is not the leader');
    if (to === this.id) return { ok: true, index: this.log.lastIndex(), term: this.term };
    if (!this.voters.has(to)) return this.refuse('invalid-conf-change', `${to} is not a voter`);
    if (this.leadTransferee === to) return { ok: true, index: this.log.lastIndex(), term: this.term };
    this.leadTransferee = to;
    this.electionElapsed = 0;
    const pr = this.prs.get(to)!;
    if (pr.match === this.log.lastIndex()) this.send(emptyMessage(MessageType.TimeoutNow, this.id, to, this.term));
    else this.sendAppend(to);
    return { ok: true, index: this.log.lastIndex(), term: this.term };
  }

  reportSnapshot(to: NodeId, ok: boolean): void {
    const pr = this.prs.get(to);
    if (this.role !== Role.Leader || !pr || pr.state !== ProgressState.Snapshot) return;
    if (!ok) pr.pendingSnapshot = 0;
    pr.becomeProbe();
    // Wait for the follower's answer (or the next heartbeat) before probing again.
    pr.probeSent = true;
  }

  reportUnreachable(to: NodeId): void {
    if (this.role !== Role.Leader) {
      if (to === this.leader && this.role === Role.Follower) this.leaderLost();
      return;
    }
    const pr = this.prs.get(to);
    if (!pr) return;
    if (pr.state === ProgressState.Replicate) pr.becomeProbe();
  }

  /**
   * Fast failure detection: the transport saw the connection to our leader fail (its process
   * died, its host went away). Rather than sit out the election timeout, forget the leader (so
   * we also grant others' pre-votes) and campaign after a short random delay. Safe: a pre-vote
   * still needs a majority that also lost the leader, so a live leader is not disturbed.
   */
  private leaderLost(): void {
    this.leader = NONE;
    const jitter = 1 + Math.floor(this.cfg.random() * Math.max(2, Math.floor(this.cfg.electionTicks / 3)));
    this.electionElapsed = Math.max(this.electionElapsed, this.randomizedElectionTimeout - jitter);
  }

  // ---------------------------------------------------------------- output

  private send(m: Message): void {
    if (this.role === Role.Leader) this.eagerMsgs.push(m);
    else this.msgs.push(m);
  }

  private flush(): void {
    if (this.role !== Role.Leader) return;
    if (this.needBroadcast) {
      this.needBroadcast = false;
      this.bcastAppend();
    }
    if (this.needReadBeat) {
      this.needReadBeat = false;
      if (this.readQueue.length > 0) this.bcastHeartbeat(this.readQueue[this.readQueue.length - 1].context);
    }
  }

  private hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  hasReady(): boolean {
    this.flush();
    const hs = this.hardState();
    return (
      this.msgs.length > 0 ||
      this.eagerMsgs.length > 0 ||
      this.log.unstableFrom <= this.log.lastIndex() ||
      this.log.pendingSnapshot !== undefined ||
      this.log.applying < Math.min(this.log.committed, this.log.lastIndex()) ||
      this.readStates.length > 0 ||
      hs.term !== this.prevHard.term ||
      hs.vote !== this.prevHard.vote ||
      hs.commit !== this.prevHard.commit ||
      this.leader !== this.prevSoft.leader ||
      this.role !== this.prevSoft.role
    );
  }

  ready(): Ready {
    this.flush();
    const rd: Ready = {
      entries: this.log.unstableEntries(),
      committedEntries: [],
      messages: this.msgs,
      eagerMessages: this.eagerMsgs,
      readStates: this.readStates,
    };
    this.msgs = [];
    this.eagerMsgs = [];
    this.readStates = [];
    if (this.log.pendingSnapshot) {
      rd.snapshot = this.log.pendingSnapshot;
      this.log.pendingSnapshot = undefined;
    }
    const hs = this.hardState();
    if (hs.term !== this.prevHard.term || hs.vote !== this.prevHard.vote || hs.commit !== this.prevHard.commit) {
      rd.hardState = hs;
      this.prevHard = hs;
    }
    if (this.leader !== this.prevSoft.leader || this.role !== this.prevSoft.role) {
      rd.softState = { leader: this.leader, role: this.role };
      this.prevSoft = rd.softState;
    }
    const committed = this.log.nextCommitted();
    if (committed.length > 0) {
      rd.committedEntries = committed;
      this.log.applying = committed[committed.length - 1].index;
      for (const e of committed) {
        if (e.type === EntryType.ConfChange) this.applyConfChange(decodeConfChange(e.data));
      }
    }
    return rd;
  }

  /**
   * Committed entries that are durable here and not yet handed out, for the driver to apply at
   * once, while it is still persisting a Ready (between ready() and advance()): without this, a
   * commit learned during a write (a follower's acknowledgement reaching the leader) waits for
   * that write and then the next Ready. The entries count as applied from here on. Stops before a
   * ConfChange (one goes out in a Ready, which applies it to the configuration); nothing while a
   * snapshot is pending. Order is kept: anything a Ready in flight hands out after its write is
   * not durable yet, so lies below every entry this can return.
   */
  takeDurableCommitted(): Entry[] {
    if (this.log.pendingSnapshot) return [];
    const hi = Math.min(this.log.committed, this.log.unstableFrom - 1);
    if (this.log.applying >= hi) return [];
    const out = this.log.slice(this.log.applying + 1, hi + 1);
    let n = 0;
    while (n < out.length && out[n]!.type !== EntryType.ConfChange) n++;
    if (n === 0) return [];
    if (n < out.length) out.length = n;
    const last = out[n - 1]!.index;
    this.log.applying = last;
    if (last > this.log.applied) this.log.applied = last;
    return out;
  }

  advance(rd: Ready): void {
    if (rd.snapshot) {
      this.log.stableTo(rd.snapshot.meta.index, rd.snapshot.meta.term);
      if (this.log.applied < rd.snapshot.meta.index) this.log.applied = rd.snapshot.meta.index;
    }
    if (rd.entries.length > 0) {
      const last = rd.entries[rd.entries.length - 1];
      this.log.stableTo(last.index, last.term);
    }
    if (rd.committedEntries.length > 0) {
      const last = rd.committedEntries[rd.committedEntries.length - 1].index;
      if (last > this.log.applied) this.log.applied = last;
    }
    if (this.role === Role.Leader) {
      const self = this.prs.get(this.id);
      if (self && self.maybeUpdate(this.log.unstableFrom - 1)) {
        if (this.maybeCommit()) this.onCommitAdvanced();
      }
    }
  }

  /** The term of the entry at index i (undefined if compacted or beyond the log). */
  termAt(i: number): number | undefined {
    return this.log.term(i);
  }

  compact(snapshot: Snapshot): void {
    this.log.compact(snapshot);
  }

  status(): RaftStatus {
    const progress: Record<NodeId, ProgressStatus> = {};
    if (this.role === Role.Leader) {
      for (const [id, p] of this.prs) {
        progress[id] = { match: p.match, next: p.next, state: p.state, learner: p.isLearner, recentActive: p.recentActive };
      }
    }
    return {
      id: this.id,
      term: this.term,
      vote: this.vote,
      leader: this.leader,
      role: this.role,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      snapshotIndex: this.log.snapIndex,
      conf: this.conf(),
      progress,
      leadTransferee: this.leadTransferee,
    };
  }

  /** For tests and diagnostics: the entries this node holds in memory (after its snapshot). */
  entries(): Entry[] {
    return this.log.lastIndex() >= this.log.firstIndex() ? this.log.slice(this.log.firstIndex(), this.log.lastIndex() + 1) : [];
  }
}
