// `shoal service logs -f` as a stream: the first answer is ServiceLogs' own (tail, since), then the
// manager asks the leader's broker again for what came after the newest line it sent and sends
// each new batch at once. The nodes' agents still answer one request at a time (they reach the
// managers, never the other way round); the client holds one call open instead of asking each second.

import { logTimeKey } from '@shoal/api';
import type { ServiceLogLine } from './log-broker.js';

export interface ServiceLogsAnswer {
  lines: ServiceLogLine[];
  warnings: string[];
}

/** What the stream needs of a gRPC server-streaming call. */
export interface LogSink {
  write(answer: ServiceLogsAnswer): boolean;
  once(event: 'drain', fn: () => void): unknown;
  on(event: 'cancelled' | 'close', fn: () => void): unknown;
  readonly cancelled: boolean;
}

export interface FollowLogsOptions {
  /** How long after an answer the leader is asked again. */
  pollMs?: number;
  now?: () => number;
}

/** The ServiceLogs the follower asks (on the leader: the broker's, elsewhere: passed on to it). */
export type ServiceLogsCall = (req: { service: string; tail: number; since: string }) => Promise<ServiceLogsAnswer>;

/** Streams a service's logs to `sink` until the client leaves (or a call fails: the error ends it). */
export async function followServiceLogs(
  serviceLogs: ServiceLogsCall,
  req: { service?: string; tail?: number | string; since?: string },
  sink: LogSink,
  opts: FollowLogsOptions = {},
): Promise<void> {
  const pollMs = opts.pollMs ?? 1000;
  const now = opts.now ?? Date.now;
  let gone = sink.cancelled;
  let wake: (() => void) | undefined;
  const leave = (): void => {
    gone = true;
    wake?.();
  };
  sink.on('cancelled', leave);
  sink.on('close', leave);
  const warned = new Set<string>();
  let since = req.since ?? '';
  let tail = Number(req.tail ?? 0);
  const service = req.service ?? '';
  while (!gone) {
    const r = await serviceLogs({ service, tail, since });
    // Each warning once (a node that stays down would say so every round).
    const warnings = r.warnings.filter((w) => !warned.has(w));
    for (const w of warnings) warned.add(w);
    for (const l of r.lines) if ((logTimeKey(l.timestamp) ?? '') > (logTimeKey(since) ?? '')) since = l.timestamp;
    // From here on: only what comes after the newest line sent (or after now, if none yet).
    since ||= new Date(now()).toISOString();
    tail = 0;
    if ((r.lines.length > 0 || warnings.length > 0) && !gone) {
      if (!sink.write({ lines: r.lines, warnings })) await new Promise<void>((res) => ((wake = res), sink.once('drain', res)));
    }
    if (gone) break;
    await new Promise<void>((res) => {
      wake = res;
      setTimeout(res, pollMs);
    });
    wake = undefined;
  }
}
