// Watches the node's container engine on a loop of its own, off the heartbeat path: a hung
// engine must never hold a heartbeat (the node would be taken for dead and its tasks moved), and
// one failed ping is no news (an engine restarting with live-restore keeps its containers).
// The session reads the latest verdict when it heartbeats:
// - after `conditionAfter` failed pings in a row: a condition (shown as the node's status
//   message; the node stays ready, its tasks where they are);
// - when the engine has failed every ping for `downAfterMs`: an error (the node is down, its
//   tasks are rescheduled): an engine gone for good cannot run them.
// Times are on the monotonic clock.

import { performance } from 'node:perf_hooks';
import type { Logger } from '@shoal/api';

export interface EngineProbe {
  ping(): Promise<unknown>;
  info(): Promise<{ engineVersion: string }>;
}

export interface EngineHealth {
  /** The node cannot run tasks ('' : it can). */
  error: string;
  /** Engine trouble worth showing that leaves the node ready ('' : none). */
  condition: string;
  engineVersion: string;
}

export interface EngineMonitorOptions {
  /** Between two pings. Default 1 s. */
  intervalMs?: number;
  /** A ping not answered within this long failed. Default 2 s. */
  timeoutMs?: number;
  /** Failed pings in a row before the condition shows. Default 3. */
  conditionAfter?: number;
  /** Failing this long (and conditionAfter pings) makes it an error. Default 10 s. */
  downAfterMs?: number;
  /** How often the full description (`docker info`, costly for the engine) is refreshed. Default 60 s. */
  infoEveryMs?: number;
  now?: () => number;
  logger?: Logger;
}

export class EngineMonitor {
  private readonly o: Required<Omit<EngineMonitorOptions, 'logger'>> & Pick<EngineMonitorOptions, 'logger'>;
  private failures = 0;
  private failingSince = 0;
  private lastError = '';
  private version = '';
  private infoAt = -Infinity;
  private running = false;
  private timer: NodeJS.Timeout | undefined;
  private loop: Promise<void> | undefined;
  private wakeUp: (() => void) | undefined;
  /** Resolves once the first probe is done (the session opens with a verdict). */
  readonly firstProbe: Promise<void>;
  private firstDone!: () => void;

  constructor(
    private readonly probe: EngineProbe,
    opts: EngineMonitorOptions = {},
  ) {
    this.o = {
      intervalMs: opts.intervalMs ?? 1_000,
      timeoutMs: opts.timeoutMs ?? 2_000,
      conditionAfter: opts.conditionAfter ?? 3,
      downAfterMs: opts.downAfterMs ?? 10_000,
      infoEveryMs: opts.infoEveryMs ?? 60_000,
      now: opts.now ?? (() => performance.now()),
      logger: opts.logger,
    };
    this.firstProbe = new Promise<void>((r) => (this.firstDone = r));
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    clearTimeout(this.timer);
    this.wakeUp?.();
    await this.loop;
  }

  /** The latest verdict (never waits for the engine). */
  health(): EngineHealth {
    const failing = this.failures >= this.o.conditionAfter;
    const long = failing && this.o.now() - this.failingSince >= this.o.downAfterMs;
    return {
      error: long ? `docker is unreachable: ${this.lastError}` : '',
      condition: failing && !long ? `docker is not answering: ${this.lastError} (${this.failures} pings failed in a row)` : '',
      engineVersion: this.version,
    };
  }

  private async run(): Promise<void> {
    while (this.running) {
      await this.check();
      this.firstDone();
      if (!this.running) break;
      await new Promise<void>((r) => {
        this.wakeUp = r;
        this.timer = setTimeout(r, this.o.intervalMs);
      });
      this.wakeUp = undefined;
    }
  }

  /** One probe, given up after timeoutMs (the engine's own call is aborted by the executor). */
  private async check(): Promise<void> {
    // While failing, only pings (short); the description is refreshed once the engine is back.
    const full = this.failures === 0 && this.o.now() - this.infoAt >= this.o.infoEveryMs;
    let t: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new Error(`no answer within ${this.o.timeoutMs} ms`)), full ? Math.max(this.o.timeoutMs, 10_000) : this.o.timeoutMs);
    });
    try {
      if (full) {
        this.version = (await Promise.race([this.probe.info(), timeout])).engineVersion;
        this.infoAt = this.o.now();
      } else {
        await Promise.race([this.probe.ping(), timeout]);
      }
      if (this.failures >= this.o.conditionAfter) this.o.logger?.info({ failures: this.failures }, 'the engine answers again');
      if (this.failures > 0) this.infoAt = -Infinity;
      this.failures = 0;
    } catch (err) {
      if (this.failures === 0) this.failingSince = this.o.now();
      this.failures++;
      this.lastError = (err as Error).message;
      if (this.failures === this.o.conditionAfter) this.o.logger?.warn({ err: this.lastError, failures: this.failures }, 'the engine does not answer');
    } finally {
      clearTimeout(t);
    }
  }
}
