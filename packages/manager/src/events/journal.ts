// Each manager's memory of recent cluster events: a bounded ring fed by the store's watch, from
// which a client is served the events after a version it saw (`shoal events` resuming on another
// manager), or those since a time, then the live ones. Below its floor the ring knows nothing for
// sure (evicted, from before this manager started, or skipped by a snapshot install): a resume
// from there is refused, and the client lists the state again.

import { ShoalError } from '@shoal/api';
import type { StoreEvent } from '@shoal/store';
import {
  type ClusterEvent,
  type EventBody,
  type EventVersion,
  clusterEventsOf,
  compareVersions,
  formatVersion,
  leaderEvent,
} from './cluster-event.js';

/** Events a manager keeps for --since and for resuming. */
export const DEFAULT_JOURNAL_CAPACITY = 10_000;
/** Live events one subscriber may have waiting before it is dropped. */
export const DEFAULT_SUBSCRIBER_QUEUE = 10_000;

/** The `reason` of the RESOURCE_EXHAUSTED that drops a subscriber that fell behind. */
export const EVENTS_FELL_BEHIND = 'events-fell-behind';
/** The `reason` of the FAILED_PRECONDITION when the events asked for are no longer (or never were) here. */
export const EVENTS_GAP = 'events-gap';

/** What the journal needs of the store: its watch and the index it has applied. */
export interface EventSource {
  watch(listener: (events: readonly StoreEvent[]) => void): () => void;
  readonly appliedIndex: number;
}

export interface EventJournalOptions {
  capacity?: number;
  now?: () => number;
}

export interface SubscribeOptions {
  /** Only events after this version (a client resuming); below the journal's floor: FAILED_PRECONDITION. */
  resumeAfter?: EventVersion;
  /** Also the held events from this time on (ms), before the live ones. */
  sinceMs?: number;
  /** Only the events it passes. */
  filter?: (e: ClusterEvent) => boolean;
  /** Live events waiting at most (default DEFAULT_SUBSCRIBER_QUEUE); more: RESOURCE_EXHAUSTED. */
  maxQueued?: number;
  signal?: AbortSignal;
}

export class EventJournal {
  private readonly capacity: number;
  private readonly now: () => number;
  /** The ring: `size` events from `start`, oldest first. */
  private readonly ring: (ClusterEvent | undefined)[];
  private start = 0;
  private size = 0;
  /** Every event after this version is held (or was never made); nothing is known before it. */
  private floorVersion: EventVersion;
  private last: EventVersion;
  private readonly subscribers = new Set<(e: ClusterEvent | Error) => void>();
  private readonly unwatch: () => void;

  constructor(
    private readonly source: EventSource,
    opts: EventJournalOptions = {},
  ) {
    this.capacity = opts.capacity ?? DEFAULT_JOURNAL_CAPACITY;
    if (!Number.isSafeInteger(this.capacity) || this.capacity < 1) throw new ShoalError('INVALID_ARGUMENT', `capacity must be a positive integer (got ${this.capacity})`);
    this.now = opts.now ?? Date.now;
    this.ring = new Array(this.capacity);
    this.floorVersion = { index: source.appliedIndex, position: Number.MAX_SAFE_INTEGER };
    this.last = { index: source.appliedIndex, position: -1 };
    this.unwatch = source.watch((events) => this.onStore(events));
  }

  /** The version after which every event is held. */
  get floor(): EventVersion {
    return { ...this.floorVersion };
  }

  /** The held events, oldest first. */
  events(): ClusterEvent[] {
    const out: ClusterEvent[] = [];
    for (let i = 0; i < this.size; i++) out.push(this.ring[(this.start + i) % this.capacity]!);
    return out;
  }

  /**
   * Where the live events begin: after every event of the index this manager has applied (a bare
   * INDEX, see parseVersion). A client that saw no event yet resumes after it.
   */
  get head(): string {
    return String(this.source.appliedIndex);
  }

  /** The newest event's version ('' before the first). */
  get lastVersion(): string {
    return this.last.position < 0 ? '' : formatVersion(this.last);
  }

  /** A leader change this manager saw (Raft's, not the store's): placed after the index it has applied. */
  noteLeader(leaderId: string, previous: string, term: number, hostname?: string): void {
    this.append([leaderEvent(leaderId, previous, term, hostname)], this.source.appliedIndex);
  }

  private onStore(events: readonly StoreEvent[]): void {
    for (const e of events) {
      if (e.action === 'restore') {
        this.gap(e.index);
        continue;
      }
      const bodies = clusterEventsOf(e);
      if (bodies.length > 0) this.append(bodies, e.index);
    }
  }

