// The dispatcher: node sessions and heartbeats, on the leader only. A node that misses
// `nodeDownAfterBeats` heartbeat periods is marked down; a node that opens a session again is
// ready. A new leader gives every node a grace of that many periods before judging it, so an
// election never marks a healthy node down (the failure of moby/moby#32218).
// A node's long poll dropped by its connection (its process died) marks it down after a single
// period, unless the node said goodbye first (Disconnect: shoald stopping, usually to restart,
// its containers still running): then it gets the usual `nodeDownAfterBeats` periods to return.
// Liveness is timed on this manager's monotonic clock: a step of its wall clock (NTP, a VM
// resumed) or an agent's wrong clock changes nothing.
// Assignments and the mesh view are long-polled diffs from views kept up to date from the store
// (AssignmentView, MeshIndex), sent in pages that fit a message; the agent hides the paging.
//
// Built for thousands of nodes: a heartbeat costs O(1) and no store write (a node's state is
// written only when it changes, and the nodes to mark down are found by one sweep over the nodes
// per half period, then marked in one transaction, so the orchestrator replaces their tasks in one
// pass). Each heartbeat is answered with the period plus a random epsilon (session-timing.ts), so
// nodes do not beat in step; the judgement allows for it. Session calls are bounded (SessionGate):
// after a leader change every node comes at once, and those beyond the bound are told when to
// retry; a node is not judged while the dispatcher is turning sessions away.

import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ShoalError } from '@shoal/api';
import type { Logger } from '@shoal/api';
import type { RaftNode } from '@shoal/raft';
import type { ClusterStore, Node, Op, StoreClient, Task } from '@shoal/store';
import { jsonBytes, updateOp } from '@shoal/store';
import type { LeaderComponent } from '../leader-duty.js';
import type { RegistryAuthVault } from '../registry-auth.js';
import type { SecretVault } from '../secret-vault.js';
import { taskFilesOf } from './task-files.js';
import { AssignmentView } from './assignment-view.js';
import { type Cursor, type Page, decodeCursor, encodeCursor } from './change-log.js';
import { LongPolls } from './long-polls.js';
import { MeshIndex, type MeshBackendEntry, type MeshPortEntry } from './mesh-index.js';
import { NetworkIndex } from './network-index.js';
import { MIN_RETRY_AFTER_MS, SessionGate } from './session-gate.js';
import { type StatusReport, StatusBatcher } from './status-batcher.js';
import type { IngressNode, NetworkEndpoint, NetworkService, NetworkViewPage, OverlayNetworkInfo } from '@shoal/types';
import { HEARTBEAT_JITTER, RETRY_AFTER_DETAIL, reconnectSpreadMs } from '@shoal/types';

/** A long-polled view's request (MeshViewRequest, NetworkViewRequest). */
interface ViewRequest {
  nodeId?: string;
  sessionId?: string;
  known?: string;
  waitMs?: number;
}

/** The gRPC call of a long poll, as far as it is watched (its client may give up). */
interface PollCall {
  on(ev: 'cancelled', f: () => void): void;
}

export interface NodeInfo {
  hostname?: string;
  os?: string;
  arch?: string;
  nanoCpus?: number;
  memoryBytes?: number;
  engineVersion?: string;
  error?: string;
  /** Trouble worth showing that leaves the node ready (its engine failing to answer of late). */
  condition?: string;
  addr?: string;
  /** The node's routing-mesh forwarding address (host:port). */
  meshAddr?: string;
}

/** The size of one page of a long poll's answer: well under the 4 MiB message limit. */
export const PAGE_BYTES = 1 << 20;
/** Nodes marked down per transaction at most (and ~256 KiB of them: a node may carry mesh errors). */
const DOWN_PER_TX = 500;
const DOWN_TX_BYTES = 256 << 10;
/** Session calls handled at once by default (the rest are told to retry: SessionGate). */
export const DEFAULT_SESSION_LIMIT = 64;
/** How long the list of managers sent with every heartbeat is reused (Raft's status is not free). */
const MANAGERS_TTL_MS = 1_000;

