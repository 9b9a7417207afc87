// Conversions between the core's types (types.ts, camelCase) and the shoal.raft wire objects
// (@shoal/api *Pb types, snake_case as loaded by proto-loader). Decoding validates: anything a
// correct peer would not send is refused with ShoalError INVALID_ARGUMENT, so the core only ever
// sees well-formed messages.

import { RAFT_SERVICE, ShoalError, getServiceDefinition } from '@shoal/api';
import type {
  RaftBatchPb,
  ConfStatePb,
  EntryPb,
  MemberPb,
  ProposeRequestPb,
  ProposeResponsePb,
  RaftMessagePb,
  ReadBarrierResponsePb,
  SnapshotMetaPb,
  StatusResponsePb,
} from '@shoal/api';
import {
  EMPTY,
  EntryType,
  MessageType,
  type ConfState,
  type Entry,
  type Member,
  type Message,
  type SnapshotMeta,
} from '../core/types.js';

/**
 * Types that only exist inside a node (timer, transport and API feedback). They are never sent,
 * and refused on receipt: the core acts on them without any term check.
 */
export const LOCAL_ONLY_TYPES: ReadonlySet<MessageType> = new Set([
  MessageType.Hup,
  MessageType.SnapStatus,
  MessageType.TransferLeader,
  MessageType.Unreachable,
]);

function bad(what: string): ShoalError {
  return new ShoalError('INVALID_ARGUMENT', `invalid raft message: ${what}`);
}

function u64(v: unknown, what: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) throw bad(`${what} is not a valid uint64 (${String(v)})`);
  return v;
}

function str(v: unknown, what: string): string {
  if (typeof v !== 'string') throw bad(`${what} is not a string`);
  return v;
}

function bytes(v: unknown, what: string): Uint8Array {
  if (v === undefined || v === null) return EMPTY;
  if (v instanceof Uint8Array) return v;
  throw bad(`${what} is not bytes`);
}

function isEnumValue(e: Record<string, string | number>, v: unknown): v is number {
  return typeof v === 'number' && typeof e[v] === 'string';
}

// ---- entries, configuration, snapshot metadata ----------------------------------------------------

export function entryToPb(e: Entry): EntryPb {
  return { term: e.term, index: e.index, type: e.type, data: e.data };
}

export function entryFromPb(pb: EntryPb): Entry {
  if (!pb || typeof pb !== 'object') throw bad('entry is not an object');
  if (!isEnumValue(EntryType, pb.type)) throw bad(`unknown entry type ${String(pb.type)}`);
  return { term: u64(pb.term, 'entry.term'), index: u64(pb.index, 'entry.index'), type: pb.type, data: bytes(pb.data, 'entry.data') };
}

function memberFromPb(pb: MemberPb, what: string): Member {
  if (!pb || typeof pb !== 'object') throw bad(`${what} is not an object`);
  const id = str(pb.id, `${what}.id`);
  if (id === '') throw bad(`${what}.id is empty`);
  return { id, addr: str(pb.addr, `${what}.addr`) };
}

export function confStateToPb(c: ConfState): ConfStatePb {
  return {
    voters: c.voters.map((m) => ({ id: m.id, addr: m.addr })),
    learners: c.learners.map((m) => ({ id: m.id, addr: m.addr })),
  };
}

export function confStateFromPb(pb: ConfStatePb | null | undefined): ConfState {
  if (!pb) throw bad('missing conf');
  if (!Array.isArray(pb.voters) || !Array.isArray(pb.learners)) throw bad('conf members are not lists');
  return {
    voters: pb.voters.map((m, i) => memberFromPb(m, `conf.voters[${i}]`)),
    learners: pb.learners.map((m, i) => memberFromPb(m, `conf.learners[${i}]`)),
  };
}

export function snapshotMetaToPb(m: SnapshotMeta): SnapshotMetaPb {
  return { index: m.index, term: m.term, conf: confStateToPb(m.conf) };
}

export function snapshotMetaFromPb(pb: SnapshotMetaPb | null | undefined): SnapshotMeta {
  if (!pb) throw bad('missing snapshot meta');
  return { index: u64(pb.index, 'snapshot.meta.index'), term: u64(pb.term, 'snapshot.meta.term'), conf: confStateFromPb(pb.conf) };
}

// ---- messages -----------------------------------------------------------------------------------

/**
 * A Message as a wire object. The snapshot's data is included unless `withoutSnapshotData`
 * (the InstallSnapshot header carries only the metadata; the data follows in chunks).
 */
