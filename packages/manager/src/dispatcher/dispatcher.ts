// The dispatcher: node sessions and heartbeats, on the leader only. A node that misses
// `nodeDownAfterBeats` heartbeat periods is marked down; a node that opens a session again is
// ready. A new leader gives every node a grace of that many periods before judging it, so an
// election never marks a healthy node down (the failure of moby/moby#32218).
// A node's long poll dropped by its connection (its process died) marks it down after a single
// period, unless the node said goodbye first (Disconnect: shoald stopping, usually to restart,
// its containers still running): then it gets the usual `nodeDownAfterBeats` periods to return.

import { randomBytes } from 'node:crypto';
import { ShoalError } from '@shoal/api';
import type { Logger, RaftNode } from '@shoal/raft';
import { createHash } from 'node:crypto';
import type { ClusterStore, Node, ObjectKind, Op, Service, StoreClient, StoreEvent, Task, TaskStatus } from '@shoal/store';
import { TASK_STATES, taskStateRank } from '@shoal/store';
import { LeaderDuty } from '../leader-duty.js';

export interface NodeInfo {
  hostname?: string;
  os?: string;
  arch?: string;
  nanoCpus?: number;
  memoryBytes?: number;
  engineVersion?: string;
  error?: string;
  addr?: string;
  /** The node's routing-mesh forwarding address (host:port). */
  meshAddr?: string;
}

/** One published (ingress) port as every node's routing mesh needs it. */
export interface MeshPortView {
  port: number;
  protocol: string;
  targetPort: number;
  proxyProtocol: boolean;
  serviceId: string;
  serviceName: string;
  /** The service's running tasks, on ready nodes. */
  backends: { taskId: string; nodeId: string; containerId: string; via: string }[];
}

interface SessionState {
  sessionId: string;
  lastBeat: number;
  error: string;
  /**
   * When the node's long poll was cut off by its connection dropping (its process died, its host
   * went away): unless it calls again within one heartbeat period, it is down. 0: not suspect.
   */
  suspectSince: number;
  /** The node said goodbye (Disconnect): a dropped long poll is expected, not a failure sign. */
  leaving: boolean;
  /** Published ports the node's mesh cannot serve, as last reported (stored on change). */
  meshErrors: string;
}

const DEFAULT_PERIOD_MS = 1_000;
const DEFAULT_DOWN_AFTER = 3;

export class Dispatcher {
  private sessions = new Map<string, SessionState>();
  /** Nodes judged only after this time (set when this manager becomes leader). */
  private graceUntil = 0;
  private timer: NodeJS.Timeout | undefined;
  private readonly duty: LeaderDuty;
  private checking = false;

  constructor(
    private readonly raft: RaftNode,
    private readonly store: ClusterStore,
    private readonly client: StoreClient,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.duty = new LeaderDuty(raft, { begin: () => this.begin(), end: () => this.end() });
    this.duty.sync();
  }

  private period(): number {
    return this.store.cluster()?.spec.heartbeatPeriodMs || DEFAULT_PERIOD_MS;
  }

  private downAfter(): number {
    return this.store.cluster()?.spec.nodeDownAfterBeats || DEFAULT_DOWN_AFTER;
  }

  private begin(): void {
    this.sessions.clear();
    this.graceUntil = this.now() + this.period() * this.downAfter();
    this.timer = setInterval(() => void this.check(), Math.max(50, this.period() / 2));
    this.timer.unref();
  }

