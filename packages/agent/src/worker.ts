// A node's worker side, as every node runs it (managers too): the Docker executor and its engine
// monitor, the session with the leader's dispatcher, the task runner, the routing mesh fed by
// MeshSync (userland, or kernel DNAT for the local replicas), and the log shipper. Started in the
// order they depend on one another, stopped in reverse, saying goodbye to the dispatcher last so
// that a restart is not taken for a crash. The daemon wires certificates and the node's state
// file around it (renewals, the managers' addresses).

import { isIP } from 'node:net';
import type { Logger } from '@shoal/api';
import { type KernelIngress, KernelRoutes, Mesh, type MeshTls } from '@shoal/mesh';
import { type NodeIdentity, identityOfPeerCert } from '@shoal/pki';
import { AgentSession, type SessionOptions } from './agent-session.js';
import { DockerExecutor } from './docker-executor.js';
import { EngineMonitor } from './engine-monitor.js';
import { LogShipper } from './log-shipper.js';
import { MeshSync } from './mesh-sync.js';
import { PULL_RETRY, TaskRunner } from './runner.js';
import { ServiceDns } from './service-dns/index.js';
import { TaskNetworks } from './task-networks.js';
import { TaskFiles, defaultTaskFilesRoot } from './task-files.js';
import { type AgentMetrics, TimedExecutor } from './timed-executor.js';
import type { Executor } from './executor.js';
import type { MeshStats } from '@shoal/mesh';

/** A Logger that makes one child per component (pino's child()). */
export interface WorkerLogger extends Logger {
  child(bindings: Record<string, unknown>): WorkerLogger;
}

export interface WorkerOptions {
  nodeId: string;
  hostname: string;
  /** host:port: the managers reach this node there; the mesh and host-mode ports bind its host. */
  advertiseAddr: string;
  /** The engine (DOCKER_HOST syntax); '' or undefined: DOCKER_HOST, else the local socket. */
  dockerHost?: string;
  meshMode: 'userland' | 'kernel';
  /** Managers to open the session with (none: this node's own address, a manager's). */
  managers: string[];
  identity: NodeIdentity;
  logger: WorkerLogger;
  onRole?: SessionOptions['onRole'];
  onManagers?: SessionOptions['onManagers'];
  /** Told of each call to the engine (metrics); absent: the calls are not timed. */
  metrics?: AgentMetrics;
}

/** What the worker has done, read by the daemon's metrics at scrape time. */
export interface WorkerStats {
  /** Tasks brought to running, and those that ended failed or rejected (TaskRunner.counts). */
  tasks: { started: number; failed: number; rejected: number };
  mesh: MeshStats;
  /** Routing-mesh tables applied (MeshSync.tableUpdates). */
  meshUpdates: number;
  /** Overlay networks: views received, networks and endpoints in the last (TaskNetworks.stats). */
  overlay: { viewUpdates: number; networks: number; endpoints: number };
}

export class Worker {
  readonly session: AgentSession;
  private readonly executor: DockerExecutor;
  private readonly engine: EngineMonitor;
  private readonly mesh: Mesh;
  private readonly sync: MeshSync;
  private readonly runner: TaskRunner;
  private readonly networks: TaskNetworks;
  private readonly logs: LogShipper;
  private readonly onRenewed: () => void;
  private readonly meshUp: Promise<void>;