export interface DispatcherOptions {
  /** Session calls handled at once (default DEFAULT_SESSION_LIMIT). */
  sessionLimit?: number;
  /** Draws the heartbeat epsilon and the retry hints (default Math.random). */
  random?: () => number;
  /** false: no timer runs sweep() (a test calls it on its own clock); default true. */
  sweepTimer?: boolean;
}

/** What the dispatcher has done since it was made (tests, diagnostics, benchmarks). */
export interface DispatcherStats {
  /** Sessions open now. */
  sessions: number;
  heartbeats: number;
  sessionsOpened: number;
  /** Session calls refused by the bound (told to retry). */
  sessionsRefused: number;
  /** Nodes this dispatcher marked down for missed heartbeats. */
  markedDown: number;
  /** Store writes of node status from sessions and heartbeats (not the marking down). */
  statusWrites: number;
  /** Transactions that stored task status reports (of all nodes together). */
  reportTransactions: number;
  /** Tasks sent to nodes in answers to their assignment polls (each task in an answer counted). */
  assignmentsSent: number;
}

/** This manager's monotonic clock, in ms: liveness must not follow steps of the wall clock. */
export const monotonicMs = (): number => performance.now();

interface SessionState {
  sessionId: string;
  lastBeat: number;
  error: string;
  condition: string;
  /**
   * When the node's long poll was cut off by its connection dropping (its process died, its host
   * went away): unless it calls again within one heartbeat period, it is down. 0: not suspect.
   */
  suspectSince: number;
  /** The node said goodbye (Disconnect): a dropped long poll is expected, not a failure sign. */
  leaving: boolean;
  /** Published ports the node's mesh cannot serve, as last reported (stored on change). */
  meshErrors: string;
  meshMode: string;
}

const DEFAULT_PERIOD_MS = 1_000;
const DEFAULT_DOWN_AFTER = 3;
/** How long after becoming leader (in silence limits) arriving sessions still extend the grace. */
const SETTLE_GRACES = 6;

/** The mesh modes a node may report (NodeStatus.mesh_mode); anything else is stored as ''. */
const MESH_MODES = new Set(['userland', 'kernel', 'kernel+ingress']);

export class Dispatcher implements LeaderComponent {
  private sessions = new Map<string, SessionState>();
  /** Nodes judged only after this time (set when this manager becomes leader). */
  private graceUntil = 0;
  /** Until then, each session opened extends the grace (the nodes of the old leader still arriving). */
  private settleUntil = 0;
  /** When sweep() last ran (0: not since this manager became leader). */
  private lastCheckAt = 0;
  private timer: NodeJS.Timeout | undefined;
  /** Between begin() and end(): this manager leads (the manager's LeaderDuty says when). */
  private leading = false;
  private checking = false;
  private readonly polls = new LongPolls();
  private readonly assigned: AssignmentView;
  private readonly mesh: MeshIndex;
  private readonly networks: NetworkIndex;
  private readonly gate: SessionGate;
  private readonly reports: StatusBatcher;
  private readonly random: () => number;
  private readonly sweepTimer: boolean;
  private managersCache: { at: number; list: { nodeId: string; addr: string }[] } | undefined;
  private counts = { heartbeats: 0, sessionsOpened: 0, markedDown: 0, statusWrites: 0, assignmentsSent: 0 };

