// The objects of the replicated cluster store. Field names match proto/types.proto (loaded with
// camelCase field names), so a store object crosses gRPC without a converter.
// Timestamps are milliseconds since the epoch, chosen by the proposer (never by apply, which must
// be deterministic). Every object's `version` is the Raft index of the command that last changed it.

import type { SealedSecret } from '@shoal/api';
import type {
  NodeAvailability,
  NodeRole,
  NodeState,
  Protocol,
  PublishMode,
  RestartCondition,
  ServiceMode,
  TaskState,
  UpdateFailureAction,
  UpdateOrder,
  UpdateState,
} from './enums.js';

export type { SealedSecret };

/**
 * The CA key as releases before sealing stored it: the PEM in the clear. Read from an old data
 * dir's log and snapshots only; never written anew (store.ts refuses it).
 */
export type LegacyCaKey = string;

/** Whether a cluster's CA key is still in the clear (an old release's, not yet sealed). */
export function isLegacyCaKey(k: SealedSecret | LegacyCaKey | null): k is LegacyCaKey {
  return typeof k === 'string';
}


export interface Meta {
  id: string;
  version: number;
  createdAt: number;
  updatedAt: number;
}

// ------------------------------------------------------------------ cluster

export interface ClusterSpec {
  name: string;
  /** How often agents heartbeat; a node is declared down after `heartbeatPeriodMs * nodeDownAfterBeats`. */
  heartbeatPeriodMs: number;
  nodeDownAfterBeats: number;
  /** Terminated tasks kept per slot (Swarm's task history retention limit). */
  taskHistoryLimit: number;
  /** Validity of node certificates (`--cert-expiry`); nodes renew at 50-80% of it. */
  certExpiryMs: number;
}

export interface JoinTokens {
  worker: string;
  manager: string;
}

export interface Cluster extends Meta {
  spec: ClusterSpec;
  /** Fingerprint of the cluster's root CA certificate (see manager/ca): part of the join tokens. */
  caFingerprint: string;
  /** The root CA certificate (PEM). */
  caCert: string;
  /**
   * The root CA's private key (PEM), sealed with the cluster's key-encryption key, which managers
   * keep outside the store (@shoal/pki kek.ts): any leader can sign, while the Raft log, snapshots
   * and LevelDB files hold only ciphertext. Null: this cluster cannot issue certificates. A string:
   * the plaintext PEM a release before sealing wrote (LegacyCaKey), until the leader seals it.
   */
  caKey: SealedSecret | LegacyCaKey | null;
  joinTokens: JoinTokens;
  /** Ids of removed nodes: their certificates stay valid by date, so every manager refuses them. */
  removedNodes: string[];
  /**
   * For ids of removedNodes: when every certificate issued to the node has expired (ms since the
   * epoch). The id may leave the list after that (a certificate out of date is refused anyway).
   */
  removedNodeExpiry: Record<string, number>;
  /** The longest certExpiryMs the cluster has had: certificates issued before it was lowered outlive the current one. */
  longestCertExpiryMs: number;
}

// ------------------------------------------------------------------ nodes


export interface NodeSpec {
  role: NodeRole;
  availability: NodeAvailability;
  labels: Record<string, string>;
}

export interface NodeResources {
  nanoCpus: number;
  memoryBytes: number;
}

export interface NodeDescription {
  hostname: string;
  platform: { os: string; arch: string };
  resources: NodeResources;
  engineVersion: string;
}

export interface NodeStatus {
  state: NodeState;
  message: string;
  /** The address the node's daemon listens on (host:port). */
  addr: string;
  /** Where other nodes' routing mesh forwards connections for this node's tasks (host:port). */
  meshAddr: string;
  /** Published ports this node cannot serve, each with the reason (e.g. "8080/tcp: address in use"). */
  meshErrors: string[];
}

export interface ManagerStatus {
  /** The Raft member id (equal to the node id). */
  raftId: string;
  /** The Raft/control address other managers reach it on. */
  addr: string;
}

export interface Node extends Meta {
  spec: NodeSpec;
  description: NodeDescription;
  status: NodeStatus;
  /** Set while the node is a manager (a Raft member). */
  managerStatus: ManagerStatus | null;
}

