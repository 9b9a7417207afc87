// The control API's handlers: each validates its request once, reads through a linearizable
// barrier, and writes through one store transaction (proposed to Raft; a follower's proposal is
// forwarded to the leader by the Raft layer). Every failure is a ShoalError with a code.

import { performance } from 'node:perf_hooks';
import { ShoalError } from '@shoal/api';
import { DEFAULT_ADMIN_CERT_EXPIRY_MS, MAX_CERT_EXPIRY_MS, MIN_CERT_EXPIRY_MS, identityOfPem, signCsr } from '@shoal/pki';
import type { RaftNode } from '@shoal/raft';
import { type ClusterStore, type StoreClient, newId } from '@shoal/store';
import type { Node, Service, ServiceSpec, Task } from '@shoal/store';
import { newJoinToken } from '../ca/tokens.js';
import { rolledBack, specChangesTasks, startedStatus } from '../orchestrator/update-status.js';
import { validateServiceSpec } from './validate.js';
import { taskPage } from './task-pages.js';
import { longestCertValidityMs } from '../removed-nodes.js';
import { MEMBERSHIP_CALL_MS, type MembershipManager, timeLeft } from '../membership.js';

const WRITE_TIMEOUT_MS = 5_000;
const READ_TIMEOUT_MS = 5_000;

export interface ControlContext {
  raft: RaftNode;
  store: ClusterStore;
  client: StoreClient;
  membership: MembershipManager;
  /** The CA's certificate and (unsealed) key, to sign with. */
  ca(): { certPem: string; keyPem: string };
  now(): number;
}

interface ServiceView {
  service: Service;
  running: number;
  desired: number;
}

export class ControlHandlers {
  constructor(private readonly ctx: ControlContext) {}

  /**
   * The store after a read barrier. UNAVAILABLE (worth a retry) until the cluster object is in
   * it: `shoald init` serves this socket a moment before its first commit lands, and a joining
   * manager before it has caught up; an empty answer then would be a wrong one.
   */
  private async read(timeoutMs = READ_TIMEOUT_MS): Promise<ClusterStore> {
    try {
      await this.ctx.client.read({ timeoutMs });
    } catch (err) {
      throw quorumError(err);
    }
    if (!this.ctx.store.cluster()) throw new ShoalError('UNAVAILABLE', 'the cluster is still being initialized: try again in a moment');
    return this.ctx.store;
  }

  private async commit(ops: Parameters<StoreClient['commit']>[0]): Promise<void> {
    try {
      await this.ctx.client.commit(ops, { timeoutMs: WRITE_TIMEOUT_MS });
    } catch (err) {
      throw quorumError(err);
    }
  }

  /** An optimistic read-modify-write (ops carry expectVersion), retried on a version conflict. */
  private async update(fn: Parameters<StoreClient['update']>[0]): Promise<void> {
    try {
      await this.ctx.client.update(fn, { retries: 5, timeoutMs: WRITE_TIMEOUT_MS, optimistic: true });
    } catch (err) {
      throw quorumError(err);
    }
  }

  private serviceView(store: ClusterStore, s: Service): ServiceView {
    const tasks = store.tasksByService(s.id);
    const running = tasks.filter((t) => t.desiredState === 'running' && t.status.state === 'running').length;
    let desired = s.spec.replicas;
    if (s.spec.mode === 'global') desired = tasks.filter((t) => t.desiredState === 'running').length;
    return { service: s, running, desired };
  }

  // ---------------------------------------------------------------- services

  async createService(req: { spec?: Partial<ServiceSpec> | null }): Promise<ServiceView> {
    const spec = validateServiceSpec(req.spec);
    // No read first: the store refuses a duplicate name when it applies the create.
    const now = this.ctx.now();
    const service: Service = { id: newId(), version: 0, createdAt: now, updatedAt: now, spec, previousSpec: null, specVersion: 1, updateStatus: null };
    await this.commit([{ op: 'create', kind: 'service', object: service }]);
    // A committed proposal is applied here before commit() returns: the local copy has it.
    return this.serviceView(this.ctx.store, this.ctx.store.get('service', service.id) as Service);
  }

  async getService(req: { service?: string }): Promise<ServiceView> {
    const store = await this.read();
    return this.serviceView(store, store.resolveService(required(req.service, 'service')));
  }

