// The page's copy of the cluster, kept from the feed: a snapshot replaces it, changes patch it.
// Pure functions over immutable maps (each message makes a new Cluster: the page redraws).

import type { EventLine, NetworkView, NodeView, RaftView, ServiceView, Snapshot, TaskView, ViewChange } from '../src/dashboard/view-types.js';

export type { EventLine, NetworkView, NodeView, RaftView, ServiceView, Snapshot, TaskView, ViewChange };

/** Lines the event panel keeps. */
const MAX_EVENTS = 500;

export interface Cluster {
  index: number;
  self: string;
  clusterId: string;
  nodes: Map<string, NodeView>;
  services: Map<string, ServiceView>;
  tasks: Map<string, TaskView>;
  networks: Map<string, NetworkView>;
  raft: RaftView | undefined;
  events: EventLine[];
}

export function emptyCluster(): Cluster {
  return { index: 0, self: '', clusterId: '', nodes: new Map(), services: new Map(), tasks: new Map(), networks: new Map(), raft: undefined, events: [] };
}

const byId = <T extends { id: string }>(list: T[]) => new Map(list.map((x) => [x.id, x]));

export function fromSnapshot(s: Snapshot, raft: RaftView | undefined): Cluster {
  return {
    index: s.index,
    self: s.self,
    clusterId: s.clusterId,
    nodes: byId(s.node),
    services: byId(s.service),
    tasks: byId(s.task),
    networks: byId(s.network),
    raft,
    events: s.events.slice(-MAX_EVENTS),
  };
}

const FIELD = { node: 'nodes', service: 'services', task: 'tasks', network: 'networks' } as const;

export function applyChanges(c: Cluster, msg: { index: number; changes: ViewChange[] }): Cluster {
  const next = { ...c, index: msg.index };
  const copied = new Set<string>();
  for (const ch of msg.changes) {
    const field = FIELD[ch.kind];
    if (!copied.has(field)) {
      (next as Record<string, unknown>)[field] = new Map(c[field] as Map<string, unknown>);
      copied.add(field);
    }
    const m = next[field] as Map<string, unknown>;
    if (ch.view) m.set(ch.id, ch.view);
    else m.delete(ch.id);
  }
  return next;
}

export function withEvents(c: Cluster, lines: EventLine[]): Cluster {
  return { ...c, events: [...c.events, ...lines].slice(-MAX_EVENTS) };
}

/** A service's running tasks against the number it wants (global: one per node it runs on). */
export function runningOf(c: Cluster, s: ServiceView): { running: number; desired: number } {
  let running = 0;
  let wanted = 0;
  for (const t of c.tasks.values()) {
    if (t.serviceId !== s.id) continue;
    if (t.desiredState === 'running') wanted++;
    if (t.desiredState === 'running' && t.state === 'running') running++;
  }
  const desired = s.mode === 'replicated' || s.mode === 'replicated-job' ? s.replicas : wanted;
  return { running, desired };
}