  constructor(
    private readonly raft: RaftNode,
    private readonly store: ClusterStore,
    private readonly client: StoreClient,
    private readonly log: Logger,
    /** Opens the registry credentials of a node's tasks (absent: none are sent). */
    private readonly registryAuth?: RegistryAuthVault,
    /** Times liveness (heartbeats, grace, suspicion); stored timestamps use the wall clock. */
    private readonly now: () => number = monotonicMs,
    /** Opens the secrets of a node's tasks (absent: none are sent). */
    private readonly secrets?: SecretVault,
    opts: DispatcherOptions = {},
  ) {
    this.random = opts.random ?? Math.random;
    this.sweepTimer = opts.sweepTimer ?? true;
    this.gate = new SessionGate(Math.max(1, opts.sessionLimit ?? DEFAULT_SESSION_LIMIT), this.random);
    this.reports = new StatusBatcher(client);
    // Kept on every manager (not only the leader's): a new leader answers the nodes' cursors at once.
    this.assigned = new AssignmentView(store, (nodes) => {
      for (const n of nodes) this.polls.wake(`${n}/assignments`);
    });
    this.mesh = new MeshIndex(store, () => {
      for (const n of this.sessions.keys()) this.polls.wake(`${n}/mesh`);
    });
    this.networks = new NetworkIndex(store, () => {
      for (const n of this.sessions.keys()) this.polls.wake(`${n}/net`);
    });
  }

  private period(): number {
    return this.store.cluster()?.spec.heartbeatPeriodMs || DEFAULT_PERIOD_MS;
  }

  private downAfter(): number {
    return this.store.cluster()?.spec.nodeDownAfterBeats || DEFAULT_DOWN_AFTER;
  }

  /** The period a heartbeat answer asks for: the cluster's, plus a random epsilon. */
  private jitteredPeriod(): number {
    const p = this.period();
    return p + Math.floor(this.random() * p * HEARTBEAT_JITTER);
  }

  /**
   * How long a node may be silent before it is down: `nodeDownAfterBeats` periods, plus the
   * largest epsilon its last answer may have added to its next beat.
   */
  private silenceLimit(): number {
    const p = this.period();
    return p * this.downAfter() + p * HEARTBEAT_JITTER;
  }

  /** No node is judged before `now + silenceLimit()` (a new leader; a stall; sessions refused). */
  private holdJudgement(extraMs = 0): void {
    this.graceUntil = Math.max(this.graceUntil, this.now() + this.silenceLimit() + extraMs);
  }

  stats(): DispatcherStats {
    return { sessions: this.sessions.size, sessionsRefused: this.gate.refused, reportTransactions: this.reports.transactions, ...this.counts };
  }

  begin(): void {
    this.leading = true;
    this.sessions.clear();
    this.managersCache = undefined;
    this.graceUntil = 0;
    // Every node lost its session with the old leader and waits up to reconnectSpreadMs before
    // opening one here: the grace covers that too.
    this.holdJudgement(reconnectSpreadMs(this.period()));
    // With thousands of nodes, their return can take longer than that grace (the handshakes of
    // a thousand hosts at once, on this manager and on theirs): while they keep arriving, those
    // not back yet are most likely on their way. Judged a silence after the last arrival, within
    // a bound, so a host that died with the leader is still marked down.
    this.settleUntil = this.now() + SETTLE_GRACES * this.silenceLimit();
    this.lastCheckAt = 0;
    if (this.sweepTimer) {
      this.timer = setInterval(() => void this.sweep(), Math.max(50, this.period() / 2));
      this.timer.unref();
    }
  }

  end(): void {
    this.leading = false;
    this.sessions.clear();
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    // Waiting long polls answer now (NOT_LEADER): their agents move on to the new leader.
    this.polls.endAll();
    // Reports not yet proposed: their agents send them again to the new leader.
    this.reports.cancel(new ShoalError('NOT_LEADER', 'this manager is no longer the leader', { details: { leader: this.raft.leaderId(), leaderAddr: this.raft.leaderAddr() ?? '' } }));
  }

  stop(): void {
    this.end();
    this.assigned.stop();
    this.mesh.stop();
    this.networks.stop();
    this.polls.endAll();
  }

