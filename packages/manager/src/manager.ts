// A manager: one Raft member with the replicated cluster store, serving the Raft, control and
// join APIs on its TCP address and the control API on DATA_DIR/control.sock.

import * as grpc from '@grpc/grpc-js';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ShoalError, retryWithBackoff } from '@shoal/api';
import { RaftNode, raftServerOptions, createLogger, type PinoLogger, type RaftObserver, type RaftTimings } from '@shoal/raft';
import { ClusterStore, StoreClient, newId, updateOp } from '@shoal/store';
import type { Cluster, Node } from '@shoal/store';
import { controlHandlers, controlStreams } from './controlapi/index.js';
import { EventJournal, serveEvents } from './events/index.js';
import { followServiceLogs } from './logbroker/log-follow.js';
import { MembershipManager, type JoinRequest, type JoinResponse } from './membership.js';
import { MembershipReconciler } from './membership-reconciler.js';
import { addUnaryService, callUnary } from './grpc-util.js';
import { Dispatcher } from './dispatcher/dispatcher.js';
import { Orchestrator, type OrchestratorMetrics } from './orchestrator/orchestrator.js';
import { TaskReaper } from './taskreaper/task-reaper.js';
import { newJoinToken } from '@shoal/pki';
import type { RootCA } from './ca/root-ca.js';
import { CAServer } from './ca/ca-server.js';
import { CAKeys } from './ca/ca-keys.js';
import { CAKeyMigration } from './ca/ca-key-migration.js';
import { AutolockKeeper } from './ca/autolock.js';
import { Authz } from './authz.js';
import { RegistryAuthVault } from './registry-auth.js';
import { SecretVault } from './secret-vault.js';
import type { ImageResolver } from './controlapi/image-pin.js';
import { DEFAULT_CERT_EXPIRY_MS, type KeyEncryptionKey, type NodeIdentity, caFingerprint, privateDir } from '@shoal/pki';
import { LogBroker } from './logbroker/log-broker.js';
import { LeaderDuty } from './leader-duty.js';
import { bindUnixSocket, serveLocalSocket } from './local-socket.js';

export interface ManagerOptions {
  nodeId: string;
  dataDir: string;
  listenAddr: string;
  advertiseAddr: string;
  hostname: string;
  availability?: Node['spec']['availability'];
  /** A new cluster with this node as its only member (shoald init). */
  bootstrap?: boolean;
  /** Managers to reach first (shoald join). */
  peers?: { id: string; addr: string }[];
  forceNewCluster?: boolean;
  timings?: Partial<RaftTimings>;
  /** This node's certificate: the TCP port serves mutual TLS with it, peers are reached with it. */
  identity: NodeIdentity;
  logger?: PinoLogger;
  /** The machine's well-known control socket to serve too (local-socket.ts); absent: none. */
  localSocket?: string;
  /** Pins images to digests through this node's Docker engine (docker's resolve-image); absent: images stay as given. */
  resolveImage?: ImageResolver;
  /** The key-encryption key `shoal swarm unlock` opened (kek.json is wrapped: autolock); absent: read from kek.json. */
  kek?: KeyEncryptionKey;
  /** Where the components tell what metrics cannot read from their state (latencies); absent: nowhere. */
  metrics?: ManagerMetrics;
}

/** The manager's per-event metrics hooks (the daemon's metrics read everything else at scrape time). */
export interface ManagerMetrics {
  raft?: RaftObserver;
  orchestrator?: OrchestratorMetrics;
}

/** Calls that change Raft membership must run on the leader: a follower passes them on. */
// ServiceLogs: the nodes' agents long-poll the leader's broker for log requests.
const LEADER_ONLY = new Set(['PromoteNode', 'DemoteNode', 'RemoveNode', 'ServiceLogs']);
const MAX_MSG = 4 << 20;
/**
 * The largest control API request a manager reads. Above the store's bounds (a 256 KiB spec, a
 * 1 MiB transaction) on purpose: a request too large for the store reaches its handler, which
 * says what is too large and by how much, instead of gRPC's bare "message larger than max".
 */
const MAX_CONTROL_REQUEST = 16 << 20;

