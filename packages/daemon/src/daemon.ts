// shoald's three verbs. Each returns a running Daemon, whose stop() is called on SIGTERM/SIGINT.

import { arch, cpus, hostname as osHostname, platform, totalmem } from 'node:os';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { join } from 'node:path';
import type * as grpc from '@grpc/grpc-js';
import { ShoalError } from '@shoal/api';
import { createLogger, type Logger } from '@shoal/raft';
import { newId } from '@shoal/store';
import { Manager, type ManagerOptions, callUnary, caFingerprint, createRootCA, parseJoinToken, type JoinResponse } from '@shoal/manager';
import { type NodeState, hasState, prepareDataDir, readState, writeState } from './node-state.js';
import { serveNotAManager } from './worker-stub.js';
import { AgentSession, DockerExecutor, TaskRunner } from '@shoal/agent';
import { KernelRoutes, Mesh } from '@shoal/mesh';
import { MeshSync } from './mesh-sync.js';

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
}

/** How often the node refreshes its engine description for the managers (pings in between). */
const ENGINE_INFO_MS = 60_000;
const ADDR_RE = /^(?:[a-zA-Z0-9.-]+|\[[0-9a-fA-F:]+\]):(\d{1,5})$/;

export function checkAddr(flag: string, v: string): string {
  const m = ADDR_RE.exec(v);
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 65535) throw new ShoalError('INVALID_ARGUMENT', `--${flag} must be HOST:PORT (port 1-65535), not "${v}"`);
  return v;
}

function selfDescription() {
  return { os: platform(), arch: arch(), nanoCpus: cpus().length * 1e9, memoryBytes: totalmem() };
}

function caPaths(dir: string) {
  return { cert: join(dir, 'certificates', 'ca.crt'), key: join(dir, 'certificates', 'ca.key') };
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
    dockerHost: flags.dockerHost ?? process.env.DOCKER_HOST ?? '',
    availability: flags.availability ?? 'active',
  };
}

/** `docker swarm init --dispatcher-heartbeat`-like durations: 500ms, 5s, 1m30s (a bare number: ms). */
export function parseDuration(flag: string, v: string): number {
  const s = v.trim();
  if (/^\d+$/.test(s)) return Number(s);
  const unit: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000 };
  let total = 0;
  let rest = s;
  while (rest) {
    const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)/.exec(rest);
    if (!m) throw new ShoalError('INVALID_ARGUMENT', `--${flag} must be a duration like 500ms, 5s or 1m30s, not "${v}"`);
    total += Number(m[1]) * unit[m[2]];
    rest = rest.slice(m[0].length);
  }
  if (!s) throw new ShoalError('INVALID_ARGUMENT', `--${flag} must be a duration like 500ms, 5s or 1m30s, not "${v}"`);
  return Math.round(total);
}

export async function init(flags: CommonFlags & { dispatcherHeartbeatMs?: number }, log: Logger = createLogger('shoald')): Promise<Daemon> {
  checkAddr('listen-addr', flags.listenAddr);
  if (flags.advertiseAddr) checkAddr('advertise-addr', flags.advertiseAddr);
  const hb = flags.dispatcherHeartbeatMs;
  if (hb !== undefined && !(Number.isInteger(hb) && hb >= 100 && hb <= 3_600_000)) {
    throw new ShoalError('INVALID_ARGUMENT', `--dispatcher-heartbeat must be between 100ms and 1h, not ${hb} ms`);
  }
  prepareDataDir(flags.dataDir);
  if (hasState(flags.dataDir)) {
    throw new ShoalError('ALREADY_EXISTS', `${flags.dataDir} already holds a node: use \`shoald run --data-dir ${flags.dataDir}\``);
  }
  const ca = await createRootCA();
  const paths = caPaths(flags.dataDir);
  mkdirSync(join(flags.dataDir, 'certificates'), { recursive: true, mode: 0o700 });
  writeFileSync(paths.cert, ca.certPem, { mode: 0o644 });
  writeFileSync(paths.key, ca.keyPem, { mode: 0o600 });
  const state = newState(flags, newId(), '', 'manager');
  const manager = await startManager(state, flags.dataDir, log, { bootstrap: true });
  const cluster = await manager.initCluster(ca, selfDescription(), { heartbeatPeriodMs: hb });
  state.clusterId = cluster.id;
  writeState(flags.dataDir, state);
  log.info({ nodeId: state.nodeId, clusterId: cluster.id, addr: state.advertiseAddr }, 'cluster initialized; this node is its first manager');
  return managerDaemon(state, manager, flags.dataDir, log);
}

