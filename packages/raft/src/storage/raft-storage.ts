// Durable Raft state (hard state, log, snapshot, bootstrap configuration) in LevelDB.
// Layout, formats and invariants: packages/raft/STORAGE.md.

import fs from 'node:fs/promises';
import { crc32 } from 'node:zlib';
import { Level } from 'level';
import { ShoalError } from '@shoal/api';
import type { ConfState, Entry, HardState, Snapshot } from '../core/types.js';
import type { Logger } from '@shoal/api';
import { createLogger } from '../logger.js';
import {
  FORMAT_VERSION,
  KEY_BOOTSTRAP,
  KEY_FORMAT,
  KEY_HARD_STATE,
  KEY_SNAPSHOT_DATA,
  KEY_SNAPSHOT_META,
  MAX_INDEX,
  SNAPSHOT_CHUNK_BYTES,
  SNAPSHOT_CHUNK_PREFIX,
  snapshotChunkCount,
  snapshotChunkIndex,
  snapshotChunkKey,
  corrupt,
  describeKey,
  decodeBootstrap,
  decodeEntry,
  decodeFormat,
  decodeHardState,
  decodeSnapshotData,
  decodeSnapshotMeta,
  encodeBootstrap,
  encodeEntry,
  encodeFormat,
  encodeHardState,
  encodeSnapshotData,
  encodeSnapshotMeta,
  entryKey,
  entryKeyIndex,
  isEntryKey,
} from './records.js';

type Db = Level<Buffer, Buffer>;
type BatchOp = { type: 'put'; key: Buffer; value: Buffer } | { type: 'del'; key: Buffer };

const CHUNK_KEYS = { gt: Buffer.from(SNAPSHOT_CHUNK_PREFIX), lt: Buffer.from(SNAPSHOT_CHUNK_PREFIX.slice(0, -1) + '0') };

const turn = () => new Promise<void>((resolve) => setImmediate(resolve));

export interface LoadedState {
  /** {term: 0, vote: '', commit: 0} if none was ever saved. */
  hardState: HardState;
  /** The latest snapshot (received from a leader or taken locally); null if none. */
  snapshot: Snapshot | null;
  /** The entries after the snapshot's index (after 0 if none), contiguous. */
  entries: Entry[];
  /** The configuration given to bootstrap(); null on a node that joined an existing cluster. */
  bootstrapConf: ConfState | null;
}

export interface SaveParams {
  hardState?: HardState;
  entries: Entry[];
  snapshot?: Snapshot;
  /**
   * Default true: durable when the promise resolves. false: still atomic and ordered before every
   * later write (LevelDB's log is sequential, so the next synced write makes it durable too), but
   * may be lost in a machine crash: only for what Raft can re-learn, e.g. a commit-only hardState.
   */
  sync?: boolean;
}

export interface RaftStorageOptions {
  logger?: Logger;
}

const ENTRY_RANGE = { gte: entryKey(0), lte: entryKey(MAX_INDEX) };

function check(cond: boolean, code: 'INVALID_ARGUMENT' | 'FAILED_PRECONDITION', msg: string): asserts cond {
  if (!cond) throw new ShoalError(code, `raft storage: ${msg}`);
}

function isIndex(n: number): boolean {
  return Number.isSafeInteger(n) && n >= 0;
}