  constructor(private readonly opts: WorkerOptions) {
    const { identity, logger: log } = opts;
    const alog = log.child({ component: 'agent' });
    const mlog = log.child({ component: 'mesh' });
    const host = hostOf(opts.advertiseAddr);
    this.executor = new DockerExecutor({
      nodeId: opts.nodeId,
      hostname: opts.hostname,
      dockerHost: opts.dockerHost || undefined,
      // Host-mode ports are served on this node's own address.
      // (Docker binds an IP: with a host name for an address, e.g. in docker-compose, all of them.)
      publishIp: isIP(host) ? host : '',
      logger: alog,
    });
    // What the other parts call the engine through: timed when metrics are kept.
    const docker: Executor = opts.metrics ? new TimedExecutor(this.executor, opts.metrics) : this.executor;
    this.engine = new EngineMonitor(docker, { logger: alog });
    this.engine.start();
    // Node-to-node forwarding is mutual TLS with the node certificates: only nodes of this cluster,
    // not removed from it, may hand this node a connection or take one from it.
    const meshTls = (): MeshTls => ({
      ca: identity.material.caPem,
      cert: identity.material.certPem,
      key: identity.material.keyPem,
      verifyPeer: (peer) => {
        const id = identityOfPeerCert(peer);
        if (!id || id.clusterId !== identity.identity.clusterId) return 'not a node certificate of this cluster';
        if (id.role === 'admin') return 'an admin certificate is not a node';
        if (this.sync?.isRemoved(id.nodeId)) return `node ${id.nodeId} was removed from the cluster`;
        return null;
      },
    });
    // The routing mesh: published ingress ports served on this node's address, forwarded to the
    // running tasks wherever they are.
    this.mesh = new Mesh({ bindHost: host, logger: mlog, tls: meshTls(), onPortError: (port, err, protocol) => this.sync?.onPortError(port, err, protocol) });
    this.onRenewed = () => this.mesh.setTls(meshTls());
    identity.on('renewed', this.onRenewed);
    // Kernel mode: iptables DNAT straight to the local replicas (their share of the connections).
    const kernel = opts.meshMode === 'kernel' ? new KernelRoutes({ nodeId: opts.nodeId, address: host, logger: mlog, onError: (err) => this.sync?.onKernelError(err) }) : undefined;
    this.session = new AgentSession({
      nodeId: opts.nodeId,
      hostname: opts.hostname,
      addr: opts.advertiseAddr,
      managers: opts.managers.length > 0 ? opts.managers : [opts.advertiseAddr],
      security: () => identity.managerChannel(),
      logger: alog,
      // The engine is watched on a loop of its own (EngineMonitor): the heartbeat reads its verdict.
      health: () => this.engine.health(),
      onRole: opts.onRole,
      meshAddr: () => this.mesh.forwardAddress,
      meshErrors: () => this.sync?.errors() ?? [],
      meshMode: () => this.sync?.mode() ?? 'userland',
      onManagers: opts.onManagers,
    });
    // Overlay networks: VXLAN toward the other nodes from this node's advertised address, the
    // service DNS on each network's gateway, VIPs in each task's own namespace.
    const nlog = log.child({ component: 'networks' });
    // In kernel mode the node joins the ingress overlay, unless its address is a loopback one
    // (several nodes of a test cluster on one host: one VNI per host namespace).
    const onIngress = kernel && !isLoopback(host) ? (i: KernelIngress | undefined) => this.sync?.setIngress(i) : undefined;
    this.networks = new TaskNetworks({ nodeId: opts.nodeId, underlay: host, link: this.session.link(), dns: new ServiceDns({ log: nlog }), log: nlog, ...(onIngress ? { onIngress } : {}) });
    this.runner = new TaskRunner(docker, this.session.link(), alog, PULL_RETRY, this.networks, new TaskFiles(defaultTaskFilesRoot(opts.nodeId), alog));
    this.networks.start();
    this.sync = new MeshSync(this.mesh, this.session.link(), docker, opts.nodeId, mlog, kernel);
    this.runner.start();
    // `shoal service logs`: this node's share, read from its engine when a manager asks.
    this.logs = new LogShipper(this.session.link(), docker, log.child({ component: 'logs' }));
    this.logs.start();
    // The session opens once the forwarding listener is bound (it tells the managers its address).
    this.meshUp = this.mesh.start().then(
      () => this.sync.start(),
      (err: Error) => log.error({ err: err.message }, 'the routing mesh could not start: published ports are not served on this node'),
    );
    // (and, to tell them the engine's version, once the engine was asked: a hung one is not waited for)
    void this.meshUp.finally(() => Promise.race([this.engine.firstProbe, new Promise((r) => setTimeout(r, 3_000))])).finally(() => this.session.start());
  }

  stats(): WorkerStats {
    return { tasks: { ...this.runner.counts }, mesh: this.mesh.stats(), meshUpdates: this.sync.tableUpdates, overlay: this.networks.stats() };
  }

  async stop(): Promise<void> {
    this.opts.identity.off('renewed', this.onRenewed);
    await this.meshUp;
    await this.sync.stop();
    await this.mesh.close();
    await this.runner.stop();
    await this.networks.stop();
    await this.logs.stop();
    // The goodbye: a restart is not a crash (the dispatcher keeps the node ready a while).
    await this.session.stop('shoald stopping');
    await this.engine.stop();
    await this.executor.close();
  }
}

/** The host part of host:port (brackets of an IPv6 address removed). */
export function hostOf(addr: string): string {
  const i = addr.lastIndexOf(':');
  const h = i > 0 ? addr.slice(0, i) : addr;
  return h.replace(/^\[|\]$/g, '');
}

/** A loopback address or name: a test cluster's node, sharing its host's namespace with others. */
export function isLoopback(host: string): boolean {
  return host.startsWith('127.') || host === '::1' || host === 'localhost';
}