export async function join_(flags: CommonFlags & { joinAddr: string; token: string }, log: Logger = createLogger('shoald')): Promise<Daemon> {
  checkAddr('listen-addr', flags.listenAddr);
  checkAddr('join-addr', flags.joinAddr);
  if (flags.advertiseAddr) checkAddr('advertise-addr', flags.advertiseAddr);
  const { fingerprint } = parseJoinToken(flags.token);
  prepareDataDir(flags.dataDir);
  if (hasState(flags.dataDir)) {
    throw new ShoalError('ALREADY_EXISTS', `${flags.dataDir} already holds a node: use \`shoald run --data-dir ${flags.dataDir}\``);
  }
  const draft = newState(flags, '', '', 'worker');
  let res: JoinResponse;
  try {
    res = await callUnary<JoinResponse>(
      'shoal.ca.CA',
      flags.joinAddr,
      'Join',
      { token: flags.token, hostname: draft.hostname, addr: draft.advertiseAddr, availability: draft.availability, os: platform(), arch: arch() },
      15_000,
    );
  } catch (err) {
    const e = ShoalError.from(err);
    if (e.code === 'UNAVAILABLE') throw new ShoalError('UNAVAILABLE', `cannot join through ${flags.joinAddr}: ${e.message}`);
    throw e;
  }
  if (!res.caCert || caFingerprint(res.caCert) !== fingerprint) {
    throw new ShoalError('PERMISSION_DENIED', `the manager at ${flags.joinAddr} is not the cluster this token belongs to`);
  }
  mkdirSync(join(flags.dataDir, 'certificates'), { recursive: true, mode: 0o700 });
  writeFileSync(caPaths(flags.dataDir).cert, res.caCert, { mode: 0o644 });
  const state: NodeState = {
    ...draft,
    nodeId: res.nodeId,
    clusterId: res.clusterId,
    role: res.role,
    managers: [...new Set([flags.joinAddr, ...res.raftMembers.map((m) => m.addr)])],
  };
  writeState(flags.dataDir, state);
  log.info({ nodeId: state.nodeId, role: state.role, clusterId: state.clusterId }, 'joined the cluster');
  if (state.role === 'worker') return workerDaemon(state, flags.dataDir, log);
  const manager = await startManager(state, flags.dataDir, log, { peers: res.raftMembers });
  return managerDaemon(state, manager, flags.dataDir, log);
}

export async function run(flags: { dataDir: string; forceNewCluster?: boolean; meshMode?: string }, log: Logger = createLogger('shoald')): Promise<Daemon> {
  const state: MeshState = readState(flags.dataDir);
  const meshMode = meshModeOf(flags.meshMode);
  if (meshMode && meshMode !== (state.meshMode ?? 'userland')) {
    state.meshMode = meshMode;
    writeState(flags.dataDir, state);
  }
  if (flags.forceNewCluster && state.role !== 'manager') {
    throw new ShoalError('FAILED_PRECONDITION', '--force-new-cluster only applies to a manager');
  }
  if (state.role === 'worker') return workerDaemon(state, flags.dataDir, log);
  try {
    readFileSync(caPaths(flags.dataDir).cert);
  } catch {
    throw new ShoalError('CORRUPT_DATA', `${caPaths(flags.dataDir).cert} is missing`);
  }
  const manager = await startManager(state, flags.dataDir, log, { forceNewCluster: flags.forceNewCluster });
  if (flags.forceNewCluster) log.warn({ nodeId: state.nodeId }, 'restarted as the only manager of the cluster (force-new-cluster)');
  return managerDaemon(state, manager, flags.dataDir, log);
}

function startManager(state: NodeState, dataDir: string, log: Logger, extra: Pick<ManagerOptions, 'bootstrap' | 'peers' | 'forceNewCluster'>): Promise<Manager> {
  return Manager.start({
    nodeId: state.nodeId,
    dataDir,
    listenAddr: state.listenAddr,
    advertiseAddr: state.advertiseAddr,
    hostname: state.hostname,
    availability: state.availability,
    logger: log,
    ...extra,
  });
}

function managerDaemon(state: NodeState, manager: Manager, dataDir: string, log: Logger): Daemon {
  manager.markReady();
  const session = agentSession(state, dataDir, log, [state.advertiseAddr]);
  const d: Daemon = {
    state,
    manager,
    stop: async () => {
      await session.stop();
      await manager.stop({ transfer: true });
    },
  };
  // Demoted (removed from Raft by the leader): stop being a manager and carry on as a worker.
  manager.raft.once('removed', () => {
    log.warn({ nodeId: state.nodeId }, 'this node was demoted: stopping the manager, continuing as a worker');
    void (async () => {
      await manager.stop({ transfer: false });
      d.state = { ...state, role: 'worker' };
      writeState(dataDir, d.state);
      d.manager = undefined;
      await session.stop();
      const w = await workerDaemon({ ...d.state, managers: manager.raft.status().conf.voters.map((m) => m.addr) }, dataDir, log);
      d.stop = w.stop;
    })().catch((err: Error) => log.error({ err: err.message }, 'switching to worker mode failed'));
  });
  return d;
}

