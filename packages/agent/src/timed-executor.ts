// An executor that times the calls made to it (the daemon's Docker call latency metric), by
// operation, and otherwise is the executor it wraps. Calls the wrapped executor makes to itself
// (a pull inside prepare) are part of the operation that made them, not timed on their own.

import type {
  ContainerEvent,
  ContainerStatus,
  CreateOptions,
  EngineInfo,
  EventOptions,
  EventSubscription,
  Executor,
  OwnedContainer,
  PrepareOptions,
  PrepareResult,
} from './executor.js';
import type { ContainerLogLine } from './docker-logs.js';
import type { Task } from '@shoal/types';

/** What the agent tells metrics as it happens (the rest is read from its state at scrape time). */
export interface AgentMetrics {
  /** A call to the container engine ended after `seconds`; `ok`: it did not throw. */
  dockerCall(operation: string, seconds: number, ok: boolean): void;
}

export class TimedExecutor implements Executor {
  readonly nodeId: string;

  constructor(
    private readonly inner: Executor,
    private readonly metrics: AgentMetrics,
  ) {
    this.nodeId = inner.nodeId;
  }

  private timed<T>(operation: string, call: () => Promise<T>): Promise<T> {
    const t0 = performance.now();
    const p = call();
    const tell = (ok: boolean) => this.metrics.dockerCall(operation, (performance.now() - t0) / 1000, ok);
    p.then(
      () => tell(true),
      () => tell(false),
    );
    return p;
  }

  prepare(task: Task, opts?: PrepareOptions): Promise<PrepareResult> {
    return this.timed('prepare', () => this.inner.prepare(task, opts));
  }
  create(task: Task, opts?: CreateOptions): Promise<string> {
    return this.timed('create', () => this.inner.create(task, opts));
  }
  start(containerId: string): Promise<void> {
    return this.timed('start', () => this.inner.start(containerId));
  }
  stop(containerId: string, graceMs: number): Promise<void> {
    return this.timed('stop', () => this.inner.stop(containerId, graceMs));
  }
  remove(containerId: string): Promise<void> {
    return this.timed('remove', () => this.inner.remove(containerId));
  }
  inspect(containerId: string): Promise<ContainerStatus> {
    return this.timed('inspect', () => this.inner.inspect(containerId));
  }
  listOwned(): Promise<OwnedContainer[]> {
    return this.timed('list', () => this.inner.listOwned());
  }
  logs(containerId: string, opts: { tail: number; since: string }): Promise<ContainerLogLine[]> {
    return this.timed('logs', () => this.inner.logs(containerId, opts));
  }
  events(onEvent: (e: ContainerEvent) => void, opts?: EventOptions): EventSubscription {
    return this.inner.events(onEvent, opts);
  }
  ping(): Promise<void> {
    return this.timed('ping', () => this.inner.ping());
  }
  info(): Promise<EngineInfo> {
    return this.timed('info', () => this.inner.info());
  }
  close(): Promise<void> {
    return this.inner.close();
  }
}
