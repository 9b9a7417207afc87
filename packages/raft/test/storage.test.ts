import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { ShoalError } from '@shoal/api';
import { RaftStorage, entryKey, KEY_HARD_STATE, KEY_SNAPSHOT_DATA, SNAPSHOT_CHUNK_BYTES, snapshotChunkKey } from '../src/storage/index.js';
import { encodeEntry, encodeHardState, encodeSnapshotData } from '../src/storage/records.js';
import { EntryType, type ConfState, type Entry, type Snapshot } from '../src/core/types.js';
import { silentLogger } from '../src/logger.js';

const conf: ConfState = {
  voters: [
    { id: 'n1', addr: '127.0.0.1:7001' },
    { id: 'n2', addr: '127.0.0.1:7002' },
    { id: 'n3', addr: '127.0.0.1:7003' },
  ],
  learners: [],
};

function ent(index: number, term: number, data = `cmd-${index}-${term}`): Entry {
  return { index, term, type: EntryType.Normal, data: Buffer.from(data) };
}

function range(from: number, to: number, term: number): Entry[] {
  const out: Entry[] = [];
  for (let i = from; i <= to; i++) out.push(ent(i, term));
  return out;
}

function plain(es: Entry[]) {
  return es.map((e) => ({ ...e, data: Buffer.from(e.data).toString() }));
}

let dir: string;
let st: RaftStorage | undefined;

async function openStore(): Promise<RaftStorage> {
  st = await RaftStorage.open(dir, { logger: silentLogger() });
  return st;
}

async function reopen(): Promise<RaftStorage> {
  await st?.close();
  return openStore();
}

/** Opens the LevelDB directly (the store must be closed) and runs fn on it. */
async function raw(fn: (db: Level<Buffer, Buffer>) => Promise<void>): Promise<void> {
  await st?.close();
  st = undefined;
  const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  try {
    await fn(db);
  } finally {
    await db.close();
  }
}

async function expectCorrupt(key: string): Promise<void> {
  const s = await openStore();
  await assert.rejects(s.load(), (err: unknown) => {
    assert.ok(ShoalError.is(err, 'CORRUPT_DATA'), `expected CORRUPT_DATA, got ${String(err)}`);
    assert.equal(err.details.key, key);
    assert.match(err.message, new RegExp(key));
    return true;
  });
}

async function seed(n = 10): Promise<RaftStorage> {
  const s = await openStore();
  assert.equal(await s.load(), null);
  await s.bootstrap(conf);
  await s.save({ entries: range(1, n, 1), hardState: { term: 1, vote: 'n1', commit: Math.min(3, n) } });
  return s;
}

beforeEach(async () => {
  dir = await fs.mkdtemp(path.join(os.tmpdir(), 'shoal-storage-'));
});

afterEach(async () => {
  await st?.close();
  st = undefined;
  await fs.rm(dir, { recursive: true, force: true });
});

