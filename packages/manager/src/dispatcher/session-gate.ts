// A bound on the Session calls the dispatcher handles at once. After a leader change every node
// opens a session with the new leader within a second or two; those that need a store write (a
// node coming back from down) each hold a Raft proposal while they wait. Beyond the bound a call
// is refused at once, UNAVAILABLE with a time to retry drawn at random over a window, so the
// refused nodes come back spread out rather than together, and the leader's memory and proposal
// queue stay bounded whatever the number of nodes.

import { ShoalError } from '@shoal/api';
import { RETRY_AFTER_DETAIL } from '@shoal/types';

/** The shortest wait a refused node is told to keep. */
export const MIN_RETRY_AFTER_MS = 100;

export class SessionGate {
  private inFlight = 0;
  private refusedCount = 0;

  constructor(
    readonly limit: number,
    private readonly random: () => number = Math.random,
  ) {}

  /** Sessions being handled now. */
  get busy(): number {
    return this.inFlight;
  }

  /** Sessions refused since this gate was made (tests, diagnostics). */
  get refused(): number {
    return this.refusedCount;
  }

  /**
   * Runs `f` if fewer than `limit` sessions are being handled, else throws UNAVAILABLE whose
   * details say to retry after MIN_RETRY_AFTER_MS plus a random part of `spreadMs`.
   */
  async run<T>(spreadMs: number, f: () => Promise<T>): Promise<T> {
    if (this.inFlight >= this.limit) {
      this.refusedCount++;
      const retryAfterMs = Math.round(MIN_RETRY_AFTER_MS + this.random() * Math.max(0, spreadMs));
      throw new ShoalError('UNAVAILABLE', `the dispatcher is opening ${this.inFlight} sessions already: retry in ${retryAfterMs} ms`, {
        details: { [RETRY_AFTER_DETAIL]: String(retryAfterMs) },
      });
    }
    this.inFlight++;
    try {
      return await f();
    } finally {
      this.inFlight--;
    }
  }
}
