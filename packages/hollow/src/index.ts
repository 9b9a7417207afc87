export { HollowExecutor } from './hollow-executor.js';
export type { HollowCounts, HollowExecutorOptions } from './hollow-executor.js';
export { HollowNode } from './hollow-node.js';
export type { HollowNodeOptions, HollowNodeState } from './hollow-node.js';
export { HollowFleet, addFleetState, emptyFleetState } from './fleet.js';
export type { FleetOptions, FleetState } from './fleet.js';

/** The script a benchmark forks for one process of hollow nodes (fleet-process.ts). */
export const FLEET_PROCESS = new URL('./fleet-process.js', import.meta.url).pathname;