  private end(): void {
    this.sessions.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  stop(): void {
    this.duty.stop();
  }

  private requireLeader(): void {
    // A leader short of its read barrier would hand out assignments from a store that lacks the
    // newest tasks, and the agent removes the containers no assignment claims: nodes wait for it.
    if (this.duty.leading) return;
    const leaderAddr = this.raft.leaderAddr() ?? '';
    const why = this.raft.isLeader() ? 'this manager has just become the leader and is still catching up' : 'this manager is not the leader';
    throw new ShoalError('NOT_LEADER', why, { details: { leader: this.raft.leaderId(), leaderAddr } });
  }

  private managers(): { nodeId: string; addr: string }[] {
    const conf = this.raft.status().conf;
    return conf.voters.map((m) => ({ nodeId: m.id, addr: m.addr }));
  }

  async session(req: { nodeId?: string; info?: NodeInfo | null }) {
    this.requireLeader();
    const nodeId = req.nodeId ?? '';
    const node = this.store.get('node', nodeId);
    if (!node) throw new ShoalError('PERMISSION_DENIED', `unknown node ${nodeId || '(empty)'}: it must join the cluster first`);
    const info = req.info ?? {};
    const s: SessionState = {
      sessionId: randomBytes(12).toString('hex'),
      lastBeat: this.now(),
      error: info.error ?? '',
      suspectSince: 0,
      leaving: false,
      meshErrors: JSON.stringify(node.status.meshErrors ?? []),
    };
    this.sessions.set(nodeId, s);
    await this.setStatus(nodeId, s.error, info);
    return { sessionId: s.sessionId, heartbeatPeriodMs: this.period(), managers: this.managers() };
  }

  async heartbeat(req: { nodeId?: string; sessionId?: string; error?: string; meshErrors?: string[] }) {
    const s = this.checkSession(req.nodeId, req.sessionId);
    s.lastBeat = this.now();
    s.suspectSince = 0;
    const error = req.error ?? '';
    const meshErrors = (req.meshErrors ?? []).map((e) => String(e).slice(0, 1000)).slice(0, 100);
    const meshChanged = JSON.stringify(meshErrors) !== s.meshErrors;
    if (error !== s.error || meshChanged) {
      s.error = error;
      s.meshErrors = JSON.stringify(meshErrors);
      await this.setStatus(req.nodeId!, error, undefined, meshErrors);
    }
    return { heartbeatPeriodMs: this.period(), managers: this.managers(), role: this.store.get('node', req.nodeId!)?.spec.role ?? '' };
  }

  /**
   * The node's goodbye: it stops on purpose (and will likely be back soon). Its long poll is about
   * to drop; the node is judged by its heartbeats alone, counted from now.
   */
  async disconnect(req: { nodeId?: string; sessionId?: string; reason?: string }) {
    const s = this.checkSession(req.nodeId, req.sessionId);
    s.leaving = true;
    s.suspectSince = 0;
    s.lastBeat = this.now();
    this.log.info({ node: req.nodeId, reason: req.reason ?? '' }, 'node disconnected on purpose; waiting for it to come back');
    return {};
  }

  /** Throws unless this manager leads and `nodeId` has the open session `sessionId` here. */
  checkSession(nodeId: string | undefined, sessionId: string | undefined): SessionState {
    this.requireLeader();
    const s = this.sessions.get(nodeId ?? '');
    if (!s || s.sessionId !== sessionId) {
      throw new ShoalError('NOT_FOUND', 'no such session (the leader changed or the session expired): open a new one');
    }
    return s;
  }

  /**
   * Every task the store places on a node, old ones included: the agent runs those meant to run,
   * stops those that no longer are, and keeps the exited containers of old tasks (as Swarm does,
   * for history) until their task is pruned from the store.
   */
  private assignmentsOf(nodeId: string): { token: string; tasks: Task[] } {
    const tasks = this.store
      .tasksByNode(nodeId)
      .filter((t) => t.desiredState !== 'running' || taskStateRank(t.status.state) >= taskStateRank('assigned'))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    // The token covers what the agent acts on (which tasks, and whether each should run), not
    // the statuses: the agent's own reports must not wake its long poll.
    const h = createHash('sha1');
    for (const t of tasks) h.update(`${t.id}:${t.desiredState};`);
    return { token: h.digest('hex'), tasks };
  }

  async assignments(req: { nodeId?: string; sessionId?: string; known?: string; waitMs?: number }, call?: { on(ev: 'cancelled', f: () => void): void }) {
    const session = this.checkSession(req.nodeId, req.sessionId);
    session.suspectSince = 0;
    const nodeId = req.nodeId!;
    // Fast failure detection: a long poll cancelled by its connection dropping is the first sign
    // of a dead node, well before its heartbeats are missed.
    let answered = false;
    call?.on('cancelled', () => {
      if (!answered && !session.leaving && this.sessions.get(nodeId) === session) session.suspectSince = this.now();
    });
    let a = this.assignmentsOf(nodeId);
    if (a.token !== req.known) return a;
    await this.waitFor(
      req.waitMs,
      (events) =>
        events.some(
          (e) => e.action === 'restore' || ('object' in e && (e.object as Task).nodeId === nodeId) || ('previous' in e && (e.previous as Task | undefined)?.nodeId === nodeId),
        ) && this.assignmentsOf(nodeId).token !== req.known,
      ['task'],
    );
    answered = true;
    this.requireLeader();
    a = this.assignmentsOf(nodeId);
    return a;
  }

  /**
   * What every node's routing mesh serves: each published ingress port with the running tasks of
   * its service on ready nodes, and where to reach them (the node's forwarding address).
   */
  private meshViewOf(): { token: string; ports: MeshPortView[]; removedNodes: string[] } {
    const nodes = new Map(this.store.list('node').map((n) => [n.id, n]));
    const ports: MeshPortView[] = [];
    for (const svc of this.store.list('service')) {
      const ingress = svc.spec.ports.filter((p) => p.publishMode === 'ingress' && p.protocol === 'tcp');
      if (ingress.length === 0) continue;
      const backends = this.store
        .tasksByService(svc.id)
        .filter((t) => t.desiredState === 'running' && t.status.state === 'running' && nodes.get(t.nodeId)?.status.state === 'ready')
        .map((t) => ({ taskId: t.id, nodeId: t.nodeId, containerId: t.status.containerId, via: nodes.get(t.nodeId)!.status.meshAddr }))
        .sort((a, b) => (a.taskId < b.taskId ? -1 : 1));
      for (const p of ingress) {
        ports.push({ port: p.publishedPort, protocol: p.protocol, targetPort: p.targetPort, proxyProtocol: p.proxyProtocol, serviceId: svc.id, serviceName: svc.spec.name, backends });
      }
    }
    ports.sort((a, b) => a.port - b.port);
    const removedNodes = [...(this.store.cluster()?.removedNodes ?? [])].sort();
    const token = createHash('sha1').update(JSON.stringify([ports, removedNodes])).digest('hex');
    return { token, ports, removedNodes };
  }

  /** Whether a change can alter the mesh view (most task changes cannot: cheap to tell). */
  private meshRelevant(e: StoreEvent): boolean {
    if (e.action === 'restore') return true;
    const hasIngress = (svc: Service | null | undefined) => !!svc && svc.spec.ports.some((p) => p.publishMode === 'ingress');
    switch (e.kind) {
      case 'service':
        return hasIngress(e.object) || hasIngress(e.previous);
      case 'task': {
        const live = (t: Task | undefined) => !!t && t.desiredState === 'running' && t.status.state === 'running';
        return live(e.object) !== live(e.previous) && hasIngress(this.store.get('service', e.object.serviceId));
      }
      case 'node':
        return e.object.status.state !== e.previous?.status.state || e.object.status.meshAddr !== e.previous?.status.meshAddr;
      case 'cluster':
        return e.object.removedNodes.length !== e.previous?.removedNodes.length;
      default:
        return false;
    }
  }

  /** The mesh view, long-polled like assignments: answers when it differs from `known`. */
  async meshView(req: { nodeId?: string; sessionId?: string; known?: string; waitMs?: number }) {
    this.checkSession(req.nodeId, req.sessionId);
    let v = this.meshViewOf();
    if (v.token !== req.known) return v;
    // Most task changes (a status on its way to running) leave the view as it is: compare tokens.
    await this.waitFor(req.waitMs, (events) => events.some((e) => this.meshRelevant(e)) && this.meshViewOf().token !== req.known, [
      'service',
      'task',
      'node',
      'cluster',
    ]);
    this.requireLeader();
    v = this.meshViewOf();
    return v;
  }

  /** A long poll's wait: until `changed` says yes for a batch of store events, or waitMs (≤ 30 s). */
  private waitFor(waitMs: number | undefined, changed: (events: readonly StoreEvent[]) => boolean, kinds: ObjectKind[]): Promise<void> {
    const ms = Math.min(Math.max(Number(waitMs ?? 0), 0), 30_000);
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(t);
        unwatch();
        resolve();
      };
      const t = setTimeout(done, ms);
      const unwatch = this.store.watch((events) => {
        if (changed(events)) done();
      }, { kinds });
    });
  }

  async updateTaskStatus(req: { nodeId?: string; sessionId?: string; updates?: { taskId?: string; status?: Partial<TaskStatus> | null }[] }) {
    this.checkSession(req.nodeId, req.sessionId);
    const nodeId = req.nodeId!;
    const rejected: string[] = [];
    await this.client.update(
      (store) => {
        rejected.length = 0;
        const ops: Op[] = [];
        const seen = new Set<string>();
        for (const u of req.updates ?? []) {
          const id = u.taskId ?? '';
          const t = store.get('task', id);
          const st = u.status;
          if (!t) rejected.push(`${id}: no such task`);
          else if (t.nodeId !== nodeId) rejected.push(`${id}: not assigned to this node`);
          else if (!st || !(TASK_STATES as readonly string[]).includes(st.state ?? '')) rejected.push(`${id}: invalid state ${st?.state}`);
          else if (taskStateRank(st.state as TaskStatus['state']) < taskStateRank(t.status.state)) rejected.push(`${id}: ${t.status.state} cannot go back to ${st.state}`);
          else if (seen.has(id)) rejected.push(`${id}: given twice`);
          else {
            seen.add(id);
            // Stamped with this manager's clock, not the agent's (which may be hours off): the
            // managers judge update delays and restart windows by these times. A repeated report
            // keeps the time of the first.
            const status: TaskStatus = {
              state: st.state as TaskStatus['state'],
              timestamp: t.status.timestamp,
              message: st.message ?? '',
              err: st.err ?? '',
              containerId: st.containerId ?? t.status.containerId,
              exitCode: Number(st.exitCode ?? 0),
            };
            if (JSON.stringify(status) !== JSON.stringify(t.status)) {
              status.timestamp = this.now();
              ops.push({ op: 'update', kind: 'task', object: { ...t, status, updatedAt: this.now() }, expectVersion: t.version });
            }
          }
        }
        return ops;
      },
      { retries: 5, timeoutMs: 5_000, optimistic: true },
    );
    return { rejected };
  }

  /** ready (or down with the node's own reason), plus what the node told us about itself. */
  private async setStatus(nodeId: string, error: string, info?: NodeInfo, meshErrors?: string[]): Promise<void> {
    await this.client.update(
      (store) => {
        const n = store.get('node', nodeId);
        if (!n) return [];
        const status: Node['status'] = {
          state: error ? 'down' : 'ready',
          message: error,
          addr: info?.addr || n.status.addr,
          meshAddr: info?.meshAddr ?? n.status.meshAddr,
          meshErrors: meshErrors ?? n.status.meshErrors,
        };
        const d = n.description;
        const description = info
          ? {
              hostname: info.hostname || d.hostname,
              platform: { os: info.os || d.platform.os, arch: info.arch || d.platform.arch },
              resources: { nanoCpus: info.nanoCpus ?? d.resources.nanoCpus, memoryBytes: info.memoryBytes ?? d.resources.memoryBytes },
              engineVersion: info.engineVersion ?? d.engineVersion,
            }
          : d;
        if (JSON.stringify(status) === JSON.stringify(n.status) && JSON.stringify(description) === JSON.stringify(d)) return [];
        return [{ op: 'update', kind: 'node', object: { ...n, status, description, updatedAt: this.now() }, expectVersion: n.version }];
      },
      { retries: 5, timeoutMs: 5_000, optimistic: true },
    );
  }

  /** Marks down every ready node whose heartbeats stopped. */
  private async check(): Promise<void> {
    if (!this.duty.leading || this.checking) return;
    const now = this.now();
    if (now < this.graceUntil) return;
    this.checking = true;
    try {
      const limit = this.period() * this.downAfter();
      for (const n of this.store.list('node')) {
        if (n.status.state !== 'ready') continue;
        const s = this.sessions.get(n.id);
        const suspectTooLong = !!s && s.suspectSince > 0 && now - s.suspectSince > this.period();
        if (s && now - s.lastBeat <= limit && !suspectTooLong) continue;
        // Judged by this leader only: a deposed one (e.g. paused, its sessions stale) stops here.
        if (!this.duty.leading) break;
        this.log.warn({ node: n.id, hostname: n.description.hostname, connectionLost: suspectTooLong }, 'node missed its heartbeats: marking it down');
        this.sessions.delete(n.id);
        await this.client
          .update(
            (store) => {
              const cur = store.get('node', n.id);
              if (!cur || cur.status.state !== 'ready') return [];
              const status = { ...cur.status, state: 'down' as const, message: 'heartbeat failure' };
              return [{ op: 'update', kind: 'node', object: { ...cur, status, updatedAt: this.now() }, expectVersion: cur.version }];
            },
            { retries: 3, timeoutMs: 5_000, optimistic: true, leaderOnly: true },
          )
          .catch((err: Error) => this.log.warn({ node: n.id, err: err.message }, 'could not mark the node down'));
      }
    } finally {
      this.checking = false;
    }
  }
}
