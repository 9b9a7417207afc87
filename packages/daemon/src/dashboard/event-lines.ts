// The dashboard's event panel: the manager's cluster events (its journal, the same `shoal events`
// follows) as one line each, in the words a Swarm user reads in `docker events`: what changed,
// from what to what (KEY.old/KEY.new), and for a task its node and error.

import type { ClusterEvent } from '@shoal/manager';
import type { EventLine } from './view-types.js';

/** A node's hostname by id (tasks name their node by id). */
export type HostOf = (nodeId: string) => string | undefined;

export function eventLine(e: ClusterEvent, hostOf: HostOf): EventLine {
  const a = e.actor.attributes;
  const changes: string[] = [];
  for (const [k, before] of Object.entries(a)) {
    if (!k.endsWith('.old')) continue;
    const key = k.slice(0, -'.old'.length);
    if (key === 'node.id' || key === 'leader') continue;
    changes.push(`${key} ${before || '–'} → ${a[`${key}.new`] || '–'}`);
  }
  let name = a['name'] ?? e.actor.id.slice(0, 12);
  const detail: string[] = [];
  if (e.type === 'task') {
    const host = a['node.id'] ? (hostOf(a['node.id']) ?? a['node.id'].slice(0, 12)) : '';
    // As `service ps` names it: SERVICE.SLOT, or SERVICE.NODE for a global service's task.
    name = `${a['service.name'] ?? ''}.${a['slot'] && a['slot'] !== '0' ? a['slot'] : host}`;
    if (e.action === 'create') changes.push(a['state'] ?? '');
    if (host) detail.push(`on ${host}`);
    if (a['error']) detail.push(a['error']);
  } else if (e.type === 'cluster' && e.action === 'leader') {
    name = a['name'] ?? (e.actor.id ? e.actor.id.slice(0, 12) : 'none');
    changes.push(`term ${a['term']}`);
  }
  return {
    index: e.index,
    version: e.version,
    time: e.timeMs,
    type: e.type,
    action: e.action,
    id: e.actor.id,
    name,
    detail: [changes.filter(Boolean).join(', '), ...detail].filter(Boolean).join(': '),
  };
}
