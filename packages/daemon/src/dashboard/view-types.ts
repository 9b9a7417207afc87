// The shapes the dashboard's page is sent (views.ts makes them from the store's objects): plain
// types without imports, shared by the daemon and the page's bundle (web/), which knows no Node.

export interface NodeView {
  id: string;
  hostname: string;
  role: string;
  availability: string;
  state: string;
  message: string;
  addr: string;
  os: string;
  arch: string;
  nanoCpus: number;
  memoryBytes: number;
  engineVersion: string;
  labels: Record<string, string>;
}

export interface ServiceView {
  id: string;
  name: string;
  image: string;
  mode: string;
  /** Desired replicas (replicated modes); global services run one task per eligible node. */
  replicas: number;
  ports: { protocol: string; targetPort: number; publishedPort: number; publishMode: string }[];
  /** Network ids (the page names them from its networks). */
  networks: string[];
  update: { state: string; message: string; startedAt: number; completedAt: number } | null;
  createdAt: number;
  updatedAt: number;
}

export interface TaskView {
  id: string;
  serviceId: string;
  serviceName: string;
  slot: number;
  nodeId: string;
  desiredState: string;
  state: string;
  message: string;
  err: string;
  exitCode: number;
  timestamp: number;
  image: string;
}

export interface NetworkView {
  id: string;
  name: string;
  driver: string;
  subnet: string;
}

export interface Views {
  node: NodeView;
  service: ServiceView;
  task: TaskView;
  network: NetworkView;
}
export type ViewKind = keyof Views;

/** A change of one object: its new view, or null when it was removed. */
export type ViewChange = { [K in ViewKind]: { kind: K; id: string; view: Views[K] | null } }[ViewKind];

export interface EventLine {
  /** The Raft index of the change (the same on every manager). */
  index: number;
  /** INDEX.POSITION, as `shoal events` shows it. */
  version: string;
  /** When this manager saw it (ms since the epoch). */
  time: number;
  type: string;
  action: string;
  id: string;
  /** The object's name: a service's, a node's hostname, a task's service.slot. */
  name: string;
  /** What changed, from what to what; a task's node and error. */
  detail: string;
}

export interface RaftView {
  leader: string;
  term: number;
  self: string;
  members: { nodeId: string; addr: string; raftRole: string; reachable: boolean }[];
}

/** The feed's first message (and GET /api/state): everything the page shows. */
export interface Snapshot {
  index: number;
  self: string;
  clusterId: string;
  node: NodeView[];
  service: ServiceView[];
  task: TaskView[];
  network: NetworkView[];
  events: EventLine[];
}
