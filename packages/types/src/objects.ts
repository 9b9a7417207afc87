// The objects of the replicated cluster store, derived from proto/types.proto's generated types
// (src/gen, see from-wire.ts): a store object crosses gRPC without a converter, and a field added
// to the .proto is here once the types are regenerated. The fields' comments are the .proto's.
// Timestamps are milliseconds since the epoch, chosen by the proposer (never by apply, which must
// be deterministic). Every object's `version` is the Raft index of the command that last changed it.

import type { SealedSecret } from '@shoal/api';
import type { FromWire, Wire } from './from-wire.js';
import type {
  EndpointMode,
  MountType,
  NetworkDriver,
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

export interface ClusterSpec extends FromWire<Wire<'ClusterSpec'>> {
  // Store only (never on the wire: `swarm update` sends it in UpdateClusterRequest).
  /** Validity of node certificates (`--cert-expiry`); nodes renew at 50-80% of it. */
  certExpiryMs: number;
}

export interface JoinTokens extends FromWire<Wire<'JoinTokens'>> {}

export interface Cluster extends FromWire<Wire<'Cluster'>> {
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
  /**
   * Autolock (`shoal swarm update --autolock true`): the unlock key, sealed with the cluster's
   * key-encryption key, so that every unlocked manager can wrap its own kek.json with it (and
   * unwrap it again when autolock is turned off). Null: autolock is off.
   */
  unlockKey: SealedSecret | null;
}

// ------------------------------------------------------------------ nodes

export interface NodeSpec extends FromWire<Wire<'NodeSpec'>, { role: NodeRole; availability: NodeAvailability }> {}

export interface NodeResources extends FromWire<Wire<'NodeResources'>> {}

export interface Platform extends FromWire<Wire<'Platform'>> {}

export interface NodeDescription extends FromWire<Wire<'NodeDescription'>> {}

export interface NodeStatus extends FromWire<Wire<'NodeStatus'>, { state: NodeState }> {}

export interface ManagerStatus extends FromWire<Wire<'ManagerStatus'>> {}

/** `managerStatus` is null unless the node is a manager. */
export interface Node extends FromWire<Wire<'Node'>, {}, 'managerStatus'> {}

// ------------------------------------------------------------------ services

export interface PortConfig extends FromWire<Wire<'PortConfig'>, { protocol: Protocol; publishMode: PublishMode }> {}

export interface RestartPolicy extends FromWire<Wire<'RestartPolicy'>, { condition: RestartCondition }> {}

export interface UpdateConfig extends FromWire<Wire<'UpdateConfig'>, { failureAction: UpdateFailureAction; order: UpdateOrder }> {}

export interface UpdateStatus extends FromWire<Wire<'UpdateStatus'>, { state: UpdateState }> {}

/** `healthcheck` is null when the image's own applies. */
export interface ServiceSpec extends FromWire<Wire<'ServiceSpec'>, { mode: ServiceMode; endpointMode: EndpointMode }, 'healthcheck' | 'dnsConfig' | 'logDriver'> {
  // Store only: no message carries it (types.proto has no such field), so neither the control
  // API's answers nor a node's assignments can hold it; the dispatcher opens it for the node that
  // runs the task and sends the credentials alone (AssignmentsResponse.registry_auths).
  /**
   * The registry credentials of `--with-registry-auth` (Docker's AuthConfig JSON), sealed with the
   * cluster's key-encryption key for this service (sealContext.registryAuth). Null: none.
   */
  registryAuth: SealedSecret | null;
}

export interface NetworkAttachmentConfig extends FromWire<Wire<'NetworkAttachmentConfig'>> {}

export interface DnsConfig extends FromWire<Wire<'DnsConfig'>> {}

export interface Ulimit extends FromWire<Wire<'Ulimit'>> {}

export interface LogDriver extends FromWire<Wire<'LogDriver'>> {}

/** `volumeOptions` is null but for type volume (when given), `tmpfsOptions` but for type tmpfs. */
export interface Mount extends FromWire<Wire<'Mount'>, { type: MountType }, 'volumeOptions' | 'tmpfsOptions'> {}

export interface VolumeOptions extends FromWire<Wire<'VolumeOptions'>> {}

export interface TmpfsOptions extends FromWire<Wire<'TmpfsOptions'>> {}

export interface SecretReference extends FromWire<Wire<'SecretReference'>> {}

export interface ConfigReference extends FromWire<Wire<'ConfigReference'>> {}

export interface JobStatus extends FromWire<Wire<'JobStatus'>> {}

export interface HealthConfig extends FromWire<Wire<'HealthConfig'>> {}

export interface ResourceRequirements extends FromWire<Wire<'ResourceRequirements'>> {}

export interface NetworkAttachment extends FromWire<Wire<'NetworkAttachment'>> {}

export interface Endpoint extends FromWire<Wire<'Endpoint'>> {}

/**
 * `previousSpec` is null before the first update, `updateStatus` before the first rolling update,
 * `jobStatus` but for a job.
 */
export interface Service extends FromWire<Wire<'Service'>, {}, 'previousSpec' | 'updateStatus' | 'jobStatus'> {}

// ------------------------------------------------------------------ tasks

export interface TaskStatus extends FromWire<Wire<'TaskStatus'>, { state: TaskState }> {}

export interface Task extends FromWire<Wire<'Task'>, { desiredState: TaskState }> {}

// ------------------------------------------------------------------ networks

export interface IPAMConfig extends FromWire<Wire<'IPAMConfig'>> {}

export interface NetworkSpec extends FromWire<Wire<'NetworkSpec'>, { driver: NetworkDriver }> {}

export interface Network extends FromWire<Wire<'Network'>> {}

// ------------------------------------------------------------------ secrets and configs

export interface SecretSpec extends FromWire<Wire<'SecretSpec'>> {}

export interface Secret extends FromWire<Wire<'Secret'>> {
  // Store only: no message carries it (the control API never sends a secret's data back; the
  // dispatcher opens it for a node running a task that uses it, AssignmentsResponse.secrets).
  /** The data, sealed with the cluster's key-encryption key for this secret. */
  data: SealedSecret;
}

export interface ConfigSpec extends Omit<FromWire<Wire<'ConfigSpec'>>, 'data'> {
  /** The data, base64 (bytes on the wire: protobuf takes base64 for a bytes field, so it is sent as is). */
  data: string;
}

export interface Config extends FromWire<Wire<'Config'>> {}

export type StoreObject = Cluster | Node | Service | Task | Network | Secret | Config;
