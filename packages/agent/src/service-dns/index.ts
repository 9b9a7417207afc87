// The per-node service DNS of the overlay networks (Docker Swarm's embedded DNS): a name table
// built from the cluster's state, and the server that answers task containers from it.

export { NameTable, type DnsClient, type DnsNetwork, type DnsService, type DnsTask } from './name-table.js';
export { ServiceDns, type ServiceDnsOptions } from './server.js';
export { CLUSTER_TTL } from './answer.js';
export { UPSTREAM_TIMEOUT_MS } from './forward.js';
export { parseResolvConf, parseUpstream, type Upstream } from './upstreams.js';
