// `shoal service logs`: the lines the managers gather from the nodes, printed as Docker prints
// them (`web.1.3k2j9x@node1    | line`, stderr lines on stderr); with -f a stream the manager
// keeps sending new lines on.

import { logTimeKey } from '@shoal/api/log-time';
import type { Ctx } from './context.js';
import { UsageError } from './errors.js';
import { shortId } from './format.js';
import { parseDuration } from './parse.js';
import type { ServiceLogLine, ServiceLogsResponse } from '@shoal/types';

export interface LogsOptions {
  tail: number;
  /** RFC 3339 ('' : from the start). */
  since: string;
  follow: boolean;
  timestamps: boolean;
  noTrunc: boolean;
}

/** `--since` (or `flag`): a duration back from now (10m, 1h30m) or an RFC 3339 time. */
export function parseSince(v: string, nowMs: number, flag = '--since'): string {
  if (logTimeKey(v) !== undefined) return v;
  if (/^\d/.test(v) && !/^\d{4}-/.test(v)) return new Date(nowMs - parseDuration(v, flag)).toISOString();
  throw new UsageError(`invalid ${flag} ${JSON.stringify(v)}: expected a duration (e.g. 10m) or an RFC 3339 time (e.g. 2026-01-02T15:04:05Z)`);
}

/** `--tail`: a number of lines per task, or "all". */
export function parseTail(v: string | undefined): number {
  if (v === undefined || v === 'all') return 0;
  if (!/^\d+$/.test(v)) throw new UsageError(`invalid --tail ${JSON.stringify(v)}: expected a number of lines or "all"`);
  return Number(v);
}

/** A line as Docker's `service logs` prints it (without the newline). */
export function formatLogLine(l: ServiceLogLine, width: number, o: Pick<LogsOptions, 'timestamps' | 'noTrunc'>): string {
  const prefix = logPrefix(l, o.noTrunc).padEnd(width);
  return `${prefix} | ${o.timestamps ? `${l.timestamp} ` : ''}${l.data}`;
}

function logPrefix(l: ServiceLogLine, noTrunc: boolean): string {
  // SERVICE.SLOT.TASKID: the id shortened as `service ps` shows it.
  const dot = l.taskName.lastIndexOf('.');
  const name = noTrunc || dot < 0 ? l.taskName : `${l.taskName.slice(0, dot)}.${shortId(l.taskName.slice(dot + 1))}`;
  return `${name}@${l.node}`;
}

export async function printServiceLogs(ctx: Ctx, service: string, o: LogsOptions): Promise<void> {
  const warned = new Set<string>();
  let width = 0;
  const print = (r: ServiceLogsResponse): void => {
    for (const w of r.warnings) {
      if (warned.has(w)) continue;
      warned.add(w);
      ctx.note(`warning: ${w}`);
    }
    for (const l of r.lines) width = Math.max(width, logPrefix(l, o.noTrunc).length);
    for (const l of r.lines) {
      const text = `${formatLogLine(l, width, o)}\n`;
      if (l.stream === 'stderr') ctx.stderr.write(text);
      else ctx.stdout.write(text);
    }
  };
  const req = { service, tail: o.tail, since: o.since };
  const notFound = { kind: 'service', name: service } as const;
  // -f: one stream, the manager sending each new batch as the nodes give it (until interrupted).
  if (o.follow) return ctx.stream('SubscribeServiceLogs', req, print, { ctx: { notFound } });
  // The leader gives nodes 5 s to answer.
  print(await ctx.call('ServiceLogs', req, { notFound, timeoutMs: 30_000 }));
}
