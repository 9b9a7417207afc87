// Which events a client asked for: docker's filters (type=, service=, node=, event=; several
// values of one key: any of them; several keys: all of them) and a time window.

import { ShoalError } from '@shoal/api';
import { type ClusterEvent, EVENT_TYPES, type EventType } from './cluster-event.js';

export const FILTER_KEYS = ['type', 'service', 'node', 'event'] as const;
export type FilterKey = (typeof FILTER_KEYS)[number];

export type EventFilters = Partial<Record<FilterKey, ReadonlySet<string>>>;

/** `KEY=VALUE` strings into filters; an unknown key or type is a one-line INVALID_ARGUMENT. */
export function parseEventFilters(list: readonly string[]): EventFilters {
  const out: Partial<Record<FilterKey, Set<string>>> = {};
  for (const raw of list) {
    const eq = raw.indexOf('=');
    const key = (eq < 0 ? raw : raw.slice(0, eq)).trim();
    const value = eq < 0 ? '' : raw.slice(eq + 1).trim();
    if (!(FILTER_KEYS as readonly string[]).includes(key)) {
      throw new ShoalError('INVALID_ARGUMENT', `invalid filter ${JSON.stringify(raw)}: the key must be one of ${FILTER_KEYS.join(', ')}`);
    }
    if (value === '') throw new ShoalError('INVALID_ARGUMENT', `invalid filter ${JSON.stringify(raw)}: expected ${key}=VALUE`);
    if (key === 'type' && !(EVENT_TYPES as readonly string[]).includes(value)) {
      throw new ShoalError('INVALID_ARGUMENT', `invalid filter ${JSON.stringify(raw)}: the type must be one of ${EVENT_TYPES.join(', ')}`);
    }
    (out[key as FilterKey] ??= new Set()).add(value);
  }
  return out;
}

/** Whether an id or name matches a filter value (a full id, an id prefix or a name, as docker). */
function names(set: ReadonlySet<string>, id: string, ...others: (string | undefined)[]): boolean {
  for (const v of set) {
    if (id !== '' && id.startsWith(v)) return true;
    if (others.includes(v)) return true;
  }
  return false;
}

export function matchesFilters(e: ClusterEvent, f: EventFilters): boolean {
  const a = e.actor.attributes;
  if (f.type && !f.type.has(e.type as EventType)) return false;
  if (f.event && !f.event.has(e.action)) return false;
  if (f.service) {
    if (e.type === 'service' && !names(f.service, e.actor.id, a['name'])) return false;
    if (e.type === 'task' && !names(f.service, a['service.id'] ?? '', a['service.name'])) return false;
    if (e.type !== 'service' && e.type !== 'task') return false;
  }
  if (f.node) {
    if (e.type === 'node' && !names(f.node, e.actor.id, a['name'])) return false;
    if (e.type === 'task' && !names(f.node, a['node.id'] ?? '')) return false;
    if (e.type === 'cluster' && e.action === 'leader' && !names(f.node, e.actor.id, a['name'])) return false;
    if (e.type !== 'node' && e.type !== 'task' && !(e.type === 'cluster' && e.action === 'leader')) return false;
  }
  return true;
}

/**
 * A --since/--until time as the API takes it: RFC 3339, or Unix seconds (with a fraction), as
 * docker's API; '' is none. Milliseconds since the epoch.
 */
export function parseEventTime(v: string, what: string): number | undefined {
  const s = v.trim();
  if (s === '') return undefined;
  if (/^\d+(\.\d+)?$/.test(s)) return Math.round(Number(s) * 1000);
  const ms = /^\d{4}-\d{2}-\d{2}T/.test(s) ? Date.parse(s) : NaN;
  if (Number.isNaN(ms)) throw new ShoalError('INVALID_ARGUMENT', `invalid ${what} ${JSON.stringify(v)}: expected an RFC 3339 time or Unix seconds`);
  return ms;
}