export class Manager {
  readonly raft: RaftNode;
  readonly store: ClusterStore;
  readonly client: StoreClient;
  readonly membership: MembershipManager;
  readonly reconciler: MembershipReconciler;
  readonly dispatcher: Dispatcher;
  readonly orchestrator: Orchestrator;
  readonly taskReaper: TaskReaper;
  readonly authz: Authz;
  readonly ca: CAServer;
  readonly caKeys: CAKeys;
  private readonly registryAuth: RegistryAuthVault;
  private readonly secrets: SecretVault;
  private readonly caKeyMigration: CAKeyMigration;
  private readonly autolock: AutolockKeeper;
  /** Begins and ends the leader-only components together (the reconciler joins once it may). */
  private readonly leadership: LeaderDuty;
  readonly logs: LogBroker;
  /** The recent cluster events (`shoal events`), from this manager's store and its view of the leader. */
  readonly events: EventJournal;
  private readonly followLeader: (leader: string) => void;
  private readonly tcp: grpc.Server;
  private readonly unix: grpc.Server;
  readonly log: PinoLogger;
  readonly socketPath: string;
  /** The well-known socket, when this manager serves it. */
  localSocketPath: string | undefined;

  private constructor(
    readonly opts: ManagerOptions,
    raft: RaftNode,
    store: ClusterStore,
    tcp: grpc.Server,
    unix: grpc.Server,
    log: PinoLogger,
    caKeys: CAKeys,
  ) {
    this.raft = raft;
    this.store = store;
    this.tcp = tcp;
    this.unix = unix;
    this.log = log;
    this.client = new StoreClient(raft, store);
    this.reconciler = new MembershipReconciler(raft, store, this.client, log.child({ component: 'membership' }));
    this.membership = new MembershipManager(raft, store, this.client, log, this.reconciler, caFingerprint(opts.identity.material.caPem));
    const clusterIdOf = () => {
      const c = store.cluster();
      if (!c) throw new ShoalError('UNAVAILABLE', 'the cluster is still being initialized: try again in a moment');
      return c.id;
    };
    this.registryAuth = new RegistryAuthVault(() => caKeys.key(), clusterIdOf);
    this.secrets = new SecretVault(() => caKeys.key(), clusterIdOf);
    this.dispatcher = new Dispatcher(raft, store, this.client, log.child({ component: 'dispatcher' }), this.registryAuth, undefined, this.secrets);
    this.orchestrator = new Orchestrator(store, this.client, log.child({ component: 'orchestrator' }), undefined, undefined, opts.metrics?.orchestrator);
    this.taskReaper = new TaskReaper(store, this.client, log.child({ component: 'taskreaper' }));
    this.authz = new Authz(store, raft);
    this.caKeys = caKeys;
    this.ca = new CAServer(store, this.client, this.authz, this.caKeys);
    this.caKeyMigration = new CAKeyMigration(store, this.client, this.caKeys, log.child({ component: 'ca' }));
    this.autolock = new AutolockKeeper(store, caKeys, opts.dataDir, log.child({ component: 'autolock' }));
    this.leadership = new LeaderDuty(raft, [this.dispatcher, this.orchestrator, this.taskReaper, this.caKeyMigration]);
    this.leadership.sync();
    this.logs = new LogBroker(store, (n, s) => void this.dispatcher.checkSession(n, s), { newId });
    this.events = new EventJournal(store);
    // A leader change is not a store change: each manager records the one it sees.
    let leader = raft.leaderId();
    this.followLeader = (next: string) => {
      const previous = leader;
      leader = next;
      this.events.noteLeader(next, previous, raft.status().term, next ? store.get('node', next)?.description.hostname : undefined);
    };
    raft.on('leader', this.followLeader);
    this.socketPath = join(opts.dataDir, 'control.sock');
    this.onRenewed = () => {
      raft.refreshCredentials();
      this.caKeys.reload();
      // A renewal writes a key-encryption key it brings in the clear: wrapped again if autolock is on.
      this.autolock.sync();
    };
    opts.identity.on('renewed', this.onRenewed);
  }

  private readonly onRenewed: () => void;

  /**
   * Calls `fn` now and whenever the store's CA key turns out sealed with a key-encryption key this
   * manager lacks (an upgraded cluster's leader sealed it; this manager lost its copy): the daemon
   * renews the certificate then, which brings the key. Returns the unsubscribe function.
   */
  onKekMissing(fn: () => void): () => void {
    const check = () => {
      if (this.caKeys.lacksClusterKek()) fn();
    };
    const stop = this.store.watch(check, { kinds: ['cluster'] });
    check();
    return stop;
  }

