// The agent's side of the dispatcher's diffs: the dispatcher answers a node's long polls
// (assignments, mesh view) with what changed since the node's cursor, in pages that fit a
// message. A feed keeps the whole view, applies each page, asks for the next at once while the
// answer says `more`, and hands its user the whole view only once it is complete: the task
// runner never acts on half a listing (it would remove the containers of the tasks not yet read).

import type { IngressNode, NetworkEndpoint, NetworkService, NetworkView, NetworkViewPage, OverlayNetworkInfo, Task } from '@shoal/types';
import { meshPortKey } from '@shoal/types';
import type { MeshView } from './runner.js';
import { fileKey } from './task-files.js';

/** One raw answer of the dispatcher (AssignmentsResponse or MeshViewResponse). */
interface DiffPage {
  token: string;
  reset: boolean;
  more: boolean;
}

export interface AssignmentsPage extends DiffPage {
  tasks: Task[];
  removed: string[];
  /** Registry credentials (Docker's AuthConfig JSON) of this page's tasks that have them, by task id. */
  registryAuths?: Record<string, string>;
  /** The secrets and configs this page's tasks that are to run use, with their data. */
  secrets?: { id: string; data: Uint8Array }[];
  configs?: { id: string; data: Uint8Array }[];
}

export interface MeshPage extends DiffPage {
  ports: Omit<MeshView['ports'][number], 'backends'>[];
  backends: (MeshView['ports'][number]['backends'][number] & { serviceId: string })[];
  removedNodes: string[];
  deleted: string[];
}

/** Pages a feed may read in a row before giving up (a view that never settles is a bug). */
const MAX_PAGES = 10_000;

/** Reads pages from `fetch` until one says no more; `apply` takes each. Returns the last token. */
async function drain<P extends DiffPage>(first: P, fetch: (known: string) => Promise<P>, apply: (p: P) => void): Promise<string> {
  let p = first;
  for (let i = 0; ; i++) {
    apply(p);
    if (!p.more) return p.token;
    if (i >= MAX_PAGES) throw new Error(`the dispatcher's answer did not end after ${MAX_PAGES} pages`);
    p = await fetch(p.token);
  }
}

/** A node's assignments, whole, from the dispatcher's diffs. */
export class AssignmentsFeed {
  private readonly tasks = new Map<string, Task>();
  /** Kept apart from the tasks (never in a Task object, which gets logged and compared). */
  private readonly registryAuths = new Map<string, string>();
  /** Secrets' and configs' data (fileKey), in memory only, while a task held names them. */
  private readonly files = new Map<string, Uint8Array>();
  private cursor = '';

  /** `call(known, waitMs)`: the raw Assignments call. */
  constructor(private readonly call: (known: string, waitMs: number) => Promise<AssignmentsPage>) {}

  /**
   * The whole set, once something changed since the caller's `known` token, or after waitMs.
   * `known` '' asks for an answer at once (the feed still reads from its own cursor).
   */
  async next(known: string, waitMs: number): Promise<{ token: string; tasks: Task[]; registryAuths: ReadonlyMap<string, string>; files: ReadonlyMap<string, Uint8Array> }> {
    const first = await this.call(this.cursor, known ? waitMs : 0);
    this.cursor = await drain(first, (k) => this.call(k, 0), (p) => {
      if (p.reset) {
        this.tasks.clear();
        this.registryAuths.clear();
        this.files.clear();
      }
      for (const f of p.secrets ?? []) this.files.set(fileKey('secret', f.id), f.data);
      for (const f of p.configs ?? []) this.files.set(fileKey('config', f.id), f.data);
      for (const id of p.removed) {
        this.tasks.delete(id);
        this.registryAuths.delete(id);
      }
      for (const t of p.tasks) {
        this.tasks.set(t.id, t);
        const auth = p.registryAuths?.[t.id];
        if (auth) this.registryAuths.set(t.id, auth);
        else this.registryAuths.delete(t.id);
      }
    });
    this.forgetUnusedFiles();
    return { token: this.cursor, tasks: [...this.tasks.values()], registryAuths: new Map(this.registryAuths), files: new Map(this.files) };
  }

