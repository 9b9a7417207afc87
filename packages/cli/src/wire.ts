// TypeScript shapes of the shoal.control messages (proto/control.proto) as @shoal/api loads them:
// camelCase field names, 64-bit integers as numbers, enums as strings, every field present
// (defaults: true; an absent message field is null).

import type { Node, Service, ServiceSpec, Task } from '@shoal/types';

export interface CreateServiceRequest {
  spec: ServiceSpec;
}
export interface UpdateServiceRequest {
  service: string;
  spec: ServiceSpec;
  version: number;
}
export interface ScaleServiceRequest {
  service: string;
  replicas: number;
}
export interface ServiceRef {
  service: string;
}
export interface ServiceResponse {
  service: Service | null;
  running: number;
  desired: number;
}
export interface ServiceSummary {
  service: Service | null;
  running: number;
  desired: number;
}
export interface ListServicesResponse {
  services: ServiceSummary[];
}
export interface RemoveResponse {
  id: string;
}

export interface ListTasksRequest {
  service: string;
  node: string;
  desiredState: string;
  /** 0: the server's default. */
  pageSize?: number;
  /** A previous page's nextPageToken; empty: the first page. */
  pageToken?: string;
}
export interface TaskView {
  task: Task | null;
  nodeHostname: string;
}
export interface ListTasksResponse {
  tasks: TaskView[];
  /** Empty (or absent, from an older manager): the last page. */
  nextPageToken?: string;
}

export interface NodeView {
  node: Node | null;
  leader: boolean;
  /**
   * "reachable" | "unreachable" (a voter, as the leader sees it), "learner" (in Raft, catching up:
   * no vote yet), "pending" (a manager Raft has not taken in yet), "" (not a manager, or unknown).
   */
  reachability: string;
}
export interface ListNodesResponse {
  nodes: NodeView[];
}
export interface NodeRef {
  node: string;
}
export interface NodeResponse {
  node: NodeView | null;
}
export interface UpdateNodeRequest {
  node: string;
  availability: string;
  labelAdd: Record<string, string>;
  labelRm: string[];
}
export interface RemoveNodeRequest {
  node: string;
  force: boolean;
}

export interface RaftMemberStatus {
  nodeId: string;
  addr: string;
  raftRole: string;
  reachable: boolean;
  commitIndex: number;
  appliedIndex: number;
}
export interface ClusterStatusResponse {
  clusterId: string;
  leader: string;
  term: number;
  members: RaftMemberStatus[];
  /** The answering manager's node id. */
  self?: string;
}

export interface UpdateClusterRequest {
  certExpiryMs?: number;
  heartbeatPeriodMs?: number;
}

export interface UpdateClusterResponse {
  certExpiryMs: number | string;
  heartbeatPeriodMs: number | string;
}

export interface ServiceLogsRequest {
  service: string;
  tail: number;
  since: string;
}
export interface ServiceLogLine {
  taskId: string;
  taskName: string;
  node: string;
  timestamp: string;
  stream: string;
  data: string;
}
export interface ServiceLogsResponse {
  lines: ServiceLogLine[];
  warnings: string[];
}

export interface IssueAdminCertificateRequest {
  csr: string;
  expiryMs: number;
}
export interface IssueAdminCertificateResponse {
  cert: string;
  caCert: string;
  name: string;
  notAfterMs: number | string;
}

export interface GetJoinTokenRequest {
  role: string;
  rotate: boolean;
}
export interface GetJoinTokenResponse {
  token: string;
}

/** Each method of shoal.control.Control: its request and response types. */
export interface ControlMethods {
  CreateService: [CreateServiceRequest, ServiceResponse];
  UpdateService: [UpdateServiceRequest, ServiceResponse];
  RollbackService: [ServiceRef, ServiceResponse];
  ServiceLogs: [ServiceLogsRequest, ServiceLogsResponse];
  ScaleService: [ScaleServiceRequest, ServiceResponse];
  RemoveService: [ServiceRef, RemoveResponse];
  GetService: [ServiceRef, ServiceResponse];
  ListServices: [Record<string, never>, ListServicesResponse];
  ListTasks: [ListTasksRequest, ListTasksResponse];
  ListNodes: [Record<string, never>, ListNodesResponse];
  GetNode: [NodeRef, NodeResponse];
  UpdateNode: [UpdateNodeRequest, NodeResponse];
  PromoteNode: [NodeRef, NodeResponse];
  DemoteNode: [NodeRef, NodeResponse];
  RemoveNode: [RemoveNodeRequest, RemoveResponse];
  ClusterStatus: [Record<string, never>, ClusterStatusResponse];
  GetJoinToken: [GetJoinTokenRequest, GetJoinTokenResponse];
  UpdateCluster: [UpdateClusterRequest, UpdateClusterResponse];
  IssueAdminCertificate: [IssueAdminCertificateRequest, IssueAdminCertificateResponse];
}
export type ControlMethod = keyof ControlMethods;
