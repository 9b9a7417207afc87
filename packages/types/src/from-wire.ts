// From a generated wire type (src/gen: what @shoal/api decodes a message into) to its domain type,
// at the type level only: the domain types are derived, so a field added to a .proto (and
// regenerated) is in them without an edit. What the wire cannot say is added here: the
// enumerations' unions (they travel as strings), which message fields are never absent, and
// which domain type a nested message is.

import type * as D from './objects.js';
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

/** Each message of proto/types.proto (generated type) with its domain type. */
export type DomainTable = [
  [Cluster__Output, D.Cluster],
  [ClusterSpec__Output, D.ClusterSpec],
  [JoinTokens__Output, D.JoinTokens],
  [Node__Output, D.Node],
  [NodeSpec__Output, D.NodeSpec],
  [NodeDescription__Output, D.NodeDescription],
  [Platform__Output, D.Platform],
  [NodeResources__Output, D.NodeResources],
  [NodeStatus__Output, D.NodeStatus],
  [ManagerStatus__Output, D.ManagerStatus],
  [Service__Output, D.Service],
  [ServiceSpec__Output, D.ServiceSpec],
  [PortConfig__Output, D.PortConfig],
  [RestartPolicy__Output, D.RestartPolicy],
  [UpdateConfig__Output, D.UpdateConfig],
  [UpdateStatus__Output, D.UpdateStatus],
  [HealthConfig__Output, D.HealthConfig],
  [ResourceRequirements__Output, D.ResourceRequirements],
  [Task__Output, D.Task],
  [TaskStatus__Output, D.TaskStatus],
];

/** True when A and B are the same type. */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

type Lookup<W, Table> = Table extends [[infer G, infer Dom], ...infer Rest]
  ? Equal<W, G> extends true
    ? Dom
    : Lookup<W, Rest>
  : WireMessage<W>;

/** A field's value with every message in it as its domain type (null kept: absent stays possible). */
export type DomainValue<T> = T extends null | string | number | boolean | bigint | Uint8Array
  ? T
  : T extends readonly (infer E)[]
    ? DomainValue<E>[]
    : string extends keyof T // a map<string, V>
      ? { [key: string]: DomainValue<T[string]> }
      : Lookup<T, DomainTable>;

/** A message without a domain type of its own (a control API response, say): its nested messages mapped. */
export type WireMessage<W> = { [K in keyof W]: DomainValue<W[K]> };

/** Narrower types for some of W's fields (each must be one of W's, and fit in its wire type). */
export type Narrowing<W, N> = { [K in keyof N]: K extends keyof W ? W[K] : never };

/**
 * The domain type of generated message W: the fields of N take N's (narrower) types; message
 * fields are never null but those named in Nullable (the store always sets them, and a message
 * field decodes as null only when the sender left it out); nested messages are domain types.
 */
export type FromWire<W, N extends Narrowing<W, N> = {}, Nullable extends keyof W = never> = {
  [K in keyof W]: K extends keyof N ? N[K] : K extends Nullable ? DomainValue<W[K]> : DomainValue<NonNullable<W[K]>>;
};
