// The dashboard's event panel, one line per notable change of the store: services created,
// updated or removed, nodes joining, going down or coming back, tasks changing state (with their
// error). Derived on this manager from the changes it applies, as `docker events` is from a
// swarm manager's store.

import type { Node, ObjectKind, Service, StoreEvent, Task } from '@shoal/store';
import type { EventLine } from './view-types.js';

type Lookup = (kind: ObjectKind, id: string) => unknown;

export function describeChanges(events: readonly StoreEvent[], lookup: Lookup, now = Date.now()): EventLine[] {
  const out: EventLine[] = [];
  for (const e of events) {
    if (e.action === 'restore') continue;
    const line = (type: string, action: string, id: string, name: string, detail = '') =>
      out.push({ index: e.index, time: now, type, action, id, name, detail });
    switch (e.kind) {
      case 'service': {
        const s = e.object as Service;
        const prev = e.previous as Service | undefined;
        if (e.action !== 'update') line('service', e.action === 'create' ? 'create' : 'remove', s.id, s.spec.name);
        else if (prev) {
          const what: string[] = [];
          if (prev.spec.replicas !== s.spec.replicas) what.push(`replicas ${prev.spec.replicas} → ${s.spec.replicas}`);
          if (prev.spec.image !== s.spec.image) what.push(`image ${s.spec.image}`);
          if (prev.specVersion !== s.specVersion && what.length === 0) what.push('spec changed');
          if (what.length > 0) line('service', 'update', s.id, s.spec.name, what.join(', '));
          const u = s.updateStatus;
          if (u && u.state !== prev.updateStatus?.state) line('service', `update ${u.state}`, s.id, s.spec.name, u.message);
        }
        break;
      }
      case 'node': {
        const n = e.object as Node;
        const prev = e.previous as Node | undefined;
        const host = n.description.hostname || n.id.slice(0, 12);
        if (e.action === 'create') line('node', 'join', n.id, host, n.spec.role);
        else if (e.action === 'delete') line('node', 'remove', n.id, host);
        else if (prev) {
          if (prev.status.state !== n.status.state) line('node', n.status.state, n.id, host, n.status.message);
          if (prev.spec.availability !== n.spec.availability) line('node', n.spec.availability, n.id, host, 'availability');
          if (prev.spec.role !== n.spec.role) line('node', n.spec.role === 'manager' ? 'promote' : 'demote', n.id, host);
        }
        break;
      }
      case 'task': {
        const t = e.object as Task;
        const prev = e.previous as Task | undefined;
        if (e.action !== 'update' || !prev || prev.status.state === t.status.state) break;
        const node = t.nodeId ? (lookup('node', t.nodeId) as Node | undefined) : undefined;
        const host = node?.description.hostname || t.nodeId.slice(0, 12);
        const detail = [host ? `on ${host}` : '', t.status.err].filter(Boolean).join(': ');
        // A global service's task is named for its node, as in `service ps`.
        line('task', t.status.state, t.id, `${t.serviceName}.${t.slot || host}`, detail);
        break;
      }
      case 'network':
        if (e.action !== 'update') line('network', e.action === 'create' ? 'create' : 'remove', e.object.id, e.object.spec.name);
        break;
      default:
        break;
    }
  }
  return out;
}
