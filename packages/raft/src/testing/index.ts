export * from './process-cluster.js';
export * from './kv.js';
export type { NodeRequest, NodeEvent } from './node-process.js';