// ------------------------------------------------------------------ services


export interface PortConfig {
  protocol: Protocol;
  targetPort: number;
  publishedPort: number;
  publishMode: PublishMode;
  /** Ingress only: the mesh sends the client's address to the task first (PROXY protocol v2). */
  proxyProtocol: boolean;
}


export interface RestartPolicy {
  condition: RestartCondition;
  delayMs: number;
  /** 0: unlimited. */
  maxAttempts: number;
  /** 0: attempts are counted over the task's whole life. */
  windowMs: number;
}


export interface UpdateConfig {
  parallelism: number;
  delayMs: number;
  failureAction: UpdateFailureAction;
  order: UpdateOrder;
  /** How long after it starts a new task is watched: failing within it counts against the update. */
  monitorMs: number;
  /** The share of updated tasks that may fail before the failure action is taken (0: none). */
  maxFailureRatio: number;
}


export interface UpdateStatus {
  state: UpdateState;
  startedAt: number;
  /** 0 while in progress (or paused). */
  completedAt: number;
  message: string;
}


export interface ServiceSpec {
  name: string;
  labels: Record<string, string>;
  image: string;
  command: string[];
  args: string[];
  /** KEY=VALUE strings, as docker. */
  env: string[];
  mode: ServiceMode;
  /** Desired replicas (replicated mode; 0 in global mode). */
  replicas: number;
  ports: PortConfig[];
  restartPolicy: RestartPolicy;
  updateConfig: UpdateConfig;
  /** How a rollback is rolled out (its failure action is pause or continue). */
  rollbackConfig: UpdateConfig;
  stopGracePeriodMs: number;
  /** Placement constraints, e.g. `node.role==manager`, `node.labels.zone!=a`. */
  constraints: string[];
  /** Bumped by `service update --force`: tasks are replaced although nothing else changed. */
  forceUpdate: number;
  /** CPU and memory: limits the container gets, reservations the scheduler sets aside (0: none). */
  resources: ResourceRequirements;
  /**
   * Placement preferences, `spread=node.labels.KEY`: tasks spread evenly over the values of the
   * label first (nodes without it count as one more value), then over nodes. In order: the first
   * one splits first.
   */
  placementPrefs: string[];
  /**
   * The container's health check (Docker's): ["CMD-SHELL", cmd] or ["CMD", ...argv], or ["NONE"]
   * to turn off the image's; null: the image's own. A task with one runs only once healthy, and
   * fails when it turns unhealthy.
   */
  healthcheck: HealthConfig | null;
}

export interface HealthConfig {
  test: string[];
  /** 0: Docker's defaults (30 s, 30 s, 3 retries, no start period). */
  intervalMs: number;
  timeoutMs: number;
  retries: number;
  startPeriodMs: number;
}

export interface ResourceRequirements {
  limits: NodeResources;
  reservations: NodeResources;
}

export interface Service extends Meta {
  spec: ServiceSpec;
  previousSpec: ServiceSpec | null;
  /** Bumped on every spec change: tasks record the spec version they were created from. */
  specVersion: number;
  /** The last rolling update or rollback; null before the first. */
  updateStatus: UpdateStatus | null;
}

// ------------------------------------------------------------------ tasks

export interface TaskStatus {
  state: TaskState;
  timestamp: number;
  message: string;
  err: string;
  containerId: string;
  exitCode: number;
}

export interface Task extends Meta {
  serviceId: string;
  serviceName: string;
  /** Replicated mode: 1..replicas. Global mode: 0 (the node id identifies the task's place). */
  slot: number;
  nodeId: string;
  /** What the orchestrator wants (only managers write it): running, shutdown or remove. */
  desiredState: TaskState;
  /** What the agent reports (only the dispatcher writes it on the agent's behalf). */
  status: TaskStatus;
  /** The service spec the task runs (copied at creation: tasks are immutable runs of a spec). */
  spec: ServiceSpec;
  specVersion: number;
}

export type StoreObject = Cluster | Node | Service | Task;