  private forgetUnusedFiles(): void {
    const used = new Set<string>();
    for (const t of this.tasks.values()) {
      for (const r of t.spec?.secrets ?? []) used.add(fileKey('secret', r.secretId));
      for (const r of t.spec?.configs ?? []) used.add(fileKey('config', r.configId));
    }
    for (const k of this.files.keys()) if (!used.has(k)) this.files.delete(k);
  }
}

/** The routing mesh's view, whole, from the dispatcher's diffs. */
export class MeshViewFeed {
  private readonly entries = new Map<string, { port?: MeshPage['ports'][number]; backend?: MeshPage['backends'][number]; removedNode?: string }>();
  private cursor = '';

  constructor(private readonly call: (known: string, waitMs: number) => Promise<MeshPage>) {}

  async next(known: string, waitMs: number): Promise<MeshView> {
    const first = await this.call(this.cursor, known ? waitMs : 0);
    this.cursor = await drain(first, (k) => this.call(k, 0), (p) => {
      if (p.reset) this.entries.clear();
      for (const k of p.deleted) this.entries.delete(k);
      for (const port of p.ports) this.entries.set(meshPortKey(port.port, port.protocol), { port });
      for (const backend of p.backends) this.entries.set(`b:${backend.taskId}`, { backend });
      for (const id of p.removedNodes) this.entries.set(`r:${id}`, { removedNode: id });
    });
    return this.view();
  }

  private view(): MeshView {
    const backends = new Map<string, MeshView['ports'][number]['backends']>();
    const ports: MeshPage['ports'] = [];
    const removedNodes: string[] = [];
    for (const e of this.entries.values()) {
      if (e.port) ports.push(e.port);
      else if (e.backend) {
        const { serviceId, ...b } = e.backend;
        const list = backends.get(serviceId) ?? [];
        list.push(b);
        backends.set(serviceId, list);
      } else if (e.removedNode) removedNodes.push(e.removedNode);
    }
    for (const l of backends.values()) l.sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
    return {
      token: this.cursor,
      ports: ports.sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol)).map((p) => ({ ...p, backends: backends.get(p.serviceId) ?? [] })),
      removedNodes: removedNodes.sort(),
    };
  }
}

/** The overlay networks' view, whole, from the dispatcher's diffs. */
export class NetworkViewFeed {
  private readonly entries = new Map<string, { network?: OverlayNetworkInfo; service?: NetworkService; endpoint?: NetworkEndpoint; ingressNode?: IngressNode }>();
  private cursor = '';

  constructor(private readonly call: (known: string, waitMs: number) => Promise<NetworkViewPage>) {}

  async next(known: string, waitMs: number): Promise<NetworkView> {
    const first = await this.call(this.cursor, known ? waitMs : 0);
    this.cursor = await drain(first, (k) => this.call(k, 0), (p) => {
      if (p.reset) this.entries.clear();
      for (const k of p.deleted) this.entries.delete(k);
      for (const network of p.networks) this.entries.set(`n:${network.id}`, { network });
      for (const service of p.services) this.entries.set(`s:${service.serviceId}`, { service });
      for (const endpoint of p.endpoints) this.entries.set(`e:${endpoint.taskId}`, { endpoint });
      for (const ingressNode of p.ingressNodes) this.entries.set(`i:${ingressNode.nodeId}`, { ingressNode });
    });
    const networks: OverlayNetworkInfo[] = [];
    const services: NetworkService[] = [];
    const endpoints: NetworkEndpoint[] = [];
    const ingressNodes: IngressNode[] = [];
    for (const e of this.entries.values()) {
      if (e.network) networks.push(e.network);
      else if (e.service) services.push(e.service);
      else if (e.endpoint) endpoints.push(e.endpoint);
      else if (e.ingressNode) ingressNodes.push(e.ingressNode);
    }
    return { token: this.cursor, networks, services, endpoints, ingressNodes };
  }
}
