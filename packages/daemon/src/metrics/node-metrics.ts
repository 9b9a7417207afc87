// One node's metrics: a registry of its own (never prom-client's global one), the process's
// standard metrics, and each area's, read from whichever manager and agent run on this node now
// (a promotion starts a manager, a demotion stops it) or told by them as things happen.

import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { AgentMetrics, Worker } from '@shoal/agent';
import type { Manager, ManagerMetrics } from '@shoal/manager';
import { agentMetrics } from './agent-metrics.js';
import { managerMetrics } from './manager-metrics.js';
import { raftMetrics } from './raft-metrics.js';
import type { NodeIdentity } from '@shoal/pki';
import type { MetricsEndpoint } from './metrics-server.js';

export class NodeMetrics {
  readonly registry = new Registry();
  /** For the manager started on this node (ManagerOptions.metrics). */
  readonly managerHooks: ManagerMetrics;
  /** For the agent (WorkerOptions.metrics). */
  readonly agentHooks: AgentMetrics;
  private manager: Manager | undefined;
  private worker: Worker | undefined;
  private nodeId = '';
  /** Where these metrics are served (told the node's certificate with setIdentity). */
  endpoint: MetricsEndpoint | undefined;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    new Gauge({
      name: 'shoal_node_info',
      help: 'Always 1: this node\'s id and whether it runs a manager now.',
      labelNames: ['node_id', 'role'],
      registers: [this.registry],
      collect: (() => {
        const self = this;
        return function (this: Gauge) {
          this.reset();
          if (self.nodeId) this.set({ node_id: self.nodeId, role: self.manager ? 'manager' : 'worker' }, 1);
        };
      })(),
    });
    this.managerHooks = { raft: raftMetrics(this.registry, () => this.manager?.raft), orchestrator: managerMetrics(this.registry, () => this.manager) };
    this.agentHooks = agentMetrics(this.registry, () => this.worker);
  }

  /** The node these metrics are of, once it has its certificate (the HTTPS endpoint serves with it). */
  setIdentity(identity: NodeIdentity): void {
    this.nodeId = identity.identity.nodeId;
    this.endpoint?.useIdentity(identity);
  }

  /** The manager running on this node now (undefined: it stopped). */
  setManager(m: Manager | undefined): void {
    this.manager = m;
  }

  /** The agent running on this node now; unset only if it is still `w` (a new one may have started). */
  setWorker(w: Worker): void {
    this.worker = w;
  }

  unsetWorker(w: Worker): void {
    if (this.worker === w) this.worker = undefined;
  }
}