  private requireLeader(): void {
    // A leader short of its read barrier would hand out assignments from a store that lacks the
    // newest tasks, and the agent removes the containers no assignment claims: nodes wait for it.
    if (this.leading) return;
    const leaderAddr = this.raft.leaderAddr() ?? '';
    const why = this.raft.isLeader() ? 'this manager has just become the leader and is still catching up' : 'this manager is not the leader';
    const details: Record<string, string> = { leader: this.raft.leaderId(), leaderAddr };
    // No leader to name (an election): every node asking would otherwise come back within 100 ms,
    // again and again, while the managers need their time to elect one.
    if (!leaderAddr) details[RETRY_AFTER_DETAIL] = String(Math.round(MIN_RETRY_AFTER_MS + this.random() * reconnectSpreadMs(this.period())));
    throw new ShoalError('NOT_LEADER', why, { details });
  }

  private managers(): { nodeId: string; addr: string }[] {
    const now = this.now();
    if (!this.managersCache || now - this.managersCache.at >= MANAGERS_TTL_MS) {
      const conf = this.raft.status().conf;
      this.managersCache = { at: now, list: conf.voters.map((m) => ({ nodeId: m.id, addr: m.addr })) };
    }
    return this.managersCache.list;
  }

  async session(req: { nodeId?: string; info?: NodeInfo | null }) {
    this.requireLeader();
    const nodeId = req.nodeId ?? '';
    const info = req.info ?? {};
    const node = this.store.get('node', nodeId);
    if (!node) throw new ShoalError('PERMISSION_DENIED', `unknown node ${nodeId || '(empty)'}: it must join the cluster first`);
    const open = () => {
      const s: SessionState = {
        sessionId: randomBytes(12).toString('hex'),
        lastBeat: this.now(),
        error: info.error ?? '',
        condition: info.condition ?? '',
        suspectSince: 0,
        leaving: false,
        meshErrors: JSON.stringify(node.status.meshErrors ?? []),
        meshMode: node.status.meshMode,
      };
      this.sessions.set(nodeId, s);
      this.counts.sessionsOpened++;
      if (this.now() < this.settleUntil) this.holdJudgement();
      return { sessionId: s.sessionId, heartbeatPeriodMs: this.period(), managers: this.managers() };
    };
    // A node back with nothing new (the usual case after a leader change) costs a map entry.
    if (!nodeStatusChange(node, info.error ?? '', info.condition ?? '', info)) return open();
    // One whose state must be written holds a Raft proposal: those are bounded. Nodes turned
    // away are not judged until they could have come back.
    if (this.gate.busy >= this.gate.limit) this.holdJudgement(reconnectSpreadMs(this.period()));
    return this.gate.run(reconnectSpreadMs(this.period()), async () => {
      const answer = open();
      await this.setStatus(nodeId, info.error ?? '', info.condition ?? '', info);
      return answer;
    });
  }

