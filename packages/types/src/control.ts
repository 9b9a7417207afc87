// The control API's messages (proto/control.proto), from the generated types: a request is what a
// client may send (every field optional), a response what it receives decoded (@shoal/api's
// loader options: every field present; a message field absent is null), with the cluster's
// objects in it as domain types. ControlMethods is read off the generated service definition: a
// method added to the .proto is here once the types are regenerated.

import type { MethodDefinition } from '@grpc/proto-loader';
import type { WireMessage } from './from-wire.js';
import type { ControlDefinition } from './gen/shoal/control/Control.js';
import type { ClusterStatusResponse__Output } from './gen/shoal/control/ClusterStatusResponse.js';
import type { GetJoinTokenResponse__Output } from './gen/shoal/control/GetJoinTokenResponse.js';
import type { IssueAdminCertificateResponse__Output } from './gen/shoal/control/IssueAdminCertificateResponse.js';
import type { ListNodesResponse__Output } from './gen/shoal/control/ListNodesResponse.js';
import type { ListServicesResponse__Output } from './gen/shoal/control/ListServicesResponse.js';
import type { ListTasksResponse__Output } from './gen/shoal/control/ListTasksResponse.js';
import type { NodeResponse__Output } from './gen/shoal/control/NodeResponse.js';
import type { NodeView__Output } from './gen/shoal/control/NodeView.js';
import type { RaftMemberStatus__Output } from './gen/shoal/control/RaftMemberStatus.js';
import type { RemoveNodeResponse__Output } from './gen/shoal/control/RemoveNodeResponse.js';
import type { RemoveServiceResponse__Output } from './gen/shoal/control/RemoveServiceResponse.js';
import type { Event__Output } from './gen/shoal/control/Event.js';
import type { ServiceLogLine__Output } from './gen/shoal/control/ServiceLogLine.js';
import type { ServiceLogsResponse__Output } from './gen/shoal/control/ServiceLogsResponse.js';
import type { ServiceResponse__Output } from './gen/shoal/control/ServiceResponse.js';
import type { ServiceSummary__Output } from './gen/shoal/control/ServiceSummary.js';
import type { TaskView__Output } from './gen/shoal/control/TaskView.js';
import type { UpdateClusterResponse__Output } from './gen/shoal/control/UpdateClusterResponse.js';

export type { ClusterStatusRequest } from './gen/shoal/control/ClusterStatusRequest.js';
export type { CreateNetworkRequest } from './gen/shoal/control/CreateNetworkRequest.js';
export type { GetNetworkRequest } from './gen/shoal/control/GetNetworkRequest.js';
export type { RemoveNetworkRequest } from './gen/shoal/control/RemoveNetworkRequest.js';
export type { CreateServiceRequest } from './gen/shoal/control/CreateServiceRequest.js';
export type { GetJoinTokenRequest } from './gen/shoal/control/GetJoinTokenRequest.js';
export type { GetNodeRequest } from './gen/shoal/control/GetNodeRequest.js';
export type { GetServiceRequest } from './gen/shoal/control/GetServiceRequest.js';
export type { IssueAdminCertificateRequest } from './gen/shoal/control/IssueAdminCertificateRequest.js';
export type { ListNodesRequest } from './gen/shoal/control/ListNodesRequest.js';
export type { ListServicesRequest } from './gen/shoal/control/ListServicesRequest.js';
export type { ListTasksRequest } from './gen/shoal/control/ListTasksRequest.js';
export type { RemoveNodeRequest } from './gen/shoal/control/RemoveNodeRequest.js';
export type { RemoveServiceRequest } from './gen/shoal/control/RemoveServiceRequest.js';
export type { ScaleServiceRequest } from './gen/shoal/control/ScaleServiceRequest.js';
export type { ServiceLogsRequest } from './gen/shoal/control/ServiceLogsRequest.js';
export type { EventsRequest } from './gen/shoal/control/EventsRequest.js';
export type { UpdateClusterRequest } from './gen/shoal/control/UpdateClusterRequest.js';
export type { UpdateNodeRequest } from './gen/shoal/control/UpdateNodeRequest.js';
export type { UpdateServiceRequest } from './gen/shoal/control/UpdateServiceRequest.js';

export interface ClusterStatusResponse extends WireMessage<ClusterStatusResponse__Output> {}
export interface GetJoinTokenResponse extends WireMessage<GetJoinTokenResponse__Output> {}
export interface IssueAdminCertificateResponse extends WireMessage<IssueAdminCertificateResponse__Output> {}
export interface ListNodesResponse extends WireMessage<ListNodesResponse__Output> {}
export interface ListServicesResponse extends WireMessage<ListServicesResponse__Output> {}
export interface ListTasksResponse extends WireMessage<ListTasksResponse__Output> {}
export interface NodeResponse extends WireMessage<NodeResponse__Output> {}
export interface NodeView extends WireMessage<NodeView__Output> {}
export interface RaftMemberStatus extends WireMessage<RaftMemberStatus__Output> {}
export interface RemoveNodeResponse extends WireMessage<RemoveNodeResponse__Output> {}
export interface RemoveServiceResponse extends WireMessage<RemoveServiceResponse__Output> {}
export interface Event extends WireMessage<Event__Output> {}
export interface ServiceLogLine extends WireMessage<ServiceLogLine__Output> {}
export interface ServiceLogsResponse extends WireMessage<ServiceLogsResponse__Output> {}
export interface ServiceResponse extends WireMessage<ServiceResponse__Output> {}
export interface ServiceSummary extends WireMessage<ServiceSummary__Output> {}
export interface TaskView extends WireMessage<TaskView__Output> {}
export interface UpdateClusterResponse extends WireMessage<UpdateClusterResponse__Output> {}

/** The generated definition's methods, without the index signature it inherits from grpc's. */
type ControlMethodDefinitions = { [M in keyof ControlDefinition as string extends M ? never : M]: ControlDefinition[M] };

/** Each method of shoal.control.Control: [its request, its response]. */
export type ControlMethods = {
  [M in keyof ControlMethodDefinitions]: ControlMethodDefinitions[M] extends MethodDefinition<infer Req, infer _ResIn, infer _ReqOut, infer Res>
    ? [Req, WireMessage<Res>]
    : never;
};
export type ControlMethod = keyof ControlMethods;
