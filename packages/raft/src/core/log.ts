import { type Entry, type Snapshot, type SnapshotMeta, entrySize } from './types.js';

/** Raised when the core's own invariants break: a bug, never a network condition. */
export class RaftInvariantError extends Error {
  override name = 'RaftInvariantError';
}

/**
 * The in-memory view of the log: a snapshot prefix (index/term only, plus the data when we have
 * it) followed by entries. Entries at `unstableFrom` and above are not yet durable; the driver
 * learns about them through Ready.entries and confirms them with stableTo().
 */
export class RaftLog {
  snapIndex: number;
  snapTerm: number;
  /** ents[i] has index snapIndex + 1 + i. */
  private ents: Entry[];
  /** The first index that is not yet persisted. */
  unstableFrom: number;
  committed: number;
  /** Highest index handed out to the driver for applying (in a Ready). */
  applying: number;
  /** Highest index the driver confirmed applied (advance). */
  applied: number;
  /** The latest full snapshot, sent to followers that need entries we compacted away. */
  snapshot: Snapshot | undefined;
  /** A snapshot received from the leader, not yet handed to the driver. */
  pendingSnapshot: Snapshot | undefined;

  constructor(meta: SnapshotMeta, entries: Entry[], commit: number, applied: number, snapshot?: Snapshot) {
    this.snapIndex = meta.index;
    this.snapTerm = meta.term;
    for (let i = 0; i < entries.length; i++) {
      if (entries[i].index !== meta.index + 1 + i) {
        throw new RaftInvariantError(`log entries are not contiguous after snapshot ${meta.index}: entry ${i} has index ${entries[i].index}`);
      }
    }
    this.ents = entries.slice();
    this.unstableFrom = this.lastIndex() + 1;
    if (commit > this.lastIndex()) {
      throw new RaftInvariantError(`commit index ${commit} is beyond the last log index ${this.lastIndex()}`);
    }
    this.committed = Math.max(commit, meta.index);
    this.applied = Math.max(applied, meta.index);
    if (this.applied > this.committed) {
      throw new RaftInvariantError(`applied index ${this.applied} is beyond the commit index ${this.committed}`);
    }
    this.applying = this.applied;
    this.snapshot = snapshot && snapshot.meta.index === meta.index ? snapshot : undefined;
  }

  firstIndex(): number {
    return this.snapIndex + 1;
  }

  lastIndex(): number {
    return this.snapIndex + this.ents.length;
  }

  lastTerm(): number {
    return this.ents.length > 0 ? this.ents[this.ents.length - 1].term : this.snapTerm;
  }

  /** The term of the entry at index i, or undefined if it was compacted or does not exist. */
  term(i: number): number | undefined {
    if (i === this.snapIndex) return this.snapTerm;
    if (i < this.snapIndex || i > this.lastIndex()) return undefined;
    return this.ents[i - this.snapIndex - 1].term;
  }

  matchTerm(i: number, t: number): boolean {
    return this.term(i) === t;
  }

  entry(i: number): Entry | undefined {
    if (i <= this.snapIndex || i > this.lastIndex()) return undefined;
    return this.ents[i - this.snapIndex - 1];
  }

  /** Entries [lo, hi) limited to maxBytes (at least one entry when the range is non-empty). */
  slice(lo: number, hi: number, maxBytes = Infinity): Entry[] {
    if (lo <= this.snapIndex) throw new RaftInvariantError(`slice from ${lo} reaches into the compacted log (snapshot ${this.snapIndex})`);
    hi = Math.min(hi, this.lastIndex() + 1);
    const out: Entry[] = [];
    let size = 0;
    for (let i = lo; i < hi; i++) {
      const e = this.ents[i - this.snapIndex - 1];
      size += entrySize(e);
      if (out.length > 0 && size > maxBytes) break;
      out.push(e);
    }
    return out;
  }

  unstableEntries(): Entry[] {
    if (this.unstableFrom > this.lastIndex()) return [];
    return this.ents.slice(this.unstableFrom - this.snapIndex - 1);
  }

