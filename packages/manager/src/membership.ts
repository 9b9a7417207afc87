// Manager membership: joining nodes (join tokens), promotion, demotion and removal of managers,
// and the cluster status view. These record the roles in the store; the leader's reconciler
// (membership-reconciler.ts) makes Raft's configuration follow. Demotions that would leave the
// managers without a reachable majority are refused unless forced.

import { performance } from 'node:perf_hooks';
import { ShoalError } from '@shoal/api';
import type { RaftNode } from '@shoal/raft';
import { type ClusterStore, type StoreClient, newId, deleteOp, updateOp } from '@shoal/store';
import type { Node } from '@shoal/store';
import { type ParsedToken, parseJoinToken, roleOfToken, safeEqual } from '@shoal/pki';
import { JOINING_MESSAGE, type MembershipReconciler, storeManagers } from './membership-reconciler.js';
import { reachableMembers, removalKeepsQuorum } from './membership-plan.js';
import { withRemovedNode } from './removed-nodes.js';
import { signCsr } from '@shoal/pki';
import type { Logger } from '@shoal/api';

export interface JoinRequest {
  token?: string;
  hostname?: string;
  addr?: string;
  availability?: string;
  os?: string;
  arch?: string;
  csr?: string;
}

export interface JoinResponse {
  nodeId: string;
  clusterId: string;
  role: 'worker' | 'manager';
  caCert: string;
  raftMembers: { id: string; addr: string }[];
  cert: string;
}

/** How long promote and demote wait for Raft to follow the store before answering anyway. */
const SETTLE_MS = 5_000;
/**
 * All the waits of one membership call together (reads, the store write and its retries, Raft
 * settling): a client gives a call 10 s, and a follower passing it on to the leader needs a moment.
 */
export const MEMBERSHIP_CALL_MS = 8_000;
/** How long a follower waits for the leader's view of who is reachable (then shows it unknown). */
const LEADER_STATUS_MS = 1_000;

/** The time left until `until` (a performance.now() deadline), capped at `cap`; UNAVAILABLE once none is left. */
export function timeLeft(until: number, cap: number, what: string): number {
  const left = Math.floor(until - performance.now());
  if (left <= 0) throw new ShoalError('UNAVAILABLE', `${what} did not complete within ${MEMBERSHIP_CALL_MS} ms: the managers are slow or without quorum; try again`);
  return Math.min(cap, left);
}

