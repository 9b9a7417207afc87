// Manager membership: joining nodes (join tokens), promotion, demotion and removal of managers,
// and the cluster status view. Raft membership changes are made on the leader, one at a time;
// changes that would leave the managers without a reachable majority are refused unless forced.

import { ShoalError } from '@shoal/api';
import type { RaftNode } from '@shoal/raft';
import { type ClusterStore, type StoreClient, newId } from '@shoal/store';
import type { Node } from '@shoal/store';
import { parseJoinToken } from './ca/tokens.js';
import { signCsr } from '@shoal/pki';
import type { Logger } from '@shoal/raft';

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

const ADDR_RE = /^[a-zA-Z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;

export class MembershipManager {
  private promotions = new Set<string>();

  constructor(
    private readonly raft: RaftNode,
    private readonly store: ClusterStore,
    private readonly client: StoreClient,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
  ) {}

  /** Leader only (the gRPC layer forwards to the leader). */
  async join(req: JoinRequest, ca: { certPem: string; keyPem: string }): Promise<JoinResponse> {
    const { fingerprint, secret } = parseJoinToken(req.token ?? '');
    const hostname = (req.hostname ?? '').trim();
    if (!hostname) throw new ShoalError('INVALID_ARGUMENT', 'a joining node must give its hostname');
    const addr = req.addr ?? '';
    if (!ADDR_RE.test(addr)) throw new ShoalError('INVALID_ARGUMENT', `invalid node address "${addr}": want host:port`);
    const availability = req.availability || 'active';
    if (!['active', 'pause', 'drain'].includes(availability)) throw new ShoalError('INVALID_ARGUMENT', `invalid availability ${availability}`);
    await this.client.read({ timeoutMs: 5_000 });
    const cluster = this.store.cluster();
    if (!cluster) throw new ShoalError('UNAVAILABLE', 'the cluster is not initialized yet');
    if (fingerprint !== cluster.caFingerprint) {
      throw new ShoalError('PERMISSION_DENIED', 'the join token is for a different cluster (its CA fingerprint does not match)');
    }
    let role: 'worker' | 'manager';
    if (`SWMTKN-1-${fingerprint}-${secret}` === cluster.joinTokens.manager) role = 'manager';
    else if (`SWMTKN-1-${fingerprint}-${secret}` === cluster.joinTokens.worker) role = 'worker';
    else throw new ShoalError('PERMISSION_DENIED', 'invalid join token (it may have been rotated)');

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
      status: { state: 'unknown', message: 'joining', addr, meshAddr: '', meshErrors: [] },
      managerStatus: role === 'manager' ? { raftId: id, addr } : null,
    };
    await this.client.commit([{ op: 'create', kind: 'node', object: node }], { timeoutMs: 5_000 });
    if (role === 'manager') {
      await this.raft.addLearner(id, addr);
      this.promoteWhenCaughtUp(id, addr);
    }
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

  /** A learner becomes a voter once it has caught up (addVoter waits for that). */
  private promoteWhenCaughtUp(id: string, addr: string): void {
    if (this.promotions.has(id)) return;
    this.promotions.add(id);
    void this.raft
      .addVoter(id, addr, 120_000)
      .then(() => this.log.info({ node: id }, 'manager promoted to raft voter'))
      .catch((err: Error) => this.log.warn({ node: id, err: err.message }, 'could not promote the new manager'))
      .finally(() => this.promotions.delete(id));
  }

  /** Voters the leader has heard from recently (itself included). */
  private reachableVoters(): { voters: string[]; reachable: Set<string> } {
    const st = this.raft.status();
    const voters = st.conf.voters.map((m) => m.id);
    const reachable = new Set<string>([st.id]);
    for (const [id, p] of Object.entries(st.progress)) if (p.recentActive) reachable.add(id);
    return { voters, reachable };
  }

  /** Refuses a voter removal that would leave no reachable majority. */
  private checkQuorumAfterRemoving(id: string): void {
    const { voters, reachable } = this.reachableVoters();
    if (!voters.includes(id)) return;
    const remaining = voters.filter((v) => v !== id);
    if (remaining.length === 0) throw new ShoalError('FAILED_PRECONDITION', 'cannot remove the last manager');
    const up = remaining.filter((v) => reachable.has(v)).length;
    const need = Math.floor(remaining.length / 2) + 1;
    if (up < need) {
      throw new ShoalError(
        'FAILED_PRECONDITION',
        `removing this manager would leave ${up} reachable of ${remaining.length} managers, below the quorum of ${need}`,
      );
    }
  }

  reachability(id: string): string {
    const st = this.raft.status();
    if (st.role === 'leader') return st.progress[id]?.recentActive ? 'reachable' : 'unreachable';
    return '';
  }

  /**
   * A worker becomes a manager: the store records the role and its manager address, Raft takes it
   * in as a learner (a voter once caught up), and the node's daemon, told by its next heartbeat,
   * stops its worker stub and starts its manager on its address.
   */
  async promote(n: Node): Promise<void> {
    if (n.spec.role === 'manager') throw new ShoalError('FAILED_PRECONDITION', `node ${n.description.hostname} is already a manager`);
    const addr = n.status.addr;
    if (!addr) throw new ShoalError('FAILED_PRECONDITION', `node ${n.description.hostname} has not told the cluster its address yet: try again once it is ready`);
    await this.client.update(
      (store) => {
        const cur = store.get('node', n.id) as Node | undefined;
        if (!cur) throw new ShoalError('NOT_FOUND', `no such node: ${n.id}`);
        return [
          {
            op: 'update',
            kind: 'node',
            object: { ...cur, spec: { ...cur.spec, role: 'manager' }, managerStatus: { raftId: cur.id, addr }, updatedAt: this.now() },
            expectVersion: cur.version,
          },
        ];
      },
      { retries: 5, timeoutMs: 5_000 },
    );
    const conf = this.raft.status().conf;
    if (![...conf.voters, ...conf.learners].some((m) => m.id === n.id)) await this.raft.addLearner(n.id, addr);
    this.promoteWhenCaughtUp(n.id, addr);
  }

  async demote(n: Node, force = false): Promise<void> {
    if (n.spec.role !== 'manager') throw new ShoalError('FAILED_PRECONDITION', `node ${n.description.hostname} is not a manager`);
    const conf = this.raft.status().conf;
    const member = [...conf.voters, ...conf.learners].some((m) => m.id === n.id);
    if (member) {
      if (!force) this.checkQuorumAfterRemoving(n.id);
      if (n.id === this.raft.id) {
        // The leader demoting itself hands leadership over first; the new leader finishes.
        await this.raft.transferLeadership();
        throw new ShoalError('UNAVAILABLE', 'leadership moved to another manager: run the command again');
      }
      await this.raft.removeMember(n.id);
    }
    await this.client.update(
      (store) => {
        const cur = store.get('node', n.id) as Node | undefined;
        if (!cur) throw new ShoalError('NOT_FOUND', `no such node: ${n.id}`);
        return [
          {
            op: 'update',
            kind: 'node',
            object: { ...cur, spec: { ...cur.spec, role: 'worker' }, managerStatus: null, updatedAt: this.now() },
            expectVersion: cur.version,
          },
        ];
      },
      { retries: 5, timeoutMs: 5_000 },
    );
  }

  async remove(n: Node, force: boolean): Promise<void> {
    if (n.spec.role === 'manager' || n.managerStatus) {
      if (!force) {
        throw new ShoalError('FAILED_PRECONDITION', `node ${n.description.hostname} is a manager: demote it first (or use --force)`);
      }
      await this.demote(n, true);
    } else if (n.status.state === 'ready' && !force) {
      throw new ShoalError('FAILED_PRECONDITION', `node ${n.description.hostname} is not down: stop it first (or use --force)`);
    }
    await this.client.update(
      (store) => {
        const cur = store.get('node', n.id) as Node | undefined;
        if (!cur) throw new ShoalError('NOT_FOUND', `no such node: ${n.id}`);
        // Its certificate stays in date: every manager refuses the id from now on.
        const c = store.cluster();
        const removed = c && !c.removedNodes.includes(cur.id)
          ? [{ op: 'update' as const, kind: 'cluster' as const, object: { ...c, removedNodes: [...c.removedNodes, cur.id], updatedAt: this.now() }, expectVersion: c.version }]
          : [];
        return [{ op: 'delete', kind: 'node', id: cur.id, expectVersion: cur.version }, ...removed];
      },
      { retries: 5, timeoutMs: 5_000 },
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
    return { clusterId, leader: st.leader, term: st.term, members: rows, self: this.raft.id };
  }
}

