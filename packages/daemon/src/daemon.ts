// shoald's three verbs. Each returns a running Daemon, whose stop() is called on SIGTERM/SIGINT.

import { arch, cpus, hostname as osHostname, platform, totalmem } from 'node:os';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { ShoalError, localSocketPath } from '@shoal/api';
import { createLogger, type PinoLogger } from '@shoal/raft';
import { newId } from '@shoal/store';
import { CERT_EXPIRY, HEARTBEAT_PERIOD, checkDurationIn } from '@shoal/types';
import { Manager, type ManagerOptions, createRootCA } from '@shoal/manager';
import {
  DEFAULT_ADMIN_CERT_EXPIRY_MS,
  DEFAULT_CERT_EXPIRY_MS,
  KeyEncryptionKey,
  NodeIdentity,
  certPaths,
  joinCluster,
  parseJoinToken,
  forgetManagerSecrets,
  issueWithNewKey,
  kekLocked,
  loadRootCA,
  readKek,
  writeAdminMaterial,
  writeFileAtomic,
  writeKek,
  writeMaterial,
} from '@shoal/pki';
import { CertRenewer, type IssuedCertificate } from './cert-renewer.js';
import { LeaderlessRoleCheck } from './leaderless-role-check.js';
import { type NodeState, hasState, prepareDataDir, readState, writeState } from './node-state.js';
import { serveNotAManager } from './worker-stub.js';
import { serveLocked } from './locked-manager.js';
import { Worker, dockerClientEnv, dockerEndpoint, hostOf, imageResolver, isLoopback } from '@shoal/agent';
import { NodeMetrics } from './metrics/node-metrics.js';
import { type MetricsEndpoint, serveMetrics } from './metrics/metrics-server.js';

/** How the routing mesh serves published ports: a userland proxy, or kernel DNAT to local replicas. */
export type MeshMode = 'userland' | 'kernel';
/** node.json with the mesh mode (kept across `shoald run`; absent: userland). */
type MeshState = NodeState & { meshMode?: MeshMode };

export interface CommonFlags {
  dataDir: string;
  listenAddr: string;
  advertiseAddr?: string;
  hostname?: string;
  dockerHost?: string;
  availability?: 'active' | 'pause' | 'drain';
  /** --mesh-mode (or SHOAL_MESH_MODE); default userland. */
  meshMode?: string;
}

/** --metrics-addr and --metrics-insecure (every verb). */
export interface MetricsFlags {
  /** HOST:PORT to serve GET /metrics on; absent: no metrics. */
  metricsAddr?: string;
  /** Plain HTTP, no admin certificate asked for, on a non-loopback address too. */
  metricsInsecure?: boolean;
}

/** --mesh-mode, else SHOAL_MESH_MODE, else undefined (keep the stored one / userland). */
export function meshModeOf(flag: string | undefined): MeshMode | undefined {
  const v = flag ?? (process.env.SHOAL_MESH_MODE || undefined);
  if (v === undefined) return undefined;
  if (v !== 'userland' && v !== 'kernel') {
    throw new ShoalError('INVALID_ARGUMENT', `--mesh-mode (or SHOAL_MESH_MODE) must be userland or kernel, not "${v}"`);
  }
  return v;
}

export interface Daemon {
  state: NodeState;
  manager?: Manager;
  stop(): Promise<void>;
  /** Called when a worker, promoted, has started its manager. */
  onManager?: (m: Manager) => void;
  /** The metrics endpoint (--metrics-addr); the caller closes it after stop(). */
  metrics?: MetricsEndpoint;
}

