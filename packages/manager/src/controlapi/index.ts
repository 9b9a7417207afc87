// The control API (proto/control.proto's Control service): its methods by name, each served by
// the resource's module (services, tasks, nodes, cluster, networks, ui), as SwarmKit's controlapi is cut.
// Service logs come from the log broker, which the manager owns: it is handed in.

import type { ControlContext } from './context.js';
import * as services from './services.js';
import { listTasks } from './tasks.js';
import * as nodes from './nodes.js';
import * as cluster from './cluster.js';
import * as networks from './networks.js';
import * as files from './secrets.js';
import { createUiLogin } from './ui.js';

export type { ControlContext } from './context.js';
export type { UiLogin } from './ui.js';

/** A method's handler: requests arrive as decoded protobuf objects. */
export type ControlHandler = (req: any) => Promise<unknown>;

/** A server-streaming method's handler: writes to the call (grpc.ServerWritableStream), resolves at the end. */
export type ControlStreamHandler = (req: any, call: any) => Promise<void>;

/**
 * The Control methods that stream (`returns (stream ...)`): the manager owns what they stream
 * from (its event journal, the log broker), so they are handed in.
 */
export function controlStreams(streams: { events: ControlStreamHandler; serviceLogs: ControlStreamHandler }): Record<string, ControlStreamHandler> {
  return {
    Events: streams.events,
    SubscribeServiceLogs: streams.serviceLogs,
  };
}

/** Every Control method, by its proto name. */
export function controlHandlers(ctx: ControlContext, serviceLogs: ControlHandler): Record<string, ControlHandler> {
  return {
    CreateService: (r) => services.createService(ctx, r),
    UpdateService: (r) => services.updateService(ctx, r),
    RollbackService: (r) => services.rollbackService(ctx, r),
    ScaleService: (r) => services.scaleService(ctx, r),
    RemoveService: (r) => services.removeService(ctx, r),
    GetService: (r) => services.getService(ctx, r),
    ServiceLogs: serviceLogs,
    ListServices: () => services.listServices(ctx),
    ListTasks: (r) => listTasks(ctx, r),
    ListNodes: () => nodes.listNodes(ctx),
    GetNode: (r) => nodes.getNode(ctx, r),
    UpdateNode: (r) => nodes.updateNode(ctx, r),
    PromoteNode: (r) => nodes.promoteNode(ctx, r),
    DemoteNode: (r) => nodes.demoteNode(ctx, r),
    RemoveNode: (r) => nodes.removeNode(ctx, r),
    ClusterStatus: () => cluster.clusterStatus(ctx),
    GetJoinToken: (r) => cluster.getJoinToken(ctx, r),
    UpdateCluster: (r) => cluster.updateCluster(ctx, r),
    IssueAdminCertificate: (r) => cluster.issueAdminCertificate(ctx, r),
    GetUnlockKey: (r) => cluster.getUnlockKey(ctx, r),
    UnlockManager: () => cluster.unlockManager(),
    CreateNetwork: (r) => networks.createNetwork(ctx, r),
    GetNetwork: (r) => networks.getNetwork(ctx, r),
    ListNetworks: () => networks.listNetworks(ctx),
    RemoveNetwork: (r) => networks.removeNetwork(ctx, r),
    CreateSecret: (r) => files.createSecret(ctx, r),
    GetSecret: (r) => files.getSecret(ctx, r),
    ListSecrets: () => files.listSecrets(ctx),
    RemoveSecret: (r) => files.removeSecret(ctx, r),
    CreateConfig: (r) => files.createConfig(ctx, r),
    GetConfig: (r) => files.getConfig(ctx, r),
    ListConfigs: () => files.listConfigs(ctx),
    RemoveConfig: (r) => files.removeConfig(ctx, r),
    CreateUiLogin: () => createUiLogin(ctx),
  };
}
