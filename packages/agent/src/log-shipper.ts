// Answers the managers' log requests (`shoal service logs`): long-polls the dispatcher for them,
// reads the asked tasks' containers' logs from this node's engine (this node's containers only:
// the executor refuses others), and publishes them back, cut to a size a gRPC message carries.

import { newestLogLines, type Logger } from '@shoal/api';
import type { Executor } from './executor.js';
import { type DispatcherLink, type LogAnswer, type LogRequest, LONG_POLL_WAIT_MS } from './runner.js';

/** The most log text one answer carries (the managers accept messages of 4 MiB). */
const DEFAULT_MAX_BYTES = 3 << 20;
/** Each line's share of the message besides its text (task id, time, stream, framing). */
const LINE_OVERHEAD = 80;

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class LogShipper {
  private running = false;
  private loop: Promise<void> | undefined;

  constructor(
    private readonly link: DispatcherLink,
    private readonly executor: Executor,
    private readonly log: Logger,
    private readonly maxBytes = DEFAULT_MAX_BYTES,
  ) {}

  start(): void {
    if (this.running || !this.link.logRequests || !this.link.publishLogs) return;
    this.running = true;
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    // A long poll may be in flight: its answer is ignored once stopped.
    await Promise.race([this.loop?.catch(() => undefined), sleep(200)]);
  }

  private async run(): Promise<void> {
    while (this.running) {
      try {
        const { requests } = await this.link.logRequests!(LONG_POLL_WAIT_MS);
        if (!this.running) break;
        for (const r of requests) {
          void this.answer(r).catch((err: Error) => this.log.warn({ request: r.id, err: err.message }, 'could not publish logs'));
        }
      } catch (err) {
        this.log.debug({ err: (err as Error).message }, 'log requests unavailable; retrying');
        await sleep(500);
      }
    }
  }

  /** Reads the logs of the asked tasks' containers and publishes them (newest kept within the limit). */
  async answer(r: LogRequest): Promise<void> {
    const a = await this.read(r);
    await this.link.publishLogs!(a);
  }

  async read(r: LogRequest): Promise<LogAnswer> {
    const wanted = new Set(r.taskIds);
    const errors: string[] = [];
    const lines: LogAnswer['lines'] = [];
    let owned: Awaited<ReturnType<Executor['listOwned']>> = [];
    try {
      owned = await this.executor.listOwned();
    } catch (err) {
      return { requestId: r.id, lines: [], error: `cannot list containers: ${(err as Error).message}`, truncated: false };
    }
    await Promise.all(
      owned
        .filter((c) => wanted.has(c.taskId))
        .map(async (c) => {
          try {
            for (const l of await this.executor.logs(c.id, { tail: Number(r.tail) || 0, since: r.since })) lines.push({ taskId: c.taskId, ...l });
          } catch (err) {
            // Removed meanwhile: nothing to tell.
            if ((err as { code?: string }).code !== 'NOT_FOUND') errors.push(`task ${c.taskId}: ${(err as Error).message}`);
          }
        }),
    );
    // Within the limit, the newest lines go.
    const kept = newestLogLines(lines, this.maxBytes, LINE_OVERHEAD);
    return { requestId: r.id, lines: kept.lines, error: errors.join('; '), truncated: kept.dropped > 0 };
  }
}
