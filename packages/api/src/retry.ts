// Retrying what should work in a while (a quorum to form, a manager to answer, an engine to come
// back): the wait between attempts doubles up to a ceiling, and the retries end as soon as the
// caller no longer wants the result (it stopped, or lost the duty). One rule for every such loop.

/** Waits that double from `initialMs` up to `maxMs`; reset() starts over once things work again. */
export class Backoff {
  private current: number;

  constructor(
    private readonly initialMs: number,
    private readonly maxMs: number,
  ) {
    this.current = initialMs;
  }

  /** The wait before the next attempt (the one after is twice as long, up to the ceiling). */
  next(): number {
    const ms = this.current;
    this.current = Math.min(this.current * 2, this.maxMs);
    return ms;
  }

  reset(): void {
    this.current = this.initialMs;
  }
}

export interface RetryOptions {
  initialMs: number;
  maxMs: number;
  /** Checked before every attempt: false ends the retries. */
  while: () => boolean;
  /** At most this many attempts (default: no limit): the last one's failure is thrown. */
  attempts?: number;
  /** A failure this says no to is thrown at once (default: every failure is retried). */
  retryable?: (err: unknown) => boolean;
  /** Told of each failure, with the wait before the next attempt. */
  onError?: (err: unknown, retryInMs: number) => void;
  /** The wait between attempts (default: a timer). */
  sleep?: (ms: number) => Promise<void>;
}

const timerSleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * Runs `attempt` until it succeeds (true) or `opts.while` turns false first (false), waiting
 * between failures as Backoff says; a failure that may not be retried (`opts.retryable`, or the
 * last of `opts.attempts`) is thrown.
 */
export async function retryWithBackoff(attempt: () => Promise<unknown>, opts: RetryOptions): Promise<boolean> {
  const backoff = new Backoff(opts.initialMs, opts.maxMs);
  const sleep = opts.sleep ?? timerSleep;
  for (let n = 1; opts.while(); n++) {
    try {
      await attempt();
      return true;
    } catch (err) {
      if (n === opts.attempts || (opts.retryable && !opts.retryable(err))) throw err;
      const ms = backoff.next();
      opts.onError?.(err, ms);
      await sleep(ms);
    }
  }
  return false;
}
