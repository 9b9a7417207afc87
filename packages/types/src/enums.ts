// The enumerations of the cluster's objects. They travel as lower-case strings (proto/types.proto
// declares them `string`); each list here is the one set of allowed values: the types are derived
// from it, the store's shape check and the spec rules check against it, the CLI lists it in help.

export const OBJECT_KINDS = ['cluster', 'node', 'service', 'task', 'network', 'secret', 'config'] as const;
export type ObjectKind = (typeof OBJECT_KINDS)[number];

export const NODE_ROLES = ['manager', 'worker'] as const;
export type NodeRole = (typeof NODE_ROLES)[number];

export const NODE_AVAILABILITIES = ['active', 'pause', 'drain'] as const;
export type NodeAvailability = (typeof NODE_AVAILABILITIES)[number];

export const NODE_STATES = ['unknown', 'down', 'ready', 'disconnected'] as const;
export type NodeState = (typeof NODE_STATES)[number];

export const PUBLISH_MODES = ['ingress', 'host'] as const;
export type PublishMode = (typeof PUBLISH_MODES)[number];

export const PROTOCOLS = ['tcp', 'udp'] as const;
export type Protocol = (typeof PROTOCOLS)[number];

/** In Docker's order of `--restart-condition` (the default first). */
export const RESTART_CONDITIONS = ['any', 'on-failure', 'none'] as const;
export type RestartCondition = (typeof RESTART_CONDITIONS)[number];

/** A rollback's failure action is one of these but `rollback`. */
export const UPDATE_FAILURE_ACTIONS = ['pause', 'continue', 'rollback'] as const;
export type UpdateFailureAction = (typeof UPDATE_FAILURE_ACTIONS)[number];

export const UPDATE_ORDERS = ['stop-first', 'start-first'] as const;
export type UpdateOrder = (typeof UPDATE_ORDERS)[number];

/** Where a rolling update (or its rollback) stands, as `docker service inspect`'s UpdateStatus. */
export const UPDATE_STATES = ['updating', 'paused', 'completed', 'rollback_started', 'rollback_paused', 'rollback_completed'] as const;
export type UpdateState = (typeof UPDATE_STATES)[number];

/** The job modes (Swarm's jobs) run their tasks to completion once per iteration instead of keeping them up. */
export const SERVICE_MODES = ['replicated', 'global', 'replicated-job', 'global-job'] as const;
export type ServiceMode = (typeof SERVICE_MODES)[number];

/** A job's tasks run to completion (replicated-job, global-job). */
export const isJobMode = (m: ServiceMode): boolean => m === 'replicated-job' || m === 'global-job';
/** One task per eligible node (global, global-job): its place is its node, its slot 0. */
export const isPerNodeMode = (m: ServiceMode): boolean => m === 'global' || m === 'global-job';

/** Swarm's task states, in order: a task's observed state only ever moves forward. */
export const TASK_STATES = [
  'new',
  'pending',
  'assigned',
  'accepted',
  'preparing',
  'starting',
  'running',
  'complete',
  'shutdown',
  'failed',
  'rejected',
  'remove',
  'orphaned',
] as const;
export type TaskState = (typeof TASK_STATES)[number];

export const taskStateRank = (s: TaskState): number => TASK_STATES.indexOf(s);
/** States from which a task never runs again. */
export const isTerminal = (s: TaskState): boolean => taskStateRank(s) > taskStateRank('running');

export const ENDPOINT_MODES = ['vip', 'dnsrr'] as const;
export type EndpointMode = (typeof ENDPOINT_MODES)[number];

export const NETWORK_DRIVERS = ['overlay'] as const;
export type NetworkDriver = (typeof NETWORK_DRIVERS)[number];

/** A container mount's kind (`--mount type=...`). */
export const MOUNT_TYPES = ['volume', 'bind', 'tmpfs'] as const;
export type MountType = (typeof MOUNT_TYPES)[number];
