// The Executor: what an agent needs from a container runtime, runtime-agnostic (SwarmKit's
// exec.Executor/Controller, flattened). The agent drives a task through
//   prepare(task) -> create(task) -> start(id) -> [events / inspect] -> stop(id, grace) -> remove(id)
// and reconciles after a restart with listOwned().
//
// Ownership: an executor belongs to one node. Every container it creates carries the node's id
// in the label `shoal.node.id`, and every method refuses (throws PERMISSION_DENIED) to touch a
// container that is not labelled with its own node id: several nodes may share one engine.
//
// Errors are ShoalErrors (from @shoal/api) with `details.reason` one of ExecutorErrorReason, so the
// agent can tell "the image is missing" from "the port is taken" from "Docker is down".

import { ShoalError, type ShoalErrorCode } from '@shoal/api';
import type { Task } from '@shoal/types';
import type { ContainerLogLine } from './docker-logs.js';

/** The container labels Shoal sets (a contract: see INTERFACE.md, "Containers"). */
export const LABELS = {
  serviceName: 'shoal.service.name',
  serviceId: 'shoal.service.id',
  taskId: 'shoal.task.id',
  taskSlot: 'shoal.task.slot',
  nodeId: 'shoal.node.id',
} as const;

/** The container name of a task: `SERVICE.SLOT.TASKID`, or `SERVICE.NODEID.TASKID` for a global service. */
export function containerName(task: Pick<Task, 'serviceName' | 'slot' | 'nodeId' | 'id' | 'spec'>): string {
  const place = task.spec.mode === 'global' ? task.nodeId : String(task.slot);
  return `${task.serviceName}.${place}.${task.id}`;
}

/** What `inspect` reports about a container. Times are ms since the epoch (0: never). */
export interface ContainerStatus {
  id: string;
  /** Without the leading '/'. */
  name: string;
  /** The runtime's state word: created, running, paused, restarting, removing, exited, dead. */
  state: string;
  running: boolean;
  /** Meaningful once the container has exited (0 before). */
  exitCode: number;
  /** The runtime's error message ('' if none), e.g. why a start failed. */
  error: string;
  oomKilled: boolean;
  startedAt: number;
  finishedAt: number;
  taskId: string;
  /** Host ports actually bound (host-mode publishing; hostPort resolved when 0 was asked). */
  ports: PublishedPort[];
  /** The container's address on its Docker network ('' when it has none, e.g. not running). */
  ip: string;
  /** Its health check's verdict ('' status: it has none). */
  health: ContainerHealth;
  /** The pid of its main process, in this node's view (0 when not running). */
  pid: number;
}

/** How a task's container is attached, beyond its spec (the node's overlay networks decide). */
export interface CreateOptions {
  /** DNS servers for its resolv.conf (the node's service DNS). */
  dns?: string[];
  /** 'none': no network but what the agent attaches (every network of the task is internal). */
  networkMode?: 'default' | 'none';
  /** Read-only bind mounts (HOST:CONTAINER:ro) of the task's secret and config files (task-files.ts). */
  binds?: string[];
}

export interface ContainerHealth {
  status: '' | 'starting' | 'healthy' | 'unhealthy';
  /** The last probe's output (its last line, cut), to say why it is unhealthy. */
  lastOutput: string;
}

export interface PublishedPort {
  protocol: 'tcp' | 'udp';
  targetPort: number;
  hostIp: string;
  hostPort: number;
}

/** A container this node owns, as `listOwned` reports it. */
export interface OwnedContainer {
  id: string;
  name: string;
  image: string;
  /** The runtime's state word (created, running, exited, ...). */
  state: string;
  /** The runtime's human status, e.g. "Up 3 seconds", "Exited (137) 2 seconds ago". */
  status: string;
  /** ms since the epoch. */
  createdAt: number;
  taskId: string;
  serviceId: string;
  serviceName: string;
  /** The `shoal.task.slot` label as a number (0 for global services). */
  slot: number;
  nodeId: string;
  labels: Record<string, string>;
}

export type ContainerAction = 'start' | 'die' | 'stop' | 'destroy' | 'oom';

/** A lifecycle event of one of this node's containers. */
export interface ContainerEvent {
  containerId: string;
  taskId: string;
  action: ContainerAction;
  /** Set on 'die' (the container's exit code); undefined otherwise. */
  exitCode?: number;
  /** ms since the epoch, as the runtime stamped it. */
  time: number;
}

export interface EventSubscription {
  /** Resolves once the first connection to the runtime's event stream is established. */
  readonly ready: Promise<void>;
  /** Stops the subscription (no more callbacks). Idempotent. */
  close(): void;
}

export interface EventOptions {
  /** Told about stream failures (the subscription reconnects by itself, resuming where it broke). */
  onError?: (err: Error) => void;
  /** Delay before reconnecting after a failure, doubling up to 5 s. Default 200 ms. */
  reconnectDelayMs?: number;
}

