// A hollow node: a node as the managers see it — joined with a token and a certificate of its
// own, a dispatcher session over gRPC and mTLS, heartbeats, the assignments long poll, status
// reports — whose tasks run in a HollowExecutor. The session and the runner are the agent's own
// classes, the ones shoald runs; only the container runtime is missing.

import { AgentSession, TaskRunner } from '@shoal/agent';
import { type Logger, NOOP_LOGGER } from '@shoal/api';
import { NodeIdentity, joinCluster } from '@shoal/pki';
import { HOLLOW_ENGINE_VERSION, type HollowCounts, HollowExecutor } from './hollow-executor.js';

export interface HollowNodeOptions {
  /** A manager to join through (host:port). */
  joinAddr: string;
  /** The worker join token. */
  token: string;
  hostname: string;
  /** The address it advertises (host:port); nothing listens there: a hollow node serves no mesh. */
  addr: string;
  /** Each runtime call's duration in ms (HollowExecutor). */
  stepMs?: number;
  logger?: Logger;
}

export interface HollowNodeState extends HollowCounts {
  nodeId: string;
  /** The manager holding its dispatcher session ('' while it has none). */
  session: string;
}

export class HollowNode {
  private readonly session: AgentSession;
  private readonly runner: TaskRunner;

  private constructor(
    readonly nodeId: string,
    private readonly executor: HollowExecutor,
    identity: NodeIdentity,
    managers: string[],
    opts: HollowNodeOptions,
  ) {
    const log = opts.logger ?? NOOP_LOGGER;
    this.session = new AgentSession({
      nodeId,
      hostname: opts.hostname,
      addr: opts.addr,
      managers,
      security: () => identity.managerChannel(),
      logger: log,
      health: () => ({ error: '', engineVersion: HOLLOW_ENGINE_VERSION }),
    });
    this.runner = new TaskRunner(executor, this.session.link(), log);
  }

  /** Joins the cluster (a real Join: token, key pair, certificate) and starts the node's agent. */
  static async join(opts: HollowNodeOptions): Promise<HollowNode> {
    const joined = await joinCluster({ joinAddr: opts.joinAddr, token: opts.token, hostname: opts.hostname, addr: opts.addr });
    const identity = new NodeIdentity(undefined, joined.material);
    const executor = new HollowExecutor({ nodeId: joined.nodeId, hostname: opts.hostname, stepMs: opts.stepMs });
    const managers = [...new Set([opts.joinAddr, ...joined.raftMembers.map((m) => m.addr)])];
    const node = new HollowNode(joined.nodeId, executor, identity, managers, opts);
    node.runner.start();
    node.session.start();
    return node;
  }

  state(): HollowNodeState {
    return { nodeId: this.nodeId, session: this.session.current, ...this.executor.stats() };
  }

  /** A clean stop: the runner ends, the session says goodbye (the node stays ready a while, as after a restart). */
  async stop(): Promise<void> {
    await this.runner.stop();
    await this.session.stop('hollow node stopping');
    await this.executor.close();
  }
}
