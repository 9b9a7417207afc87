// From a generated wire type (src/gen: what @shoal/api decodes a message into) to its domain type,
// at the type level only: the domain types are derived, so a field added to a .proto (and
// regenerated) is in them without an edit. What the wire cannot say is added here: the
// enumerations' unions (they travel as strings), which message fields are never absent, and
// which domain type a nested message is.

import type * as D from './objects.js';
import type { ProtoGrpcType } from './gen/types.js';

type TypesPackage = ProtoGrpcType['shoal']['types'];
/** The messages of proto/types.proto, by name. */
export type MessageName = keyof TypesPackage;
/** Message N as decoded (its generated __Output type). */
export type Wire<N extends MessageName> = ReturnType<TypesPackage[N]['deserialize']>;

/** Each message of proto/types.proto: its domain type. */
export interface Domains {
  Cluster: D.Cluster;
  ClusterSpec: D.ClusterSpec;
  JoinTokens: D.JoinTokens;
  Node: D.Node;
  NodeSpec: D.NodeSpec;
  NodeDescription: D.NodeDescription;
  Platform: D.Platform;
  NodeResources: D.NodeResources;
  NodeStatus: D.NodeStatus;
  ManagerStatus: D.ManagerStatus;
  Service: D.Service;
  ServiceSpec: D.ServiceSpec;
  PortConfig: D.PortConfig;
  RestartPolicy: D.RestartPolicy;
  UpdateConfig: D.UpdateConfig;
  UpdateStatus: D.UpdateStatus;
  HealthConfig: D.HealthConfig;
  ResourceRequirements: D.ResourceRequirements;
  Task: D.Task;
  TaskStatus: D.TaskStatus;
  Network: D.Network;
  NetworkSpec: D.NetworkSpec;
  IPAMConfig: D.IPAMConfig;
  NetworkAttachmentConfig: D.NetworkAttachmentConfig;
  NetworkAttachment: D.NetworkAttachment;
  Endpoint: D.Endpoint;
  DnsConfig: D.DnsConfig;
  Ulimit: D.Ulimit;
  LogDriver: D.LogDriver;
  Mount: D.Mount;
  VolumeOptions: D.VolumeOptions;
  TmpfsOptions: D.TmpfsOptions;
  SecretReference: D.SecretReference;
  ConfigReference: D.ConfigReference;
  JobStatus: D.JobStatus;
  SecretSpec: D.SecretSpec;
  Secret: D.Secret;
  ConfigSpec: D.ConfigSpec;
  Config: D.Config;
}

/** [decoded message, domain type], one pair a message of Domains. */
export type DomainPair = { [N in keyof Domains & MessageName]: [Wire<N>, Domains[N]] }[keyof Domains & MessageName];

/** True when A and B are the same type. */
export type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** The domain type of decoded message W, if it has one. */
type DomainOf<W, P = DomainPair> = P extends [infer G, infer Dom] ? (Equal<W, G> extends true ? Dom : never) : never;
type Lookup<W> = [DomainOf<W>] extends [never] ? WireMessage<W> : DomainOf<W>;

/** A field's value with every message in it as its domain type (null kept: absent stays possible). */
export type DomainValue<T> = T extends null | string | number | boolean | bigint | Uint8Array
  ? T
  : T extends readonly (infer E)[]
    ? DomainValue<E>[]
    : string extends keyof T // a map<string, V>
      ? { [key: string]: DomainValue<T[string]> }
      : Lookup<T>;

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
