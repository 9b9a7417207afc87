// The store's data: one map per kind plus the secondary indexes, kept in step by put()/remove().
// ClusterStore owns one State and swaps it wholesale on a snapshot restore.

import { addressKey, heldAddresses } from './addresses.js';
import type { Node, ObjectKind, Service, StoreObject, Task } from './types.js';
import type { KindMap } from './validate.js';

/** Tasks of one place: (service, slot) for replicated tasks, (service, node) for global ones. */
export function slotKey(t: Pick<Task, 'serviceId' | 'slot' | 'nodeId'>): string {
  return JSON.stringify([t.serviceId, t.slot, t.slot === 0 ? t.nodeId : '']);
}

function addTo(index: Map<string, Set<string>>, key: string, id: string): void {
  let s = index.get(key);
  if (!s) index.set(key, (s = new Set()));
  s.add(id);
}

function removeFrom(index: Map<string, Set<string>>, key: string, id: string): void {
  const s = index.get(key);
  if (!s) return;
  s.delete(id);
  if (s.size === 0) index.delete(key);
}

export class State {
  readonly objects: { [K in ObjectKind]: Map<string, KindMap[K]> } = {
    cluster: new Map(),
    node: new Map(),
    service: new Map(),
    task: new Map(),
    network: new Map(),
    secret: new Map(),
    config: new Map(),
  };
  readonly tasksByService = new Map<string, Set<string>>();
  readonly tasksByNode = new Map<string, Set<string>>();
  readonly tasksBySlot = new Map<string, Set<string>>();
  readonly serviceByName = new Map<string, string>();
  readonly nodesByHostname = new Map<string, Set<string>>();
  /** Overlay addresses held (addressKey) → the task or service holding each. */
  readonly addressHolders = new Map<string, string>();
  /** The index of the last command applied (successful or not). */
  index = 0;

  get<K extends ObjectKind>(kind: K, id: string): KindMap[K] | undefined {
    return this.objects[kind].get(id);
  }

  /** Inserts or replaces; the caller has checked the invariants (unique names, one cluster). */
  put(kind: ObjectKind, obj: StoreObject): void {
    const map = this.objects[kind] as Map<string, StoreObject>;
    const prev = map.get(obj.id);
    if (prev) this.unindex(kind, prev);
    map.set(obj.id, obj);
    this.index_(kind, obj);
  }

  remove(kind: ObjectKind, id: string): void {
    const map = this.objects[kind] as Map<string, StoreObject>;
    const prev = map.get(id);
    if (!prev) return;
    this.unindex(kind, prev);
    map.delete(id);
  }

  private index_(kind: ObjectKind, obj: StoreObject): void {
    for (const a of heldAddresses(kind, obj)) this.addressHolders.set(addressKey(a.networkId, a.addr), obj.id);
    switch (kind) {
      case 'task': {
        const t = obj as Task;
        addTo(this.tasksByService, t.serviceId, t.id);
        if (t.nodeId) addTo(this.tasksByNode, t.nodeId, t.id);
        addTo(this.tasksBySlot, slotKey(t), t.id);
        break;
      }
      case 'service':
        this.serviceByName.set((obj as Service).spec.name, obj.id);
        break;
      case 'node':
        addTo(this.nodesByHostname, (obj as Node).description.hostname, obj.id);
        break;
      case 'cluster':
      case 'network':
      case 'secret':
      case 'config':
        break;
    }
  }

  private unindex(kind: ObjectKind, obj: StoreObject): void {
    for (const a of heldAddresses(kind, obj)) {
      // Another object of the same commit may already have taken it over.
      const key = addressKey(a.networkId, a.addr);
      if (this.addressHolders.get(key) === obj.id) this.addressHolders.delete(key);
    }
    switch (kind) {
      case 'task': {
        const t = obj as Task;
        removeFrom(this.tasksByService, t.serviceId, t.id);
        if (t.nodeId) removeFrom(this.tasksByNode, t.nodeId, t.id);
        removeFrom(this.tasksBySlot, slotKey(t), t.id);
        break;
      }
      case 'service': {
        const name = (obj as Service).spec.name;
        if (this.serviceByName.get(name) === obj.id) this.serviceByName.delete(name);
        break;
      }
      case 'node':
        removeFrom(this.nodesByHostname, (obj as Node).description.hostname, obj.id);
        break;
      case 'cluster':
      case 'network':
      case 'secret':
      case 'config':
        break;
    }
  }
}
