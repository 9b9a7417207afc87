// The node's session with the managers' dispatcher: opens a session with the leader, heartbeats
// at the period the dispatcher asks for, and on any failure moves on at once: to the leader the
// answer names, else to the next known manager. On a graceful stop it says goodbye (Disconnect),
// so the dispatcher does not take the dropped long poll for a crash: a quick restart keeps the
// node ready and its tasks where they are. The task runner reaches the dispatcher through it
// (link()).

import { arch, cpus, hostname as osHostname, platform, totalmem } from 'node:os';
import { ShoalError, UnaryClientPool, type Logger, type SecuritySource } from '@shoal/api';
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
  private assignmentsFeed: AssignmentsFeed | undefined;
  private meshFeed: MeshViewFeed | undefined;
  private networkFeed: NetworkViewFeed | undefined;

  constructor(private readonly opts: SessionOptions) {
    this.managers = [...new Set(opts.managers)];
    this.pool = new UnaryClientPool(30_000, opts.security);
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
    const call = <T>(method: string, req: object, timeoutMs: number): Promise<T> => {
      if (!this.current || !this.sessionId) {
        return Promise.reject(new ShoalError('UNAVAILABLE', 'no dispatcher session yet'));
      }
      return this.pool.call<T>('shoal.dispatcher.Dispatcher', this.current, method, { nodeId: this.opts.nodeId, sessionId: this.sessionId, ...req }, timeoutMs);
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
    while (this.running) {
      const addr = this.pick();
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
              nanoCpus: cpus().length * 1e9,
              memoryBytes: totalmem(),
              engineVersion: h.engineVersion ?? '',
              error: h.error,
              condition: h.condition ?? '',
              addr: this.opts.addr,
              meshAddr: this.opts.meshAddr?.() ?? '',
            },
          },
          2_000,
        );
        failures = 0;
        this.current = addr;
        this.sessionId = res.sessionId;
        this.learn(res.managers);
        this.opts.logger.info({ manager: addr }, 'dispatcher session open');
        let period = Number(res.heartbeatPeriodMs) || 1_000;
        while (this.running) {
          await this.nap(period);
          if (!this.running) break;
          const hh = this.health();
          const beat = await this.pool.call<{ heartbeatPeriodMs: number; managers: ManagerAddr[]; role: string }>(
            'shoal.dispatcher.Dispatcher',
            addr,
            'Heartbeat',
            { nodeId: this.opts.nodeId, sessionId: res.sessionId, error: hh.error, condition: hh.condition ?? '', meshErrors: this.opts.meshErrors?.() ?? [], meshMode: this.opts.meshMode?.() ?? '' },
            Math.max(500, Math.min(period, 2_000)),
          );
          period = Number(beat.heartbeatPeriodMs) || period;
          this.learn(beat.managers);
          if (beat.role) this.opts.onRole?.(beat.role, beat.managers ?? []);
        }
      } catch (err) {
        this.current = '';
        this.sessionId = '';
        this.redirect(err);
        failures++;
        this.opts.logger.debug({ manager: addr, err: (err as Error).message }, 'dispatcher session lost; trying another manager');
        // Quick retries while managers elect a leader; back off only when nobody answers at all.
        if (this.running) await this.nap(failures <= this.managers.length * 3 ? 100 : Math.min(2_000, 100 * failures));
      }
    }
  }
}