  async listServices(): Promise<{ services: ServiceView[] }> {
    const store = await this.read();
    const services = (store.list('service') as Service[]).sort((a, b) => a.spec.name.localeCompare(b.spec.name));
    return { services: services.map((s) => this.serviceView(store, s)) };
  }

  async updateService(req: { service?: string; spec?: Partial<ServiceSpec> | null; version?: number }): Promise<ServiceView> {
    const spec = validateServiceSpec(req.spec);
    const store = await this.read();
    const current = store.resolveService(required(req.service, 'service'));
    if (spec.mode !== current.spec.mode) throw new ShoalError('INVALID_ARGUMENT', 'a service\'s mode cannot be changed');
    const expect = req.version ? Number(req.version) : current.version;
    const now = this.ctx.now();
    const rolling = specChangesTasks(current.spec, spec);
    const next: Service = {
      ...current,
      spec,
      previousSpec: current.spec,
      specVersion: current.specVersion + (rolling ? 1 : 0),
      // A change that replaces tasks starts a rolling update (and ends a paused one).
      updateStatus: rolling ? startedStatus('updating', now, 'update in progress') : current.updateStatus,
      updatedAt: now,
    };
    await this.commit([{ op: 'update', kind: 'service', object: next, expectVersion: expect }]);
    return this.serviceView(this.ctx.store, this.ctx.store.get('service', current.id) as Service);
  }

  /**
   * `shoal service rollback` (`docker service rollback`): the previous spec comes back, rolled out
   * as an update is (parallelism, order); the spec it replaces becomes the previous one.
   */
  async rollbackService(req: { service?: string }): Promise<ServiceView> {
    const ref = required(req.service, 'service');
    let id = '';
    await this.update((store) => {
      const s = store.resolveService(ref);
      id = s.id;
      if (!s.previousSpec) throw new ShoalError('FAILED_PRECONDITION', `service ${s.spec.name} has no previous spec to roll back to (it was never updated)`);
      const next = rolledBack({ ...s, previousSpec: s.previousSpec }, this.ctx.now(), 'manually requested rollback');
      return [{ op: 'update', kind: 'service', object: next, expectVersion: s.version }];
    });
    return this.serviceView(this.ctx.store, this.ctx.store.get('service', id) as Service);
  }

  async scaleService(req: { service?: string; replicas?: number }): Promise<ServiceView> {
    const ref = required(req.service, 'service');
    const replicas = Number(req.replicas ?? 0);
    let id = '';
    await this.update(
      (store) => {
        const s = store.resolveService(ref);
        id = s.id;
        if (s.spec.mode === 'global') throw new ShoalError('INVALID_ARGUMENT', `${s.spec.name} is a global service: it cannot be scaled`);
        const spec = validateServiceSpec({ ...s.spec, replicas });
        return [{ op: 'update', kind: 'service', object: { ...s, spec, updatedAt: this.ctx.now() }, expectVersion: s.version }];
      });
    return this.serviceView(this.ctx.store, this.ctx.store.get('service', id) as Service);
  }

  async removeService(req: { service?: string }): Promise<{ id: string }> {
    const store = await this.read();
    const s = store.resolveService(required(req.service, 'service'));
    // Its tasks are shut down and removed by the orchestrator, which watches for the deletion.
    await this.commit([{ op: 'delete', kind: 'service', id: s.id, expectVersion: s.version }]);
    return { id: s.id };
  }

  // ---------------------------------------------------------------- tasks

  /** One page of the tasks (task-pages.ts): callers follow nextPageToken to have them all. */
  async listTasks(req: { service?: string; node?: string; desiredState?: string; pageSize?: number; pageToken?: string }): Promise<{
    tasks: { task: Task; nodeHostname: string }[];
    nextPageToken: string;
  }> {
    const store = await this.read();
    let tasks: Task[];
    if (req.service) tasks = store.tasksByService(store.resolveService(req.service).id);
    else if (req.node) tasks = store.tasksByNode(store.resolveNode(req.node).id);
    else tasks = store.list('task') as Task[];
    if (req.node && req.service) {
      const nodeId = store.resolveNode(req.node).id;
      tasks = tasks.filter((t) => t.nodeId === nodeId);
    }
    if (req.desiredState) tasks = tasks.filter((t) => t.desiredState === req.desiredState);
    const page = taskPage(tasks, Number(req.pageSize ?? 0), req.pageToken ?? '');
    return {
      tasks: page.tasks.map((task) => {
        const node = task.nodeId ? (store.get('node', task.nodeId) as Node | undefined) : undefined;
        return { task, nodeHostname: node?.description.hostname ?? '' };
      }),
      nextPageToken: page.nextPageToken,
    };
  }

