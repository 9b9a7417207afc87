// Binary record encoding of the Raft storage (see packages/raft/STORAGE.md).
//
// Every value is: version u8 | kind u8 | payloadLength u32be | crc32 u32be | payload.
// crc32 (zlib / IEEE) covers the key, the first 6 header bytes and the payload, so a record that
// is truncated, bit-flipped or stored under another key fails verification. Integers are
// big-endian; u64 values must be safe JS integers (< 2^53).

import { crc32 } from 'node:zlib';
import { ShoalError } from '@shoal/api';
import { EntryType } from '../core/types.js';
import type { ConfState, Entry, HardState, Member, SnapshotMeta } from '../core/types.js';

export const RECORD_VERSION = 1;
export const HEADER_BYTES = 10;
/** Version of the key layout / set of records, stored under m/format. */
export const FORMAT_VERSION = 1;

export enum RecordKind {
  Format = 1,
  HardState = 2,
  Bootstrap = 3,
  SnapshotMeta = 4,
  SnapshotData = 5,
  Entry = 6,
}

// ---- keys -------------------------------------------------------------------------------------

export const KEY_FORMAT = Buffer.from('m/format');
export const KEY_HARD_STATE = Buffer.from('m/hardstate');
export const KEY_BOOTSTRAP = Buffer.from('m/bootstrap');
export const KEY_SNAPSHOT_META = Buffer.from('m/snapshot');
export const KEY_SNAPSHOT_DATA = Buffer.from('m/snapdata');
/**
 * Snapshot data is stored in records of at most this many bytes, under m/snapdata/INDEX/N
 * (N = 0, 1, ...; INDEX the snapshot's), each a SnapshotData record of the snapshot's index and
 * term. One LevelDB batch of a 100 MB value held the event loop for seconds (the batch is built on
 * this thread, growing by copies), so the chunks are written ahead in batches of their own, with
 * event-loop turns between them, and m/snapshot (the commit point) comes after, in the synced
 * batch that also drops the previous snapshot's chunks. Chunks of a snapshot that never got its
 * m/snapshot (a crash in between) are removed at load. A store written before chunking holds
 * the data in one record under m/snapdata: it is read as is.
 */
export const SNAPSHOT_CHUNK_BYTES = 4 << 20;

export const SNAPSHOT_CHUNK_PREFIX = 'm/snapdata/';

/** The key of chunk `n` of the data of the snapshot at `index`. */
export function snapshotChunkKey(index: number, n: number): Buffer {
  return Buffer.from(`${SNAPSHOT_CHUNK_PREFIX}${String(index).padStart(16, '0')}/${String(n).padStart(8, '0')}`);
}

/** The index in a chunk key (undefined if it is not one). */
export function snapshotChunkIndex(key: Uint8Array): number | undefined {
  const m = /^m\/snapdata\/(\d{16})\/\d{8}$/.exec(Buffer.from(key).toString('latin1'));
  return m ? Number(m[1]) : undefined;
}

export function snapshotChunkCount(length: number): number {
  return Math.max(1, Math.ceil(length / SNAPSHOT_CHUNK_BYTES));
}
/** Entry keys: 'e' followed by the index as a u64 big-endian (9 bytes; they sort by index). */
export const ENTRY_PREFIX = 0x65; // 'e'
export const ENTRY_KEY_BYTES = 9;
export const MAX_INDEX = Number.MAX_SAFE_INTEGER;

export function entryKey(index: number): Buffer {
  const k = Buffer.allocUnsafe(ENTRY_KEY_BYTES);
  k[0] = ENTRY_PREFIX;
  k.writeUInt32BE(Math.floor(index / 0x1_0000_0000), 1);
  k.writeUInt32BE(index >>> 0, 5);
  return k;
}

export function isEntryKey(key: Uint8Array): boolean {
  return key.length === ENTRY_KEY_BYTES && key[0] === ENTRY_PREFIX;
}

/** The index in an entry key (which must satisfy isEntryKey). */
export function entryKeyIndex(key: Uint8Array): number {
  const b = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  return b.readUInt32BE(1) * 0x1_0000_0000 + b.readUInt32BE(5);
}

/** Human-readable form of a key for error messages: 'm/hardstate', 'e/42'. */
export function describeKey(key: Uint8Array): string {
  if (isEntryKey(key)) return `e/${entryKeyIndex(key)}`;
  const b = Buffer.from(key.buffer, key.byteOffset, key.byteLength);
  return /^[\x20-\x7e]*$/.test(b.toString('latin1')) ? b.toString('latin1') : `0x${b.toString('hex')}`;
}