const ADDR_RE = /^(?:[a-zA-Z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/;

export function checkAddr(flag: string, v: string): string {
  const m = ADDR_RE.exec(v);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new ShoalError('INVALID_ARGUMENT', `--${flag} must be HOST:PORT (port 1-65535), not "${v}"`);
  return v;
}

/** --docker-host, else DOCKER_HOST ('': the local socket), checked with docker's TLS settings. */
function dockerHostOf(flag: string | undefined): string {
  const host = flag ?? process.env.DOCKER_HOST ?? '';
  try {
    dockerEndpoint(host, dockerClientEnv(process.env));
  } catch (err) {
    throw new ShoalError('INVALID_ARGUMENT', `--docker-host (or DOCKER_HOST): ${(err as Error).message}`);
  }
  return host;
}

function selfDescription() {
  return { os: platform(), arch: arch(), nanoCpus: cpus().length * 1e9, memoryBytes: totalmem() };
}

function newState(flags: CommonFlags, nodeId: string, clusterId: string, role: NodeState['role']): NodeState {
  const meshMode = meshModeOf(flags.meshMode);
  return {
    ...(meshMode ? { meshMode } : {}),
    format: 1,
    nodeId,
    clusterId,
    role,
    listenAddr: flags.listenAddr,
    advertiseAddr: flags.advertiseAddr ?? flags.listenAddr,
    hostname: flags.hostname || osHostname(),
    dockerHost: dockerHostOf(flags.dockerHost),
    availability: flags.availability ?? 'active',
  };
}

type InitFlags = CommonFlags & MetricsFlags & { dispatcherHeartbeatMs?: number; certExpiryMs?: number; rootCA?: { certPem: string; keyPem: string } };

export function init(flags: InitFlags, log: PinoLogger = createLogger('shoald')): Promise<Daemon> {
  return withMetrics(flags, log, (metrics) => initNode(flags, log, metrics));
}

async function initNode(flags: InitFlags, log: PinoLogger, metrics: NodeMetrics | undefined): Promise<Daemon> {
  checkAddr('listen-addr', flags.listenAddr);
  if (flags.advertiseAddr) checkAddr('advertise-addr', flags.advertiseAddr);
  dockerHostOf(flags.dockerHost);
  const hb = flags.dispatcherHeartbeatMs;
  if (hb !== undefined) checkDurationIn(hb, HEARTBEAT_PERIOD, '--dispatcher-heartbeat');
  const expiry = flags.certExpiryMs;
  if (expiry !== undefined) checkDurationIn(expiry, CERT_EXPIRY, '--cert-expiry');
  // Checked before anything is written: a bad pair leaves the data directory as it was.
  const given = flags.rootCA && loadRootCA(flags.rootCA.certPem, flags.rootCA.keyPem);
  prepareDataDir(flags.dataDir);
  if (hasState(flags.dataDir)) {
    throw new ShoalError('ALREADY_EXISTS', `${flags.dataDir} already holds a node: use \`shoald run --data-dir ${flags.dataDir}\``);
  }
  // What this init makes and, should it fail, takes away again: a second try starts clean.
  const made = ['certificates', 'admin', 'raft'].map((sub) => join(flags.dataDir, sub)).filter((p) => !existsSync(p));
  // The cluster's CA, this node's certificate (the first manager) and an admin certificate for
  // the control API over TCP (DATA_DIR/admin: shoal --cert-path DATA_DIR/admin).
  const ca = given ?? (await createRootCA());
  const state = newState(flags, newId(), newId(), 'manager');
  const subject = { nodeId: state.nodeId, role: 'manager' as const, clusterId: state.clusterId };
  writeMaterial(flags.dataDir, { caPem: ca.certPem, ...(await issueWithNewKey(ca, subject, expiry ?? DEFAULT_CERT_EXPIRY_MS)) });
  // No copy of the CA key on disk: the store holds it, sealed with the key-encryption key.
  // The cluster's key-encryption key: the store gets the CA key sealed with it (kek.ts).
  writeKek(flags.dataDir, KeyEncryptionKey.generate());
  const admin = await issueWithNewKey(ca, { nodeId: `admin-${newId().slice(0, 12)}`, role: 'admin', clusterId: state.clusterId }, DEFAULT_ADMIN_CERT_EXPIRY_MS);
  // No node lives here (checked above): an admin directory is a failed init's, for a cluster
  // that never came to be, and gives way to this one's.
  rmSync(certPaths(flags.dataDir).adminDir, { recursive: true, force: true });
  writeAdminMaterial(certPaths(flags.dataDir).adminDir, { caPem: ca.certPem, ...admin });
  const identity = NodeIdentity.load(flags.dataDir);
  metrics?.setIdentity(identity);
  let manager: Manager | undefined;
  let cluster: Awaited<ReturnType<Manager['initCluster']>>;
  try {
    manager = await startManager(state, flags.dataDir, log, identity, { bootstrap: true, metrics: metrics?.managerHooks });
    cluster = await manager.initCluster(ca, selfDescription(), { clusterId: state.clusterId, heartbeatPeriodMs: hb, certExpiryMs: expiry });
    writeState(flags.dataDir, state);
  } catch (err) {
    await manager?.stop({ transfer: false }).catch(() => undefined);
    for (const p of made) rmSync(p, { recursive: true, force: true });
    throw err;
  }
  log.info({ nodeId: state.nodeId, clusterId: cluster.id, addr: state.advertiseAddr }, 'cluster initialized; this node is its first manager');
  return managerDaemon(state, manager, identity, flags.dataDir, log, metrics);
}

type JoinFlags = CommonFlags & MetricsFlags & { joinAddr: string; token: string };

export function join_(flags: JoinFlags, log: PinoLogger = createLogger('shoald')): Promise<Daemon> {
  return withMetrics(flags, log, (metrics) => joinNode(flags, log, metrics));
}

async function joinNode(flags: JoinFlags, log: PinoLogger, metrics: NodeMetrics | undefined): Promise<Daemon> {
  checkAddr('listen-addr', flags.listenAddr);
  checkAddr('join-addr', flags.joinAddr);
  if (flags.advertiseAddr) checkAddr('advertise-addr', flags.advertiseAddr);
  dockerHostOf(flags.dockerHost);
  parseJoinToken(flags.token);
  prepareDataDir(flags.dataDir);
  if (hasState(flags.dataDir)) {
    throw new ShoalError('ALREADY_EXISTS', `${flags.dataDir} already holds a node: use \`shoald run --data-dir ${flags.dataDir}\``);
  }
  const draft = newState(flags, '', '', 'worker');
  const res = await joinCluster({ joinAddr: flags.joinAddr, token: flags.token, hostname: draft.hostname, addr: draft.advertiseAddr, availability: draft.availability });
  if (res.role === 'manager') writeKek(flags.dataDir, KeyEncryptionKey.parse(res.kek, `the key-encryption key from ${flags.joinAddr}`));
  writeMaterial(flags.dataDir, res.material);
  const identity = NodeIdentity.load(flags.dataDir);
  metrics?.setIdentity(identity);
  const state: NodeState = {
    ...draft,
    nodeId: res.nodeId,
    clusterId: res.clusterId,
    role: res.role,
    managers: [...new Set([flags.joinAddr, ...res.raftMembers.map((m) => m.addr)])],
  };
  writeState(flags.dataDir, state);
  log.info({ nodeId: state.nodeId, role: state.role, clusterId: state.clusterId }, 'joined the cluster');
  if (state.role === 'worker') return workerDaemon(state, identity, flags.dataDir, log, metrics);
  const manager = await startManager(state, flags.dataDir, log, identity, { peers: res.raftMembers, metrics: metrics?.managerHooks });
  return managerDaemon(state, manager, identity, flags.dataDir, log, metrics);
}

type RunFlags = MetricsFlags & { dataDir: string; forceNewCluster?: boolean; meshMode?: string };

export function run(flags: RunFlags, log: PinoLogger = createLogger('shoald')): Promise<Daemon> {
  return withMetrics(flags, log, (metrics) => runNode(flags, log, metrics));
}

async function runNode(flags: RunFlags, log: PinoLogger, metrics: NodeMetrics | undefined): Promise<Daemon> {
  const state: MeshState = readState(flags.dataDir);
  prepareDataDir(flags.dataDir);
  const meshMode = meshModeOf(flags.meshMode);
  if (meshMode && meshMode !== (state.meshMode ?? 'userland')) {
    state.meshMode = meshMode;
    writeState(flags.dataDir, state);
  }
  if (flags.forceNewCluster && state.role !== 'manager') {
    throw new ShoalError('FAILED_PRECONDITION', '--force-new-cluster only applies to a manager');
  }
  const identity = NodeIdentity.load(flags.dataDir);
  if (identity.identity.nodeId !== state.nodeId) {
    throw new ShoalError('CORRUPT_DATA', `${certPaths(flags.dataDir).cert} is for node ${identity.identity.nodeId}, not this node (${state.nodeId})`);
  }
  metrics?.setIdentity(identity);
  if (state.role === 'worker') return workerDaemon(state, identity, flags.dataDir, log, metrics);
  if (kekLocked(flags.dataDir)) return lockedDaemon(state, identity, flags, log, metrics);
  const manager = await startManager(state, flags.dataDir, log, identity, { forceNewCluster: flags.forceNewCluster, metrics: metrics?.managerHooks });
  if (flags.forceNewCluster) log.warn({ nodeId: state.nodeId }, 'restarted as the only manager of the cluster (force-new-cluster)');
  return managerDaemon(state, manager, identity, flags.dataDir, log, metrics);
}

/**
 * --metrics-addr: the node's metrics registry, and its endpoint bound before the node starts (a
 * bad or busy address stops the start with nothing made); closed again if the start fails.
 */
async function withMetrics(flags: MetricsFlags, log: PinoLogger, start: (metrics: NodeMetrics | undefined) => Promise<Daemon>): Promise<Daemon> {
  if (flags.metricsAddr === undefined) {
    if (flags.metricsInsecure) throw new ShoalError('INVALID_ARGUMENT', '--metrics-insecure goes with --metrics-addr');
    return start(undefined);
  }
  checkAddr('metrics-addr', flags.metricsAddr);
  const metrics = new NodeMetrics();
  const endpoint = await serveMetrics({ addr: flags.metricsAddr, registry: metrics.registry, insecure: flags.metricsInsecure, log: log.child({ component: 'metrics' }) });
  metrics.endpoint = endpoint;
  try {
    const d = await start(metrics);
    d.metrics = endpoint;
    return d;
  } catch (err) {
    await endpoint.close();
    throw err;
  }
}

/**
 * A manager whose key-encryption key is wrapped (autolock): nothing runs but its local sockets,
 * until `shoal swarm unlock` gives the key; then the manager starts as `run` would have started it.
 */
async function lockedDaemon(state: NodeState, identity: NodeIdentity, flags: { dataDir: string; forceNewCluster?: boolean }, log: PinoLogger, metrics?: NodeMetrics): Promise<Daemon> {
  const d: Daemon = { state, stop: async () => locked.stop() };
  const locked = await serveLocked(flags.dataDir, localSocketPath(), log, async (kek) => {
    const manager = await startManager(state, flags.dataDir, log, identity, { forceNewCluster: flags.forceNewCluster, kek, metrics: metrics?.managerHooks });
    log.warn({ nodeId: state.nodeId }, 'this manager was unlocked: started');
    if (flags.forceNewCluster) log.warn({ nodeId: state.nodeId }, 'restarted as the only manager of the cluster (force-new-cluster)');
    const md = managerDaemon(state, manager, identity, flags.dataDir, log, metrics);
    d.manager = manager;
    d.stop = () => md.stop();
    d.onManager?.(manager);
  });
  return d;
}

function startManager(
  state: NodeState,
  dataDir: string,
  log: PinoLogger,
  identity: NodeIdentity,
  extra: Pick<ManagerOptions, 'bootstrap' | 'peers' | 'forceNewCluster' | 'kek' | 'metrics'>,
): Promise<Manager> {
  return Manager.start({
    identity,
    nodeId: state.nodeId,
    dataDir,
    listenAddr: state.listenAddr,
    advertiseAddr: state.advertiseAddr,
    hostname: state.hostname,
    availability: state.availability,
    logger: log,
    localSocket: localSocketPath(),
    // Service images are pinned to digests through this node's own engine (docker's resolve-image).
    resolveImage: imageResolver(state.dockerHost),
    ...extra,
  });
}

function managerDaemon(state: NodeState, manager: Manager, identity: NodeIdentity, dataDir: string, log: PinoLogger, metrics?: NodeMetrics): Daemon {
  manager.markReady();
  metrics?.setManager(manager);
  const session = agentSession(state, identity, dataDir, log, [state.advertiseAddr], undefined, metrics);
  // The other managers this one knows: Raft's configuration as it last heard it, and the peers it
  // was given.
  const peers = (): string[] => {
    const st = manager.raft.status();
    const addrs = [...st.conf.voters, ...st.conf.learners].filter((m) => m.id !== state.nodeId).map((m) => m.addr);
    for (const [id, addr] of Object.entries(st.peers)) if (id !== state.nodeId) addrs.push(addr);
    return [...new Set([...addrs, ...(state.managers ?? [])])].filter((a) => a && a !== state.advertiseAddr);
  };
  // Demoted while down: no removal ever reaches this node, only silence; the store has the last word.
  const check = new LeaderlessRoleCheck({
    leader: () => manager.raft.status().leader,
    peers,
    ask: (addrs) => session.renewer.fetch(addrs),
    onDemoted: (c) => toWorker(`the store calls this node a ${c.role} (it was demoted while down)`, c),
    log: log.child({ component: 'role-check' }),
  });
  let switching = false;
  // A manager without the key-encryption key the store's CA key is sealed with cannot use the CA:
  // a renewal brings it (it lost its copy, or the cluster's leader sealed an older release's key).
  const unwatchKek = manager.onKekMissing(() => void session.renewer.renew("this manager lacks the cluster's key-encryption key"));
  const d: Daemon = {
    state,
    manager,
    stop: async () => {
      check.stop();
      unwatchKek();
      await session.stop();
      await manager.stop({ transfer: true });
      metrics?.setManager(undefined);
    },
  };
  // Stop being a manager and carry on as a worker, as the store says: the same end whether the
  // removal was seen live or learnt from another manager after a restart.
  const toWorker = (why: string, cert?: IssuedCertificate): void => {
    if (switching) return;
    switching = true;
    check.stop();
    log.warn({ nodeId: state.nodeId, why }, 'this node was demoted: stopping the manager, continuing as a worker');
    void (async () => {
      const managers = [...new Set([...(cert ? [cert.manager] : []), ...peers()])];
      unwatchKek();
      await manager.stop({ transfer: false });
      metrics?.setManager(undefined);
      if (cert) session.renewer.install(cert, 'demoted');
      // A worker holds no key that opens the CA's.
      forgetManagerSecrets(dataDir);
      // Never reused: a promotion later starts from the cluster's log, not from this stale one.
      putRaftStateAside(dataDir);
      d.state = { ...state, role: 'worker' };
      writeState(dataDir, d.state);
      d.manager = undefined;
      await session.stop();
      const w = await workerDaemon({ ...d.state, managers }, identity, dataDir, log, metrics);
      d.stop = w.stop;
    })().catch((err: Error) => log.error({ err: err.message }, 'switching to worker mode failed'));
  };
  manager.raft.once('removed', () => toWorker('raft removed it'));
  check.start();
  return d;
}

/** A demoted manager's Raft directory, renamed out of the way (the previous one replaced). */
function putRaftStateAside(dataDir: string): void {
  const raft = join(dataDir, 'raft');
  if (!existsSync(raft)) return;
  const aside = join(dataDir, 'raft.demoted');
  rmSync(aside, { recursive: true, force: true });
  renameSync(raft, aside);
}

async function workerDaemon(state: NodeState, identity: NodeIdentity, dataDir: string, log: PinoLogger = createLogger('shoald'), metrics?: NodeMetrics): Promise<Daemon> {
  const stub = await serveNotAManager(dataDir, localSocketPath(), log);
  let promoting = false;
  const d: Daemon = {
    state,
    stop: async () => {
      await session.stop();
      stub.stop();
    },
  };
  // Promoted (`shoal node promote`): the leader has taken this node into Raft as a learner; stop
  // the worker's stub and start the manager on this node's address, as a joining manager does.
  const onRole = (role: string, managers: { nodeId: string; addr: string }[]): void => {
    if (role !== 'manager' || promoting) return;
    promoting = true;
    log.warn({ nodeId: state.nodeId }, 'this node was promoted: starting its manager');
    void (async () => {
      // A manager certificate first: Raft peers and agents accept nothing less.
      await session.renewer.renew('promoted to manager');
      if (identity.identity.role !== 'manager') throw new Error(`the CA issued a ${identity.identity.role} certificate after the promotion`);
      await session.stop();
      stub.stop();
      const st: NodeState = { ...state, role: 'manager' };
      const manager = await startManager(st, dataDir, log, identity, {
        peers: managers.filter((m) => m.nodeId !== state.nodeId).map((m) => ({ id: m.nodeId, addr: m.addr })),
        metrics: metrics?.managerHooks,
      });
      writeState(dataDir, st);
      const md = managerDaemon(st, manager, identity, dataDir, log, metrics);
      d.state = md.state;
      d.manager = manager;
      d.stop = () => md.stop();
      d.onManager?.(manager);
    })().catch((err: Error) => log.error({ err: err.message }, 'switching to manager mode failed'));
  };
  const session = agentSession(state, identity, dataDir, log, state.managers ?? [], onRole, metrics);
  return d;
}

/**
 * Every node (managers too) keeps a session with the leader's dispatcher and runs its tasks (the
 * agent's Worker); the daemon adds the certificate's renewal and keeps the managers' addresses.
 */
/**
 * The mesh mode of a node that was given none: kernel where the kernel path can work (shoald is
 * root, the node's address is not a loopback one; no iptables or no IPv4 address for its name
 * still falls back to userland, reported), else userland. A loopback address means a test cluster
 * of several nodes on one host: userland, as before.
 */
export function defaultMeshMode(advertiseAddr: string): MeshMode {
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  return root && !isLoopback(hostOf(advertiseAddr)) ? 'kernel' : 'userland';
}

function agentSession(
  state: NodeState,
  identity: NodeIdentity,
  dataDir: string,
  log: PinoLogger,
  managers: string[],
  onRole?: (role: string, managers: { nodeId: string; addr: string }[]) => void,
  metrics?: NodeMetrics,
): { stop(): Promise<void>; renewer: CertRenewer } {
  const worker = new Worker({
    nodeId: state.nodeId,
    hostname: state.hostname,
    advertiseAddr: state.advertiseAddr,
    dockerHost: state.dockerHost,
    meshMode: (state as MeshState).meshMode ?? defaultMeshMode(state.advertiseAddr),
    managers,
    identity,
    logger: log,
    onRole,
    ...(metrics ? { metrics: metrics.agentHooks } : {}),
    onManagers: (addrs) => {
      if (state.role !== 'worker') return;
      try {
        writeState(dataDir, { ...state, managers: addrs });
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not record the managers\' addresses');
      }
    },
  });
  const renewer = new CertRenewer(
    identity,
    () => [worker.session.current, ...worker.session.knownManagers(), ...managers].filter(Boolean),
    log.child({ component: 'certs' }),
  );
  renewer.start();
  metrics?.setWorker(worker);
  // The certificate still names the old role (a demotion while the node was away, or just now).
  if (identity.identity.role !== state.role) void renewer.renew(`the node is now a ${state.role}`);
  return {
    renewer,
    stop: async () => {
      renewer.stop();
      await worker.stop();
      metrics?.unsetWorker(worker);
    },
  };
}
