// Types shared by the pure Raft core, its driver and the tests.
// Node ids are strings (Shoal node ids); the empty string means "none".

export type NodeId = string;
export const NONE: NodeId = '';

export enum EntryType {
  /** A command for the state machine (empty data: the no-op a new leader appends). */
  Normal = 0,
  /** A membership change; data is an encoded ConfChange. */
  ConfChange = 1,
}

export interface Entry {
  term: number;
  index: number;
  type: EntryType;
  data: Uint8Array;
}

export enum ConfChangeType {
  AddLearner = 0,
  PromoteLearner = 1,
  RemoveNode = 2,
  /** Only in the bootstrap entries of a new cluster (proposals must add a learner, then promote). */
  AddVoter = 3,
}

export interface ConfChange {
  type: ConfChangeType;
  nodeId: NodeId;
  /** The member's raft transport address, carried so every member learns how to reach it. */
  addr: string;
}

export interface Member {
  id: NodeId;
  addr: string;
}

/** The cluster configuration: who votes, who only receives the log. */
export interface ConfState {
  voters: Member[];
  learners: Member[];
}

/** The state that must be durable before a vote is granted or an append acknowledged. */
export interface HardState {
  term: number;
  vote: NodeId;
  commit: number;
}

export interface SnapshotMeta {
  index: number;
  term: number;
  conf: ConfState;
}

export interface Snapshot {
  meta: SnapshotMeta;
  data: Uint8Array;
}

export enum MessageType {
  /** Local only: the election timer fired. Not sent on the wire. */
  Hup = 0,
  PreVote = 1,
  PreVoteResp = 2,
  Vote = 3,
  VoteResp = 4,
  App = 5,
  AppResp = 6,
  Heartbeat = 7,
  HeartbeatResp = 8,
  Snap = 9,
  /** A follower's report that sending a snapshot failed or finished (local, from the transport). */
  SnapStatus = 10,
  /** A follower forwarding a proposal to the leader. */
  Prop = 11,
  /** A ReadIndex request (from a local client or forwarded by a follower). */
  ReadIndex = 12,
  ReadIndexResp = 13,
  /** Leadership transfer: "start an election now, ignoring your timer and lease". */
  TimeoutNow = 14,
  /** Local only: ask the leader to transfer leadership to msg.from. */
  TransferLeader = 15,
  /** Local only: the transport could not reach msg.from. */
  Unreachable = 16,
}

export interface Message {
  type: MessageType;
  from: NodeId;
  to: NodeId;
  term: number;
  /** App: term of the entry preceding `entries`; Vote/PreVote: term of the candidate's last entry. */
  logTerm: number;
  /** App: index preceding `entries`; Vote: candidate's last index; AppResp: the index matched or rejected. */
  index: number;
  entries: Entry[];
  commit: number;
  reject: boolean;
  /** AppResp on reject: the follower's hint (conflicting term's first index / its last index). */
  rejectHint: number;
  /** AppResp on reject: the term of the follower's entry at rejectHint (0 if none). */
  hintTerm: number;
  snapshot?: Snapshot;
  /** ReadIndex / Heartbeat context: lets a ReadIndex round be matched with its acks. */
  context: Uint8Array;
}

export enum Role {
  Follower = 'follower',
  PreCandidate = 'pre-candidate',
  Candidate = 'candidate',
  Leader = 'leader',
}

export interface SoftState {
  leader: NodeId;
  role: Role;
}

/** A linearizable read is safe at `index` once the state machine has applied through it. */
export interface ReadState {
  index: number;
  context: Uint8Array;
}

/**
 * What the driver must do next, in order:
 * 1. persist `snapshot` (if any), `entries` (replacing any stored entries at the same or higher
 *    indexes) and `hardState` (if any) durably (sync);
 * 2. send `messages` (those in `eagerMessages` may be sent before step 1 completes);
 * 3. apply `snapshot`, then `committedEntries`, to the state machine;
 * 4. call `advance(ready)`.
 */
export interface Ready {
  softState?: SoftState;
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  committedEntries: Entry[];
  /** Messages that depend on this Ready being durable: send only after persisting. */
  messages: Message[];
  /** A leader's replication messages: they do not depend on its own disk, so may go at once. */
  eagerMessages: Message[];
  readStates: ReadState[];
}

export interface RaftConfig {
  id: NodeId;
  /** Ticks without hearing from a leader before a follower campaigns (randomized in [n, 2n)). */
  electionTicks: number;
  /** Ticks between leader heartbeats. Must be smaller than electionTicks. */
  heartbeatTicks: number;
  /** Max bytes of entries in one App message (at least one entry is always sent). */
  maxMsgBytes: number;
  /** Max App messages in flight to one follower while replicating (pipelining window). */
  maxInflight: number;
  preVote: boolean;
  checkQuorum: boolean;
  /** Source of randomness for election timeouts; deterministic in tests. Returns [0, 1). */
  random: () => number;
  /** Max uncommitted entries the leader accepts before rejecting proposals (back-pressure). */
  maxUncommittedEntries?: number;
}

/** The state a node restarts from: what was durable on disk. */
export interface RaftInitialState {
  hardState: HardState;
  /** The latest snapshot's metadata (index 0 / term 0 / the bootstrap conf if none yet). */
  snapshotMeta: SnapshotMeta;
  /** Entries after snapshotMeta.index, contiguous. */
  entries: Entry[];
  /** Index the state machine has applied through (>= snapshotMeta.index). */
  applied: number;
  /**
   * The latest snapshot with its data, so a leader can send it to lagging followers. Required
   * when snapshotMeta.index > 0; without it such a node can't catch followers up (it waits for
   * its next compaction).
   */
  snapshot?: Snapshot;
}

export const entrySize = (e: Entry): number => e.data.length + 24;

export function emptyMessage(type: MessageType, from: NodeId, to: NodeId, term: number): Message {
  return {
    type,
    from,
    to,
    term,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    hintTerm: 0,
    context: EMPTY,
  };
}

export const EMPTY = new Uint8Array(0);