export interface EngineInfo {
  engineVersion: string;
  apiVersion: string;
  ncpu: number;
  memoryBytes: number;
  os: string;
  arch: string;
  hostname: string;
}

export interface PrepareOptions {
  /** Told how a pull progresses ("pulling R: 3 of 5 layers, 12.3 MB / 40.1 MB"), about once a second at most. */
  onProgress?: (message: string) => void;
  /** Aborts the wait (the task is no longer wanted): prepare rejects with the signal's reason. */
  signal?: AbortSignal;
  /** The service's registry credentials (Docker's AuthConfig JSON, `--with-registry-auth`) for the pull; never logged. */
  registryAuth?: string;
}

export interface PrepareResult {
  /** Set when something is worth telling (e.g. the pull failed and the local copy is used). */
  note?: string;
}

export interface Executor {
  /** The node this executor acts for. */
  readonly nodeId: string;
  /**
   * Makes sure the task's image is here, with Docker's rules: an image named by digest (or by
   * image id) that is present is used as it is; any other name is pulled (a tag may have moved).
   * A pull that fails while the image is present is no error: the local copy is used and the
   * result's `note` says so. A pull that fails while the image is absent throws, classified by
   * `details.reason`: 'image-not-found' (the registry has no such image or tag),
   * 'registry-unreachable', 'registry-unauthorized', or 'image-pull-failed' (anything else the
   * engine said), with `details.why` a few words for status lines. One attempt: retrying is the
   * caller's business.
   */
  prepare(task: Task, opts?: PrepareOptions): Promise<PrepareResult>;
  /** Creates (does not start) the task's container; returns its id. */
  create(task: Task, opts?: CreateOptions): Promise<string>;
  /** Starts a created container. A host port already taken fails with reason 'port-conflict'. */
  start(containerId: string): Promise<void>;
  /**
   * Stops a container: SIGTERM (its stop signal), then SIGKILL after graceMs (rounded up to whole
   * seconds, as Docker counts). A container that is already stopped or gone is fine.
   */
  stop(containerId: string, graceMs: number): Promise<void>;
  /** Removes a container (forcibly if running). A container that is already gone is fine. */
  remove(containerId: string): Promise<void>;
  /** The container's state. Throws NOT_FOUND (reason 'container-not-found') if it does not exist. */
  inspect(containerId: string): Promise<ContainerStatus>;
  /** Every container (running or not) labelled with this node's id. */
  listOwned(): Promise<OwnedContainer[]>;
  /**
   * A container's log lines, oldest first: the last `tail` (0: all), those after `since` (an
   * RFC 3339 time; '': all). Throws NOT_FOUND if the container does not exist.
   */
  logs(containerId: string, opts: { tail: number; since: string }): Promise<ContainerLogLine[]>;
  /** Lifecycle events of this node's containers only, from now on. Reconnects if the stream breaks. */
  events(onEvent: (e: ContainerEvent) => void, opts?: EventOptions): EventSubscription;
  /** Resolves if the runtime answers; throws UNAVAILABLE (reason 'runtime-unreachable') fast otherwise. */
  ping(): Promise<void>;
  /** The engine's description (throws UNAVAILABLE when unreachable). */
  info(): Promise<EngineInfo>;
  /** Ends event subscriptions and connections. */
  close(): Promise<void>;
}

// ------------------------------------------------------------------ errors

export type ExecutorErrorReason =
  | 'image-not-found'
  | 'registry-unreachable'
  | 'registry-unauthorized'
  | 'image-pull-failed'
  | 'port-conflict'
  | 'not-owned'
  | 'container-not-found'
  | 'runtime-unreachable'
  | 'invalid-spec'
  | 'runtime-error';

const CODE_OF_REASON: Record<ExecutorErrorReason, ShoalErrorCode> = {
  'image-not-found': 'NOT_FOUND',
  'registry-unreachable': 'UNAVAILABLE',
  'registry-unauthorized': 'PERMISSION_DENIED',
  'image-pull-failed': 'FAILED_PRECONDITION',
  'port-conflict': 'RESOURCE_EXHAUSTED',
  'not-owned': 'PERMISSION_DENIED',
  'container-not-found': 'NOT_FOUND',
  'runtime-unreachable': 'UNAVAILABLE',
  'invalid-spec': 'INVALID_ARGUMENT',
  'runtime-error': 'INTERNAL',
};

/** A ShoalError whose `details.reason` tells what went wrong. */
export function executorError(reason: ExecutorErrorReason, message: string, cause?: unknown, details: Record<string, string> = {}): ShoalError {
  return new ShoalError(CODE_OF_REASON[reason], message, { details: { ...details, reason }, cause });
}

/** The reason of an executor error ('runtime-error' for anything else). */
export function executorErrorReason(err: unknown): ExecutorErrorReason {
  if (ShoalError.is(err)) {
    const r = err.details['reason'];
    if (r !== undefined && r in CODE_OF_REASON) return r as ExecutorErrorReason;
  }
  return 'runtime-error';
}
