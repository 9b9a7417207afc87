// The node's session with the managers' dispatcher: opens a session with the leader, heartbeats
// at the period the dispatcher asks for, and on any failure moves on at once: to the leader the
// answer names, else to the next known manager. On a graceful stop it says goodbye (Disconnect),
// so the dispatcher does not take the dropped long poll for a crash: a quick restart keeps the
// node ready and its tasks where they are. The task runner reaches the dispatcher through it
// (link()).
//
// With thousands of nodes, what they all do at once lands on the leader at once. So the first
// heartbeat of a session comes at a random point of the first period (the dispatcher jitters the
// later ones); a node that lost its session (a leader change: all nodes lose theirs together)
// waits a random part of reconnectSpreadMs before opening the next; a manager's answer that says
// when to retry (the dispatcher is busy opening sessions, or no leader is elected yet) is obeyed;
// and the quick retries are jittered, so refused nodes do not come back in step. Losing a session
// stops nothing on the node: the task runner keeps its containers and picks up the assignments of
// the next session from its cursor.

import { arch, availableParallelism, hostname as osHostname, platform, totalmem } from 'node:os';
import { ShoalError, UnaryClientPool, type Logger, type SecuritySource } from '@shoal/api';
import { RETRY_AFTER_DETAIL, reconnectSpreadMs } from '@shoal/types';
import type { DispatcherLink } from './runner.js';
import { AssignmentsFeed, MeshViewFeed, NetworkViewFeed, type AssignmentsPage, type MeshPage } from './dispatcher-feeds.js';
import type { NetworkViewPage } from '@shoal/types';

export interface SessionOptions {
  nodeId: string;
  hostname: string;
  addr: string;
  /** Manager addresses to try first (the list is refreshed from every answer). */
  managers: string[];
  /**
   * Why the node cannot run tasks right now ('' when healthy), and trouble worth showing that
   * leaves it ready (`condition`), read at each heartbeat: it must answer at once (an
   * EngineMonitor's verdict), never wait on the engine, or a hung engine would stop heartbeats.
   */
  health?: () => { error: string; condition?: string; engineVersion?: string };
  onManagers?: (addrs: string[]) => void;
  /** This node's routing-mesh forwarding address (host:port), given when the session opens. */
  meshAddr?: () => string;
  /** Published ports the node's mesh cannot serve, sent with every heartbeat. */
  meshErrors?: () => string[];
  /** How the mesh serves published ports now (NodeStatus.mesh_mode). */
  meshMode?: () => string;
  /** The role the cluster wants this node in, from every heartbeat (a promotion shows here). */
  onRole?: (role: string, managers: { nodeId: string; addr: string }[]) => void;
  /** TLS to the managers (this node's certificate; read per call, so a renewal takes effect). */
  security?: SecuritySource;
  logger: Logger;
  /** Draws the random waits (default Math.random). */
  random?: () => number;
  /** A Session call's deadline (default SESSION_CALL_MS; tests shorten it). */
  sessionCallMs?: number;
}

/** How long a call made between sessions waits for the next one before it fails. */
const SESSION_WAIT_MS = 5_000;

/**
 * A Session call's deadline. A dead manager refuses at once; this bounds a silent one, and leaves
 * a busy leader (a thousand nodes opening sessions) time to answer.
 */
const SESSION_CALL_MS = 5_000;

/**
 * A heartbeat's deadline: one period (at least a second). The next beat is not due before, and
 * the dispatcher judges a node only after several silent periods: a beat answered late (a busy
 * leader, a loaded host) must not cost the session, whose reopening costs both sides a lot more
 * (at 1,000 nodes, 2 s deadlines turned a busy converge into 266 sessions lost and nodes marked
 * down). A dead leader still fails the beat at once; a silent one within a period.
 */
export function heartbeatDeadlineMs(periodMs: number): number {
  return Math.max(1_000, periodMs);
}

/** Tries in a row for one manager whose connection is still being made at the deadline. */
const SAME_MANAGER_TRIES = 3;

/** The longest wait a manager's retry hint is obeyed for. */
const MAX_RETRY_AFTER_MS = 10_000;

/** The wait a refusal asks for (details.retryAfterMs), if it names one. */
export function retryAfterOf(err: unknown): number | undefined {
  if (!(err instanceof ShoalError)) return undefined;
  const raw = err.details[RETRY_AFTER_DETAIL];
  const ms = raw === undefined ? NaN : Number(raw);
  return Number.isFinite(ms) && ms >= 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : undefined;
}

/**
 * The wait before the next try after `failures` failures in a row with `managers` managers known:
 * quick while managers elect a leader (each tried three times), then longer when nobody answers
 * at all; between half and one and a half times that, at random.
 */
export function retryDelayMs(failures: number, managers: number, random: () => number): number {
  const base = failures <= Math.max(1, managers) * 3 ? 100 : Math.min(2_000, 100 * failures);
  return Math.round(base * (0.5 + random()));
}

interface ManagerAddr {
  nodeId: string;
  addr: string;
}

