export { Mesh } from './mesh.js';
export { NODE_SERVER_NAME } from './mesh-tls.js';
export type {
  Backend,
  PublishedPort,
  MeshTable,
  MeshOptions,
  MeshTls,
  MeshStats,
  PortStats,
  BackendStats,
  ForwarderStats,
} from './types.js';
export { encodeProxyV2, parseProxyV2, PROXY_V2_SIGNATURE } from './proxy-protocol.js';
export type { ProxyEndpoints, ProxyV2Header } from './proxy-protocol.js';
export {
  FORWARD_MAGIC,
  FORWARD_ACK,
  FORWARD_HEADER_MAX,
  encodeForwardHeader,
  parseForwardHeader,
  isValidTaskId,
  encodeForwardH2,
  parseForwardH2,
  H2_HEADER_PROXY,
  H2_HEADER_CLIENT,
  H2_HEADER_DST,
  H2_HEADER_ERROR,
} from './forward-header.js';
export type { ForwardRequest } from './forward-header.js';
export { parseHostPort, formatHostPort } from './addr.js';
export type { HostPort } from './addr.js';
export {
  KernelRoutes,
  kernelChains,
  planKernelRoutes,
  kernelRulesText,
  kernelSetupText,
  findRemoval,
  removalText,
  splitRule,
  inSubnet,
  execRunner,
} from './kernel-routes.js';
export type { KernelRoutesOptions, KernelPort, KernelIngress, KernelChains, CommandRunner, Removal } from './kernel-routes.js';