export class RaftStorage {
  /** Set by load(); every write needs it (the in-memory view below comes from a verified load). */
  private loaded = false;
  private formatWritten = false;
  private snapIndex = 0;
  /** Chunk records of the stored snapshot's data (SNAPSHOT_CHUNK_BYTES); -1: one m/snapdata record. */
  private snapChunks = 0;
  private snapTerm = 0;
  /** Stored entries are exactly (snapIndex, lastIdx]; lastIdx === snapIndex when there are none. */
  private lastIdx = 0;
  private commit = 0;
  private hasBootstrap = false;
  private hasHardState = false;
  /** Serializes writes (and load) so the in-memory view always matches the disk. */
  private chain: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly db: Db,
    readonly dir: string,
    private readonly log: Logger,
  ) {}

  /** Opens (creating it and its parent directories if needed) the store in `dir`. */
  static async open(dir: string, opts: RaftStorageOptions = {}): Promise<RaftStorage> {
    await fs.mkdir(dir, { recursive: true });
    const db: Db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
    try {
      await db.open();
    } catch (err) {
      const why = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
      throw new ShoalError('FAILED_PRECONDITION', `raft storage: cannot open ${dir}: ${why}`, { cause: err });
    }
    return new RaftStorage(db, dir, opts.logger ?? createLogger('raft-storage', { dir }));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.chain.catch(() => undefined);
    await this.db.close();
  }

  /** Index of the last stored entry (the snapshot's index if none). Valid after load(). */
  get lastIndex(): number {
    return this.lastIdx;
  }

  /** Index of the first stored entry (snapshot index + 1). Valid after load(). */
  get firstIndex(): number {
    return this.snapIndex + 1;
  }

  /** Index of the stored snapshot (0 if none). Valid after load(). */
  get snapshotIndex(): number {
    return this.snapIndex;
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) return Promise.reject(new ShoalError('FAILED_PRECONDITION', 'raft storage: closed'));
    const p = this.chain.then(fn, fn);
    this.chain = p.catch(() => undefined);
    return p;
  }

  private requireLoaded(): void {
    check(this.loaded, 'FAILED_PRECONDITION', 'load() must succeed before writing');
  }

  /**
   * Reads and verifies everything. Returns null if the store holds no Raft state (never
   * bootstrapped, never received anything). Throws ShoalError CORRUPT_DATA (details.key names the
   * record) on any checksum / format / continuity violation.
   */
  load(): Promise<LoadedState | null> {
    return this.serial(() => this.doLoad());
  }

  private async doLoad(): Promise<LoadedState | null> {
    this.loaded = false;
    const [fmtV, hsV, bootV, metaV] = await this.db.getMany([KEY_FORMAT, KEY_HARD_STATE, KEY_BOOTSTRAP, KEY_SNAPSHOT_META]);

    if (fmtV === undefined) {
      for await (const key of this.db.keys({ limit: 1 })) {
        throw corrupt(KEY_FORMAT, `missing, but the store is not empty (it holds ${describeKey(key)})`);
      }
      this.reset(0, 0, 0, 0, false, false, false);
      return null;
    }
    const fmt = decodeFormat(fmtV);
    if (fmt !== FORMAT_VERSION) {
      throw new ShoalError('FAILED_PRECONDITION', `raft storage: ${this.dir} has format version ${fmt}, this build reads ${FORMAT_VERSION}`);
    }

    const hardState = hsV === undefined ? { term: 0, vote: '', commit: 0 } : decodeHardState(hsV);
    const bootstrapConf = bootV === undefined ? null : decodeBootstrap(bootV);

    const snapshot = await this.readSnapshot(metaV);
    const snapIndex = snapshot?.meta.index ?? 0;
    await this.dropUncommittedChunks(snapIndex);
    const snapTerm = snapshot?.meta.term ?? 0;

    const entries: Entry[] = [];
    let prevIndex = snapIndex;
    let prevTerm = snapTerm;
    const it = this.db.iterator(ENTRY_RANGE);
    try {
      for (;;) {
        const batch = await it.nextv(1024);
        if (batch.length === 0) break;
        for (const [key, value] of batch) {
          if (!isEntryKey(key)) throw corrupt(key, 'malformed entry key');
          const ki = entryKeyIndex(key);
          if (ki <= snapIndex) throw corrupt(key, `entry at or below the snapshot index ${snapIndex}`);
          if (ki !== prevIndex + 1) throw corrupt(key, `gap in the log: entry ${ki} follows ${prevIndex}`);
          const e = decodeEntry(key, value);
          if (e.index !== ki) throw corrupt(key, `holds entry index ${e.index}`);
          if (e.term < prevTerm) throw corrupt(key, `term ${e.term} is below the previous term ${prevTerm}`);
          entries.push(e);
          prevIndex = ki;
          prevTerm = e.term;
        }
      }
    } finally {
      await it.close();
    }
    const lastIndex = prevIndex;
    if (hardState.commit > lastIndex) {
      throw corrupt(KEY_HARD_STATE, `commit ${hardState.commit} is beyond the last index ${lastIndex}`);
    }

    this.reset(snapIndex, snapTerm, lastIndex, hardState.commit, bootstrapConf !== null, hsV !== undefined, true);
    if (hsV === undefined && bootstrapConf === null && snapshot === null && entries.length === 0) return null;
    return { hardState, snapshot, entries, bootstrapConf };
  }

  private reset(snapIndex: number, snapTerm: number, lastIdx: number, commit: number, boot: boolean, hs: boolean, fmt: boolean): void {
    this.snapIndex = snapIndex;
    this.snapTerm = snapTerm;
    this.lastIdx = lastIdx;
    this.commit = commit;
    this.hasBootstrap = boot;
    this.hasHardState = hs;
    this.formatWritten = fmt;
    this.loaded = true;
  }

  /**
   * Records the initial configuration of a brand-new cluster (under its own key, m/bootstrap; it
   * is not a snapshot). Refuses (ALREADY_EXISTS) if the store holds any Raft state.
   */
  bootstrap(conf: ConfState): Promise<void> {
    return this.serial(async () => {
      this.requireLoaded();
      const pristine = !this.hasBootstrap && !this.hasHardState && this.snapIndex === 0 && this.lastIdx === 0;
      if (!pristine) throw new ShoalError('ALREADY_EXISTS', `raft storage: ${this.dir} is already initialized`);
      check(conf.voters.length > 0, 'INVALID_ARGUMENT', 'bootstrap configuration needs at least one voter');
      const ids = [...conf.voters, ...conf.learners].map((m) => m.id);
      check(ids.every((id) => id !== ''), 'INVALID_ARGUMENT', 'member ids must not be empty');
      check(new Set(ids).size === ids.length, 'INVALID_ARGUMENT', 'duplicate member id in bootstrap configuration');
      const ops: BatchOp[] = [{ type: 'put', key: KEY_BOOTSTRAP, value: encodeBootstrap(conf) }];
      this.addFormat(ops);
      await this.write(ops);
      this.formatWritten = true;
      this.hasBootstrap = true;
    });
  }

  /** One synced LevelDB write batch (the chained form: measurably cheaper than batch(array)). */
  private async write(ops: BatchOp[], sync = true): Promise<void> {
    const b = this.db.batch();
    for (const op of ops) {
      if (op.type === 'put') b.put(op.key, op.value);
      else b.del(op.key);
    }
    await b.write({ sync });
  }

  private addFormat(ops: BatchOp[]): void {
    if (!this.formatWritten) ops.push({ type: 'put', key: KEY_FORMAT, value: encodeFormat(FORMAT_VERSION) });
  }

  private async storedTerm(index: number): Promise<number | undefined> {
    if (index === this.snapIndex) return this.snapTerm;
    if (index < this.snapIndex || index > this.lastIdx) return undefined;
    const key = entryKey(index);
    const v = await this.db.get(key);
    if (v === undefined) throw corrupt(key, 'missing (inside the stored log range)');
    return decodeEntry(key, v).term;
  }

  /**
   * Writes the snapshot's data chunks ahead, each its own unsynced batch with an event-loop turn
   * between two, and returns the data's CRC-32. Nothing refers to them until the commit batch
   * (commitSnapshotOps) puts m/snapshot; the synced commit makes them durable with it (LevelDB's
   * log is one sequence). Chunks are keyed by the snapshot's index: a snapshot of the same index
   * (from another member) holds the same state and the same data.
   */
  private async writeSnapshotChunks(snap: Snapshot): Promise<number> {
    const data = snap.data;
    const { index, term } = snap.meta;
    let crc = 0;
    const chunks = snapshotChunkCount(data.length);
    for (let n = 0; n < chunks; n++) {
      const key = snapshotChunkKey(index, n);
      const part = data.subarray(n * SNAPSHOT_CHUNK_BYTES, (n + 1) * SNAPSHOT_CHUNK_BYTES);
      crc = crc32(part, crc);
      await this.db.put(key, encodeSnapshotData(index, term, part, key), { sync: false });
      await turn();
    }
    return crc;
  }

  /** The commit batch's ops for a snapshot whose chunks are written: m/snapshot, the old data dropped. */
  private commitSnapshotOps(ops: BatchOp[], snap: Snapshot, crc: number): void {
    const data = snap.data;
    ops.push({ type: 'put', key: KEY_SNAPSHOT_META, value: encodeSnapshotMeta({ ...snap.meta, dataLength: data.length, dataCrc: crc }) });
    if (snap.meta.index === this.snapIndex) return;
    if (this.snapChunks === -1) ops.push({ type: 'del', key: KEY_SNAPSHOT_DATA });
    for (let n = 0; n < this.snapChunks; n++) ops.push({ type: 'del', key: snapshotChunkKey(this.snapIndex, n) });
  }

  private static validateSnapshot(snap: Snapshot): void {
    check(isIndex(snap.meta.index) && isIndex(snap.meta.term), 'INVALID_ARGUMENT', 'bad snapshot index/term');
    check(snap.meta.index === 0 || snap.meta.term > 0, 'INVALID_ARGUMENT', 'snapshot with index > 0 needs a term > 0');
  }

  /**
   * Persists one Ready in a single synced batch, applied in this order:
   * - `snapshot`: stored; entries <= its index deleted. Entries above it are kept only if the log
   *   held the snapshot's index with the snapshot's term (Log Matching: they agree with it);
   *   otherwise they are deleted too.
   * - `entries` (contiguous; any at or below the snapshot index are ignored): put; stored entries
   *   above the last of them deleted (a conflicting suffix is replaced). The first must not leave
   *   a gap after the last stored entry.
   * - `hardState`: put. Its commit must not exceed the resulting last index.
   * Invalid input is refused (INVALID_ARGUMENT / FAILED_PRECONDITION) before anything is written.
   * Synced unless `sync: false`.
   */
  save(p: SaveParams): Promise<void> {
    return this.serial(async () => {
      this.requireLoaded();
      if (!p.snapshot && !p.hardState && p.entries.length === 0) return;
      const ops: BatchOp[] = [];
      let snapIndex = this.snapIndex;
      let snapTerm = this.snapTerm;
      let lastIdx = this.lastIdx;
      let commit = this.commit;

      if (p.snapshot) {
        const s = p.snapshot;
        RaftStorage.validateSnapshot(s);
        check(
          s.meta.index >= this.snapIndex,
          'FAILED_PRECONDITION',
          `snapshot ${s.meta.index} is older than the stored snapshot ${this.snapIndex}`,
        );
        const keepSuffix = (await this.storedTerm(s.meta.index)) === s.meta.term;
        const crc = await this.writeSnapshotChunks(s);
        this.commitSnapshotOps(ops, s, crc);
        const delTo = keepSuffix ? s.meta.index : this.lastIdx;
        for (let i = this.snapIndex + 1; i <= delTo; i++) ops.push({ type: 'del', key: entryKey(i) });
        snapIndex = s.meta.index;
        snapTerm = s.meta.term;
        lastIdx = keepSuffix ? Math.max(this.lastIdx, snapIndex) : snapIndex;
      }

      let entries = p.entries;
      if (entries.length > 0) {
        for (let i = 0; i < entries.length; i++) {
          const e = entries[i]!;
          check(isIndex(e.index) && e.index > 0 && isIndex(e.term) && e.term > 0, 'INVALID_ARGUMENT', `bad entry ${e.index}/${e.term}`);
          if (i > 0) {
            check(e.index === entries[i - 1]!.index + 1, 'INVALID_ARGUMENT', `entries not contiguous at ${e.index}`);
            check(e.term >= entries[i - 1]!.term, 'INVALID_ARGUMENT', `entry terms decrease at ${e.index}`);
          }
        }
        if (entries[0]!.index <= snapIndex) {
          this.log.debug({ first: entries[0]!.index, snapIndex }, 'ignoring entries covered by the snapshot');
          entries = entries.filter((e) => e.index > snapIndex);
        }
      }
      if (entries.length > 0) {
        const first = entries[0]!;
        const last = entries[entries.length - 1]!;
        check(first.index <= lastIdx + 1, 'FAILED_PRECONDITION', `entry ${first.index} would leave a gap after ${lastIdx}`);
        check(first.term >= snapTerm, 'INVALID_ARGUMENT', `entry ${first.index} has term ${first.term} below the snapshot term ${snapTerm}`);
        for (const e of entries) {
          const key = entryKey(e.index);
          ops.push({ type: 'put', key, value: encodeEntry(e, key) });
        }
        for (let i = last.index + 1; i <= lastIdx; i++) ops.push({ type: 'del', key: entryKey(i) });
        lastIdx = last.index;
      }

      if (p.hardState) {
        const hs = p.hardState;
        check(isIndex(hs.term) && isIndex(hs.commit), 'INVALID_ARGUMENT', 'bad hardState');
        commit = hs.commit;
        ops.push({ type: 'put', key: KEY_HARD_STATE, value: encodeHardState(hs) });
      }
      check(commit <= lastIdx, 'FAILED_PRECONDITION', `commit ${commit} would be beyond the last index ${lastIdx}`);

      this.addFormat(ops);
      await this.write(ops, p.sync !== false);
      this.formatWritten = true;
      if (p.snapshot && p.snapshot.meta.index !== this.snapIndex) this.snapChunks = snapshotChunkCount(p.snapshot.data.length);
      this.snapIndex = snapIndex;
      this.snapTerm = snapTerm;
      this.lastIdx = lastIdx;
      this.commit = commit;
      if (p.hardState) this.hasHardState = true;
    });
  }

  /**
   * Stores a snapshot taken locally at snap.meta.index (which must be in the stored log, with the
   * stored term) and deletes the entries up to it (log compaction). Synced.
   */
  async saveSnapshot(snap: Snapshot): Promise<void> {
    this.requireLoaded();
    RaftStorage.validateSnapshot(snap);
    check(snap.meta.index >= this.snapIndex, 'FAILED_PRECONDITION', `snapshot ${snap.meta.index} is older than the stored snapshot ${this.snapIndex}`);
    // Ahead of the queue: Readys keep being saved while a large snapshot's data goes to disk.
    const crc = await this.writeSnapshotChunks(snap);
    return this.serial(async () => {
      const { index, term } = snap.meta;
      check(index >= this.snapIndex, 'FAILED_PRECONDITION', `snapshot ${index} is older than the stored snapshot ${this.snapIndex}`);
      check(index <= this.lastIdx, 'FAILED_PRECONDITION', `snapshot ${index} is beyond the last index ${this.lastIdx}`);
      const stored = await this.storedTerm(index);
      check(stored === term, 'FAILED_PRECONDITION', `snapshot ${index}/${term} does not match the log (term ${stored})`);
      const ops: BatchOp[] = [];
      this.commitSnapshotOps(ops, snap, crc);
      for (let i = this.snapIndex + 1; i <= index; i++) ops.push({ type: 'del', key: entryKey(i) });
      this.addFormat(ops);
      await this.write(ops);
      this.formatWritten = true;
      if (index !== this.snapIndex) this.snapChunks = snapshotChunkCount(snap.data.length);
      this.snapIndex = index;
      this.snapTerm = term;
    });
  }

  /** Reads back the stored snapshot (verified), or null. */
  loadSnapshot(): Promise<Snapshot | null> {
    return this.serial(async () => this.readSnapshot(await this.db.get(KEY_SNAPSHOT_META)));
  }

  private async readSnapshot(metaV: Buffer | undefined): Promise<Snapshot | null> {
    const [dataV] = await this.db.getMany([KEY_SNAPSHOT_DATA]);
    if (metaV === undefined) {
      if (dataV !== undefined) throw corrupt(KEY_SNAPSHOT_DATA, 'present without m/snapshot');
      this.snapChunks = 0;
      return null;
    }
    const meta = decodeSnapshotMeta(metaV);
    let data: Buffer;
    if (dataV !== undefined) {
      // Written before chunking: all the data in one record.
      const d = decodeSnapshotData(dataV);
      if (d.index !== meta.index || d.term !== meta.term) {
        throw corrupt(KEY_SNAPSHOT_DATA, `is for ${d.index}/${d.term}, m/snapshot for ${meta.index}/${meta.term}`);
      }
      data = d.data;
      this.snapChunks = -1;
    } else {
      const chunks = snapshotChunkCount(meta.dataLength);
      const keys = Array.from({ length: chunks }, (_, n) => snapshotChunkKey(meta.index, n));
      const values = await this.db.getMany(keys);
      const parts: Buffer[] = [];
      for (let n = 0; n < chunks; n++) {
        const v = values[n];
        if (v === undefined) throw corrupt(keys[n]!, `missing (chunk ${n + 1} of ${chunks} of the snapshot data)`);
        const d = decodeSnapshotData(v, keys[n]);
        if (d.index !== meta.index || d.term !== meta.term) {
          throw corrupt(keys[n]!, `is for ${d.index}/${d.term}, m/snapshot for ${meta.index}/${meta.term}`);
        }
        parts.push(d.data);
      }
      data = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
      this.snapChunks = chunks;
    }
    if (data.length !== meta.dataLength || crc32(data) !== meta.dataCrc) {
      throw corrupt(KEY_SNAPSHOT_META, 'the snapshot data does not match the length/checksum in m/snapshot');
    }
    return { meta: { index: meta.index, term: meta.term, conf: meta.conf }, data };
  }

  /** Removes snapshot data chunks a crash left behind (written ahead, never committed). */
  private async dropUncommittedChunks(snapIndex: number): Promise<void> {
    const stale: Buffer[] = [];
    for await (const key of this.db.keys(CHUNK_KEYS)) {
      if (this.snapChunks > 0 && snapshotChunkIndex(key) === snapIndex) continue;
      stale.push(key);
    }
    if (stale.length > 0) await this.write(stale.map((key) => ({ type: 'del', key })), false);
  }
}
