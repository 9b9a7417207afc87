// An executor that runs no container: each task's "container" is a record in memory that the
// agent's runner drives through the very calls it makes on Docker (prepare, create, start, stop,
// remove, inspect, events), each taking a few ms. With it the real agent code can stand for a
// host at a fraction of a host's cost, so that thousands of nodes fit on one machine (kubemark's
// hollow kubelet). It keeps counts of what it did: a benchmark asks them, e.g. "no container was
// started during the failover".

import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import type { Task } from '@shoal/types';
import {
  type ContainerEvent,
  type ContainerStatus,
  type EngineInfo,
  type EventSubscription,
  type Executor,
  type OwnedContainer,
  type PrepareResult,
  LABELS,
  containerName,
  executorError,
} from '@shoal/agent';

export interface HollowExecutorOptions {
  nodeId: string;
  hostname: string;
  /** How long each runtime call takes (ms): a pull, a create, a start. Default 2. */
  stepMs?: number;
}

interface HollowContainer {
  id: string;
  name: string;
  task: Task;
  state: 'created' | 'running' | 'exited';
  exitCode: number;
  createdAt: number;
  startedAt: number;
  finishedAt: number;
}

/** What a hollow node's executor has done since it was made. */
export interface HollowCounts {
  created: number;
  started: number;
  stopped: number;
  removed: number;
  /** Containers that exist now, and those of them running. */
  containers: number;
  running: number;
}

/** The engine version a hollow node reports (its executor and its session say the same). */
export const HOLLOW_ENGINE_VERSION = 'hollow';

/** The exit code of a container stopped by a signal it did not handle (SIGKILL), as Docker reports it. */
const KILLED = 137;

export class HollowExecutor implements Executor {
  readonly nodeId: string;
  private readonly hostname: string;
  private readonly stepMs: number;
  private readonly containers = new Map<string, HollowContainer>();
  private readonly listeners = new Set<(e: ContainerEvent) => void>();
  private readonly counts = { created: 0, started: 0, stopped: 0, removed: 0 };

  constructor(opts: HollowExecutorOptions) {
    this.nodeId = opts.nodeId;
    this.hostname = opts.hostname;
    this.stepMs = opts.stepMs ?? 2;
  }

  stats(): HollowCounts {
    let running = 0;
    for (const c of this.containers.values()) if (c.state === 'running') running++;
    return { ...this.counts, containers: this.containers.size, running };
  }

  private step(): Promise<void> {
    return this.stepMs > 0 ? delay(this.stepMs) : Promise.resolve();
  }

  private get(containerId: string): HollowContainer {
    const c = this.containers.get(containerId);
    if (!c) throw executorError('container-not-found', `no such container: ${containerId}`);
    return c;
  }

  private emit(c: HollowContainer, action: ContainerEvent['action'], exitCode?: number): void {
    const e: ContainerEvent = { containerId: c.id, taskId: c.task.id, action, time: Date.now(), ...(exitCode === undefined ? {} : { exitCode }) };
    // Docker delivers events after the call that caused them has returned.
    queueMicrotask(() => {
      for (const l of this.listeners) l(e);
    });
  }

  async prepare(_task: Task, opts?: { signal?: AbortSignal }): Promise<PrepareResult> {
    opts?.signal?.throwIfAborted();
    await this.step();
    return {};
  }

  async create(task: Task): Promise<string> {
    await this.step();
    const id = randomBytes(32).toString('hex');
    this.containers.set(id, { id, name: containerName(task), task, state: 'created', exitCode: 0, createdAt: Date.now(), startedAt: 0, finishedAt: 0 });
    this.counts.created++;
    return id;
  }

  async start(containerId: string): Promise<void> {
    await this.step();
    const c = this.get(containerId);
    if (c.state === 'running') return;
    c.state = 'running';
    c.startedAt = Date.now();
    this.counts.started++;
    this.emit(c, 'start');
  }

  async stop(containerId: string, _graceMs?: number): Promise<void> {
    const c = this.containers.get(containerId);
    if (!c || c.state !== 'running') return;
    await this.step();
    this.halt(c, KILLED);
    this.counts.stopped++;
    this.emit(c, 'stop');
  }

  private halt(c: HollowContainer, exitCode: number): void {
    c.state = 'exited';
    c.exitCode = exitCode;
    c.finishedAt = Date.now();
    this.emit(c, 'die', exitCode);
  }

  async remove(containerId: string): Promise<void> {
    const c = this.containers.get(containerId);
    if (!c) return;
    if (c.state === 'running') this.halt(c, KILLED);
    this.containers.delete(containerId);
    this.counts.removed++;
    this.emit(c, 'destroy');
  }

  async inspect(containerId: string): Promise<ContainerStatus> {
    const c = this.get(containerId);
    return {
      id: c.id,
      name: c.name,
      state: c.state,
      running: c.state === 'running',
      exitCode: c.exitCode,
      error: '',
      oomKilled: false,
      startedAt: c.startedAt,
      finishedAt: c.finishedAt,
      taskId: c.task.id,
      ports: [],
      ip: '',
      health: { status: '', lastOutput: '' },
      pid: 0,
    };
  }

  async listOwned(): Promise<OwnedContainer[]> {
    return [...this.containers.values()].map((c) => ({
      id: c.id,
      name: c.name,
      image: c.task.spec.image,
      state: c.state,
      status: c.state === 'running' ? 'Up' : c.state === 'exited' ? `Exited (${c.exitCode})` : 'Created',
      createdAt: c.createdAt,
      taskId: c.task.id,
      serviceId: c.task.serviceId,
      serviceName: c.task.serviceName,
      slot: c.task.slot,
      nodeId: this.nodeId,
      labels: { [LABELS.nodeId]: this.nodeId, [LABELS.taskId]: c.task.id, [LABELS.serviceId]: c.task.serviceId, [LABELS.serviceName]: c.task.serviceName, [LABELS.taskSlot]: String(c.task.slot) },
    }));
  }

  /** A hollow container writes nothing: its log is empty, as a silent process's is. */
  async logs(containerId: string): Promise<[]> {
    this.get(containerId);
    return [];
  }

  events(onEvent: (e: ContainerEvent) => void): EventSubscription {
    this.listeners.add(onEvent);
    return { ready: Promise.resolve(), close: () => this.listeners.delete(onEvent) };
  }

  async ping(): Promise<void> {}

  async info(): Promise<EngineInfo> {
    return { engineVersion: HOLLOW_ENGINE_VERSION, apiVersion: HOLLOW_ENGINE_VERSION, ncpu: 2, memoryBytes: 2 ** 31, os: 'linux', arch: 'amd64', hostname: this.hostname };
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }
}