export class AgentSession {
  /** One kept-open channel per manager: heartbeats, reports and long polls reuse it. */
  private readonly pool: UnaryClientPool;
  private managers: string[];
  private next = 0;
  private preferred: string | undefined;
  private running = false;
  private loop: Promise<void> | undefined;
  /** The manager currently holding our session (for tests and diagnostics). */
  current = '';
  private sessionId = '';
  /** Ends the loop's current wait early (set while it waits). */
  private wake: (() => void) | undefined;
  /** Calls waiting for a session to open (link() between sessions). */
  private readonly waiters = new Set<() => void>();
  private assignmentsFeed: AssignmentsFeed | undefined;
  private meshFeed: MeshViewFeed | undefined;
  private networkFeed: NetworkViewFeed | undefined;

  private readonly random: () => number;
  /** Sessions this node opened (tests, diagnostics). */
  sessionsOpened = 0;

  constructor(private readonly opts: SessionOptions) {
    this.managers = [...new Set(opts.managers)];
    this.pool = new UnaryClientPool(30_000, opts.security);
    this.random = opts.random ?? Math.random;
  }

  /** The managers this session knows of (refreshed from every answer). */
  knownManagers(): string[] {
    return [...this.managers];
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.loop = this.run();
  }

  /** Stops heartbeating and tells the dispatcher the node leaves on purpose (best effort). */
  async stop(reason = 'agent stopping'): Promise<void> {
    this.running = false;
    this.wake?.();
    this.wakeWaiters();
    await this.loop;
    const addr = this.current;
    const sessionId = this.sessionId;
    this.current = '';
    this.sessionId = '';
    if (!addr || !sessionId) return this.pool.close();
    try {
      await this.pool.call('shoal.dispatcher.Dispatcher', addr, 'Disconnect', { nodeId: this.opts.nodeId, sessionId, reason }, 1_000);
      this.opts.logger.info({ manager: addr, reason }, 'dispatcher session closed');
    } catch (err) {
      this.opts.logger.debug({ manager: addr, err: (err as Error).message }, 'could not say goodbye to the dispatcher');
    } finally {
      this.pool.close();
    }
  }