  // ---------------------------------------------------------------- nodes

  private nodeView(n: Node) {
    const st = this.ctx.raft.status();
    return { node: n, leader: n.id === st.leader, reachability: this.ctx.membership.reachability(n) };
  }

  async listNodes(): Promise<{ nodes: ReturnType<ControlHandlers['nodeView']>[] }> {
    const store = await this.read();
    const nodes = (store.list('node') as Node[]).sort((a, b) => a.description.hostname.localeCompare(b.description.hostname) || a.id.localeCompare(b.id));
    return { nodes: nodes.map((n) => this.nodeView(n)) };
  }

  async getNode(req: { node?: string }) {
    const store = await this.read();
    return { node: this.nodeView(store.resolveNode(required(req.node, 'node'))) };
  }

  async updateNode(req: { node?: string; availability?: string; labelAdd?: Record<string, string>; labelRm?: string[] }) {
    const ref = required(req.node, 'node');
    const availability = req.availability || '';
    if (availability && !['active', 'pause', 'drain'].includes(availability)) {
      throw new ShoalError('INVALID_ARGUMENT', `availability must be active, pause or drain, not ${availability}`);
    }
    for (const k of Object.keys(req.labelAdd ?? {})) if (!k) throw new ShoalError('INVALID_ARGUMENT', 'a label key must not be empty');
    let id = '';
    await this.update(
      (store) => {
        const n = store.resolveNode(ref);
        id = n.id;
        const labels = { ...n.spec.labels, ...(req.labelAdd ?? {}) };
        for (const k of req.labelRm ?? []) {
          if (!(k in labels)) throw new ShoalError('NOT_FOUND', `node ${n.description.hostname} has no label ${k}`);
          delete labels[k];
        }
        const spec = { ...n.spec, labels, availability: (availability || n.spec.availability) as Node['spec']['availability'] };
        return [{ op: 'update', kind: 'node', object: { ...n, spec, updatedAt: this.ctx.now() }, expectVersion: n.version }];
      });
    const store = await this.read();
    return { node: this.nodeView(store.get('node', id) as Node) };
  }

  // Membership calls: every wait together stays inside MEMBERSHIP_CALL_MS (a client gives 10 s).
  // The answer comes from the local store, which has the call's own write applied: no second read,
  // which a leader that has just handed over (demoting itself) would make through the next leader
  // while that one takes it out of Raft.

  async promoteNode(req: { node?: string }) {
    const until = performance.now() + MEMBERSHIP_CALL_MS;
    const store = await this.read(timeLeft(until, READ_TIMEOUT_MS, 'the promotion'));
    const n = store.resolveNode(required(req.node, 'node'));
    await this.ctx.membership.promote(n, until);
    return { node: this.nodeView(this.ctx.store.get('node', n.id) as Node) };
  }

  async demoteNode(req: { node?: string }) {
    const until = performance.now() + MEMBERSHIP_CALL_MS;
    const store = await this.read(timeLeft(until, READ_TIMEOUT_MS, 'the demotion'));
    const n = store.resolveNode(required(req.node, 'node'));
    await this.ctx.membership.demote(n, false, until);
    return { node: this.nodeView(this.ctx.store.get('node', n.id) as Node) };
  }

  async removeNode(req: { node?: string; force?: boolean }) {
    const until = performance.now() + MEMBERSHIP_CALL_MS;
    const store = await this.read(timeLeft(until, READ_TIMEOUT_MS, 'the removal'));
    const n = store.resolveNode(required(req.node, 'node'));
    await this.ctx.membership.remove(n, !!req.force, until);
    return { id: n.id };
  }

  // ---------------------------------------------------------------- cluster

  async clusterStatus() {
    const store = await this.read();
    const cluster = store.cluster();
    return this.ctx.membership.clusterStatus(cluster?.id ?? '');
  }

