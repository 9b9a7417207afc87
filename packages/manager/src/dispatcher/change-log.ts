// A keyed view that remembers when each key last changed, so a reader can be sent only what
// changed since it last read, in pages that fit a message. The dispatcher keeps one per node (its
// assignments) and one for the routing mesh, fed from store events: each change costs O(1) here,
// and the work of an answer (sorting what changed, sizing the page) is done when a node asks.
//
// Sequence numbers are Raft indexes, the same on every manager: a node's cursor from one leader
// is good at the next, as long as that one has kept the deletions since then (`floor`).

/** What a reader has seen: every change up to (seq, key) in (seq, key) order. */
export interface Cursor {
  seq: number;
  /** '' : everything at `seq` and before. */
  key: string;
}

export interface Page<V> {
  /** The reader's view was dropped (first read, or deletions it missed were forgotten): start empty. */
  reset: boolean;
  upserts: { key: string; value: V }[];
  deletes: string[];
  /** Where the next read continues. */
  cursor: Cursor;
  /** The page was cut at the size budget: read again at once for the rest. */
  more: boolean;
}

interface Entry<V> {
  seq: number;
  /** undefined: a tombstone (the key was deleted at `seq`). */
  value: V | undefined;
}

/** Tombstones kept beyond the live keys' count before the oldest are forgotten. */
const SPARE_TOMBSTONES = 1_000;

export function encodeCursor(c: Cursor): string {
  return c.key ? `${c.seq}/${c.key}` : String(c.seq);
}

/** undefined for '' (a first read) or anything malformed (read from scratch). */
export function decodeCursor(s: string | undefined): Cursor | undefined {
  if (!s) return undefined;
  const i = s.indexOf('/');
  const seq = Number(i < 0 ? s : s.slice(0, i));
  if (!Number.isSafeInteger(seq) || seq < 0) return undefined;
  return { seq, key: i < 0 ? '' : s.slice(i + 1) };
}

function after(a: { seq: number; key: string }, c: Cursor): boolean {
  if (a.seq !== c.seq) return a.seq > c.seq;
  return c.key !== '' && a.key > c.key;
}

export class ChangeLog<V> {
  private readonly entries = new Map<string, Entry<V>>();
  private tombstones = 0;
  /** Deletions at or before this seq may have been forgotten: older cursors are reset. */
  private floor: number;
  /** The last change a waiting reader should be woken for. */
  lastWake = 0;

  constructor(floor = 0) {
    this.floor = floor;
  }

  get size(): number {
    return this.entries.size - this.tombstones;
  }

  get(key: string): V | undefined {
    return this.entries.get(key)?.value;
  }

  /** Records `value` under `key` at `seq`; `wake`: readers waiting should be answered. */
  set(key: string, value: V, seq: number, wake = true): void {
    const old = this.entries.get(key);
    if (old && old.value === undefined) this.tombstones--;
    // Re-inserted, so the map's order stays the order of change (oldest first).
    this.entries.delete(key);
    this.entries.set(key, { seq, value });
    if (wake) this.lastWake = Math.max(this.lastWake, seq);
  }

  delete(key: string, seq: number): void {
    const old = this.entries.get(key);
    if (!old || old.value === undefined) return;
    this.entries.delete(key);
    this.entries.set(key, { seq, value: undefined });
    this.tombstones++;
    this.lastWake = Math.max(this.lastWake, seq);
    if (this.tombstones > this.size + SPARE_TOMBSTONES) this.forgetOldTombstones();
  }

  /** Forgets the older half of the tombstones (amortized O(1) per delete). */
  private forgetOldTombstones(): void {
    let drop = Math.ceil(this.tombstones / 2);
    for (const [key, e] of this.entries) {
      if (drop === 0) break;
      if (e.value !== undefined) continue;
      this.entries.delete(key);
      this.tombstones--;
      drop--;
      this.floor = Math.max(this.floor, e.seq);
    }
  }

  /** Whether a reader at `cursor` has something to read that it should be woken for. */
  hasNews(cursor: Cursor | undefined): boolean {
    return !cursor || this.mustReset(cursor) || this.lastWake > cursor.seq;
  }

  private mustReset(c: Cursor): boolean {
    return c.seq < this.floor || (c.seq === this.floor && c.key !== '');
  }

  /**
   * What changed after `from` (everything live when undefined or too old), in (seq, key) order,
   * cut once `budget` bytes (as `sizeOf` counts them) are filled, at least one entry per page.
   * `now`: the index the log is complete up to (the store's applied index).
   */
  since(from: Cursor | undefined, budget: number, sizeOf: (v: V) => number, now: number): Page<V> {
    const reset = !from || this.mustReset(from);
    const start: Cursor = reset ? { seq: -1, key: '' } : from!;
    const changed: { key: string; e: Entry<V> }[] = [];
    for (const [key, e] of this.entries) {
      if (reset && e.value === undefined) continue;
      if (after({ seq: e.seq, key }, start)) changed.push({ key, e });
    }
    changed.sort((a, b) => a.e.seq - b.e.seq || (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    const upserts: { key: string; value: V }[] = [];
    const deletes: string[] = [];
    let used = 0;
    let n = 0;
    for (const { key, e } of changed) {
      const size = e.value === undefined ? key.length + 8 : sizeOf(e.value) + key.length;
      if (n > 0 && used + size > budget) {
        const last = changed[n - 1]!;
        return { reset, upserts, deletes, cursor: { seq: last.e.seq, key: last.key }, more: true };
      }
      used += size;
      n++;
      if (e.value === undefined) deletes.push(key);
      else upserts.push({ key, value: e.value });
    }
    const through = Math.max(now, reset ? 0 : start.seq, this.floor, ...(changed.length ? [changed[changed.length - 1]!.e.seq] : []));
    return { reset, upserts, deletes, cursor: { seq: through, key: '' }, more: false };
  }
}
