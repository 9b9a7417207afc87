// What every command handler gets: the manager's address, the command's time budget (--timeout),
// a lazily opened control client, and its output streams.

import { LOCAL_SOCKET_ENV, localSocketPath } from '@shoal/api/local-socket';
import type { Metadata } from '@grpc/grpc-js';
import type { CallContext, ControlClient } from './client.js';
import { CliError, UsageError } from './errors.js';
import { type HostAddr, parseDuration, parseHosts } from './parse.js';
import type { ControlMethod, ControlMethods, ListTasksRequest, TaskView } from '@shoal/types';

/** The environment variable that gives the default of --host. */
export const HOST_ENV = 'SHOAL_HOST';

/**
 * The managers to talk to, in order: --host, else $SHOAL_HOST (either may list several,
 * comma-separated), else this machine's well-known socket (that shoald serves on a manager, as
 * dockerd serves /var/run/docker.sock); a usage error when that is turned off (SHOAL_SOCKET=).
 */
export function resolveHosts(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): HostAddr[] {
  const value = flag ?? env[HOST_ENV];
  if (value !== undefined && value.trim() !== '') return parseHosts(value);
  const local = localSocketPath(env);
  if (local === undefined) {
    throw new UsageError(`no manager address: pass --host unix:///PATH/control.sock (or HOST:PORT), or set ${HOST_ENV} (${LOCAL_SOCKET_ENV} is empty)`);
  }
  return [{ kind: 'unix', path: local }];
}

/** Default --timeout of a command that does not wait for convergence (one or a few calls). */
export const DEFAULT_TIMEOUT_MS = 10_000;
/** Default --timeout of create/update/scale when they wait for convergence (no -d). */
export const DEFAULT_WAIT_TIMEOUT_MS = 60_000;
/**
 * How long a manager of a --host list may take to connect before the next one is tried (a
 * powered-off host never refuses: it just does not answer). The last one gets the whole budget.
 */
export const FAILOVER_CONNECT_MS = 3_000;

export interface Output {
  write(s: string): unknown;
  /** A terminal (progress is redrawn in place); absent: not one. */
  isTTY?: boolean;
  /** Its width, when a terminal. */
  columns?: number;
}

export interface GlobalArgs {
  host?: string;
  timeout?: string;
  'cert-path'?: string;
}

/** The environment variable that gives the default of --cert-path. */
export const CERT_PATH_ENV = 'SHOAL_CERT_PATH';

export class Ctx {
  private clientInstance: ControlClient | undefined;
  private hostAddrs: HostAddr[] | undefined;
  /** Which of the hosts the client talks to (the next after one cannot be reached). */
  private hostIndex = 0;
  /** The current manager has connected once (its channel is up): no connect check before later calls. */
  private connected = false;
  private deadlineAt: number | undefined;
  /** The time budget (ms) of this command: --timeout, or the default chosen by the command. */
  private budgetMs: number | undefined;

  constructor(
    private readonly args: GlobalArgs,
    readonly stdout: Output = process.stdout,
    readonly stderr: Output = process.stderr,
    readonly env: NodeJS.ProcessEnv = process.env,
    readonly now: () => number = Date.now,
    readonly stdin: NodeJS.ReadableStream = process.stdin,
  ) {}

  /** --timeout if given, else `defaultMs`; starts the command's clock on first use. */
  budget(defaultMs = DEFAULT_TIMEOUT_MS): number {
    if (this.budgetMs === undefined) {
      this.budgetMs = this.args.timeout === undefined ? defaultMs : parseDuration(this.args.timeout, '--timeout');
      if (this.budgetMs <= 0) this.budgetMs = 1;
      this.deadlineAt = this.now() + this.budgetMs;
    }
    return this.budgetMs;
  }

  /** Milliseconds left of the budget (at least 1). */
  remainingMs(): number {
    this.budget();
    return Math.max(1, this.deadlineAt! - this.now());
  }

  expired(): boolean {
    this.budget();
    return this.now() >= this.deadlineAt!;
  }

  /** Every manager the command may talk to, in order. */
  get hosts(): HostAddr[] {
    return (this.hostAddrs ??= resolveHosts(this.args.host, this.env));
  }

  /** The manager the command talks to now. */
  get host(): HostAddr {
    return this.hosts[this.hostIndex]!;
  }