  static async start(opts: ManagerOptions): Promise<Manager> {
    const log = opts.logger ?? createLogger('manager', { node: opts.nodeId });
    const tcp = new grpc.Server({ ...raftServerOptions(MAX_MSG), 'grpc.max_receive_message_length': MAX_CONTROL_REQUEST });
    const unix = new grpc.Server({ 'grpc.max_receive_message_length': MAX_CONTROL_REQUEST });
    const store = new ClusterStore();
    // Read before Raft opens: a damaged key file stops the start with nothing to undo.
    const caKeys = new CAKeys(store, opts.dataDir, opts.kek);
    // Raft calls are authorized by the manager's Authz, which needs the RaftNode: bound once both exist.
    let authorize: ((call: Parameters<Authz['raftPeer']>[0]) => string) | undefined;
    // The Raft data is the cluster's: its owner's alone, even if the directory was opened up.
    const raftDir = join(opts.dataDir, 'raft');
    privateDir(raftDir);
    const raft = await RaftNode.open({
      id: opts.nodeId,
      addr: opts.advertiseAddr,
      dataDir: raftDir,
      server: tcp,
      stateMachine: store,
      bootstrap: opts.bootstrap ? [{ id: opts.nodeId, addr: opts.advertiseAddr }] : undefined,
      peers: opts.peers,
      forceNewCluster: opts.forceNewCluster,
      timings: opts.timings,
      maxMsgBytes: MAX_MSG / 4,
      security: () => opts.identity.managerChannel(),
      authorize: (call) => {
        if (!authorize) throw new ShoalError('UNAVAILABLE', 'this manager is starting');
        return authorize(call);
      },
      logger: log.child({ component: 'raft' }),
      ...(opts.metrics?.raft ? { observer: opts.metrics.raft } : {}),
    });
    const m = new Manager(opts, raft, store, tcp, unix, log, caKeys);
    authorize = (call) => m.authz.raftPeer(call);
    m.registerServices();
    try {
      await bind(tcp, opts.listenAddr, opts.identity.serverCredentials());
      // (The data dir is 0700 already, so no one else could reach the socket before its chmod.)
      await bindUnixSocket(unix, m.socketPath);
      if (opts.localSocket) m.localSocketPath = await serveLocalSocket(unix, opts.localSocket, log);
    } catch (err) {
      await raft.stop();
      tcp.forceShutdown();
      unix.forceShutdown();
      throw new ShoalError('INVALID_ARGUMENT', `cannot listen on ${opts.listenAddr}: ${(err as Error).message}`);
    }
    raft.start();
    m.autolock.start();
    if (opts.forceNewCluster) m.forgetOtherManagers();
    else m.leadership.add(m.reconciler);
    // Diagnostics: SHOAL_STATS_MS=1000 logs the Raft driver's counters periodically.
    const statsMs = Number(process.env.SHOAL_STATS_MS ?? 0);
    if (statsMs > 0) {
      setInterval(() => {
        const st = raft.status();
        log.warn({ role: st.role, commit: st.commit, stats: st.stats }, 'raft stats');
      }, statsMs).unref();
    }
    raft.on('fatal', (err: Error) => log.fatal({ err: err.message }, 'raft failed'));
    return m;
  }

