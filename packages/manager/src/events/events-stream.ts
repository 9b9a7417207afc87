// The control API's Events stream (server side): a request's filters and window read once, then the
// journal's events written as the client takes them. gRPC buffers what a slow client has not read;
// while its buffer is full the journal's bounded queue fills instead, and a client that lets it
// overflow is dropped with RESOURCE_EXHAUSTED (it resumes after the last version it got).

import * as grpc from '@grpc/grpc-js';
import { ShoalError } from '@shoal/api';
import { type ClusterEvent, type EventVersion, compareVersions, parseVersion } from './cluster-event.js';
import { matchesFilters, parseEventFilters, parseEventTime } from './event-filter.js';
import type { EventJournal } from './journal.js';

/** control.proto's EventsRequest as it is decoded. */
export interface EventsRequest {
  since?: string;
  until?: string;
  filters?: string[];
  resumeAfter?: string;
}

/**
 * The stream's first metadata: the version the live events follow (this manager's applied index).
 * A client that loses the stream before its first event resumes after it, and misses nothing.
 */
export const EVENTS_AFTER_HEADER = 'shoal-events-after';

/** control.proto's Event: a ClusterEvent as it is sent. */
export type WireEvent = ClusterEvent;

/** What the stream needs of a gRPC server-streaming call (grpc.ServerWritableStream has it all). */
export interface EventSink {
  write(e: WireEvent): boolean;
  once(event: 'drain', fn: () => void): unknown;
  on(event: 'cancelled' | 'close', fn: () => void): unknown;
  readonly cancelled: boolean;
  sendMetadata?(md: grpc.Metadata): void;
}

export interface ServeEventsOptions {
  now?: () => number;
  /** Live events a slow client may have waiting (the journal's default otherwise). */
  maxQueued?: number;
}

/** Checks a request (one-line INVALID_ARGUMENT) and writes its events to `sink` until it ends. */
export async function serveEvents(journal: EventJournal, req: EventsRequest, sink: EventSink, opts: ServeEventsOptions = {}): Promise<void> {
  const now = opts.now ?? Date.now;
  const filters = parseEventFilters(req.filters ?? []);
  const sinceMs = parseEventTime(req.since ?? '', 'since');
  const untilMs = parseEventTime(req.until ?? '', 'until');
  if (sinceMs !== undefined && untilMs !== undefined && untilMs < sinceMs) {
    throw new ShoalError('INVALID_ARGUMENT', `until (${new Date(untilMs).toISOString()}) is before since (${new Date(sinceMs).toISOString()})`);
  }
  let resumeAfter: EventVersion | undefined;
  if (req.resumeAfter) {
    resumeAfter = parseVersion(req.resumeAfter);
    if (!resumeAfter) throw new ShoalError('INVALID_ARGUMENT', `invalid resume_after ${JSON.stringify(req.resumeAfter)}: expected an event's version (INDEX.POSITION)`);
  }
  const filter = (e: ClusterEvent): boolean => matchesFilters(e, filters) && (untilMs === undefined || e.timeMs <= untilMs);

  const ac = new AbortController();
  const stop = (): void => ac.abort();
  sink.on('cancelled', stop);
  sink.on('close', stop);
  if (sink.cancelled) return;
  // An end in the past: the held events of the window and no more (docker's --until).
  const follow = untilMs === undefined || untilMs > now();
  const it = journal.subscribe({
    ...(resumeAfter ? { resumeAfter } : {}),
    sinceMs: follow ? sinceMs : (sinceMs ?? 0),
    filter,
    signal: ac.signal,
    ...(opts.maxQueued !== undefined ? { maxQueued: opts.maxQueued } : {}),
  });
  const md = new grpc.Metadata();
  md.set(EVENTS_AFTER_HEADER, journal.head);
  sink.sendMetadata?.(md);
  const timer = follow && untilMs !== undefined ? setTimeout(stop, untilMs - now()) : undefined;
  try {
    if (!follow) {
      // The backlog alone: it is taken before any live event could join it.
      for (const e of journal.events()) {
        if (ac.signal.aborted) break;
        if (!filter(e) || (sinceMs !== undefined && e.timeMs < sinceMs) || (resumeAfter && compareVersions(e, resumeAfter) <= 0)) continue;
        if (!sink.write(e)) await drained(sink, ac.signal);
      }
      return;
    }
    for await (const e of it) {
      if (!sink.write(e)) await drained(sink, ac.signal);
      if (ac.signal.aborted) break;
    }
  } finally {
    if (timer) clearTimeout(timer);
    await it.return?.();
  }
}

function drained(sink: EventSink, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    sink.once('drain', resolve);
    signal.addEventListener('abort', () => resolve(), { once: true });
  });
}