  /** The control client (gRPC is loaded on first use). */
  async client(): Promise<ControlClient> {
    if (!this.clientInstance) {
      const host = this.host;
      const budget = this.budget();
      const { ControlClient, readAdminTls } = await import('./client.js');
      // TCP is mutual TLS with an admin certificate; the unix socket is the machine's own.
      const certPath = this.args['cert-path'] ?? (this.env[CERT_PATH_ENV] || undefined);
      const tls = host.kind === 'tcp' ? readAdminTls(certPath, CERT_PATH_ENV) : undefined;
      this.clientInstance ??= new ControlClient(host, budget, tls);
    }
    return this.clientInstance;
  }

  /**
   * One control call, its deadline the rest of the command's budget. When the manager cannot be
   * reached at all (nothing listens: the call never reached it), the next one of --host is tried,
   * and stays the one talked to for the rest of the command.
   */
  async call<M extends ControlMethod>(method: M, req: ControlMethods[M][0], ctx: CallContext = {}): Promise<ControlMethods[M][1]> {
    const failures: string[] = [];
    for (;;) {
      const client = await this.client();
      try {
        // With another manager left to try, one that does not even connect is given up soon.
        if (this.hostIndex < this.hosts.length - 1 && !this.connected) await client.connect(Math.min(FAILOVER_CONNECT_MS, this.remainingMs()));
        this.connected = true;
        return await client.call(method, req, { ...ctx, timeoutMs: ctx.timeoutMs ?? this.remainingMs() });
      } catch (err) {
        if (!(err instanceof CliError && err.unreachable) || this.hosts.length === 1) {
          // The last of several did not answer in time either: say what became of each.
          if (failures.length > 0 && err instanceof CliError && err.code === 'UNAVAILABLE') {
            throw new CliError(`cannot reach any manager: ${[...failures, err.message.replace(/^no answer from the manager at /, '')].join('; ')}`, 1, 'UNAVAILABLE', true);
          }
          throw err;
        }
        failures.push(err.message.replace(/^cannot reach a manager at /, ''));
        if (this.hostIndex === this.hosts.length - 1) {
          throw new CliError(`cannot reach any manager: ${failures.join('; ')}`, 1, 'UNAVAILABLE', true);
        }
        this.close();
        this.connected = false;
        this.hostIndex += 1;
      }
    }
  }

  /**
   * A server-streaming call on the manager talked to now (see ControlClient.stream); one that
   * cannot be reached at all, with another of --host left, gives way to the next, as call() does.
   * The caller resumes a broken stream itself (nextHost(), then again).
   */
  async stream<M extends ControlMethod>(
    method: M,
    req: ControlMethods[M][0],
    onMessage: (m: ControlMethods[M][1]) => void,
    opts: { onHeader?: (md: Metadata) => void; ctx?: CallContext } = {},
  ): Promise<void> {
    // Once the stream has begun, a break is the caller's to resume: it knows what it has seen.
    let begun = false;
    const onHeader = (md: Metadata): void => {
      begun = true;
      opts.onHeader?.(md);
    };
    const onData = (m: ControlMethods[M][1]): void => {
      begun = true;
      onMessage(m);
    };
    for (;;) {
      const client = await this.client();
      try {
        if (this.hostIndex < this.hosts.length - 1 && !this.connected) await client.connect(FAILOVER_CONNECT_MS);
        this.connected = true;
        return await client.stream(method, req, onData, { ...opts, onHeader });
      } catch (err) {
        if (!(err instanceof CliError && err.unreachable) || begun || this.hostIndex === this.hosts.length - 1) throw err;
        this.nextHost();
      }
    }
  }

  /** Talks to the next manager of --host from now on (after the last: the first again). */
  nextHost(): void {
    this.close();
    this.connected = false;
    this.hostIndex = (this.hostIndex + 1) % this.hosts.length;
  }

  /**
   * Every task ListTasks has for `req`, however many pages that takes (a page holds about a
   * thousand: a service may have ten thousand). Each page is a call of its own on the budget.
   */
  async listTasks(req: Omit<ListTasksRequest, 'pageSize' | 'pageToken'>, ctx: CallContext = {}): Promise<TaskView[]> {
    const out: TaskView[] = [];
    let pageToken = '';
    do {
      const page = await this.call('ListTasks', { ...req, pageSize: 0, pageToken }, ctx);
      out.push(...page.tasks);
      pageToken = page.nextPageToken ?? '';
    } while (pageToken !== '');
    return out;
  }

  /** A line on stdout. */
  print(s: string): void {
    this.stdout.write(s.endsWith('\n') ? s : `${s}\n`);
  }

  /** A line on stderr (progress, notes). */
  note(s: string): void {
    this.stderr.write(s.endsWith('\n') ? s : `${s}\n`);
  }

  close(): void {
    this.clientInstance?.close();
    this.clientInstance = undefined;
  }
}