async function workerDaemon(state: NodeState, dataDir: string, log: Logger = createLogger('shoald')): Promise<Daemon> {
  const server: grpc.Server = await serveNotAManager(dataDir);
  let promoting = false;
  const d: Daemon = {
    state,
    stop: async () => {
      await session.stop();
      server.forceShutdown();
    },
  };
  // Promoted (`shoal node promote`): the leader has taken this node into Raft as a learner; stop
  // the worker's stub and start the manager on this node's address, as a joining manager does.
  const onRole = (role: string, managers: { nodeId: string; addr: string }[]): void => {
    if (role !== 'manager' || promoting) return;
    promoting = true;
    log.warn({ nodeId: state.nodeId }, 'this node was promoted: starting its manager');
    void (async () => {
      await session.stop();
      server.forceShutdown();
      const st: NodeState = { ...state, role: 'manager' };
      const manager = await startManager(st, dataDir, log, {
        peers: managers.filter((m) => m.nodeId !== state.nodeId).map((m) => ({ id: m.nodeId, addr: m.addr })),
      });
      writeState(dataDir, st);
      const md = managerDaemon(st, manager, dataDir, log);
      d.state = md.state;
      d.manager = manager;
      d.stop = () => md.stop();
      d.onManager?.(manager);
    })().catch((err: Error) => log.error({ err: err.message }, 'switching to manager mode failed'));
  };
  const session = agentSession(state, dataDir, log, state.managers ?? [], onRole);
  return d;
}

/** Every node (managers too) keeps a session with the leader's dispatcher and runs its tasks. */
function agentSession(
  state: NodeState,
  dataDir: string,
  log: Logger,
  managers: string[],
  onRole?: (role: string, managers: { nodeId: string; addr: string }[]) => void,
): { stop(): Promise<void> } {
  const alog = log.child({ component: 'agent' });
  const executor = new DockerExecutor({
    nodeId: state.nodeId,
    dockerHost: state.dockerHost || undefined,
    // Host-mode ports are served on this node's own address.
    // (Docker binds an IP: with a host name for an address, e.g. in docker-compose, all of them.)
    publishIp: isIP(hostOf(state.advertiseAddr)) ? hostOf(state.advertiseAddr) : '',
    logger: alog,
  });
  let engine = { version: '', at: 0 };
  // The routing mesh: published ingress ports served on this node's address, forwarded to the
  // running tasks wherever they are.
  let sync: MeshSync | undefined;
  const mlog = log.child({ component: 'mesh' });
  const mesh = new Mesh({
    bindHost: hostOf(state.advertiseAddr),
    logger: mlog,
    onPortError: (port, err) => sync?.onPortError(port, err),
  });
  // Kernel mode: iptables DNAT straight to the local replicas (their share of the connections).
  const kernel =
    (state as MeshState).meshMode === 'kernel'
      ? new KernelRoutes({ nodeId: state.nodeId, address: hostOf(state.advertiseAddr), logger: mlog, onError: (err) => sync?.onKernelError(err) })
      : undefined;
  const session = new AgentSession({
    nodeId: state.nodeId,
    hostname: state.hostname,
    addr: state.advertiseAddr,
    managers: managers.length > 0 ? managers : [state.advertiseAddr],
    logger: alog,
    // Asked before every heartbeat: a ping is cheap for the engine, `docker info` is not (it
    // walks every container and image), so the full description is fetched once a minute.
    health: async () => {
      try {
        if (Date.now() - engine.at > ENGINE_INFO_MS) {
          engine = { version: (await executor.info()).engineVersion, at: Date.now() };
        } else {
          await executor.ping();
        }
        return { error: '', engineVersion: engine.version };
      } catch (err) {
        engine.at = 0;
        return { error: `docker is unreachable: ${(err as Error).message}` };
      }
    },
    onRole,
    meshAddr: () => mesh.forwardAddress,
    meshErrors: () => sync?.errors() ?? [],
    onManagers: (addrs) => {
      if (state.role !== 'worker') return;
      try {
        writeState(dataDir, { ...state, managers: addrs });
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'could not record the managers\' addresses');
      }
    },
  });
  const runner = new TaskRunner(executor, session.link(), alog);
  sync = new MeshSync(mesh, session.link(), executor, state.nodeId, mlog, kernel);
  runner.start();
  // The session opens once the forwarding listener is bound (it tells the managers its address).
  const meshUp = mesh.start().then(
    () => sync!.start(),
    (err: Error) => log.error({ err: err.message }, 'the routing mesh could not start: published ports are not served on this node'),
  );
  void meshUp.finally(() => session.start());
  return {
    stop: async () => {
      await meshUp;
      await sync!.stop();
      await mesh.close();
      await runner.stop();
      // The goodbye: a restart is not a crash (the dispatcher keeps the node ready a while).
      await session.stop('shoald stopping');
      await executor.close();
    },
  };
}

function hostOf(addr: string): string {
  const i = addr.lastIndexOf(':');
  const h = i > 0 ? addr.slice(0, i) : addr;
  return h.replace(/^\[|\]$/g, '');
}