  /** Appends entries, truncating any existing entries at the same or higher indexes. */
  append(entries: Entry[]): void {
    if (entries.length === 0) return;
    const after = entries[0].index - 1;
    if (after < this.committed) {
      throw new RaftInvariantError(`refusing to overwrite committed entry ${after + 1} (commit ${this.committed})`);
    }
    if (after > this.lastIndex()) {
      throw new RaftInvariantError(`append at ${after + 1} leaves a gap after ${this.lastIndex()}`);
    }
    this.ents.length = after - this.snapIndex;
    for (const e of entries) this.ents.push(e);
    if (this.unstableFrom > after + 1) this.unstableFrom = after + 1;
  }

  /** The first entry that conflicts with the log (or is new), or 0 when all match. */
  private findConflict(entries: Entry[]): number {
    for (const e of entries) {
      if (!this.matchTerm(e.index, e.term)) return e.index;
    }
    return 0;
  }

  /**
   * Follower side of AppendEntries: appends if the log matches at (prevIndex, prevTerm).
   * Returns the index of the last entry known to match the leader, or undefined on mismatch.
   */
  maybeAppend(prevIndex: number, prevTerm: number, leaderCommit: number, entries: Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const lastNew = prevIndex + entries.length;
    const ci = this.findConflict(entries);
    if (ci !== 0) {
      if (ci <= this.committed) {
        throw new RaftInvariantError(`entry ${ci} conflicts with the committed log (commit ${this.committed})`);
      }
      this.append(entries.slice(ci - prevIndex - 1));
    }
    this.commitTo(Math.min(leaderCommit, lastNew));
    return lastNew;
  }

  /**
   * The largest index <= index whose term is <= term: where a leader and a follower whose logs
   * diverge can next try to match (the conflict-term optimisation of fast backtracking).
   */
  findConflictByTerm(index: number, term: number): number {
    let i = Math.min(index, this.lastIndex());
    while (i > this.snapIndex) {
      const t = this.term(i)!;
      if (t <= term) return i;
      i--;
    }
    return this.snapIndex;
  }

  commitTo(i: number): boolean {
    if (i <= this.committed) return false;
    if (i > this.lastIndex()) {
      throw new RaftInvariantError(`commit index ${i} is beyond the last log index ${this.lastIndex()}`);
    }
    this.committed = i;
    return true;
  }

  /** Committed entries not yet handed out for applying. */
  nextCommitted(): Entry[] {
    const hi = Math.min(this.committed, this.lastIndex());
    if (this.applying >= hi) return [];
    return this.slice(this.applying + 1, hi + 1);
  }

  /** The durable prefix advanced: entries up to (i, t) are on disk. */
  stableTo(i: number, t: number): void {
    if (i >= this.unstableFrom && this.matchTerm(i, t)) this.unstableFrom = i + 1;
  }

  /** Replace the whole log by a snapshot received from the leader. */
  restore(s: Snapshot): void {
    this.snapIndex = s.meta.index;
    this.snapTerm = s.meta.term;
    this.ents = [];
    this.unstableFrom = s.meta.index + 1;
    this.committed = s.meta.index;
    this.applying = Math.max(this.applying, s.meta.index);
    this.snapshot = s;
    this.pendingSnapshot = s;
  }

  /** Drop entries up to a snapshot taken locally at an applied index. */
  compact(s: Snapshot): void {
    const i = s.meta.index;
    if (i <= this.snapIndex) return;
    if (i > this.applied) throw new RaftInvariantError(`cannot compact to ${i}: only applied through ${this.applied}`);
    if (i >= this.unstableFrom) throw new RaftInvariantError(`cannot compact to ${i}: not yet durable`);
    const t = this.term(i);
    if (t !== s.meta.term) throw new RaftInvariantError(`snapshot at ${i} has term ${s.meta.term}, the log has ${t}`);
    this.ents = this.ents.slice(i - this.snapIndex);
    this.snapIndex = i;
    this.snapTerm = t;
    this.snapshot = s;
  }

  /** Whether a candidate's log (lastTerm, lastIndex) is at least as up to date as ours. */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const ourTerm = this.lastTerm();
    return lastTerm > ourTerm || (lastTerm === ourTerm && lastIndex >= this.lastIndex());
  }
}
