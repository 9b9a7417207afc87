// What `shoal events` shows: the store's changes as a Swarm user reads them in `docker events`
// (a type, an action, an actor with its id and a few attributes), each with a version the same on
// every manager: the Raft index of the transaction and the event's position in it. Every manager
// applies the same log, so a client that lost its manager resumes on any other after the last
// version it saw.

import type { StoreEvent } from '@shoal/store';
import type { Node, Service, Task } from '@shoal/store';

/** What an event is about (docker's Type); `cluster` also carries the leader changes. */
export const EVENT_TYPES = ['service', 'node', 'task', 'network', 'secret', 'config', 'cluster'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/**
 * One event, as docker's events JSON has it ({Type, Action, Actor:{ID, Attributes}, time}) with
 * the time in milliseconds and its place in the cluster's history.
 */
export interface ClusterEvent {
  type: EventType;
  /** create | update | remove, or leader (type cluster). */
  action: string;
  actor: { id: string; attributes: Record<string, string> };
  /** When this manager saw it (ms since the epoch). */
  timeMs: number;
  /** The Raft index of the transaction (for a leader change: the index applied when it was seen). */
  index: number;
  /** Its position among the events of that index (from 0). */
  position: number;
  /** `INDEX.POSITION`: the order of events, the same on every manager (see compareVersions). */
  version: string;
}

/** An event before it has its place in the journal. */
export type EventBody = Pick<ClusterEvent, 'type' | 'action' | 'actor'>;

/** A place in the history: events are ordered by index, then position. */
export interface EventVersion {
  index: number;
  position: number;
}

export function formatVersion(v: EventVersion): string {
  return `${v.index}.${v.position}`;
}

/** `INDEX.POSITION` (or a bare INDEX: after every event of that index); undefined if malformed. */
export function parseVersion(s: string): EventVersion | undefined {
  const m = /^(\d{1,15})(?:\.(\d{1,9}))?$/.exec(s.trim());
  if (!m) return undefined;
  return { index: Number(m[1]), position: m[2] === undefined ? Number.MAX_SAFE_INTEGER : Number(m[2]) };
}

export function compareVersions(a: EventVersion, b: EventVersion): number {
  return a.index - b.index || a.position - b.position;
}

/** A task's name as `service ps` shows it: SERVICE.SLOT.ID (SERVICE.NODEID.ID in global mode). */
function taskName(t: Task): string {
  return `${t.serviceName}.${t.slot === 0 ? t.nodeId : t.slot}.${t.id}`;
}

/** `key.old`/`key.new` attributes when a field changed (docker's node and service events do this). */
function changed(attrs: Record<string, string>, key: string, before: string | undefined, after: string): void {
  if (before === undefined || before === after) return;
  attrs[`${key}.old`] = before;
  attrs[`${key}.new`] = after;
}

function serviceAttrs(s: Service, prev: Service | undefined): Record<string, string> {
  const a: Record<string, string> = { name: s.spec.name, image: s.spec.image, mode: s.spec.mode };
  if (s.spec.mode === 'replicated' || s.spec.mode === 'replicated-job') a['replicas'] = String(s.spec.replicas);
  if (prev) {
    changed(a, 'replicas', String(prev.spec.replicas), String(s.spec.replicas));
    changed(a, 'image', prev.spec.image, s.spec.image);
    changed(a, 'updatestate', prev.updateStatus?.state ?? '', s.updateStatus?.state ?? '');
    if (prev.spec.name !== s.spec.name) changed(a, 'name', prev.spec.name, s.spec.name);
  }
  return a;
}

function nodeAttrs(n: Node, prev: Node | undefined): Record<string, string> {
  const a: Record<string, string> = {
    name: n.description.hostname,
    role: n.spec.role,
    availability: n.spec.availability,
    state: n.status.state,
  };
  if (prev) {
    changed(a, 'state', prev.status.state, n.status.state);
    changed(a, 'availability', prev.spec.availability, n.spec.availability);
    changed(a, 'role', prev.spec.role, n.spec.role);
  }
  return a;
}

function taskAttrs(t: Task, prev: Task | undefined): Record<string, string> {
  const a: Record<string, string> = {
    name: taskName(t),
    'service.id': t.serviceId,
    'service.name': t.serviceName,
    'node.id': t.nodeId,
    slot: String(t.slot),
    state: t.status.state,
    'desired-state': t.desiredState,
  };
  if (t.status.err) a['error'] = t.status.err;
  if (prev) {
    changed(a, 'state', prev.status.state, t.status.state);
    changed(a, 'desired-state', prev.desiredState, t.desiredState);
    changed(a, 'node.id', prev.nodeId, t.nodeId);
  }
  return a;
}

/**
 * The cluster events of one store event, in order (none for a change no one would call an event:
 * a task's status message or a heartbeat's timestamp; nor for a snapshot restore, which the
 * journal notes as a gap). Pure: the same store event gives the same events on every manager.
 */
export function clusterEventsOf(e: StoreEvent): EventBody[] {
  if (e.action === 'restore') return [];
  const action = e.action === 'delete' ? 'remove' : e.action;
  switch (e.kind) {
    case 'service':
      return [{ type: 'service', action, actor: { id: e.object.id, attributes: serviceAttrs(e.object, e.previous) } }];
    case 'node':
      return [{ type: 'node', action, actor: { id: e.object.id, attributes: nodeAttrs(e.object, e.previous) } }];
    case 'task': {
      const p = e.previous;
      const t = e.object;
      // A task is written often (its status message, its container id...): only its life's steps count.
      if (p && p.status.state === t.status.state && p.desiredState === t.desiredState && p.nodeId === t.nodeId) return [];
      return [{ type: 'task', action, actor: { id: t.id, attributes: taskAttrs(t, p) } }];
    }
    case 'network':
      return [{ type: 'network', action, actor: { id: e.object.id, attributes: { name: e.object.spec.name, driver: e.object.spec.driver } } }];
    case 'secret':
    case 'config':
      return [{ type: e.kind, action, actor: { id: e.object.id, attributes: { name: e.object.spec.name } } }];
    case 'cluster':
      return [{ type: 'cluster', action, actor: { id: e.object.id, attributes: { name: e.object.spec.name } } }];
  }
}

/** A leader change as this manager saw it (not a store change: each manager records its own). */
export function leaderEvent(leaderId: string, previous: string, term: number, hostname: string | undefined): EventBody {
  const attributes: Record<string, string> = { term: String(term), 'leader.old': previous };
  if (hostname) attributes['name'] = hostname;
  return { type: 'cluster', action: 'leader', actor: { id: leaderId, attributes } };
}
