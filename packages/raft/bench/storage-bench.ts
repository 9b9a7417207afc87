// Measures how many synced write batches per second RaftStorage sustains on this machine, as the
// leader's Ready loop issues them (one save() at a time, awaited).
//   node packages/raft/dist/bench/storage-bench.js [seconds=3] [dir=os.tmpdir()]

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Level } from 'level';
import { RaftStorage } from '../src/storage/index.js';
import { EntryType, type Entry } from '../src/core/types.js';
import { silentLogger } from '../src/logger.js';

const seconds = Number(process.argv[2] ?? 3);
const base = process.argv[3] ?? os.tmpdir();

async function timed(label: string, fn: () => Promise<number>): Promise<void> {
  const start = process.hrtime.bigint();
  let n = 0;
  const end = Date.now() + seconds * 1000;
  while (Date.now() < end) n += await fn();
  const s = Number(process.hrtime.bigint() - start) / 1e9;
  console.log(`${label.padEnd(58)} ${(n / s).toFixed(0).padStart(7)} batches/s  (${((s / n) * 1000).toFixed(2)} ms each)`);
}

async function withStore(fn: (st: RaftStorage) => Promise<void>): Promise<void> {
  const dir = await fs.mkdtemp(path.join(base, 'shoal-bench-'));
  const st = await RaftStorage.open(dir, { logger: silentLogger() });
  try {
    await st.load();
    await st.bootstrap({ voters: [{ id: 'n1', addr: 'x' }], learners: [] });
    await fn(st);
  } finally {
    await st.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
}

function entries(first: number, n: number, size: number): Entry[] {
  const out: Entry[] = [];
  for (let i = 0; i < n; i++) out.push({ term: 1, index: first + i, type: EntryType.Normal, data: Buffer.alloc(size, i) });
  return out;
}

async function main(): Promise<void> {
  console.log(`node ${process.version}, ${os.cpus().length} CPUs, dir ${base}, ${seconds}s per case`);
  for (const [n, size] of [
    [1, 256],
    [10, 1024],
    [100, 1024],
  ] as const) {
    await withStore(async (st) => {
      let next = 1;
      await timed(`save(): ${n} entr${n === 1 ? 'y' : 'ies'} of ${size} B + hardState, sync`, async () => {
        await st.save({ entries: entries(next, n, size), hardState: { term: 1, vote: 'n1', commit: next - 1 } });
        next += n;
        return 1;
      });
    });
  }
  await withStore(async (st) => {
    await timed('save(): hardState only, sync', async () => {
      await st.save({ entries: [], hardState: { term: 1, vote: 'n1', commit: 0 } });
      return 1;
    });
  });
  // Baseline: a raw LevelDB synced batch of one 256 B value, no encoding.
  const dir = await fs.mkdtemp(path.join(base, 'shoal-bench-'));
  const db = new Level<Buffer, Buffer>(dir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
  await db.open();
  let k = 0;
  await timed('raw level batch([put 256 B]), sync', async () => {
    const key = Buffer.alloc(8);
    key.writeUInt32BE(k++, 4);
    await db.batch([{ type: 'put', key, value: Buffer.alloc(256) }], { sync: true });
    return 1;
  });
  await timed('raw level batch([put 256 B]), no sync (for comparison)', async () => {
    const key = Buffer.alloc(8);
    key.writeUInt32BE(k++, 4);
    await db.batch([{ type: 'put', key, value: Buffer.alloc(256) }], { sync: false });
    return 1;
  });
  await db.close();
  await fs.rm(dir, { recursive: true, force: true });
}

await main();