  async heartbeat(req: { nodeId?: string; sessionId?: string; error?: string; condition?: string; meshErrors?: string[]; meshMode?: string }) {
    const s = this.checkSession(req.nodeId, req.sessionId);
    s.lastBeat = this.now();
    s.suspectSince = 0;
    this.counts.heartbeats++;
    const error = req.error ?? '';
    const condition = String(req.condition ?? '').slice(0, 1000);
    const meshErrors = (req.meshErrors ?? []).map((e) => String(e).slice(0, 1000)).slice(0, 100);
    const meshMode = MESH_MODES.has(req.meshMode ?? '') ? req.meshMode! : '';
    const meshChanged = JSON.stringify(meshErrors) !== s.meshErrors || meshMode !== s.meshMode;
    const node = this.store.get('node', req.nodeId!);
    // The node was marked down while its new session opened (a sweep already under way): its
    // beats put it right.
    const drifted = !!node && node.status.state !== (error ? 'down' : 'ready');
    if (error !== s.error || condition !== s.condition || meshChanged || drifted) {
      s.error = error;
      s.condition = condition;
      s.meshErrors = JSON.stringify(meshErrors);
      s.meshMode = meshMode;
      await this.setStatus(req.nodeId!, error, condition, undefined, meshErrors, meshMode);
    }
    return { heartbeatPeriodMs: this.jitteredPeriod(), managers: this.managers(), role: node?.spec.role ?? '' };
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
   * The node's assignments: every task the store places on it, old ones included (the agent runs
   * those meant to run, stops those that no longer are, and keeps the exited containers of old
   * tasks, as Swarm does, until their task is pruned). Answered as what changed since the node's
   * cursor `known` (everything, with `reset`, when it has none or an expired one), at once if the
   * node has something to act on, else when it does or after waitMs; `more`: ask again at once.
   */
  async assignments(req: { nodeId?: string; sessionId?: string; known?: string; waitMs?: number }, call?: { on(ev: 'cancelled', f: () => void): void }) {
    const session = this.checkSession(req.nodeId, req.sessionId);
    session.suspectSince = 0;
    const nodeId = req.nodeId!;
    // Fast failure detection: a long poll cancelled by its connection dropping is the first sign
    // of a dead node, well before its heartbeats are missed.
    let answered = false;
    const cancelled: (() => void)[] = [];
    call?.on('cancelled', () => {
      for (const f of cancelled) f();
      if (!answered && !session.leaving && this.sessions.get(nodeId) === session) session.suspectSince = this.now();
    });
    const cursor = decodeCursor(req.known);
    await this.polls.wait(`${nodeId}/assignments`, { waitMs: Number(req.waitMs ?? 0), onCancel: (f) => cancelled.push(f) }, () =>
      this.assigned.hasNews(nodeId, cursor),
    );
    answered = true;
    this.checkSession(nodeId, req.sessionId);
    const p = this.assigned.page(nodeId, cursor, PAGE_BYTES);
    const tasks = p.upserts.map((u) => u.value);
    this.counts.assignmentsSent += tasks.length;
    return {
      token: encodeCursor(p.cursor),
      tasks,
      removed: p.deletes,
      reset: p.reset,
      more: p.more,
      registryAuths: this.registryAuthsOf(tasks),
      ...taskFilesOf(this.store, tasks, this.secrets, this.log),
    };
  }

  /**
   * The registry credentials of the tasks in a node's answer that are to run (a task's image is
   * pulled on its way to running): opened here, for this node alone (its assignments, over its
   * mutual-TLS session), from the spec the store holds sealed. The task messages never carry them.
   */
  private registryAuthsOf(tasks: readonly Task[]): Record<string, string> {
    const out: Record<string, string> = {};
    for (const t of tasks) {
      if (!t.spec.registryAuth || t.desiredState !== 'running' || !this.registryAuth) continue;
      try {
        out[t.id] = this.registryAuth.open(t.serviceId, t.spec.registryAuth);
      } catch (err) {
        // The task then pulls without them (and says why if the registry wants them).
        this.log.warn({ task: t.id, service: t.serviceId, err: (err as Error).message }, "cannot open a service's registry credentials");
      }
    }
    return out;
  }

  /**
   * What every node's routing mesh serves (each published ingress port, the running tasks of its
   * service on ready nodes and where to reach them, the removed nodes), long-polled as diffs like
   * assignments. Entries are keyed `p:PORT`, `b:TASKID`, `r:NODEID`; `deleted` lists those gone.
   */
  async meshView(req: ViewRequest, call?: PollCall) {
    const p = await this.viewPage(req, call, 'mesh', this.mesh);
    const ports: MeshPortEntry[] = [];
    const backends: MeshBackendEntry[] = [];
    const removedNodes: string[] = [];
    for (const { value } of p.upserts) {
      if ('port' in value) ports.push(value.port);
      else if ('backend' in value) backends.push(value.backend);
      else removedNodes.push(value.removedNode);
    }
    return { token: encodeCursor(p.cursor), ports, backends, removedNodes, deleted: p.deletes, reset: p.reset, more: p.more };
  }

