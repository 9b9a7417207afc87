// The simulated disk of the driver simulation: RaftStorage's semantics (packages/raft/STORAGE.md)
// in memory, with LevelDB's durability model. A write completes some virtual time after it is
// issued, in issue order. A completed write is in the OS (a process crash keeps it); it is durable
// only once a synced write completes after it (LevelDB's log is sequential: a sync covers every
// earlier write). A power loss keeps only the durable state. A process crash loses the writes not
// yet completed, except a random prefix of them that reached the OS unsynced. The disk can be made
// to fail a write with ENOSPC or EIO; the write is then not applied.

import type { ConfState, Entry, HardState, Snapshot } from '../../src/core/types.js';
import { NONE } from '../../src/core/types.js';
import type { DriverStorage } from '../../src/driver-io.js';
import type { LoadedState, SaveParams } from '../../src/storage/index.js';
import { type SafetyChecker, entryKeyOf } from './checker.js';
import type { EventQueue, Life } from './event-queue.js';
import type { Rng } from './prng.js';

interface DiskState {
  hardState: HardState;
  snapshot: Snapshot | null;
  /** Entries after the snapshot, contiguous. */
  entries: Entry[];
  bootstrapConf: ConfState | null;
}

const clone = (d: DiskState): DiskState => ({ ...d, hardState: { ...d.hardState }, entries: d.entries.slice() });

/** A write issued but not completed. */
interface Pending {
  apply: (d: DiskState) => void;
  sync: boolean;
}

export type DiskFault = 'ENOSPC' | 'EIO';

/** What survives the processes of one node. */
export class MemDisk {
  /** What the OS has: survives a process crash. */
  current: DiskState = { hardState: { term: 0, vote: NONE, commit: 0 }, snapshot: null, entries: [], bootstrapConf: null };
  /** As of the last synced write: survives a power loss. */
  durable: DiskState = clone(this.current);
  /** The next write fails with this error. */
  fault: DiskFault | undefined;
  /** The process life whose write failed last (it must stop). */
  failedLife: Life | undefined;
  /** Test hook for the non-vacuity tests: writes asked to sync are not synced (a lying fsync). */
  ignoreSync = false;
  private pending: Pending[] = [];
  stats = { writes: 0, syncs: 0, faults: 0, powerLosses: 0, lostWrites: 0 };

  constructor(
    readonly node: string,
    private readonly rng: Rng,
    readonly checker: SafetyChecker,
    private readonly trace?: (line: string) => void,
  ) {}

  snapIndex(d: DiskState = this.current): number {
    return d.snapshot ? d.snapshot.meta.index : 0;
  }

  lastIndex(d: DiskState = this.current): number {
    return this.snapIndex(d) + d.entries.length;
  }

  termAt(i: number, d: DiskState = this.current): number | undefined {
    const s = this.snapIndex(d);
    if (i === s) return d.snapshot ? d.snapshot.meta.term : 0;
    if (i < s || i > s + d.entries.length) return undefined;
    return d.entries[i - s - 1]!.term;
  }

  /** The process died: writes not yet completed are lost, but a prefix may have reached the OS. */
  processCrashed(): void {
    const landed = this.rng.int(this.pending.length + 1);
    this.trace?.(`${this.node}: ${landed} of ${this.pending.length} unfinished writes reached the OS`);
    for (let k = 0; k < landed; k++) this.pending[k]!.apply(this.current);
    this.stats.lostWrites += this.pending.length - landed;
    this.pending = [];
  }

  /** A process opened the disk: what it reads is durable from now on (see MemStorage.load). */
  recovered(): void {
    this.durable = clone(this.current);
  }

  /** The machine lost power: only what was synced survives. */
  powerLost(): void {
    this.pending = [];
    this.current = clone(this.durable);
    this.stats.powerLosses++;
  }

  /** A storage handle for one process life. */
  open(queue: EventQueue, life: Life, latency: () => number): MemStorage {
    return new MemStorage(this, queue, life, latency);
  }

  /** Issues a write; it completes (or fails) later, in order. */
  issue(queue: EventQueue, life: Life, delay: number, sync: boolean, apply: (d: DiskState) => void): Promise<void> {
    const p: Pending = { apply, sync };
    this.pending.push(p);
    this.stats.writes++;
    return new Promise<void>((resolve, reject) => {
      queue.after(
        delay,
        () => {
          // Completes in order: everything issued before it is done by now (see MemStorage.serial).
          const i = this.pending.indexOf(p);
          if (i < 0) return; // lost in a crash (the life check makes this unreachable)
          this.pending.splice(i, 1);
          if (this.fault) {
            const code = this.fault;
            this.fault = undefined;
            this.stats.faults++;
            this.failedLife = life;
            reject(Object.assign(new Error(`${code}: simulated write failure on ${this.node}`), { code }));
            return;
          }
          apply(this.current);
          this.trace?.(`${this.node}: write done${sync ? ' (synced)' : ''}: last ${this.lastIndex()} hs ${JSON.stringify(this.current.hardState)}`);
          if (sync && !this.ignoreSync) {
            this.durable = clone(this.current);
            this.stats.syncs++;
          }
          resolve();
        },
        life,
      );
    });
  }