describe('RaftStorage', () => {
  test('a new store loads as null; bootstrap is durable and only once', async () => {
    let s = await RaftStorage.open(path.join(dir, 'nested', 'deeper'), { logger: silentLogger() });
    st = s;
    assert.equal(await s.load(), null);
    await s.bootstrap(conf);
    await assert.rejects(s.bootstrap(conf), (e: unknown) => ShoalError.is(e, 'ALREADY_EXISTS'));
    await s.close();
    s = st = await RaftStorage.open(path.join(dir, 'nested', 'deeper'), { logger: silentLogger() });
    const l = await s.load();
    assert.deepEqual(l, { hardState: { term: 0, vote: '', commit: 0 }, snapshot: null, entries: [], bootstrapConf: conf });
  });

  test('writes before load() are refused', async () => {
    const s = await openStore();
    await assert.rejects(s.save({ entries: [ent(1, 1)] }), (e: unknown) => ShoalError.is(e, 'FAILED_PRECONDITION'));
  });

  test('round trip of entries and hard state across reopen', async () => {
    await seed(10);
    const s = await reopen();
    const l = await s.load();
    assert.ok(l);
    assert.deepEqual(l.hardState, { term: 1, vote: 'n1', commit: 3 });
    assert.deepEqual(plain(l.entries), plain(range(1, 10, 1)));
    assert.equal(s.lastIndex, 10);
    assert.equal(s.firstIndex, 1);
    // Unicode vote, conf-change entry type, empty data.
    await s.save({
      entries: [{ index: 11, term: 2, type: EntryType.ConfChange, data: new Uint8Array(0) }],
      hardState: { term: 2, vote: 'nœud-2', commit: 11 },
    });
    const l2 = await (await reopen()).load();
    assert.equal(l2!.entries.at(-1)!.type, EntryType.ConfChange);
    assert.equal(l2!.entries.at(-1)!.data.length, 0);
    assert.deepEqual(l2!.hardState, { term: 2, vote: 'nœud-2', commit: 11 });
  });

  test('an unsynced save (commit only) is applied and ordered like the others', async () => {
    const s = await seed(10);
    await s.save({ entries: [], hardState: { term: 1, vote: 'n1', commit: 9 }, sync: false });
    await s.save({ entries: [ent(11, 1)] });
    const l = await (await reopen()).load();
    assert.equal(l!.hardState.commit, 9);
    assert.equal(l!.entries.length, 11);
  });

  test('a conflicting suffix is truncated', async () => {
    const s = await seed(10);
    await s.save({ entries: [ent(6, 2, 'new6'), ent(7, 2, 'new7')], hardState: { term: 2, vote: 'n2', commit: 5 } });
    assert.equal(s.lastIndex, 7);
    await s.save({ entries: [ent(8, 2, 'new8')] });
    const l = await (await reopen()).load();
    assert.deepEqual(plain(l!.entries), plain([...range(1, 5, 1), ent(6, 2, 'new6'), ent(7, 2, 'new7'), ent(8, 2, 'new8')]));
  });

  test('save refuses a gap, or a commit beyond the log, without writing anything', async () => {
    const s = await seed(5);
    await assert.rejects(s.save({ entries: [ent(7, 1)] }), (e: unknown) => ShoalError.is(e, 'FAILED_PRECONDITION'));
    await assert.rejects(
      s.save({ entries: [ent(6, 1)], hardState: { term: 1, vote: '', commit: 9 } }),
      (e: unknown) => ShoalError.is(e, 'FAILED_PRECONDITION'),
    );
    // Truncating below the stored commit (3) is refused too.
    await assert.rejects(s.save({ entries: [ent(2, 2)] }), (e: unknown) => ShoalError.is(e, 'FAILED_PRECONDITION'));
    await assert.rejects(s.save({ entries: [ent(6, 1), ent(8, 1)] }), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT'));
    const l = await (await reopen()).load();
    assert.equal(l!.entries.length, 5);
    assert.equal(l!.hardState.commit, 3);
  });

  test('compaction: saveSnapshot drops entries up to its index', async () => {
    const s = await seed(10);
    const snap: Snapshot = { meta: { index: 5, term: 1, conf }, data: Buffer.from('state@5') };
    await s.saveSnapshot(snap);
    assert.equal(s.firstIndex, 6);
    await assert.rejects(
      s.saveSnapshot({ meta: { index: 11, term: 1, conf }, data: Buffer.alloc(0) }),
      (e: unknown) => ShoalError.is(e, 'FAILED_PRECONDITION'),
    );
    await assert.rejects(
      s.saveSnapshot({ meta: { index: 8, term: 2, conf }, data: Buffer.alloc(0) }),
      (e: unknown) => ShoalError.is(e, 'FAILED_PRECONDITION'),
    );
    await assert.rejects(
      s.saveSnapshot({ meta: { index: 4, term: 1, conf }, data: Buffer.alloc(0) }),
      (e: unknown) => ShoalError.is(e, 'FAILED_PRECONDITION'),
    );
    await s.close();
    await raw(async (db) => {
      const keys = await db.keys({ gte: entryKey(0), lte: entryKey(100) }).all();
      assert.deepEqual(keys.map((k) => k.readUInt32BE(5)), [6, 7, 8, 9, 10]);
    });
    const s2 = await openStore();
    const l = await s2.load();
    assert.equal(l!.snapshot!.meta.index, 5);
    assert.equal(Buffer.from(l!.snapshot!.data).toString(), 'state@5');
    assert.deepEqual(l!.snapshot!.meta.conf, conf);
    assert.deepEqual(plain(l!.entries), plain(range(6, 10, 1)));
    assert.equal(Buffer.from((await s2.loadSnapshot())!.data).toString(), 'state@5');
    // The log continues after the snapshot; a later snapshot at the last index empties it.
    await s2.save({ entries: [ent(11, 1)], hardState: { term: 1, vote: 'n1', commit: 11 } });
    await s2.saveSnapshot({ meta: { index: 11, term: 1, conf }, data: Buffer.from('state@11') });
    const l2 = await (await reopen()).load();
    assert.equal(l2!.snapshot!.meta.index, 11);
    assert.deepEqual(l2!.entries, []);
  });

  test('a received snapshot: suffix kept if the log matches it, dropped otherwise', async () => {
    const s = await seed(10);
    // Matches entry 7 (term 1): entries 8..10 stay.
    await s.save({ snapshot: { meta: { index: 7, term: 1, conf }, data: Buffer.from('x') }, entries: [] });
    assert.equal(s.lastIndex, 10);
    let l = await (await reopen()).load();
    assert.deepEqual(l!.entries.map((e) => e.index), [8, 9, 10]);
    // Conflicts with entry 9 (term 1 stored): everything goes.
    const s2 = st!;
    await s2.save({
      snapshot: { meta: { index: 9, term: 3, conf }, data: Buffer.from('y') },
      entries: [],
      hardState: { term: 3, vote: '', commit: 9 },
    });
    assert.equal(s2.lastIndex, 9);
    l = await (await reopen()).load();
    assert.deepEqual(l!.entries, []);
    assert.equal(l!.snapshot!.meta.term, 3);
    // Beyond the log, with entries in the same batch (entries at/below the index are ignored).
    const s3 = st!;
    await s3.save({
      snapshot: { meta: { index: 20, term: 4, conf }, data: Buffer.from('z') },
      entries: [ent(20, 4), ent(21, 4), ent(22, 4)],
      hardState: { term: 4, vote: '', commit: 21 },
    });
    l = await (await reopen()).load();
    assert.equal(l!.snapshot!.meta.index, 20);
    assert.deepEqual(l!.entries.map((e) => e.index), [21, 22]);
    await assert.rejects(
      st!.save({ snapshot: { meta: { index: 15, term: 4, conf }, data: Buffer.alloc(0) }, entries: [] }),
      (e: unknown) => ShoalError.is(e, 'FAILED_PRECONDITION'),
    );
  });

  test('a flipped byte in an entry is detected', async () => {
    await seed(10);
    await raw(async (db) => {
      const v = (await db.get(entryKey(4)))!;
      v[v.length - 2] ^= 0x01;
      await db.put(entryKey(4), v);
    });
    await expectCorrupt('e/4');
  });

  test('a flipped header byte is detected', async () => {
    await seed(10);
    await raw(async (db) => {
      const v = (await db.get(entryKey(2)))!;
      v[3] ^= 0x40; // inside the length field
      await db.put(entryKey(2), v);
    });
    await expectCorrupt('e/2');
  });

  test('a truncated value is detected (entry, hard state, snapshot data)', async () => {
    const s = await seed(10);
    await s.saveSnapshot({ meta: { index: 3, term: 1, conf }, data: Buffer.alloc(5000, 7) });
    for (const [key, name] of [
      [entryKey(9), 'e/9'],
      [KEY_HARD_STATE, 'm/hardstate'],
      [snapshotChunkKey(3, 0), 'm/snapdata/0000000000000003/00000000'],
    ] as const) {
      let saved: Buffer | undefined;
      await raw(async (db) => {
        saved = (await db.get(key))!;
        await db.put(key, saved.subarray(0, saved.length - 3));
      });
      await expectCorrupt(name);
      await raw(async (db) => db.put(key, saved!));
    }
    await expectCorrupt('e/9').catch(() => undefined); // restored: now loads fine
    const l = await (await reopen()).load();
    assert.equal(l!.entries.length, 7);
  });

  test('a snapshot larger than a chunk is stored in chunks; the next one replaces them all', async () => {
    const s = await seed(10);
    const big = Buffer.alloc(2 * SNAPSHOT_CHUNK_BYTES + 12345);
    for (let i = 0; i < big.length; i += 4096) big[i] = (i / 4096) & 0xff;
    await s.saveSnapshot({ meta: { index: 3, term: 1, conf }, data: big });
    let l = await (await reopen()).load();
    assert.ok(Buffer.from(l!.snapshot!.data).equals(big));
    await st!.saveSnapshot({ meta: { index: 5, term: 1, conf }, data: Buffer.from('small') });
    l = await (await reopen()).load();
    assert.equal(Buffer.from(l!.snapshot!.data).toString(), 'small');
    const keys: string[] = [];
    await raw(async (db) => {
      for await (const k of db.keys({ gte: Buffer.from('m/snapdata'), lt: Buffer.from('m/snapdata0') })) keys.push(k.toString());
    });
    assert.deepEqual(keys, ['m/snapdata/0000000000000005/00000000']);
  });

  test('a missing chunk is detected; chunks never committed are removed at load', async () => {
    const s = await seed(10);
    await s.saveSnapshot({ meta: { index: 3, term: 1, conf }, data: Buffer.alloc(SNAPSHOT_CHUNK_BYTES + 10, 1) });
    const orphan = snapshotChunkKey(7, 0);
    await raw(async (db) => db.put(orphan, encodeSnapshotData(7, 1, Buffer.from('x'), orphan)));
    await (await reopen()).load();
    await raw(async (db) => {
      assert.equal(await db.get(orphan), undefined);
      await db.del(snapshotChunkKey(3, 1));
    });
    await expectCorrupt('m/snapdata/0000000000000003/00000001');
  });

  test('a snapshot stored in one record (before chunking) loads, and the next snapshot replaces it', async () => {
    const s = await seed(10);
    await s.saveSnapshot({ meta: { index: 3, term: 1, conf }, data: Buffer.from('old-form') });
    await raw(async (db) => {
      await db.del(snapshotChunkKey(3, 0));
      await db.put(KEY_SNAPSHOT_DATA, encodeSnapshotData(3, 1, Buffer.from('old-form')));
    });
    let l = await (await openStore()).load();
    assert.equal(Buffer.from(l!.snapshot!.data).toString(), 'old-form');
    await st!.saveSnapshot({ meta: { index: 6, term: 1, conf }, data: Buffer.from('new-form') });
    l = await (await reopen()).load();
    assert.equal(Buffer.from(l!.snapshot!.data).toString(), 'new-form');
    await raw(async (db) => assert.equal(await db.get(KEY_SNAPSHOT_DATA), undefined));
  });

  test('a value shorter than the header is detected', async () => {
    await seed(3);
    await raw(async (db) => db.put(entryKey(2), Buffer.from([1, 6])));
    await expectCorrupt('e/2');
  });

  test('a gap in the log is detected', async () => {
    await seed(10);
    await raw(async (db) => db.del(entryKey(5)));
    await expectCorrupt('e/6');
  });

  test("an entry whose index doesn't match its key is detected", async () => {
    await seed(10);
    // A well-formed record (valid checksum for key 5) holding entry 4.
    await raw(async (db) => db.put(entryKey(5), encodeEntry(ent(4, 1), entryKey(5))));
    await expectCorrupt('e/5');
  });

  test('an entry stored under another key fails its checksum', async () => {
    await seed(10);
    await raw(async (db) => db.put(entryKey(5), (await db.get(entryKey(4)))!));
    await expectCorrupt('e/5');
  });

  test('a hard state commit beyond the last index is detected', async () => {
    await seed(10);
    await raw(async (db) => db.put(KEY_HARD_STATE, encodeHardState({ term: 1, vote: 'n1', commit: 11 })));
    await expectCorrupt('m/hardstate');
  });

  test('a second open of the same directory fails cleanly', async () => {
    await seed(1);
    await assert.rejects(RaftStorage.open(dir), (e: unknown) => ShoalError.is(e, 'FAILED_PRECONDITION'));
  });
});
