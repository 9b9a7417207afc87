// The dispatcher's waiting long polls, by node and kind (assignments, mesh view). A change wakes
// only the polls of the nodes it concerns. A node has at most `perNode` polls of a kind waiting:
// opening one more answers the oldest at once (its caller gets what there is and asks again), so
// a node cannot pile up waiters on the leader, and a poll whose caller went away silently ends
// as soon as its replacement comes.

export interface PollOptions {
  /** How long the poll may wait (clamped to 0..30 s). */
  waitMs: number;
  /** Tells the poll its caller cancelled (the handle is dropped). */
  onCancel?: (f: () => void) => void;
}

interface Waiter {
  /** Answers if the poll's condition now holds. */
  wake: () => void;
  /** Answers now, whatever there is. */
  end: () => void;
}

export const MAX_POLL_WAIT_MS = 30_000;

export class LongPolls {
  private readonly waiting = new Map<string, Waiter[]>();

  constructor(private readonly perNode = 2) {}

  /**
   * Waits until woken for `key` (`node/kind`), the wait runs out, or the poll is displaced by a
   * newer one of the same key. `ready()` is asked first and after each wake-up: true ends the wait.
   */
  wait(key: string, opts: PollOptions, ready: () => boolean): Promise<void> {
    const ms = Math.min(Math.max(Number(opts.waitMs) || 0, 0), MAX_POLL_WAIT_MS);
    if (ms === 0 || ready()) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const list = this.waiting.get(key) ?? [];
      const done = () => {
        clearTimeout(t);
        const l = this.waiting.get(key);
        if (l) {
          const i = l.indexOf(w);
          if (i >= 0) l.splice(i, 1);
          if (l.length === 0) this.waiting.delete(key);
        }
        resolve();
      };
      const w: Waiter = { wake: () => ready() && done(), end: done };
      const t = setTimeout(done, ms);
      list.push(w);
      this.waiting.set(key, list);
      while (list.length > this.perNode) list[0]!.end();
      opts.onCancel?.(done);
    });
  }

  /** Wakes the polls of `key` (each answers if its `ready()` now says so). */
  wake(key: string): void {
    const list = this.waiting.get(key);
    if (!list) return;
    for (const w of [...list]) w.wake();
  }

  /** Ends every waiting poll (leadership lost, or a full rebuild). */
  endAll(): void {
    for (const list of [...this.waiting.values()]) for (const w of [...list]) w.end();
  }

  /** How many polls wait for `key` (for tests and diagnostics). */
  count(key: string): number {
    return this.waiting.get(key)?.length ?? 0;
  }
}