export function corrupt(key: Uint8Array | string, why: string): ShoalError {
  const k = typeof key === 'string' ? key : describeKey(key);
  return new ShoalError('CORRUPT_DATA', `raft storage: corrupt record ${k}: ${why}`, { details: { key: k } });
}

// ---- writer / reader --------------------------------------------------------------------------

class Writer {
  buf: Buffer;
  pos = HEADER_BYTES;

  constructor(payloadHint: number) {
    this.buf = Buffer.allocUnsafe(HEADER_BYTES + Math.max(16, payloadHint));
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  u8(v: number): void {
    this.ensure(1);
    this.buf[this.pos++] = v;
  }

  u32(v: number): void {
    this.ensure(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
  }

  u64(v: number, what: string): void {
    if (!Number.isSafeInteger(v) || v < 0) {
      throw new ShoalError('INVALID_ARGUMENT', `raft storage: ${what} must be a non-negative safe integer, got ${v}`);
    }
    this.ensure(8);
    this.buf.writeUInt32BE(Math.floor(v / 0x1_0000_0000), this.pos);
    this.buf.writeUInt32BE(v >>> 0, this.pos + 4);
    this.pos += 8;
  }

  bytes(v: Uint8Array): void {
    this.u64(v.length, 'length');
    this.ensure(v.length);
    this.buf.set(v, this.pos);
    this.pos += v.length;
  }

  str(v: string): void {
    const n = Buffer.byteLength(v, 'utf8');
    this.u32(n);
    this.ensure(n);
    this.buf.write(v, this.pos, n, 'utf8');
    this.pos += n;
  }

  /** Fills in the header and returns the finished record. */
  finish(key: Uint8Array, kind: RecordKind): Buffer {
    const out = this.buf.subarray(0, this.pos);
    out[0] = RECORD_VERSION;
    out[1] = kind;
    out.writeUInt32BE(this.pos - HEADER_BYTES, 2);
    const crc = crc32(out.subarray(HEADER_BYTES), crc32(out.subarray(0, 6), crc32(key)));
    out.writeUInt32BE(crc, 6);
    return out;
  }
}

class Reader {
  private pos = 0;

  constructor(
    private readonly buf: Buffer,
    private readonly key: Uint8Array,
  ) {}

  private need(n: number): void {
    if (this.pos + n > this.buf.length) throw corrupt(this.key, 'payload truncated');
  }

  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }

  u32(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u64(): number {
    this.need(8);
    const hi = this.buf.readUInt32BE(this.pos);
    const lo = this.buf.readUInt32BE(this.pos + 4);
    this.pos += 8;
    const v = hi * 0x1_0000_0000 + lo;
    if (!Number.isSafeInteger(v)) throw corrupt(this.key, 'integer out of range');
    return v;
  }

  bytes(): Buffer {
    const n = this.u64();
    this.need(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  str(): string {
    const n = this.u32();
    this.need(n);
    const v = this.buf.toString('utf8', this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  end(): void {
    if (this.pos !== this.buf.length) throw corrupt(this.key, `${this.buf.length - this.pos} unexpected trailing bytes`);
  }
}

/** Verifies a stored value's header and checksum and returns a reader over its payload. */
function open(key: Uint8Array, kind: RecordKind, value: Uint8Array): Reader {
  const v = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (v.length < HEADER_BYTES) throw corrupt(key, `value truncated (${v.length} bytes, header is ${HEADER_BYTES})`);
  if (v[0] !== RECORD_VERSION) throw corrupt(key, `unknown record version ${v[0]}`);
  if (v[1] !== kind) throw corrupt(key, `record kind ${v[1]}, expected ${kind} (${RecordKind[kind]})`);
  const len = v.readUInt32BE(2);
  if (v.length !== HEADER_BYTES + len) {
    throw corrupt(key, `value is ${v.length} bytes, header says ${HEADER_BYTES + len}${v.length < HEADER_BYTES + len ? ' (truncated)' : ''}`);
  }
  const payload = v.subarray(HEADER_BYTES);
  const crc = crc32(payload, crc32(v.subarray(0, 6), crc32(key)));
  if (crc !== v.readUInt32BE(6)) throw corrupt(key, 'checksum mismatch');
  return new Reader(payload, key);
}

// ---- typed records ----------------------------------------------------------------------------

export function encodeFormat(version: number): Buffer {
  const w = new Writer(4);
  w.u32(version);
  return w.finish(KEY_FORMAT, RecordKind.Format);
}

export function decodeFormat(value: Uint8Array): number {
  const r = open(KEY_FORMAT, RecordKind.Format, value);
  const v = r.u32();
  r.end();
  return v;
}

export function encodeHardState(hs: HardState): Buffer {
  const w = new Writer(24 + hs.vote.length * 3);
  w.u64(hs.term, 'hardState.term');
  w.str(hs.vote);
  w.u64(hs.commit, 'hardState.commit');
  return w.finish(KEY_HARD_STATE, RecordKind.HardState);
}

export function decodeHardState(value: Uint8Array): HardState {
  const r = open(KEY_HARD_STATE, RecordKind.HardState, value);
  const hs = { term: r.u64(), vote: r.str(), commit: r.u64() };
  r.end();
  return hs;
}

function writeMembers(w: Writer, ms: Member[]): void {
  w.u32(ms.length);
  for (const m of ms) {
    w.str(m.id);
    w.str(m.addr);
  }
}

function readMembers(r: Reader): Member[] {
  const n = r.u32();
  const out: Member[] = [];
  for (let i = 0; i < n; i++) out.push({ id: r.str(), addr: r.str() });
  return out;
}

function writeConf(w: Writer, c: ConfState): void {
  writeMembers(w, c.voters);
  writeMembers(w, c.learners);
}

function readConf(r: Reader): ConfState {
  return { voters: readMembers(r), learners: readMembers(r) };
}

export function encodeBootstrap(c: ConfState): Buffer {
  const w = new Writer(64);
  writeConf(w, c);
  return w.finish(KEY_BOOTSTRAP, RecordKind.Bootstrap);
}

export function decodeBootstrap(value: Uint8Array): ConfState {
  const r = open(KEY_BOOTSTRAP, RecordKind.Bootstrap, value);
  const c = readConf(r);
  r.end();
  return c;
}

/** Snapshot metadata plus the length and CRC-32 of the data stored under m/snapdata. */
export interface StoredSnapshotMeta extends SnapshotMeta {
  dataLength: number;
  dataCrc: number;
}

export function encodeSnapshotMeta(m: StoredSnapshotMeta): Buffer {
  const w = new Writer(128);
  w.u64(m.index, 'snapshot.meta.index');
  w.u64(m.term, 'snapshot.meta.term');
  writeConf(w, m.conf);
  w.u64(m.dataLength, 'snapshot data length');
  w.u32(m.dataCrc);
  return w.finish(KEY_SNAPSHOT_META, RecordKind.SnapshotMeta);
}

export function decodeSnapshotMeta(value: Uint8Array): StoredSnapshotMeta {
  const r = open(KEY_SNAPSHOT_META, RecordKind.SnapshotMeta, value);
  const m = { index: r.u64(), term: r.u64(), conf: readConf(r), dataLength: r.u64(), dataCrc: r.u32() };
  r.end();
  return m;
}

export function encodeSnapshotData(index: number, term: number, data: Uint8Array, key: Buffer = KEY_SNAPSHOT_DATA): Buffer {
  const w = new Writer(24 + data.length);
  w.u64(index, 'snapshot.meta.index');
  w.u64(term, 'snapshot.meta.term');
  w.bytes(data);
  return w.finish(key, RecordKind.SnapshotData);
}

export function decodeSnapshotData(value: Uint8Array, key: Buffer = KEY_SNAPSHOT_DATA): { index: number; term: number; data: Buffer } {
  const r = open(key, RecordKind.SnapshotData, value);
  const d = { index: r.u64(), term: r.u64(), data: r.bytes() };
  r.end();
  return d;
}

export function encodeEntry(e: Entry, key: Uint8Array = entryKey(e.index)): Buffer {
  const w = new Writer(25 + e.data.length);
  w.u64(e.term, 'entry.term');
  w.u64(e.index, 'entry.index');
  w.u8(e.type);
  w.bytes(e.data);
  return w.finish(key, RecordKind.Entry);
}

export function decodeEntry(key: Uint8Array, value: Uint8Array): Entry {
  const r = open(key, RecordKind.Entry, value);
  const e = { term: r.u64(), index: r.u64(), type: r.u8() as EntryType, data: r.bytes() };
  r.end();
  if (EntryType[e.type] === undefined) throw corrupt(key, `unknown entry type ${e.type}`);
  return e;
}
