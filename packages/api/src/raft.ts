// TypeScript shapes of the shoal.raft messages (proto/raft.proto) as produced and accepted by the
// loader options of proto.ts: snake_case fields, uint64 as number, enums as numbers, bytes as
// Buffer when decoded (any Uint8Array is accepted when encoding). Decoded objects have every field
// (defaults: true); message-typed fields that were absent are null.

export const RAFT_SERVICE = 'shoal.raft.Raft' as const;

/** Full method paths of the Raft service. */
export const RaftMethod = {
  Send: '/shoal.raft.Raft/Send',
  InstallSnapshot: '/shoal.raft.Raft/InstallSnapshot',
  Propose: '/shoal.raft.Raft/Propose',
  ReadBarrier: '/shoal.raft.Raft/ReadBarrier',
  Status: '/shoal.raft.Raft/Status',
} as const;

export interface EntryPb {
  term: number;
  index: number;
  type: number;
  data: Uint8Array;
}

export interface MemberPb {
  id: string;
  addr: string;
}

export interface ConfStatePb {
  voters: MemberPb[];
  learners: MemberPb[];
}

export interface SnapshotMetaPb {
  index: number;
  term: number;
  conf: ConfStatePb | null;
}

export interface SnapshotPb {
  meta: SnapshotMetaPb | null;
  data: Uint8Array;
}

export interface RaftMessagePb {
  type: number;
  from: string;
  to: string;
  term: number;
  log_term: number;
  index: number;
  entries: EntryPb[];
  commit: number;
  reject: boolean;
  reject_hint: number;
  hint_term: number;
  snapshot: SnapshotPb | null;
  context: Uint8Array;
}

export interface RaftBatchPb {
  messages: RaftMessagePb[];
}

export type SendAckPb = Record<string, never>;

export interface SnapshotChunkPb {
  message: RaftMessagePb | null;
  total_size: number;
  crc32: number;
  data: Uint8Array;
}

export interface SnapshotAckPb {
  ok: boolean;
}

export interface ProposeRequestPb {
  client_id: string;
  seq: number;
  payload: Uint8Array;
  /** Every seq of this client below this one has been answered (0: unknown). */
  acked_below?: number;
}

export interface ProposeResponsePb {
  index: number;
  result: Uint8Array;
}

export interface ReadBarrierRequestPb {
  from: string;
}

export interface ReadBarrierResponsePb {
  index: number;
}

export type StatusRequestPb = Record<string, never>;

export interface StatusResponsePb {
  id: string;
  term: number;
  leader: string;
  role: string;
  commit: number;
  applied: number;
  last_index: number;
  /** Set by a leader only: the voters it heard from recently, itself included. */
  recent_active?: string[];
}