  private registerServices(): void {
    const control = controlHandlers(
      {
        raft: this.raft,
        store: this.store,
        client: this.client,
        membership: this.membership,
        ca: () => this.caKeys.material(),
        kek: () => this.caKeys.key(),
        registryAuth: this.registryAuth,
        secrets: this.secrets,
        ...(this.opts.resolveImage ? { resolveImage: this.opts.resolveImage } : {}),
        now: Date.now,
      },
      (r) => this.logs.serviceLogs(r),
    );
    for (const method of LEADER_ONLY) {
      const local = control[method];
      control[method] = (r) => this.onLeader('shoal.control.Control', method, r, local);
    }
    const serviceLogs = control['ServiceLogs']!;
    const streams = controlStreams({
      events: (r, call) => serveEvents(this.events, r, call),
      // Each round is a ServiceLogs of its own, on the leader (passed on from here if need be).
      serviceLogs: (r, call) => followServiceLogs((q) => serviceLogs(q) as ReturnType<Parameters<typeof followServiceLogs>[0]>, r, call),
    });
    // Over TCP: an admin certificate (or a manager passing a call on); the unix socket is the
    // machine's own (mode 0600).
    addUnaryService(this.tcp, 'shoal.control.Control', control, this.log, (_m, _r, call) => this.authz.admin(call), streams);
    addUnaryService(this.unix, 'shoal.control.Control', control, this.log, undefined, streams);
    addUnaryService(
      this.tcp,
      'shoal.dispatcher.Dispatcher',
      {
        Session: (r) => this.dispatcher.session(r),
        Heartbeat: (r) => this.dispatcher.heartbeat(r),
        Assignments: (r, call) => this.dispatcher.assignments(r, call),
        MeshView: (r, call) => this.dispatcher.meshView(r, call),
        NetworkView: (r, call) => this.dispatcher.networkView(r, call),
        LogRequests: (r) => this.logs.logRequests(r),
        PublishLogs: async (r) => this.logs.publishLogs(r),
        UpdateTaskStatus: (r) => this.dispatcher.updateTaskStatus(r),
        Disconnect: (r) => this.dispatcher.disconnect(r),
      },
      this.log,
      // A node's certificate, acting only for itself.
      (_m, req, call) => this.authz.node(call, req),
    );
    addUnaryService(
      this.tcp,
      'shoal.ca.CA',
      {
        // Anyone may try to join: the token is the proof.
        // Its form and CA fingerprint are checked here, before the call costs a forward or a quorum read.
        Join: async (r: JoinRequest) => {
          this.membership.checkJoinToken(r.token);
          return this.onLeader('shoal.ca.CA', 'Join', r, (x) => this.join(x));
        },
        RenewCertificate: (r, call) => this.ca.renew(r, call),
      },
      this.log,
    );
  }

  /** Runs a call here if we lead, else passes it to the leader's TCP address. */
  private async onLeader(service: 'shoal.control.Control' | 'shoal.ca.CA', method: string, req: unknown, local: (r: any) => Promise<unknown>) {
    const deadline = Date.now() + 10_000;
    for (;;) {
      if (this.raft.isLeader()) return local(req);
      const addr = this.raft.leaderAddr();
      if (addr) return callUnary(service, addr, method, req, Math.max(1, deadline - Date.now()), () => this.opts.identity.managerChannel());
      if (Date.now() > deadline) throw new ShoalError('UNAVAILABLE', 'no quorum: no manager is the leader');
      await new Promise((r) => setTimeout(r, 50));
    }
  }