  async getJoinToken(req: { role?: string; rotate?: boolean }): Promise<{ token: string }> {
    const role = req.role;
    if (role !== 'worker' && role !== 'manager') throw new ShoalError('INVALID_ARGUMENT', `role must be worker or manager, not ${role || '(empty)'}`);
    if (req.rotate) {
      await this.update(
        (store) => {
          const c = store.cluster();
          if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
          const joinTokens = { ...c.joinTokens, [role]: newJoinToken(c.caFingerprint) };
          return [{ op: 'update', kind: 'cluster', object: { ...c, joinTokens, updatedAt: this.ctx.now() }, expectVersion: c.version }];
        });
    }
    const store = await this.read();
    const c = store.cluster();
    if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
    return { token: c.joinTokens[role] };
  }

  /**
   * Another admin certificate (`shoal swarm admin-cert`): the caller made the key and sends only a
   * CSR; the name and role come from here. Admin certificates are not renewed: this is how a new
   * one is had before the old one expires, or one per operator.
   */
  async issueAdminCertificate(req: { csr?: unknown; expiryMs?: unknown }): Promise<{ cert: string; caCert: string; name: string; notAfterMs: number }> {
    const expiryMs = settingMs(req.expiryMs, '--expiry', MIN_CERT_EXPIRY_MS, MAX_CERT_EXPIRY_MS) || DEFAULT_ADMIN_CERT_EXPIRY_MS;
    const c = (await this.read()).cluster();
    if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
    const name = `admin-${newId().slice(0, 12)}`;
    const cert = await signCsr(this.ctx.ca(), typeof req.csr === 'string' ? req.csr : '', { nodeId: name, role: 'admin', clusterId: c.id }, expiryMs);
    return { cert, caCert: c.caCert, name, notAfterMs: identityOfPem(cert)!.notAfter };
  }

  /** Cluster-wide settings (`shoal swarm update`): new certificates get the new validity. */
  async updateCluster(req: { certExpiryMs?: unknown; heartbeatPeriodMs?: unknown }): Promise<{ certExpiryMs: number; heartbeatPeriodMs: number }> {
    const certExpiryMs = settingMs(req.certExpiryMs, '--cert-expiry', MIN_CERT_EXPIRY_MS, MAX_CERT_EXPIRY_MS);
    const heartbeatPeriodMs = settingMs(req.heartbeatPeriodMs, '--dispatcher-heartbeat', 100, 3_600_000);
    if (certExpiryMs || heartbeatPeriodMs) {
      await this.update((store) => {
        const c = store.cluster();
        if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
        const spec = { ...c.spec, ...(certExpiryMs ? { certExpiryMs } : {}), ...(heartbeatPeriodMs ? { heartbeatPeriodMs } : {}) };
        // Certificates issued under a longer validity outlive a lowering: removed nodes stay listed for them.
        const longestCertExpiryMs = longestCertValidityMs(c);
        return [{ op: 'update', kind: 'cluster', object: { ...c, spec, longestCertExpiryMs, updatedAt: this.ctx.now() }, expectVersion: c.version }];
      });
    }
    const c = (await this.read()).cluster();
    if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
    return { certExpiryMs: c.spec.certExpiryMs, heartbeatPeriodMs: c.spec.heartbeatPeriodMs };
  }
}

function settingMs(v: unknown, flag: string, min: number, max: number): number {
  const n = Number(v ?? 0);
  if (!Number.isFinite(n) || n < 0) throw new ShoalError('INVALID_ARGUMENT', `${flag} must be a duration, not ${String(v)}`);
  if (n !== 0 && (n < min || n > max)) throw new ShoalError('INVALID_ARGUMENT', `${flag} must be between ${min} ms and ${max} ms, not ${n} ms`);
  return n;
}

function required(v: string | undefined, what: string): string {
  if (!v) throw new ShoalError('INVALID_ARGUMENT', `a ${what} name or id is required`);
  return v;
}

/** A timeout while proposing or reading means no leader could be reached: say so plainly. */
export function quorumError(err: unknown): Error {
  if (err instanceof ShoalError && (err.code === 'UNAVAILABLE' || err.code === 'NOT_LEADER')) {
    return new ShoalError('UNAVAILABLE', `no quorum: the managers cannot elect a leader or reach it (${err.message})`);
  }
  return err as Error;
}
