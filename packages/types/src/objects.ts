// The objects of the replicated cluster store, derived from proto/types.proto's generated types
// (src/gen, see from-wire.ts): a store object crosses gRPC without a converter, and a field added
// to the .proto is here once the types are regenerated. The fields' comments are the .proto's.
// Timestamps are milliseconds since the epoch, chosen by the proposer (never by apply, which must
// be deterministic). Every object's `version` is the Raft index of the command that last changed it.

import type { SealedSecret } from '@shoal/api';
import type { FromWire } from './from-wire.js';
import type { ClusterSpec__Output } from './gen/shoal/types/ClusterSpec.js';
import type { Cluster__Output } from './gen/shoal/types/Cluster.js';
import type { HealthConfig__Output } from './gen/shoal/types/HealthConfig.js';
import type { JoinTokens__Output } from './gen/shoal/types/JoinTokens.js';
import type { ManagerStatus__Output } from './gen/shoal/types/ManagerStatus.js';
import type { NodeDescription__Output } from './gen/shoal/types/NodeDescription.js';
import type { NodeResources__Output } from './gen/shoal/types/NodeResources.js';
import type { NodeSpec__Output } from './gen/shoal/types/NodeSpec.js';
import type { NodeStatus__Output } from './gen/shoal/types/NodeStatus.js';
import type { Node__Output } from './gen/shoal/types/Node.js';
import type { Platform__Output } from './gen/shoal/types/Platform.js';
import type { PortConfig__Output } from './gen/shoal/types/PortConfig.js';
import type { ResourceRequirements__Output } from './gen/shoal/types/ResourceRequirements.js';
import type { RestartPolicy__Output } from './gen/shoal/types/RestartPolicy.js';
import type { ServiceSpec__Output } from './gen/shoal/types/ServiceSpec.js';
import type { Service__Output } from './gen/shoal/types/Service.js';
import type { TaskStatus__Output } from './gen/shoal/types/TaskStatus.js';
import type { Task__Output } from './gen/shoal/types/Task.js';
import type { UpdateConfig__Output } from './gen/shoal/types/UpdateConfig.js';
import type { UpdateStatus__Output } from './gen/shoal/types/UpdateStatus.js';
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


/** The fields every stored object has. */
export interface Meta {
  id: string;
  version: number;
  createdAt: number;
  updatedAt: number;
}

// ------------------------------------------------------------------ cluster

export interface ClusterSpec extends FromWire<ClusterSpec__Output> {
  // Store only (never on the wire: `swarm update` sends it in UpdateClusterRequest).
  /** Validity of node certificates (`--cert-expiry`); nodes renew at 50-80% of it. */
  certExpiryMs: number;
}

export interface JoinTokens extends FromWire<JoinTokens__Output> {}

export interface Cluster extends FromWire<Cluster__Output> {
  // Store only: the CA's key and the removed nodes stay in the managers (no message carries them).
  /**
   * The root CA's private key (PEM), sealed with the cluster's key-encryption key, which managers
   * keep outside the store (@shoal/pki kek.ts): any leader can sign, while the Raft log, snapshots
   * and LevelDB files hold only ciphertext. Null: this cluster cannot issue certificates. A string:
   * the plaintext PEM a release before sealing wrote (LegacyCaKey), until the leader seals it.
   */
  caKey: SealedSecret | LegacyCaKey | null;
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

export interface NodeSpec extends FromWire<NodeSpec__Output, { role: NodeRole; availability: NodeAvailability }> {}

export interface NodeResources extends FromWire<NodeResources__Output> {}

export interface Platform extends FromWire<Platform__Output> {}

export interface NodeDescription extends FromWire<NodeDescription__Output> {}

export interface NodeStatus extends FromWire<NodeStatus__Output, { state: NodeState }> {}

export interface ManagerStatus extends FromWire<ManagerStatus__Output> {}

/** `managerStatus` is null unless the node is a manager. */
export interface Node extends FromWire<Node__Output, {}, 'managerStatus'> {}

// ------------------------------------------------------------------ services

export interface PortConfig extends FromWire<PortConfig__Output, { protocol: Protocol; publishMode: PublishMode }> {}

export interface RestartPolicy extends FromWire<RestartPolicy__Output, { condition: RestartCondition }> {}

export interface UpdateConfig extends FromWire<UpdateConfig__Output, { failureAction: UpdateFailureAction; order: UpdateOrder }> {}

export interface UpdateStatus extends FromWire<UpdateStatus__Output, { state: UpdateState }> {}

/** `healthcheck` is null when the image's own applies. */
export interface ServiceSpec extends FromWire<ServiceSpec__Output, { mode: ServiceMode }, 'healthcheck'> {}

export interface HealthConfig extends FromWire<HealthConfig__Output> {}

export interface ResourceRequirements extends FromWire<ResourceRequirements__Output> {}

/** `previousSpec` is null before the first update, `updateStatus` before the first rolling update. */
export interface Service extends FromWire<Service__Output, {}, 'previousSpec' | 'updateStatus'> {}

// ------------------------------------------------------------------ tasks

export interface TaskStatus extends FromWire<TaskStatus__Output, { state: TaskState }> {}

export interface Task extends FromWire<Task__Output, { desiredState: TaskState }> {}

export type StoreObject = Cluster | Node | Service | Task;