const ADDR_RE = /^[a-zA-Z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

export class MembershipManager {
  constructor(
    private readonly raft: RaftNode,
    private readonly store: ClusterStore,
    private readonly client: StoreClient,
    private readonly log: Logger,
    private readonly reconciler: MembershipReconciler,
    /** The fingerprint of the CA this manager's own certificate chains to (no quorum needed). */
    private readonly caFingerprint: string,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * The checks a join token passes before it costs the cluster anything (a quorum read, a
   * forwarded call): its form, and that it names this cluster's CA. Any manager makes them.
   */
  checkJoinToken(token: string | undefined): ParsedToken {
    const parsed = parseJoinToken(token ?? '');
    if (!safeEqual(parsed.fingerprint, this.caFingerprint)) {
      throw new ShoalError('PERMISSION_DENIED', 'the join token is for a different cluster (its CA fingerprint does not match)');
    }
    return parsed;
  }

  /**
   * Leader only (the gRPC layer forwards to the leader). The node object is written here; the
   * reconciler takes a manager into Raft (learner, then voter once caught up) and forgets the node
   * if it never comes up.
   */
  async join(req: JoinRequest, ca: { certPem: string; keyPem: string }): Promise<JoinResponse> {
    const token = this.checkJoinToken(req.token);
    const hostname = (req.hostname ?? '').trim();
    if (!hostname) throw new ShoalError('INVALID_ARGUMENT', 'a joining node must give its hostname');
    const addr = req.addr ?? '';
    if (!ADDR_RE.test(addr)) throw new ShoalError('INVALID_ARGUMENT', `invalid node address "${addr}": want host:port`);
    const availability = req.availability || 'active';
    if (!['active', 'pause', 'drain'].includes(availability)) throw new ShoalError('INVALID_ARGUMENT', `invalid availability ${availability}`);
    await this.client.read({ timeoutMs: 5_000 });
    const cluster = this.store.cluster();
    if (!cluster) throw new ShoalError('UNAVAILABLE', 'the cluster is not initialized yet');
    if (!safeEqual(token.fingerprint, cluster.caFingerprint)) {
      throw new ShoalError('PERMISSION_DENIED', 'the join token is for a different cluster (its CA fingerprint does not match)');
    }
    const role = roleOfToken(token, cluster.joinTokens);
    if (!role) throw new ShoalError('PERMISSION_DENIED', 'invalid join token (it may have been rotated)');

    const id = newId();
    // Signed before anything is stored: a bad CSR leaves the cluster as it was.
    const cert = await signCsr(ca, req.csr ?? '', { nodeId: id, role, clusterId: cluster.id }, cluster.spec.certExpiryMs);
    const now = this.now();
    const node: Node = {
      id,
      version: 0,
      createdAt: now,
      updatedAt: now,
      spec: { role, availability: availability as Node['spec']['availability'], labels: {} },
      description: {
        hostname,
        platform: { os: req.os || 'linux', arch: req.arch || 'x64' },
        resources: { nanoCpus: 0, memoryBytes: 0 },
        engineVersion: '',
      },
      status: { state: 'unknown', message: JOINING_MESSAGE, addr, meshAddr: '', meshErrors: [], meshMode: '' },
      managerStatus: role === 'manager' ? { raftId: id, addr } : null,
      attachments: [],
    };
    await this.client.commit([{ op: 'create', kind: 'node', object: node }], { timeoutMs: 5_000 });
    if (role === 'manager') this.reconciler.kick();
    const conf = this.raft.status().conf;
    return {
      nodeId: id,
      clusterId: cluster.id,
      role,
      caCert: cluster.caCert,
      raftMembers: [...conf.voters, ...conf.learners].filter((m) => m.id !== id).map((m) => ({ id: m.id, addr: m.addr })),
      cert,
    };
  }

  /** Refuses a voter removal that would leave no reachable majority. */
  private checkQuorumAfterRemoving(id: string): void {
    const st = this.raft.status();
    const safe = removalKeepsQuorum(
      st.conf.voters.map((m) => m.id),
      reachableMembers(st.id, st.progress),
      id,
    );
    if (!safe.ok) throw new ShoalError('FAILED_PRECONDITION', safe.why);
  }

  /**
   * Managers' MANAGER STATUS, for one answer: "pending" until Raft has a manager, "learner" while
   * it catches up (it counts for no quorum yet), and for a voter "reachable" or "unreachable" as
   * the leader sees it. A follower cannot know whom the leader hears from, so it asks the leader
   * (one Raft Status call, as Swarm's followers hand such reads to the leader); "" (unknown) when
   * there is no leader or it does not answer in time.
   */
  async reachability(): Promise<(n: Node) => string> {
    const st = this.raft.status();
    let heard: ReadonlySet<string> | undefined;
    if (st.role === 'leader') {
      heard = new Set([st.id, ...Object.entries(st.progress).filter(([, p]) => p.recentActive).map(([id]) => id)]);
    } else if (st.leader) {
      const ls = await this.raft.memberStatus(st.leader, LEADER_STATUS_MS);
      if (ls?.role === 'leader') heard = new Set(ls.recent_active ?? []);
    }
    return (n) => {
      if (!n.managerStatus && n.spec.role !== 'manager') return '';
      if (st.conf.learners.some((m) => m.id === n.id)) return 'learner';
      if (!st.conf.voters.some((m) => m.id === n.id)) return 'pending';
      if (n.id === st.leader) return 'reachable';
      if (!heard) return '';
      return heard.has(n.id) ? 'reachable' : 'unreachable';
    };
  }

  private inRaft(id: string): boolean {
    const conf = this.raft.status().conf;
    return [...conf.voters, ...conf.learners].some((m) => m.id === id);
  }

  /**
   * A worker becomes a manager: the store records the role and its manager address; the
   * reconciler takes it into Raft (a learner, a voter once caught up), now or, should this leader
   * fail first, under the next one. The node's daemon, told by its next heartbeat, stops its
   * worker stub and starts its manager on its address.
   */
  async promote(n: Node, until = performance.now() + MEMBERSHIP_CALL_MS): Promise<void> {
    if (n.spec.role === 'manager') throw new ShoalError('FAILED_PRECONDITION', `node ${n.description.hostname} is already a manager`);
    const addr = n.status.addr;
    if (!addr) throw new ShoalError('FAILED_PRECONDITION', `node ${n.description.hostname} has not told the cluster its address yet: try again once it is ready`);
    await this.client.update(
      (store) => {
        const cur = store.get('node', n.id) as Node | undefined;
        if (!cur) throw new ShoalError('NOT_FOUND', `no such node: ${n.id}`);
        return [updateOp('node', { ...cur, spec: { ...cur.spec, role: 'manager' }, managerStatus: { raftId: cur.id, addr }, updatedAt: this.now() })];
      },
      { retries: 5, timeoutMs: 5_000, budgetMs: timeLeft(until, MEMBERSHIP_CALL_MS, 'the promotion') },
    );
    // Answer once Raft has it (as a learner): the usual case takes a moment; if not, it follows.
    if (!(await this.reconciler.waitFor(() => this.inRaft(n.id), Math.max(0, Math.min(SETTLE_MS, until - performance.now()))))) {
      this.log.warn({ node: n.id }, 'promotion recorded; raft has not taken the node in yet (the leader keeps trying)');
    }
  }

  /**
   * A manager becomes a worker: refused (unless forced) when Raft would be left without a
   * reachable majority; never for the last manager. The store records the role; the reconciler
   * takes the node out of Raft (a leader demoting itself hands leadership over first), and the
   * node's daemon, removed from Raft, carries on as a worker.
   */
  async demote(n: Node, force = false, until = performance.now() + MEMBERSHIP_CALL_MS): Promise<void> {
    if (n.spec.role !== 'manager') throw new ShoalError('FAILED_PRECONDITION', `node ${n.description.hostname} is not a manager`);
    if (this.raft.status().conf.voters.every((m) => m.id === n.id)) {
      throw new ShoalError('FAILED_PRECONDITION', 'cannot remove the last manager');
    }
    if (!force) this.checkQuorumAfterRemoving(n.id);
    await this.client.update(
      (store) => {
        const cur = store.get('node', n.id) as Node | undefined;
        if (!cur) throw new ShoalError('NOT_FOUND', `no such node: ${n.id}`);
        if (cur.spec.role !== 'manager') return [];
        return [updateOp('node', { ...cur, spec: { ...cur.spec, role: 'worker' }, managerStatus: null, updatedAt: this.now() })];
      },
      { retries: 5, timeoutMs: 5_000, budgetMs: timeLeft(until, MEMBERSHIP_CALL_MS, 'the demotion') },
    );
    // This leader leaves Raft only once another leads: it answers once it hands over.
    const left = n.id === this.raft.id ? () => !this.raft.isLeader() : () => !this.inRaft(n.id);
    if (!(await this.reconciler.waitFor(left, Math.max(0, Math.min(SETTLE_MS, until - performance.now()))))) {
      this.log.warn({ node: n.id }, 'demotion recorded; raft has not let the node go yet (the leader keeps trying)');
    }
  }

  async remove(n: Node, force: boolean, until = performance.now() + MEMBERSHIP_CALL_MS): Promise<void> {
    if (n.spec.role === 'manager' || n.managerStatus) {
      if (!force) {
        throw new ShoalError('FAILED_PRECONDITION', `node ${n.description.hostname} is a manager: demote it first (or use --force)`);
      }
      if (n.spec.role === 'manager') await this.demote(n, true, until);
    } else if (n.status.state === 'ready' && !force) {
      throw new ShoalError('FAILED_PRECONDITION', `node ${n.description.hostname} is not down: stop it first (or use --force)`);
    }
    await this.client.update(
      (store) => {
        const cur = store.get('node', n.id) as Node | undefined;
        if (!cur) throw new ShoalError('NOT_FOUND', `no such node: ${n.id}`);
        // Its certificate stays in date: every manager refuses the id from now on.
        const c = store.cluster();
        const removed = c ? [updateOp('cluster', { ...withRemovedNode(c, cur.id, this.now()), updatedAt: this.now() })] : [];
        return [deleteOp('node', cur), ...removed];
      },
      { retries: 5, timeoutMs: 5_000, budgetMs: timeLeft(until, MEMBERSHIP_CALL_MS, 'the removal') },
    );
  }

  async clusterStatus(clusterId: string) {
    const st = this.raft.status();
    const members = [
      ...st.conf.voters.map((m) => ({ ...m, learner: false })),
      ...st.conf.learners.map((m) => ({ ...m, learner: true })),
    ];
    const rows = await Promise.all(
      members.map(async (m) => {
        const s = await this.raft.memberStatus(m.id, 1_000);
        const role = m.learner ? 'learner' : s ? (s.role === 'pre-candidate' ? 'candidate' : s.role) : 'follower';
        return {
          nodeId: m.id,
          addr: m.addr,
          raftRole: role,
          reachable: !!s,
          commitIndex: s ? Number(s.commit) : 0,
          appliedIndex: s ? Number(s.applied) : 0,
        };
      }),
    );
    // Managers the store has and Raft does not yet (the leader's reconciler takes them in): listed
    // too, so a manager is never missing from the status while it waits.
    const inConf = new Set(members.map((m) => m.id));
    const pending = storeManagers(this.store)
      .filter((m) => !inConf.has(m.id))
      .map((m) => ({ nodeId: m.id, addr: m.addr, raftRole: 'pending', reachable: false, commitIndex: 0, appliedIndex: 0 }));
    return { clusterId, leader: st.leader, term: st.term, members: [...rows, ...pending], self: this.raft.id };
  }
}