export function messageToPb(m: Message, withoutSnapshotData = false): RaftMessagePb {
  return {
    type: m.type,
    from: m.from,
    to: m.to,
    term: m.term,
    log_term: m.logTerm,
    index: m.index,
    entries: m.entries.map(entryToPb),
    commit: m.commit,
    reject: m.reject,
    reject_hint: m.rejectHint,
    hint_term: m.hintTerm,
    snapshot: m.snapshot
      ? { meta: snapshotMetaToPb(m.snapshot.meta), data: withoutSnapshotData ? EMPTY : m.snapshot.data }
      : null,
    context: m.context,
  };
}

/**
 * A wire object as a Message, validated: a known, non-local type; non-empty from and to; uint64
 * fields that are safe integers; entries of known types; a snapshot (metadata with a conf) if and
 * only if the type is Snap. The snapshot's data is taken as is (the InstallSnapshot receiver
 * replaces it with the reassembled data).
 */
export function messageFromPb(pb: RaftMessagePb): Message {
  if (!pb || typeof pb !== 'object') throw bad('not an object');
  if (!isEnumValue(MessageType, pb.type)) throw bad(`unknown type ${String(pb.type)}`);
  const type = pb.type as MessageType;
  if (LOCAL_ONLY_TYPES.has(type)) throw bad(`type ${MessageType[type]} is local-only`);
  const from = str(pb.from, 'from');
  const to = str(pb.to, 'to');
  if (from === '') throw bad('missing from');
  if (to === '') throw bad('missing to');
  if (!Array.isArray(pb.entries ?? [])) throw bad('entries is not a list');
  const m: Message = {
    type,
    from,
    to,
    term: u64(pb.term, 'term'),
    logTerm: u64(pb.log_term, 'log_term'),
    index: u64(pb.index, 'index'),
    entries: (pb.entries ?? []).map(entryFromPb),
    commit: u64(pb.commit, 'commit'),
    reject: pb.reject === true,
    rejectHint: u64(pb.reject_hint, 'reject_hint'),
    hintTerm: u64(pb.hint_term, 'hint_term'),
    context: bytes(pb.context, 'context'),
  };
  if (typeof pb.reject !== 'boolean') throw bad('reject is not a boolean');
  if (type === MessageType.Snap) {
    if (!pb.snapshot) throw bad('Snap without a snapshot');
    m.snapshot = { meta: snapshotMetaFromPb(pb.snapshot.meta), data: bytes(pb.snapshot.data, 'snapshot.data') };
  } else if (pb.snapshot) {
    throw bad(`snapshot on a ${MessageType[type]} message`);
  }
  return m;
}

// ---- Send-stream batches -------------------------------------------------------------------------

let serializeBatch: ((b: RaftBatchPb) => Buffer) | undefined;

/**
 * `m` serialized as a RaftBatch holding only it. A RaftBatch's encoding is the concatenation of
 * its messages' framed encodings, so `Buffer.concat(frames)` is the batch of all of them (in
 * order), and a frame's length is exactly what the message adds to a batch.
 */
export function frameMessage(m: Message): Buffer {
  serializeBatch ??= getServiceDefinition(RAFT_SERVICE).Send!.requestSerialize as (b: RaftBatchPb) => Buffer;
  return serializeBatch({ messages: [messageToPb(m)] });
}

// ---- client-path RPCs ---------------------------------------------------------------------------

export function proposeRequestFromPb(pb: ProposeRequestPb): ProposeRequestPb {
  const client_id = typeof pb?.client_id === 'string' ? pb.client_id : '';
  if (client_id === '') throw new ShoalError('INVALID_ARGUMENT', 'propose: missing client_id');
  return {
    client_id,
    seq: u64(pb.seq, 'seq'),
    payload: bytes(pb.payload, 'payload'),
    acked_below: u64(pb.acked_below ?? 0, 'acked_below'),
  };
}

export function proposeResponseFromPb(pb: ProposeResponsePb): ProposeResponsePb {
  return { index: u64(pb?.index, 'index'), result: bytes(pb?.result, 'result') };
}

export function readBarrierResponseFromPb(pb: ReadBarrierResponsePb): ReadBarrierResponsePb {
  return { index: u64(pb?.index, 'index') };
}

export function statusResponseFromPb(pb: StatusResponsePb): StatusResponsePb {
  return {
    id: str(pb?.id, 'id'),
    term: u64(pb.term, 'term'),
    leader: str(pb.leader, 'leader'),
    role: str(pb.role, 'role'),
    commit: u64(pb.commit, 'commit'),
    applied: u64(pb.applied, 'applied'),
    last_index: u64(pb.last_index, 'last_index'),
    recent_active: (pb.recent_active ?? []).map((id, i) => str(id, `recent_active[${i}]`)),
  };
}