  /**
   * What every node's overlay data plane needs (each network's allocation, the services on
   * networks with their VIPs and aliases, their running tasks' addresses and nodes' underlay
   * addresses), long-polled as diffs like the mesh view. Keys `n:`, `s:`, `e:`.
   */
  async networkView(req: ViewRequest, call?: PollCall): Promise<NetworkViewPage> {
    const p = await this.viewPage(req, call, 'net', this.networks);
    const networks: OverlayNetworkInfo[] = [];
    const services: NetworkService[] = [];
    const endpoints: NetworkEndpoint[] = [];
    const ingressNodes: IngressNode[] = [];
    for (const { value } of p.upserts) {
      if ('network' in value) networks.push(value.network);
      else if ('service' in value) services.push(value.service);
      else if ('endpoint' in value) endpoints.push(value.endpoint);
      else ingressNodes.push(value.ingressNode);
    }
    return { token: encodeCursor(p.cursor), networks, services, endpoints, ingressNodes, deleted: p.deletes, reset: p.reset, more: p.more };
  }

  /** A view's next page for a node, once it has news since the node's cursor (or the wait ran out). */
  private async viewPage<V>(req: ViewRequest, call: PollCall | undefined, name: string, view: { hasNews(c: Cursor | undefined): boolean; page(c: Cursor | undefined, budget: number): Page<V> }): Promise<Page<V>> {
    this.checkSession(req.nodeId, req.sessionId);
    const cancelled: (() => void)[] = [];
    call?.on('cancelled', () => {
      for (const f of cancelled) f();
    });
    const cursor = decodeCursor(req.known);
    await this.polls.wait(`${req.nodeId}/${name}`, { waitMs: Number(req.waitMs ?? 0), onCancel: (f) => cancelled.push(f) }, () => view.hasNews(cursor));
    this.checkSession(req.nodeId, req.sessionId);
    return view.page(cursor, PAGE_BYTES);
  }

  /** Long polls waiting for a node (tests, diagnostics). */
  waitingPolls(nodeId: string): number {
    return this.polls.count(`${nodeId}/assignments`) + this.polls.count(`${nodeId}/mesh`) + this.polls.count(`${nodeId}/net`);
  }

  /**
   * The agent's reports, stored with those of other nodes that arrive meanwhile, in transactions
   * of a bounded size (StatusBatcher). A status is stamped with this manager's time, not the
   * agent's: a node's wrong clock must not move restart delays or update monitors.
   */
  async updateTaskStatus(req: { nodeId?: string; sessionId?: string; updates?: StatusReport[] }) {
    this.checkSession(req.nodeId, req.sessionId);
    return { rejected: await this.reports.submit(req.nodeId!, req.updates ?? []) };
  }

  /** ready (or down with the node's own reason), plus what the node told us about itself. */
  private async setStatus(nodeId: string, error: string, condition: string, info?: NodeInfo, meshErrors?: string[], meshMode?: string): Promise<void> {
    const changed = (n: Node) => nodeStatusChange(n, error, condition, info, meshErrors, meshMode);
    // Nothing to write, as this leader's store says: no transaction and no read barrier either (a
    // node's status is written by the leader's dispatcher, whose writes are applied here before
    // they return, and by a manager marking itself ready, which it means too; a leader begins only
    // once it has applied every earlier term's writes).
    // 2,000 nodes opening sessions with a new leader then cost it no Raft round at all.
    const cur = this.store.get('node', nodeId);
    if (!cur || !changed(cur)) return;
    this.counts.statusWrites++;
    await this.client.update(
      (store) => {
        const n = store.get('node', nodeId);
        const next = n && changed(n);
        return next ? [updateOp('node', next)] : [];
      },
      { retries: 5, timeoutMs: 5_000, optimistic: true },
    );
  }

