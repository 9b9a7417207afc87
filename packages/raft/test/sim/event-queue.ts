// Virtual time for the driver simulation: one queue of timed events for the whole simulated
// cluster, and a RaftClock per process life over it. Events run one at a time in (time, order of
// scheduling) order, and the microtasks an event starts (the driver's awaits) all settle before the
// next event: with seeded choices everywhere, a seed replays exactly.

import type { RaftClock, TimerHandle } from '../../src/driver-io.js';

/** One process life: when it ends (crash, power loss, exit), its pending timers never fire. */
export class Life {
  dead = false;
}

interface Ev {
  at: number;
  seq: number;
  fn: () => void;
  life: Life | undefined;
  cancelled: boolean;
}

/** Reading the clock this often within one event means a loop that never yields (a hang). */
const SPIN_LIMIT = 1_000_000;

export class EventQueue {
  now = 0;
  private reads = 0;
  /** Set when a loop read the clock SPIN_LIMIT times in one event; runNext() throws it. */
  private spin: Error | undefined;
  private seq = 0;
  private heap: Ev[] = [];

  get size(): number {
    return this.heap.length;
  }

  /** Schedules fn at now + delay; it is skipped if `life` ended by then. */
  after(delay: number, fn: () => void, life?: Life): Ev {
    const ev: Ev = { at: this.now + Math.max(0, delay), seq: this.seq++, fn, life, cancelled: false };
    this.push(ev);
    return ev;
  }

  /** Runs the next live event and lets the microtasks it started settle. False if none is left. */
  async runNext(): Promise<boolean> {
    for (;;) {
      const ev = this.pop();
      if (!ev) return false;
      if (ev.cancelled || ev.life?.dead) continue;
      this.now = ev.at;
      this.reads = 0;
      ev.fn();
      await settle();
      if (this.spin) throw this.spin;
      return true;
    }
  }

  clock(life: Life): RaftClock {
    return {
      now: () => {
        if (++this.reads > SPIN_LIMIT) {
          // Virtual time stands still within an event: a loop waiting for it would never end.
          this.spin ??= new Error(`a loop read the clock ${SPIN_LIMIT} times without yielding (it would spin forever)`);
          throw this.spin;
        }
        return this.now;
      },
      setTimeout: (fn, ms) => this.after(ms, fn, life),
      clearTimeout: (h: TimerHandle) => {
        if (h) (h as Ev).cancelled = true;
      },
      defer: (fn) => {
        this.after(0, fn, life);
      },
    };
  }

  private less(a: Ev, b: Ev): boolean {
    return a.at < b.at || (a.at === b.at && a.seq < b.seq);
  }

  private push(ev: Ev): void {
    const h = this.heap;
    h.push(ev);
    let i = h.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(h[i]!, h[p]!)) break;
      [h[i], h[p]] = [h[p]!, h[i]!];
      i = p;
    }
  }

  private pop(): Ev | undefined {
    const h = this.heap;
    if (h.length === 0) return undefined;
    const top = h[0]!;
    const last = h.pop()!;
    if (h.length > 0) {
      h[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < h.length && this.less(h[l]!, h[m]!)) m = l;
        if (r < h.length && this.less(h[r]!, h[m]!)) m = r;
        if (m === i) break;
        [h[i], h[m]] = [h[m]!, h[i]!];
        i = m;
      }
    }
    return top;
  }
}

/** Resolves once every microtask queued so far (and those they queue) has run. */
function settle(): Promise<void> {
  return new Promise<void>((r) => setImmediate(r));
}