  /** A snapshot replaced the state: what happened up to its index was never seen here. */
  private gap(index: number): void {
    const floor = { index, position: Number.MAX_SAFE_INTEGER };
    if (compareVersions(floor, this.floorVersion) > 0) this.floorVersion = floor;
    this.last = { index, position: -1 };
    const err = new ShoalError(
      'FAILED_PRECONDITION',
      `this manager installed a snapshot at index ${index}: the events before it were never seen here; list the state again or follow another manager`,
      { details: { reason: EVENTS_GAP } },
    );
    for (const s of [...this.subscribers]) s(err);
  }

  private append(bodies: EventBody[], index: number): void {
    const timeMs = this.now();
    for (const b of bodies) {
      const position = this.last.index === index ? this.last.position + 1 : 0;
      this.last = { index, position };
      const e: ClusterEvent = Object.freeze({ ...b, timeMs, index, position, version: formatVersion(this.last) });
      if (this.size === this.capacity) {
        const evicted = this.ring[this.start]!;
        this.floorVersion = { index: evicted.index, position: evicted.position };
        this.start = (this.start + 1) % this.capacity;
        this.size--;
      }
      this.ring[(this.start + this.size) % this.capacity] = e;
      this.size++;
      for (const s of [...this.subscribers]) s(e);
    }
  }

  /**
   * The held events asked for, then the live ones, one at a time. Throws FAILED_PRECONDITION
   * (reason EVENTS_GAP) at once when `resumeAfter` is below the floor, and from next() when a
   * snapshot install later skips events; RESOURCE_EXHAUSTED (EVENTS_FELL_BEHIND) from next() when
   * the consumer lets more than `maxQueued` live events wait. Ends on return() or `signal`.
   */
  subscribe(opts: SubscribeOptions = {}): AsyncIterableIterator<ClusterEvent> {
    const limit = opts.maxQueued ?? DEFAULT_SUBSCRIBER_QUEUE;
    const after = opts.resumeAfter;
    if (after && compareVersions(after, this.floorVersion) < 0) {
      throw new ShoalError(
        'FAILED_PRECONDITION',
        `this manager no longer holds the events after ${formatVersion(after)} (it holds those after ${floorText(this.floorVersion)}): list the state again`,
        { details: { reason: EVENTS_GAP } },
      );
    }
    const wanted = (e: ClusterEvent): boolean =>
      (!after || compareVersions(e, after) > 0) && (opts.filter ? opts.filter(e) : true);
    // The held events are copied now (the ring moves on); they do not count against the limit.
    let backlog: ClusterEvent[] = [];
    if (after || opts.sinceMs !== undefined) {
      backlog = this.events().filter((e) => wanted(e) && (after !== undefined || e.timeMs >= opts.sinceMs!));
    }
    let queue: ClusterEvent[] = [];
    let wake: (() => void) | undefined;
    let done = false;
    let failed: Error | undefined;
    const finish = (): void => {
      done = true;
      this.subscribers.delete(push);
      opts.signal?.removeEventListener('abort', finish);
      wake?.();
    };
    const push = (e: ClusterEvent | Error): void => {
      if (e instanceof Error) {
        failed = e;
        queue = [];
        finish();
        return;
      }
      if (!wanted(e)) return;
      if (queue.length >= limit) {
        failed = new ShoalError(
          'RESOURCE_EXHAUSTED',
          `the events stream fell behind by more than ${limit} events and was dropped at ${e.version}: resume after the last version received`,
          { details: { reason: EVENTS_FELL_BEHIND } },
        );
        queue = [];
        finish();
        return;
      }
      queue.push(e);
      wake?.();
    };
    this.subscribers.add(push);
    opts.signal?.addEventListener('abort', finish, { once: true });
    if (opts.signal?.aborted) finish();
    let bi = 0;
    const it: AsyncIterableIterator<ClusterEvent> = {
      async next(): Promise<IteratorResult<ClusterEvent>> {
        if (bi < backlog.length && !failed && !done) {
          const value = backlog[bi++]!;
          if (bi === backlog.length) backlog = [];
          return { value, done: false };
        }
        bi = 0;
        while (queue.length === 0 && !done) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        if (failed) {
          const err = failed;
          failed = undefined;
          throw err;
        }
        if (queue.length > 0 && !done) return { value: queue.shift()!, done: false };
        return { value: undefined, done: true };
      },
      async return(): Promise<IteratorResult<ClusterEvent>> {
        finish();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it;
  }

  /** How many subscribers listen now. */
  get subscriberCount(): number {
    return this.subscribers.size;
  }

  /** Stops watching the store; subscribers end. */
  stop(): void {
    this.unwatch();
    for (const s of [...this.subscribers]) s(new ShoalError('UNAVAILABLE', 'this manager is stopping: follow another one'));
  }
}

function floorText(v: EventVersion): string {
  return v.position === Number.MAX_SAFE_INTEGER ? String(v.index) : formatVersion(v);
}