  /** Resolves when a session opens, the session stops, or after `ms`. */
  private nextSession(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.waiters.delete(done);
        resolve();
      };
      const t = setTimeout(done, ms);
      this.waiters.add(done);
    });
  }

  private wakeWaiters(): void {
    for (const w of [...this.waiters]) w();
  }

  /** A wait that stop() cuts short. */
  private nap(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        this.wake = undefined;
        resolve();
      };
      const t = setTimeout(done, ms);
      this.wake = done;
    });
  }

  /** The task runner's way to the dispatcher, through whichever session is open. */
  link(): DispatcherLink {
    const call = async <T>(method: string, req: object, timeoutMs: number): Promise<T> => {
      // Between sessions, callers wait for the next one rather than spin on refusals.
      if (!this.current || !this.sessionId) await this.nextSession(Math.min(timeoutMs, SESSION_WAIT_MS));
      if (!this.current || !this.sessionId) throw new ShoalError('UNAVAILABLE', 'no dispatcher session yet');
      const sessionId = this.sessionId;
      try {
        return await this.pool.call<T>('shoal.dispatcher.Dispatcher', this.current, method, { nodeId: this.opts.nodeId, sessionId, ...req }, timeoutMs);
      } catch (err) {
        // The manager's connection broke (it died, most likely): beat now rather than at the
        // next period, so a dead leader is noticed at once, not up to a heartbeat later.
        if (ShoalError.is(err, 'UNAVAILABLE') && retryAfterOf(err) === undefined && this.sessionId === sessionId) this.wake?.();
        throw err;
      }
    };
    // The dispatcher answers with diffs in pages; the feeds hand out whole views. Their cursors
    // are Raft indexes, good at any leader: they outlive a session.
    this.assignmentsFeed ??= new AssignmentsFeed((known, waitMs) => call<AssignmentsPage>('Assignments', { known, waitMs }, waitMs + 5_000));
    this.meshFeed ??= new MeshViewFeed((known, waitMs) => call<MeshPage>('MeshView', { known, waitMs }, waitMs + 5_000));
    this.networkFeed ??= new NetworkViewFeed((known, waitMs) => call<NetworkViewPage>('NetworkView', { known, waitMs }, waitMs + 5_000));
    const assignments = this.assignmentsFeed;
    const mesh = this.meshFeed;
    const networks = this.networkFeed;
    return {
      assignments: (known, waitMs) => assignments.next(known, waitMs),
      report: (updates) => call('UpdateTaskStatus', { updates }, 5_000),
      meshView: (known, waitMs) => mesh.next(known, waitMs),
      networkView: (known, waitMs) => networks.next(known, waitMs),
      logRequests: (waitMs) => call('LogRequests', { waitMs }, waitMs + 5_000),
      publishLogs: (answer) => call('PublishLogs', answer, 10_000),
    };
  }

  private pick(): string {
    if (this.preferred) {
      const p = this.preferred;
      this.preferred = undefined;
      return p;
    }
    const addr = this.managers[this.next % this.managers.length];
    this.next++;
    return addr;
  }

  private learn(list: ManagerAddr[] | undefined): void {
    const addrs = (list ?? []).map((m) => m.addr).filter(Boolean);
    if (addrs.length === 0) return;
    const merged = [...new Set(addrs)];
    if (merged.join(',') !== this.managers.join(',')) {
      this.managers = merged;
      this.opts.onManagers?.(merged);
    }
  }

  /** On NOT_LEADER the answer names the leader: go straight there. */
  private redirect(err: unknown): void {
    if (err instanceof ShoalError && err.code === 'NOT_LEADER' && err.details.leaderAddr) this.preferred = err.details.leaderAddr;
  }

  private health(): { error: string; condition?: string; engineVersion?: string } {
    if (!this.opts.health) return { error: '' };
    try {
      return this.opts.health();
    } catch (err) {
      return { error: (err as Error).message };
    }
  }

  private async run(): Promise<void> {
    let failures = 0;
    /** Tries in a row given to one manager whose connection was still being made. */
    let sameAgain = 0;
    /** Set once a session was lost: the next one waits a random part of this first. */
    let spread = 0;
    while (this.running) {
      if (spread > 0) {
        const wait = this.random() * spread;
        spread = 0;
        await this.nap(wait);
        if (!this.running) break;
      }
      const addr = this.pick();
      let period = 0;
      try {
        const h = this.health();
        const res = await this.pool.call<{ sessionId: string; heartbeatPeriodMs: number; managers: ManagerAddr[] }>(
          'shoal.dispatcher.Dispatcher',
          addr,
          'Session',
          {
            nodeId: this.opts.nodeId,
            info: {
              hostname: this.opts.hostname || osHostname(),
              os: platform(),
              arch: arch(),
              // (as Docker's NCPU, Go's NumCPU: the CPUs this process may run on; cheap, unlike os.cpus())
              nanoCpus: availableParallelism() * 1e9,
              memoryBytes: totalmem(),
              engineVersion: h.engineVersion ?? '',
              error: h.error,
              condition: h.condition ?? '',
              addr: this.opts.addr,
              meshAddr: this.opts.meshAddr?.() ?? '',
            },
          },
          this.opts.sessionCallMs ?? SESSION_CALL_MS,
        );
        failures = 0;
        sameAgain = 0;
        this.current = addr;
        this.sessionId = res.sessionId;
        this.sessionsOpened++;
        this.wakeWaiters();
        this.learn(res.managers);
        this.opts.logger.info({ manager: addr }, 'dispatcher session open');
        period = Number(res.heartbeatPeriodMs) || 1_000;
        // The first beat anywhere in the first period: sessions opened together do not beat together.
        let wait = this.random() * period;
        while (this.running) {
          await this.nap(wait);
          if (!this.running) break;
          const hh = this.health();
          const beat = await this.pool.call<{ heartbeatPeriodMs: number; managers: ManagerAddr[]; role: string }>(
            'shoal.dispatcher.Dispatcher',
            addr,
            'Heartbeat',
            { nodeId: this.opts.nodeId, sessionId: res.sessionId, error: hh.error, condition: hh.condition ?? '', meshErrors: this.opts.meshErrors?.() ?? [], meshMode: this.opts.meshMode?.() ?? '' },
            heartbeatDeadlineMs(period),
          );
          period = Number(beat.heartbeatPeriodMs) || period;
          wait = period;
          this.learn(beat.managers);
          if (beat.role) this.opts.onRole?.(beat.role, beat.managers ?? []);
        }
      } catch (err) {
        const lost = this.sessionId !== '';
        this.current = '';
        this.sessionId = '';
        this.redirect(err);
        if (!this.running) break;
        const hint = retryAfterOf(err);
        if (hint !== undefined) {
          // A manager that answers, busy (the same one again) or with no leader yet (the next one).
          if (ShoalError.is(err, 'UNAVAILABLE')) this.preferred ??= addr;
          this.opts.logger.debug({ manager: addr, retryInMs: hint, err: (err as Error).message }, 'dispatcher asks to retry later');
          await this.nap(hint);
          continue;
        }
        if (lost) {
          // Every node lost its session at once, most likely (a leader change): come back spread.
          failures = 0;
          spread = reconnectSpreadMs(period);
          this.opts.logger.debug({ manager: addr, err: (err as Error).message }, 'dispatcher session lost; opening another');
          continue;
        }
        failures++;
        // Still connecting when the deadline passed (a leader busy with a thousand handshakes, or
        // this host slow): the connection goes on, so ask the same manager again, on it, rather
        // than begin a handshake with the next one. A few times only: a manager that accepts
        // connections but never completes them must not hold the node.
        if (this.pool.connecting('shoal.dispatcher.Dispatcher', addr) && sameAgain < SAME_MANAGER_TRIES) {
          sameAgain++;
          this.preferred ??= addr;
        } else sameAgain = 0;
        this.opts.logger.debug({ manager: addr, err: (err as Error).message }, 'no dispatcher session; trying another manager');
        // Quick retries while managers elect a leader; back off only when nobody answers at all.
        await this.nap(retryDelayMs(failures, this.managers.length, this.random));
      }
    }
  }
}
