// The Executor on a Docker engine, through dockerode.
//
// Containers: named SERVICE.SLOT.TASKID (global services: SERVICE.NODEID.TASKID), labelled with
// shoal.service.name / shoal.service.id / shoal.task.id / shoal.task.slot / shoal.node.id.
// No Docker restart policy: restarting is the orchestrator's job. Only host-mode ports are bound
// on the host (on `publishIp`, so several nodes sharing one machine each bind their own loopback
// address); ingress ports are served by the routing mesh and are not bound here.
// Command: `command + args` become the container's Cmd (the image's entrypoint is kept, as with
// `docker run IMAGE COMMAND ARGS`); with no command, `args` (if any) are the Cmd.

import http from 'node:http';
import https from 'node:https';
import { inspect } from 'node:util';
import Docker from 'dockerode';
import { Backoff, NOOP_LOGGER, ShoalError, logTimeKey, logTimeToUnix, type Logger } from '@shoal/api';
import { type Task, isPinnedImageRef, withDefaultTag } from '@shoal/types';
import { type DockerClientEnv, dockerClientEnv, dockerEndpoint } from './docker-endpoint.js';
import { type ContainerLogLine, parseDockerLogs } from './docker-logs.js';
import { engineAuthConfig } from './registry-auth.js';
import {
  LABELS,
  containerName,
  executorError,
  executorErrorReason,
  type ContainerAction,
  type ContainerEvent,
  type ContainerHealth,
  type ContainerStatus,
  type CreateOptions,
  type EngineInfo,
  type EventOptions,
  type EventSubscription,
  type Executor,
  type ExecutorErrorReason,
  type OwnedContainer,
  type PrepareOptions,
  type PrepareResult,
  type PublishedPort,
} from './executor.js';
import { PullProgress, type PullProgressLine, classifyPullError } from './image-pull.js';

export interface DockerExecutorOptions {
  /** The node this executor acts for: its containers carry `shoal.node.id=<nodeId>`. */
  nodeId: string;
  /**
   * The engine's address, as docker's DOCKER_HOST: `unix:///var/run/docker.sock` (or a bare
   * socket path), `tcp://host:port`, `ssh://user@host`, `http(s)://...`. Default: DOCKER_HOST,
   * else the local socket.
   */
  dockerHost?: string;
  /** TLS and ssh settings (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH, SSH_AUTH_SOCK). Default: from the environment. */
  dockerEnv?: DockerClientEnv;
  /** The host IP host-mode ports are bound on (e.g. this node's 127.0.0.N). Default: all interfaces. */
  publishIp?: string;
  logger?: Logger;
  /** ping() gives up after this long. Default 3000 ms. */
  pingTimeoutMs?: number;
  /** Any other single call (except stop, which adds its grace period) gives up after this long. Default 60 s. */
  requestTimeoutMs?: number;
  /** A pull that makes no progress for this long is abandoned. Default 60 s. */
  pullStallTimeoutMs?: number;
  /** A pull's progress is told at most this often. Default 1000 ms. */
  progressIntervalMs?: number;
}

interface SharedPull {
  done: Promise<void>;
  /** Ends the pull (when nobody waits for it any more). */
  ac: AbortController;
  /** The progress callbacks of the tasks waiting for it. */
  listeners: Set<(message: string) => void>;
  waiters: number;
}