  /**
   * Marks down every ready node whose heartbeats stopped: one sweep over the nodes, then one
   * transaction for all of them (a few, for very many), so a rack going dark is one change to the
   * orchestrator, and its tasks are replaced in one pass. Runs every half period while leading
   * (tests call it too).
   */
  async sweep(): Promise<void> {
    if (!this.leading) return;
    const now = this.now();
    // This manager stalled (its event loop busy with a huge change, the process paused): the
    // heartbeats sent meanwhile are not read yet. Nodes get the grace of a new leader's.
    if (this.lastCheckAt > 0 && now - this.lastCheckAt > this.period()) {
      this.holdJudgement();
      this.log.warn({ stalledMs: Math.round(now - this.lastCheckAt) }, 'the dispatcher was stalled: no node is judged for a while');
    }
    this.lastCheckAt = now;
    if (this.checking || now < this.graceUntil) return;
    this.checking = true;
    try {
      const limit = this.silenceLimit();
      const period = this.period();
      const silent: Node[] = [];
      for (const n of this.store.list('node')) {
        if (n.status.state !== 'ready') continue;
        const s = this.sessions.get(n.id);
        const suspectTooLong = !!s && s.suspectSince > 0 && now - s.suspectSince > period;
        if (s && now - s.lastBeat <= limit && !suspectTooLong) continue;
        this.log.warn({ node: n.id, hostname: n.description.hostname, connectionLost: suspectTooLong }, 'node missed its heartbeats: marking it down');
        this.sessions.delete(n.id);
        silent.push(n);
      }
      for (const batch of downBatches(silent)) {
        // Judged by this leader only: a deposed one (e.g. paused, its sessions stale) stops here.
        if (!this.leading) break;
        let marked = 0;
        await this.client
          .update(
            (store) => {
              const ops: Op[] = [];
              for (const { id } of batch) {
                const cur = store.get('node', id);
                // (a node that opened a new session meanwhile is back)
                if (!cur || cur.status.state !== 'ready' || this.sessions.has(id)) continue;
                const status = { ...cur.status, state: 'down' as const, message: 'heartbeat failure' };
                ops.push(updateOp('node', { ...cur, status, updatedAt: Date.now() }));
              }
              marked = ops.length;
              return ops;
            },
            { retries: 3, timeoutMs: 5_000, optimistic: true, leaderOnly: true },
          )
          .then(() => (this.counts.markedDown += marked))
          .catch((err: Error) => this.log.warn({ nodes: batch.map((n) => n.id), err: err.message }, 'could not mark the nodes down'));
      }
    } finally {
      this.checking = false;
    }
  }
}

/** The nodes to mark down, in transactions of at most DOWN_PER_TX nodes and ~DOWN_TX_BYTES. */
function downBatches(nodes: readonly Node[]): Node[][] {
  const out: Node[][] = [];
  let cur: Node[] = [];
  let bytes = 0;
  for (const n of nodes) {
    const b = jsonBytes(n);
    if (cur.length > 0 && (cur.length >= DOWN_PER_TX || bytes + b > DOWN_TX_BYTES)) {
      out.push(cur);
      cur = [];
      bytes = 0;
    }
    cur.push(n);
    bytes += b;
  }
  if (cur.length > 0) out.push(cur);
  return out;
}

/**
 * The node as the dispatcher would write it: ready (or down with the node's own reason), plus what
 * the node told about itself; undefined when that changes nothing.
 */
function nodeStatusChange(n: Node, error: string, condition: string, info?: NodeInfo, meshErrors?: string[], meshMode?: string): Node | undefined {
  const status: Node['status'] = {
    state: error ? 'down' : 'ready',
    message: error || condition,
    addr: info?.addr || n.status.addr,
    meshAddr: info?.meshAddr ?? n.status.meshAddr,
    meshErrors: meshErrors ?? n.status.meshErrors,
    meshMode: meshMode ?? n.status.meshMode,
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
  if (JSON.stringify(status) === JSON.stringify(n.status) && JSON.stringify(description) === JSON.stringify(d)) return undefined;
  return { ...n, status, description, updatedAt: Date.now() };
}