  /** Log Matching and hard-state checks on what reaches the disk. */
  checkWrite(d: DiskState, hs: HardState | undefined, entries: Entry[]): void {
    for (let k = 0; k < entries.length; k++) {
      const e = entries[k]!;
      const prevTerm = k > 0 ? entries[k - 1]!.term : this.termAt(e.index - 1, d);
      this.checker.entryStored(this.node, e.index, e.term, entryKeyOf(e), prevTerm);
    }
    if (hs) this.checker.hardStatePersisted(this.node, d.hardState, hs);
  }
}

/** One process's handle on its MemDisk: RaftStorage's contract, checked as a contract. */
export class MemStorage implements DriverStorage {
  private chain: Promise<void> = Promise.resolve();

  constructor(
    private readonly disk: MemDisk,
    private readonly queue: EventQueue,
    private readonly life: Life,
    private readonly latency: () => number,
  ) {}

  /** Like RaftStorage.serial: one operation at a time, in call order. */
  private serial(fn: () => Promise<void>): Promise<void> {
    const run = this.chain.then(fn);
    this.chain = run.catch(() => undefined);
    return run;
  }

  async load(): Promise<LoadedState | null> {
    // LevelDB's recovery on open writes the recovered log to a synced table: what a new process
    // reads is durable from then on.
    this.disk.recovered();
    const d = this.disk.current;
    if (d.hardState.term === 0 && d.entries.length === 0 && !d.snapshot) return null;
    return {
      hardState: { ...d.hardState },
      snapshot: d.snapshot,
      entries: d.entries.map((e) => ({ ...e })),
      bootstrapConf: d.bootstrapConf,
    };
  }

  save(p: SaveParams): Promise<void> {
    if (!p.snapshot && !p.hardState && p.entries.length === 0) return Promise.resolve();
    const disk = this.disk;
    const entries = p.entries.slice();
    const hs = p.hardState ? { ...p.hardState } : undefined;
    const snap = p.snapshot;
    return this.serial(() =>
      disk.issue(this.queue, this.life, this.latency(), p.sync !== false, (d) => {
        const checker = disk.checker;
        if (snap) {
          if (snap.meta.index < disk.snapIndex(d)) checker.contract(`${disk.node}: snapshot ${snap.meta.index} older than the stored one`);
          const keepSuffix = disk.termAt(snap.meta.index, d) === snap.meta.term;
          d.entries = keepSuffix ? d.entries.slice(snap.meta.index - disk.snapIndex(d)) : [];
          d.snapshot = snap;
        }
        let es = entries;
        if (es.length > 0 && es[0]!.index <= disk.snapIndex(d)) es = es.filter((e) => e.index > disk.snapIndex(d));
        disk.checkWrite(d, hs, es);
        if (es.length > 0) {
          const first = es[0]!.index;
          if (first > disk.lastIndex(d) + 1) checker.contract(`${disk.node}: entry ${first} would leave a gap after ${disk.lastIndex(d)}`);
          d.entries.length = first - disk.snapIndex(d) - 1;
          d.entries.push(...es);
        }
        if (hs) d.hardState = hs;
        if (d.hardState.commit > disk.lastIndex(d))
          checker.contract(`${disk.node}: commit ${d.hardState.commit} would be beyond the last index ${disk.lastIndex(d)}`);
      }),
    );
  }

  saveSnapshot(snap: Snapshot): Promise<void> {
    const disk = this.disk;
    return this.serial(() =>
      disk.issue(this.queue, this.life, this.latency(), true, (d) => {
        const checker = disk.checker;
        const { index, term } = snap.meta;
        if (index < disk.snapIndex(d)) checker.contract(`${disk.node}: snapshot ${index} older than the stored one`);
        if (disk.termAt(index, d) !== term) checker.contract(`${disk.node}: snapshot ${index}/${term} does not match the log`);
        d.entries = d.entries.slice(index - disk.snapIndex(d));
        d.snapshot = snap;
      }),
    );
  }

  async close(): Promise<void> {}
}