/** `p`, or the signal's reason as soon as it aborts. */
function untilAborted<T>(p: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * How long an image pulled (or, named by digest, found present) is taken to be current: tasks
 * of one image that start on this node within it (a service's replicas, a crash loop's
 * restarts) do not ask the registry again. Short on purpose: Docker pulls every tag on every
 * task, because a tag may move; a tag pushed again within these seconds of a pull is a race even
 * there, while anything later is pulled. A failed pull is not remembered (its retry asks again),
 * and a create that misses the image forgets it.
 */
const IMAGE_CURRENT_MS = 10_000;
const CONTAINER_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const EVENT_ACTIONS: readonly ContainerAction[] = ['start', 'die', 'stop', 'destroy', 'oom'];
const NETWORK_ERROR_CODES = new Set([
  'ENOENT',
  'ECONNREFUSED',
  'ECONNRESET',
  'EACCES',
  'EPERM',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'ENOTSOCK',
  'UND_ERR_SOCKET',
]);

interface DockerApiError extends Error {
  statusCode?: number;
  code?: string;
  json?: unknown;
}

/** The engine's own message of a dockerode error (without dockerode's "(HTTP code N) ..." wrapping). */
function dockerMessage(err: unknown): string {
  const e = err as DockerApiError;
  const j = e?.json as { message?: unknown } | Buffer | string | undefined;
  if (j && typeof j === 'object' && !Buffer.isBuffer(j) && typeof j.message === 'string') return j.message.trim();
  if (Buffer.isBuffer(j) && j.length > 0) return j.toString('utf8').trim();
  if (typeof j === 'string' && j !== '') return j.trim();
  // dockerode wraps the engine's message as "(HTTP code 500) server error - MESSAGE ".
  return (e?.message ?? String(err)).replace(/^\(HTTP code \d+\) .*? - /, '').trim();
}

/** Calls a dockerode method that takes `{abortSignal}` (missing from its typings). */
function withSignal<T>(self: Docker, fn: unknown, abortSignal: AbortSignal): Promise<T> {
  return (fn as (opts: { abortSignal: AbortSignal }) => Promise<T>).call(self, { abortSignal });
}

const statusOf = (err: unknown): number | undefined => (err as DockerApiError)?.statusCode;

function msTime(s: string | undefined): number {
  if (!s) return 0;
  const t = Date.parse(s);
  return Number.isFinite(t) && t > 0 ? t : 0;
}

/** A host port conflict, from the engine's start error, as "IP:PORT" (or '' if it is not one). */
function portConflict(msg: string): string | undefined {
  let m = /Bind for (\S+?) failed: port is already allocated/.exec(msg);
  if (m) return m[1];
  m = /listen (?:tcp|udp)[46]? (\S+?): bind: address already in use/.exec(msg);
  if (m) return m[1];
  if (/port is already allocated|address already in use/.test(msg)) return '';
  return undefined;
}

export class DockerExecutor implements Executor {
  readonly nodeId: string;
  readonly publishIp: string;
  readonly dockerHost: string;
  private readonly docker: Docker;
  private readonly agent: http.Agent;
  private readonly log: Logger;
  private readonly pingTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly pullStallTimeoutMs: number;
  private readonly progressIntervalMs: number;
  private readonly subscriptions = new Set<EventSubscription>();
  private closed = false;
  /** Images known current, and since when (see IMAGE_CURRENT_MS). */
  private readonly imagesCurrent = new Map<string, number>();
  /** Pulls under way, by reference. */
  private readonly pulls = new Map<string, SharedPull>();
  /** Containers this executor created and has not started yet (id → name): known to be ours. */
  private readonly createdHere = new Map<string, string>();

  constructor(opts: DockerExecutorOptions) {
    if (!opts.nodeId) throw executorError('invalid-spec', 'DockerExecutor needs a nodeId');
    this.nodeId = opts.nodeId;
    this.publishIp = opts.publishIp ?? '';
    this.log = opts.logger ?? NOOP_LOGGER;
    this.pingTimeoutMs = opts.pingTimeoutMs ?? 3000;
    this.requestTimeoutMs = opts.requestTimeoutMs ?? 60_000;
    this.pullStallTimeoutMs = opts.pullStallTimeoutMs ?? 60_000;
    this.progressIntervalMs = opts.progressIntervalMs ?? 1000;
    const ep = dockerEndpoint(opts.dockerHost ?? process.env['DOCKER_HOST'] ?? '', opts.dockerEnv ?? dockerClientEnv(process.env));
    this.dockerHost = ep.display;
    // Our own agent, so that close() ends the kept-alive connections (ssh makes its own per call).
    this.agent = ep.tls ? new https.Agent({ keepAlive: true }) : new http.Agent({ keepAlive: true });
    // docker-modem formats every request's options with util.inspect(showHidden, depth: null)
    // for its debug log, even when that log is off; through a keep-alive agent that walks every
    // pooled socket, several ms of CPU per Docker call. The agent describes itself in one word.
    Object.defineProperty(this.agent, inspect.custom, { value: () => '[docker http.Agent]' });
    try {
      this.docker = new Docker({ ...ep.modem, agent: this.agent } as Docker.DockerOptions);
    } catch (err) {
      // docker-modem parses the environment's DOCKER_HOST (and reads DOCKER_CERT_PATH for it) even when given an address.
      throw executorError('invalid-spec', `the Docker client cannot start: ${(err as Error).message} (check DOCKER_HOST and DOCKER_CERT_PATH)`, err);
    }
  }

  // ---------------------------------------------------------------- errors

  /** Maps a failure of a Docker call to an executor error, saying what we were doing. */
  private fail(err: unknown, doing: string, notFound: ExecutorErrorReason = 'container-not-found'): Error {
    if (ShoalError.is(err)) return err;
    const e = err as DockerApiError;
    if (e?.name === 'AbortError' || e?.name === 'TimeoutError' || e?.code === 'ABORT_ERR') {
      return executorError('runtime-unreachable', `${doing}: Docker at ${this.dockerHost} did not answer in time`, err);
    }
    if (e?.code && NETWORK_ERROR_CODES.has(e.code)) {
      const why =
        e.code === 'ENOENT'
          ? 'no such socket (is dockerd running? run scripts/ensure-docker.sh)'
          : e.code === 'EACCES' || e.code === 'EPERM'
            ? 'permission denied on the socket'
            : e.code === 'ECONNREFUSED'
              ? 'connection refused (is dockerd running?)'
              : e.code;
      return executorError('runtime-unreachable', `${doing}: cannot reach Docker at ${this.dockerHost}: ${why}`, err);
    }
    const msg = dockerMessage(err);
    if (statusOf(err) === 404) return executorError(notFound, `${doing}: ${msg}`, err);
    return executorError('runtime-error', `${doing}: ${msg}`, err);
  }

  /** `p`, or an AbortError after requestTimeoutMs (for dockerode calls that take no abortSignal). */
  private bounded<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new DOMException('timed out', 'TimeoutError')), this.requestTimeoutMs);
    });
    return Promise.race([p, limit]).finally(() => clearTimeout(timer));
  }

  private timeout(extraMs = 0): AbortSignal {
    return AbortSignal.timeout(this.requestTimeoutMs + extraMs);
  }

  /**
   * Inspects a container and checks it is this node's. Returns undefined if it does not exist
   * (when `missingOk`), throws NOT_FOUND otherwise; throws PERMISSION_DENIED if it is not ours.
   */
  private async owned(containerId: string, doing: string, missingOk: true): Promise<Docker.ContainerInspectInfo | undefined>;
  private async owned(containerId: string, doing: string, missingOk?: false): Promise<Docker.ContainerInspectInfo>;
  private async owned(containerId: string, doing: string, missingOk = false): Promise<Docker.ContainerInspectInfo | undefined> {
    if (!containerId) throw executorError('invalid-spec', `${doing}: no container id given`);
    let info: Docker.ContainerInspectInfo;
    try {
      info = await this.docker.getContainer(containerId).inspect({ abortSignal: this.timeout() });
    } catch (err) {
      if (missingOk && statusOf(err) === 404) return undefined;
      throw this.fail(err, doing);
    }
    const label = info.Config?.Labels?.[LABELS.nodeId];
    if (label !== this.nodeId) {
      const whose = label === undefined ? `it has no ${LABELS.nodeId} label` : `it belongs to node ${label}`;
      throw executorError(
        'not-owned',
        `${doing}: refusing to touch container ${info.Name.replace(/^\//, '') || containerId}: ${whose}, not to this node (${this.nodeId})`,
      );
    }
    return info;
  }

  // ---------------------------------------------------------------- images

  async prepare(task: Task, opts: PrepareOptions = {}): Promise<PrepareResult> {
    const image = task.spec?.image;
    if (!image) throw executorError('invalid-spec', `task ${task.id}: no image`);
    const ref = withDefaultTag(image);
    if (Date.now() - (this.imagesCurrent.get(ref) ?? -Infinity) < IMAGE_CURRENT_MS) return {};
    const pinned = isPinnedImageRef(ref);
    if (pinned && (await this.imagePresent(ref))) {
      // A digest names one image for ever: the copy here is the one asked for.
      this.imagesCurrent.set(ref, Date.now());
      return {};
    }
    if (/^sha256:/.test(ref)) throw executorError('image-not-found', `image ${ref} not found locally (an image id cannot be pulled)`);
    this.log.info({ image: ref, task: task.id }, 'pulling image');
    try {
      await this.sharedPull(ref, opts);
    } catch (err) {
      if (opts.signal?.aborted) throw err;
      const code = (err as DockerApiError)?.code;
      if (code && NETWORK_ERROR_CODES.has(code)) throw this.fail(err, `pulling ${ref}`); // Docker itself is down
      // (one line: it becomes the task's error, a cell of `service ps`)
      const msg = dockerMessage(err).replace(/\s*\n\s*/g, ' ');
      const failure = classifyPullError(msg);
      const why = failure.why === msg ? msg : `${failure.why}: ${msg}`;
      if (await this.imagePresent(ref)) {
        // As Docker does: a registry that is down (or a tag that is gone) does not stop a task
        // whose image is here; the task's status says which copy it runs.
        this.log.warn({ image: ref, task: task.id, err: msg }, 'pull failed: using the local copy');
        return { note: `pull of ${ref} failed (${why}): using the local copy` };
      }
      throw executorError(failure.reason, `image ${ref} not found locally and cannot be pulled: ${why}`, err, { why: failure.why });
    }
    if (!(await this.imagePresent(ref))) {
      throw executorError('image-pull-failed', `image ${ref} not found locally after its pull`, undefined, { why: 'the pull ended without the image' });
    }
    this.imagesCurrent.set(ref, Date.now());
    return {};
  }

  /** Whether the engine has `ref` (throws when it cannot say). */
  private async imagePresent(ref: string): Promise<boolean> {
    try {
      await this.bounded(this.docker.getImage(ref).inspect());
      return true;
    } catch (err) {
      if (statusOf(err) === 404) return false;
      throw this.fail(err, `inspecting image ${ref}`);
    }
  }

  /**
   * Waits for a pull of `ref`, joining one under way (the replicas of a service starting on this
   * node wait for one pull, each told its progress). A task that stops waiting (its signal) leaves
   * the pull to the others; the last one to leave ends it.
   */
  private async sharedPull(ref: string, opts: PrepareOptions): Promise<void> {
    // One pull per image and credentials: a service's login is never used for another's pull.
    const key = `${ref}\0${opts.registryAuth ?? ''}`;
    let shared = this.pulls.get(key);
    if (!shared) {
      const ac = new AbortController();
      const listeners = new Set<(message: string) => void>();
      const done = this.pull(ref, { signal: ac.signal, onProgress: (m) => listeners.forEach((l) => l(m)), registryAuth: opts.registryAuth });
      const entry: SharedPull = { ac, listeners, waiters: 0, done };
      this.pulls.set(key, entry);
      void done.catch(() => undefined).finally(() => this.pulls.get(key) === entry && this.pulls.delete(key));
      shared = entry;
    }
    const s = shared;
    s.waiters++;
    if (opts.onProgress) s.listeners.add(opts.onProgress);
    try {
      await untilAborted(s.done, opts.signal);
    } finally {
      s.waiters--;
      if (opts.onProgress) s.listeners.delete(opts.onProgress);
      if (s.waiters === 0 && this.pulls.get(key) === s) {
        this.pulls.delete(key);
        s.ac.abort();
      }
    }
  }

  /**
   * Pulls `ref`, failing on an error message in the progress stream or when progress stalls,
   * telling `onProgress` how far it got at most once per progressIntervalMs, with the service's
   * registry credentials if it has some.
   */
  private async pull(ref: string, opts: { signal: AbortSignal; onProgress: (message: string) => void; registryAuth?: string }): Promise<void> {
    const ac = new AbortController();
    const onAbort = () => ac.abort();
    opts.signal.addEventListener('abort', onAbort, { once: true });
    let timer: NodeJS.Timeout | undefined;
    let stalled = false;
    const arm = (): void => {
      clearTimeout(timer);
      timer = setTimeout(() => {
        stalled = true;
        ac.abort();
      }, this.pullStallTimeoutMs);
    };
    arm();
    const progress = new PullProgress(ref);
    let toldAt = -Infinity;
    try {
      // dockerode sends authconfig as the X-Registry-Auth header (never in the URL).
      const auth = opts.registryAuth ? { authconfig: engineAuthConfig(opts.registryAuth) } : {};
      const stream = (await this.docker.createImage({ fromImage: ref, abortSignal: ac.signal, ...auth })) as NodeJS.ReadableStream;
      await new Promise<void>((resolve, reject) => {
        let buf = '';
        let failure: string | undefined;
        stream.on('data', (chunk: Buffer | string) => {
          arm();
          buf += chunk.toString();
          let nl: number;
          while ((nl = buf.indexOf('\n')) >= 0) {
            const line = buf.slice(0, nl).trim();
            buf = buf.slice(nl + 1);
            if (!line) continue;
            let msg: PullProgressLine;
            try {
              msg = JSON.parse(line) as PullProgressLine;
            } catch {
              continue; // not JSON: ignore
            }
            if (msg.error || msg.errorDetail?.message) failure ??= msg.errorDetail?.message ?? msg.error;
            progress.add(msg);
          }
          if (Date.now() - toldAt >= this.progressIntervalMs) {
            toldAt = Date.now();
            opts.onProgress(progress.text());
          }
        });
        stream.on('end', () => (failure ? reject(new Error(failure)) : resolve()));
        stream.on('error', reject);
      });
    } catch (err) {
      if (stalled) throw new Error(`the pull stalled (no progress for ${this.pullStallTimeoutMs} ms)`);
      throw err;
    } finally {
      clearTimeout(timer);
      opts.signal.removeEventListener('abort', onAbort);
    }
  }

  // ---------------------------------------------------------------- containers

  async create(task: Task, attach: CreateOptions = {}): Promise<string> {
    const spec = task.spec;
    if (!spec) throw executorError('invalid-spec', `task ${task.id}: no spec`);
    const name = containerName(task);
    if (!CONTAINER_NAME_RE.test(name)) {
      throw executorError('invalid-spec', `task ${task.id}: "${name}" is not a valid container name`);
    }
    if (task.nodeId && task.nodeId !== this.nodeId) {
      throw executorError('not-owned', `task ${task.id} is assigned to node ${task.nodeId}, not to this node (${this.nodeId})`);
    }
    const labels: Record<string, string> = {
      [LABELS.serviceName]: task.serviceName,
      [LABELS.serviceId]: task.serviceId,
      [LABELS.taskId]: task.id,
      [LABELS.taskSlot]: String(task.slot),
      [LABELS.nodeId]: this.nodeId,
    };
    const cmd = [...(spec.command ?? []), ...(spec.args ?? [])];
    const exposed: Record<string, object> = {};
    const bindings: Record<string, Array<{ HostIp: string; HostPort: string }>> = {};
    for (const p of spec.ports ?? []) {
      const key = `${p.targetPort}/${p.protocol || 'tcp'}`;
      exposed[key] = {};
      if (p.publishMode !== 'host') continue; // ingress: the routing mesh serves it
      (bindings[key] ??= []).push({ HostIp: this.publishIp, HostPort: p.publishedPort ? String(p.publishedPort) : '' });
    }
    const ref = withDefaultTag(spec.image);
    const opts: Docker.ContainerCreateOptions = {
      name,
      Image: ref,
      Env: [...(spec.env ?? [])],
      ...(spec.workdir ? { WorkingDir: spec.workdir } : {}),
      Labels: labels,
      ExposedPorts: exposed,
      // Docker counts in nanoseconds; 0 keeps its defaults.
      ...(spec.healthcheck
        ? {
            Healthcheck: {
              Test: spec.healthcheck.test,
              Interval: spec.healthcheck.intervalMs * 1e6,
              Timeout: spec.healthcheck.timeoutMs * 1e6,
              Retries: spec.healthcheck.retries,
              StartPeriod: spec.healthcheck.startPeriodMs * 1e6,
            },
          }
        : {}),
      HostConfig: {
        PortBindings: bindings,
        RestartPolicy: { Name: 'no' },
        // 0: no limit (Docker's own meaning too).
        NanoCpus: task.spec.resources?.limits.nanoCpus ?? 0,
        Memory: task.spec.resources?.limits.memoryBytes ?? 0,
        MemoryReservation: task.spec.resources?.reservations.memoryBytes ?? 0,
        ...(attach.dns ? { Dns: attach.dns } : {}),
        ...(attach.networkMode === 'none' ? { NetworkMode: 'none' } : {}),
        ...(attach.binds?.length ? { Binds: attach.binds } : {}),
      },
    };
    if (cmd.length > 0) opts.Cmd = cmd;
    try {
      const c = await this.docker.createContainer({ ...opts, abortSignal: this.timeout() } as Docker.ContainerCreateOptions);
      this.log.debug({ task: task.id, container: c.id, name }, 'container created');
      this.createdHere.set(c.id, name);
      return c.id;
    } catch (err) {
      const status = statusOf(err);
      if (status === 409) {
        // A retry after a crash between create and recording it: the container is already there.
        const existing = await this.owned(name, `creating container ${name}`, true);
        if (existing && existing.Config.Labels?.[LABELS.taskId] === task.id) return existing.Id;
      }
      if (status === 404) {
        this.imagesCurrent.delete(ref);
        throw executorError('image-not-found', `creating container ${name}: image ${ref} not found locally (prepare the task first): ${dockerMessage(err)}`, err);
      }
      throw this.fail(err, `creating container ${name}`);
    }
  }

  async start(containerId: string): Promise<void> {
    // A container we just created is ours: skip the ownership check's round trip.
    let name = this.createdHere.get(containerId);
    this.createdHere.delete(containerId);
    let id = containerId;
    if (name === undefined) {
      const info = await this.owned(containerId, `starting container ${containerId}`);
      name = info.Name.replace(/^\//, '');
      id = info.Id;
    }
    try {
      await this.docker.getContainer(id).start({ abortSignal: this.timeout() });
    } catch (err) {
      if (statusOf(err) === 304) return; // already started
      const msg = dockerMessage(err);
      const conflict = portConflict(msg);
      if (conflict !== undefined) {
        throw executorError(
          'port-conflict',
          `starting container ${name}: host port ${conflict || '(unknown)'} is already in use: ${msg}`,
          err,
        );
      }
      throw this.fail(err, `starting container ${name}`);
    }
  }

  async stop(containerId: string, graceMs: number): Promise<void> {
    const info = await this.owned(containerId, `stopping container ${containerId}`, true);
    if (!info) return;
    const t = Math.max(0, Math.ceil(graceMs / 1000));
    try {
      await this.docker.getContainer(info.Id).stop({ t, abortSignal: this.timeout(t * 1000) });
    } catch (err) {
      const status = statusOf(err);
      if (status === 304 || status === 404) return; // already stopped / gone
      throw this.fail(err, `stopping container ${info.Name.replace(/^\//, '')}`);
    }
  }

  async remove(containerId: string): Promise<void> {
    this.createdHere.delete(containerId);
    const info = await this.owned(containerId, `removing container ${containerId}`, true);
    if (!info) return;
    try {
      await this.docker.getContainer(info.Id).remove({ force: true, v: true, abortSignal: this.timeout() });
    } catch (err) {
      const status = statusOf(err);
      if (status === 404) return;
      if (status === 409 && /already in progress/.test(dockerMessage(err))) return;
      throw this.fail(err, `removing container ${info.Name.replace(/^\//, '')}`);
    }
  }

  async logs(containerId: string, opts: { tail: number; since: string }): Promise<ContainerLogLine[]> {
    const doing = `reading the logs of container ${containerId}`;
    const info = await this.owned(containerId, doing);
    const since = opts.since ? logTimeToUnix(opts.since) : undefined;
    let buf: Buffer;
    try {
      buf = (await this.docker.getContainer(info.Id).logs({
        follow: false,
        stdout: true,
        stderr: true,
        timestamps: true,
        tail: opts.tail > 0 ? opts.tail : 'all',
        ...(since ? { since } : {}),
        abortSignal: this.timeout(),
      } as Docker.ContainerLogsOptions & { follow: false })) as unknown as Buffer;
    } catch (err) {
      throw this.fail(err, doing);
    }
    const demux = (src: NodeJS.ReadableStream, out: NodeJS.WritableStream, err: NodeJS.WritableStream) => this.docker.modem.demuxStream(src, out, err);
    const lines = await parseDockerLogs(Buffer.isBuffer(buf) ? buf : Buffer.from(String(buf)), info.Config?.Tty === true, demux);
    // The engine's `since` is inclusive (and whole seconds on older engines): "after" is ours.
    const after = opts.since ? logTimeKey(opts.since)! : '';
    return after ? lines.filter((l) => (logTimeKey(l.timestamp) ?? '') > after) : lines;
  }

  async inspect(containerId: string): Promise<ContainerStatus> {
    const info = await this.owned(containerId, `inspecting container ${containerId}`);
    const st = info.State;
    const ports: PublishedPort[] = [];
    for (const [key, binds] of Object.entries(info.NetworkSettings?.Ports ?? {})) {
      const [port, proto] = key.split('/');
      for (const b of binds ?? []) {
        ports.push({
          protocol: proto === 'udp' ? 'udp' : 'tcp',
          targetPort: Number(port),
          hostIp: b.HostIp,
          hostPort: Number(b.HostPort),
        });
      }
    }
    return {
      id: info.Id,
      name: info.Name.replace(/^\//, ''),
      state: st.Status,
      running: st.Running,
      exitCode: st.ExitCode ?? 0,
      error: st.Error ?? '',
      oomKilled: st.OOMKilled ?? false,
      startedAt: msTime(st.StartedAt),
      finishedAt: msTime(st.FinishedAt),
      taskId: info.Config.Labels?.[LABELS.taskId] ?? '',
      ports,
      health: healthOf(st),
      pid: st.Pid ?? 0,
      ip: (info.NetworkSettings as { IPAddress?: string } | undefined)?.IPAddress || Object.values(info.NetworkSettings?.Networks ?? {}).find((n) => n?.IPAddress)?.IPAddress || '',
    };
  }

  async listOwned(): Promise<OwnedContainer[]> {
    let list: Docker.ContainerInfo[];
    try {
      list = await this.docker.listContainers({
        all: true,
        filters: { label: [`${LABELS.nodeId}=${this.nodeId}`] },
        abortSignal: this.timeout(),
      });
    } catch (err) {
      throw this.fail(err, 'listing containers');
    }
    return list
      .filter((c) => c.Labels?.[LABELS.nodeId] === this.nodeId)
      .map((c) => ({
        id: c.Id,
        name: (c.Names?.[0] ?? '').replace(/^\//, ''),
        image: c.Image,
        state: c.State,
        status: c.Status,
        createdAt: c.Created * 1000,
        taskId: c.Labels[LABELS.taskId] ?? '',
        serviceId: c.Labels[LABELS.serviceId] ?? '',
        serviceName: c.Labels[LABELS.serviceName] ?? '',
        slot: Number(c.Labels[LABELS.taskSlot] ?? 0) || 0,
        nodeId: this.nodeId,
        labels: { ...c.Labels },
      }));
  }

  // ---------------------------------------------------------------- events

  events(onEvent: (e: ContainerEvent) => void, opts: EventOptions = {}): EventSubscription {
    if (this.closed) throw executorError('runtime-error', 'the executor is closed');
    const baseDelay = opts.reconnectDelayMs ?? 200;
    const filters = {
      type: ['container'],
      label: [`${LABELS.nodeId}=${this.nodeId}`],
      event: [...EVENT_ACTIONS],
    };
    let active = true;
    let ac: AbortController | undefined;
    let retry: NodeJS.Timeout | undefined;
    const backoff = new Backoff(baseDelay, 5000);
    // Resume point, in the engine's clock: the last event's timeNano (Docker replays from `since`,
    // inclusive), and the events already delivered at exactly that time, to skip their replay.
    // Before any event, the time of the first connection (the response's Date header).
    let since: bigint | undefined;
    let seenAtSince = new Set<string>();
    let settleReady: ((err?: Error) => void) | undefined;
    const ready = new Promise<void>((resolve, reject) => {
      settleReady = (err) => {
        settleReady = undefined;
        if (err) reject(err);
        else resolve();
      };
    });
    ready.catch(() => {}); // the subscription keeps retrying; nobody has to await `ready`

    const deliver = (line: string): void => {
      let ev: {
        Type?: string;
        Action?: string;
        status?: string;
        id?: string;
        time?: number;
        timeNano?: number | string;
        Actor?: { ID?: string; Attributes?: Record<string, string> };
      };
      try {
        ev = JSON.parse(line);
      } catch {
        return;
      }
      const action = (ev.Action ?? ev.status ?? '') as ContainerAction;
      if (!EVENT_ACTIONS.includes(action)) return;
      const attrs = ev.Actor?.Attributes ?? {};
      if (attrs[LABELS.nodeId] !== this.nodeId) return; // belt and braces: the filter does this
      const containerId = ev.Actor?.ID ?? ev.id ?? '';
      const nano = ev.timeNano !== undefined ? BigInt(ev.timeNano) : BigInt(ev.time ?? 0) * 1_000_000_000n;
      const key = `${containerId}/${action}`;
      if (since !== undefined && nano < since) return;
      if (nano === since) {
        if (seenAtSince.has(key)) return;
        seenAtSince.add(key);
      } else {
        since = nano;
        seenAtSince = new Set([key]);
      }
      const e: ContainerEvent = {
        containerId,
        taskId: attrs[LABELS.taskId] ?? '',
        action,
        time: Number(nano / 1_000_000n),
      };
      if (action === 'die') e.exitCode = Number(attrs['exitCode'] ?? 0);
      try {
        onEvent(e);
      } catch (err) {
        this.log.error({ err }, 'event callback threw');
      }
    };

    const scheduleReconnect = (err: Error): void => {
      if (!active) return;
      settleReady?.(err);
      const delay = backoff.next();
      this.log.warn({ err: err.message, retryInMs: delay }, 'docker event stream broke: reconnecting');
      opts.onError?.(err);
      clearTimeout(retry);
      retry = setTimeout(connect, delay);
    };

    const connect = (): void => {
      if (!active) return;
      const controller = new AbortController();
      ac = controller;
      const query: Record<string, unknown> = { filters, abortSignal: controller.signal };
      if (since !== undefined) query['since'] = `${since / 1_000_000_000n}.${String(since % 1_000_000_000n).padStart(9, '0')}`;
      this.docker
        .getEvents(query as unknown as Docker.GetEventsOptions)
        .then((stream) => {
          if (!active || controller.signal.aborted) {
            (stream as unknown as { destroy?: () => void }).destroy?.();
            return;
          }
          if (since === undefined) {
            const date = Date.parse((stream as unknown as http.IncomingMessage).headers?.date ?? '');
            since = BigInt(Number.isFinite(date) ? date : Date.now()) * 1_000_000n;
          }
          backoff.reset();
          settleReady?.();
          let buf = '';
          let ended = false;
          const onEnd = (err: Error): void => {
            if (ended) return;
            ended = true;
            scheduleReconnect(err);
          };
          stream.on('data', (chunk: Buffer | string) => {
            buf += chunk.toString();
            let nl: number;
            while ((nl = buf.indexOf('\n')) >= 0) {
              const line = buf.slice(0, nl).trim();
              buf = buf.slice(nl + 1);
              if (line) deliver(line);
            }
          });
          stream.on('end', () => onEnd(new Error('the Docker event stream ended')));
          stream.on('close', () => onEnd(new Error('the Docker event stream closed')));
          stream.on('error', (err: Error) => onEnd(this.fail(err, 'watching Docker events')));
        })
        .catch((err: unknown) => {
          if (!active) return;
          scheduleReconnect(this.fail(err, 'watching Docker events'));
        });
    };

    const sub: EventSubscription = {
      ready,
      close: () => {
        if (!active) return;
        active = false;
        clearTimeout(retry);
        ac?.abort();
        settleReady?.(new Error('subscription closed'));
        this.subscriptions.delete(sub);
      },
    };
    this.subscriptions.add(sub);
    connect();
    return sub;
  }

  // ---------------------------------------------------------------- engine

  async ping(): Promise<void> {
    try {
      await withSignal(this.docker, this.docker.ping, AbortSignal.timeout(this.pingTimeoutMs));
    } catch (err) {
      const e = this.fail(err, 'pinging Docker');
      if (executorErrorReason(e) === 'runtime-unreachable') throw e;
      throw executorError('runtime-unreachable', e.message, err);
    }
  }

  async info(): Promise<EngineInfo> {
    try {
      const signal = AbortSignal.timeout(Math.max(this.pingTimeoutMs, 10_000));
      const [info, version] = await Promise.all([
        withSignal<Record<string, unknown>>(this.docker, this.docker.info, signal),
        withSignal<Docker.DockerVersion>(this.docker, this.docker.version, signal),
      ]);
      return {
        engineVersion: String(info['ServerVersion'] ?? version.Version ?? ''),
        apiVersion: String(version.ApiVersion ?? ''),
        ncpu: Number(info['NCPU'] ?? 0),
        memoryBytes: Number(info['MemTotal'] ?? 0),
        os: String(info['OSType'] ?? version.Os ?? ''),
        arch: String(info['Architecture'] ?? version.Arch ?? ''),
        hostname: String(info['Name'] ?? ''),
      };
    } catch (err) {
      throw this.fail(err, 'asking Docker for its info');
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const s of [...this.subscriptions]) s.close();
    for (const p of this.pulls.values()) p.ac.abort();
    this.pulls.clear();
    this.agent.destroy();
  }
}

/** The container's health (Docker's State.Health), '' when it has no health check. */
function healthOf(st: Docker.ContainerInspectInfo['State']): ContainerHealth {
  const h = (st as { Health?: { Status?: string; Log?: { Output?: string; ExitCode?: number }[] } }).Health;
  const status = h?.Status;
  if (status !== 'starting' && status !== 'healthy' && status !== 'unhealthy') return { status: '', lastOutput: '' };
  const last = h?.Log?.[h.Log.length - 1];
  return { status, lastOutput: (last?.Output ?? '').trim().split('\n').pop()?.slice(0, 200) ?? '' };
}
