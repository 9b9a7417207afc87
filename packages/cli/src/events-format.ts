// `shoal events` lines: docker's (`2026-12-08T01:02:03.000000000Z service create ID (name=web)`)
// or, with --format json, docker's events JSON ({Type, Action, Actor:{ID, Attributes}, scope, time,
// timeNano}) with the event's version added, one object a line.

import type { Event } from '@shoal/types';
import { UsageError } from './errors.js';

/** The types and filter keys the manager takes (its events/event-filter.ts): checked before any call. */
export const EVENT_TYPES = ['service', 'node', 'task', 'network', 'secret', 'config', 'cluster'] as const;
export const EVENT_FILTER_KEYS = ['type', 'service', 'node', 'event'] as const;

/** --filter values as the manager takes them; a bad one is a usage error here. */
export function checkEventFilters(list: readonly string[]): string[] {
  for (const f of list) {
    const eq = f.indexOf('=');
    const key = eq < 0 ? f : f.slice(0, eq);
    const value = eq < 0 ? '' : f.slice(eq + 1);
    if (!(EVENT_FILTER_KEYS as readonly string[]).includes(key)) {
      throw new UsageError(`invalid --filter ${JSON.stringify(f)}: the key must be one of ${EVENT_FILTER_KEYS.join(', ')}`);
    }
    if (value === '') throw new UsageError(`invalid --filter ${JSON.stringify(f)}: expected ${key}=VALUE`);
    if (key === 'type' && !(EVENT_TYPES as readonly string[]).includes(value)) {
      throw new UsageError(`invalid --filter ${JSON.stringify(f)}: the type must be one of ${EVENT_TYPES.join(', ')}`);
    }
  }
  return [...list];
}

/** RFC 3339 with nanoseconds, as docker prints event times (ours are whole milliseconds). */
export function eventTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, '.$1000000Z');
}

function attributesOf(e: Event): [string, string][] {
  return Object.entries(e.actor?.attributes ?? {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

export function eventLine(e: Event): string {
  const attrs = attributesOf(e);
  const tail = attrs.length === 0 ? '' : ` (${attrs.map(([k, v]) => `${k}=${v}`).join(', ')})`;
  return `${eventTime(Number(e.timeMs))} ${e.type} ${e.action} ${e.actor?.id ?? ''}${tail}`;
}

/** Docker's JSON; timeNano is written as digits (a JS number could not hold it exactly). */
export function eventJson(e: Event): string {
  const ms = Number(e.timeMs);
  const obj = {
    Type: e.type,
    Action: e.action,
    Actor: { ID: e.actor?.id ?? '', Attributes: Object.fromEntries(attributesOf(e)) },
    scope: 'swarm',
    time: Math.floor(ms / 1000),
    timeNano: 0,
    version: e.version,
  };
  return JSON.stringify(obj).replace('"timeNano":0', `"timeNano":${ms === 0 ? '0' : `${ms}000000`}`);
}