  /** Waits until this node leads (a fresh single-member cluster elects itself at once). */
  async waitLeader(timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!this.raft.isLeader()) {
      if (Date.now() > deadline) throw new ShoalError('UNAVAILABLE', 'this manager did not become leader');
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  /** A join, on the leader; a new manager gets the cluster's key-encryption key with its certificate. */
  private async join(req: JoinRequest): Promise<JoinResponse & { kek: string }> {
    const res = await this.membership.join(req, this.caKeys.material());
    return { ...res, kek: res.role === 'manager' ? this.caKeys.forNewManager() : '' };
  }

  /** Creates the cluster object and this node's object (shoald init). */
  async initCluster(
    ca: RootCA,
    self: { os: string; arch: string; nanoCpus: number; memoryBytes: number },
    opts: { clusterId: string; heartbeatPeriodMs?: number; certExpiryMs?: number },
  ): Promise<Cluster> {
    await this.waitLeader();
    await this.client.read({ timeoutMs: 5_000 });
    const existing = this.store.cluster();
    if (existing) return existing;
    const now = Date.now();
    const cluster: Cluster = {
      id: opts.clusterId,
      version: 0,
      createdAt: now,
      updatedAt: now,
      spec: {
        name: 'default',
        heartbeatPeriodMs: opts.heartbeatPeriodMs || 1_000,
        nodeDownAfterBeats: 3,
        taskHistoryLimit: 5,
        certExpiryMs: opts.certExpiryMs || DEFAULT_CERT_EXPIRY_MS,
      },
      caFingerprint: ca.fingerprint,
      caCert: ca.certPem,
      caKey: this.caKeys.seal(opts.clusterId, ca.keyPem),
      joinTokens: { worker: newJoinToken(ca.fingerprint), manager: newJoinToken(ca.fingerprint) },
      removedNodes: [],
      removedNodeExpiry: {},
      longestCertExpiryMs: 0,
      unlockKey: null,
    };
    const node: Node = {
      id: this.opts.nodeId,
      version: 0,
      createdAt: now,
      updatedAt: now,
      spec: { role: 'manager', availability: this.opts.availability ?? 'active', labels: {} },
      description: {
        hostname: this.opts.hostname,
        platform: { os: self.os, arch: self.arch },
        resources: { nanoCpus: self.nanoCpus, memoryBytes: self.memoryBytes },
        engineVersion: '',
      },
      status: { state: 'ready', message: '', addr: this.opts.advertiseAddr, meshAddr: '', meshErrors: [], meshMode: '' },
      managerStatus: { raftId: this.opts.nodeId, addr: this.opts.advertiseAddr },
      attachments: [],
    };
    await this.client.commit(
      [
        { op: 'create', kind: 'cluster', object: cluster },
        { op: 'create', kind: 'node', object: node },
      ],
      { timeoutMs: 5_000 },
    );
    return cluster;
  }

  /**
   * Records this manager as ready (its address, its manager status) once the cluster can commit;
   * retried in the background until it succeeds or the manager stops. Worker nodes get their
   * status from the dispatcher's heartbeats instead.
   */
  markReady(): void {
    const attempt = async (): Promise<void> => {
      await this.client.update(
        (store) => {
          const n = store.get('node', this.opts.nodeId);
          if (!n) return [];
          const want = { ...n.status, state: 'ready' as const, message: '', addr: this.opts.advertiseAddr };
          const ms = { raftId: this.opts.nodeId, addr: this.opts.advertiseAddr };
          if (n.status.state === 'ready' && n.status.addr === want.addr && n.managerStatus?.addr === ms.addr) return [];
          return [updateOp('node', { ...n, status: want, managerStatus: ms, updatedAt: Date.now() })];
        },
        { retries: 5, timeoutMs: 5_000 },
      );
    };
    void retryWithBackoff(attempt, {
      initialMs: 200,
      maxMs: 5_000,
      while: () => !this.stopping,
      onError: (err) => this.log.debug({ err: (err as Error).message }, 'could not mark this manager ready yet'),
    });
  }

  /**
   * After --force-new-cluster this manager is Raft's only member: the store is told the same
   * (every other manager recorded as a worker) before the membership reconciler starts, which
   * would otherwise take the lost managers back in from the store. Retried until it commits.
   */
  forgetOtherManagers(): void {
    const attempt = async () => {
      await this.client.update(
        (store) =>
          (store.list('node') as Node[])
            .filter((n) => n.id !== this.opts.nodeId && (n.spec.role === 'manager' || n.managerStatus))
            .map((n) => updateOp('node', { ...n, spec: { ...n.spec, role: 'worker' as const }, managerStatus: null, updatedAt: Date.now() })),
        { retries: 5, timeoutMs: 5_000 },
      );
      this.log.warn({}, 'force-new-cluster: the other managers are recorded as workers');
      this.leadership.add(this.reconciler);
    };
    void retryWithBackoff(attempt, {
      initialMs: 200,
      maxMs: 5_000,
      while: () => !this.stopping,
      onError: (err) => this.log.debug({ err: (err as Error).message }, 'could not record the other managers as workers yet'),
    });
  }

  private stopping = false;

  /** Graceful stop: a leader hands leadership to another manager first. */
  async stop(opts: { transfer?: boolean } = { transfer: true }): Promise<void> {
    this.stopping = true;
    this.opts.identity.off('renewed', this.onRenewed);
    this.leadership.stop();
    this.reconciler.stop();
    this.dispatcher.stop();
    this.caKeyMigration.stop();
    this.autolock.stop();
    this.logs.stop();
    this.raft.off('leader', this.followLeader);
    this.events.stop();
    await this.raft.stop({ transfer: opts.transfer });
    await Promise.all([shutdown(this.tcp), shutdown(this.unix)]);
    if (existsSync(this.socketPath)) rmSync(this.socketPath, { force: true });
    if (this.localSocketPath) rmSync(this.localSocketPath, { force: true });
  }
}

function bind(server: grpc.Server, addr: string, creds: grpc.ServerCredentials): Promise<number> {
  return new Promise((resolve, reject) => server.bindAsync(addr, creds, (err, port) => (err ? reject(err) : resolve(port))));
}

function shutdown(server: grpc.Server): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, 2_000);
    server.tryShutdown(() => {
      clearTimeout(t);
      resolve();
    });
  });
}
