// What the dashboard's page is sent of the store's objects: the fields its tables show, no more.
// A service's sealed registry credentials, a task's full spec (environment included) and the
// cluster's keys never leave the manager this way; the page is read-only and small at scale.

import type { ClusterStore, Network, Node, Service, StoreEvent, Task } from '@shoal/store';
import type { NetworkView, NodeView, ServiceView, TaskView, ViewChange, ViewKind, Views } from './view-types.js';

export const VIEW_KINDS: readonly ViewKind[] = ['node', 'service', 'task', 'network'];

export type * from './view-types.js';

export function nodeView(n: Node): NodeView {
  return {
    id: n.id,
    hostname: n.description.hostname,
    role: n.spec.role,
    availability: n.spec.availability,
    state: n.status.state,
    message: n.status.message,
    addr: n.status.addr,
    os: n.description.platform?.os ?? '',
    arch: n.description.platform?.arch ?? '',
    nanoCpus: Number(n.description.resources?.nanoCpus ?? 0),
    memoryBytes: Number(n.description.resources?.memoryBytes ?? 0),
    engineVersion: n.description.engineVersion,
    labels: { ...n.spec.labels },
  };
}

export function serviceView(s: Service): ServiceView {
  const u = s.updateStatus;
  return {
    id: s.id,
    name: s.spec.name,
    image: s.spec.image,
    mode: s.spec.mode,
    replicas: Number(s.spec.replicas),
    ports: s.spec.ports.map((p) => ({ protocol: p.protocol, targetPort: p.targetPort, publishedPort: p.publishedPort, publishMode: p.publishMode })),
    networks: s.spec.networks.map((n) => n.target),
    update: u ? { state: u.state, message: u.message, startedAt: Number(u.startedAt), completedAt: Number(u.completedAt) } : null,
    createdAt: Number(s.createdAt),
    updatedAt: Number(s.updatedAt),
  };
}

export function taskView(t: Task): TaskView {
  return {
    id: t.id,
    serviceId: t.serviceId,
    serviceName: t.serviceName,
    slot: Number(t.slot),
    nodeId: t.nodeId,
    desiredState: t.desiredState,
    state: t.status.state,
    message: t.status.message,
    err: t.status.err,
    exitCode: t.status.exitCode,
    timestamp: Number(t.status.timestamp),
    image: t.spec.image,
  };
}

export function networkView(n: Network): NetworkView {
  return { id: n.id, name: n.spec.name, driver: n.spec.driver, subnet: n.subnet };
}

/** The view of a store object of a kind the page shows. */
export function viewOf<K extends ViewKind>(kind: K, object: unknown): Views[K] {
  switch (kind) {
    case 'node':
      return nodeView(object as Node) as Views[K];
    case 'service':
      return serviceView(object as Service) as Views[K];
    case 'task':
      return taskView(object as Task) as Views[K];
    default:
      return networkView(object as Network) as Views[K];
  }
}

/** Every object the page shows, as of now. */
export function viewsOf(store: ClusterStore): { [K in ViewKind]: Views[K][] } {
  return {
    node: (store.list('node') as Node[]).map(nodeView),
    service: (store.list('service') as Service[]).map(serviceView),
    task: (store.list('task') as Task[]).map(taskView),
    network: (store.list('network') as Network[]).map(networkView),
  };
}

export function isViewKind(kind: string): kind is ViewKind {
  return (VIEW_KINDS as readonly string[]).includes(kind);
}

/** A store change as the page's change; undefined for kinds it does not show (and restores). */
export function viewChange(e: StoreEvent): ViewChange | undefined {
  if (e.action === 'restore' || !isViewKind(e.kind)) return undefined;
  return { kind: e.kind, id: e.object.id, view: e.action === 'delete' ? null : viewOf(e.kind, e.object) } as ViewChange;
}
