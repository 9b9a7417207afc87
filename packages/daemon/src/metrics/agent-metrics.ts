// The agent's metrics (every node runs one): its calls to the container engine, timed as they
// happen (AgentMetrics), and its tasks and routing mesh, read from its state at scrape time.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { AgentMetrics, WorkerStats } from '@shoal/agent';
import { scrapedCounter, scrapedGauge, whileRunning } from './while-running.js';

/** Registers the agent's metrics on `registry`, read from `worker()` (undefined: none runs now). */
export function agentMetrics(registry: Registry, worker: () => { stats(): WorkerStats } | undefined): AgentMetrics {
  const registers = [registry];
  const running = () => worker() !== undefined;
  const read = <T>(f: (s: WorkerStats) => T): T | undefined => {
    const w = worker();
    return w ? f(w.stats()) : undefined;
  };
  const counter = (name: string, help: string, f: (s: WorkerStats) => number) => scrapedCounter(registers, running, name, help, () => read(f));
  const gauge = (name: string, help: string, f: (s: WorkerStats) => number) => scrapedGauge(registers, running, name, help, () => read(f));
  counter('shoal_agent_task_starts_total', 'Tasks this node\'s agent brought to running (adopted ones after a restart not counted).', (s) => s.tasks.started);
  new Counter({
    name: 'shoal_agent_task_failures_total',
    help: 'Tasks that ended on this node without running to completion: failed (did not start, or exited non-zero) or rejected (never started: image, network, create).',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      const t = read((s) => s.tasks);
      if (!t) return;
      this.inc({ state: 'failed' }, t.failed);
      this.inc({ state: 'rejected' }, t.rejected);
    },
  });

  counter('shoal_mesh_table_updates_total', 'Routing-mesh tables (published ports and their endpoints) applied on this node.', (s) => s.meshUpdates);
  gauge('shoal_mesh_published_ports', 'Published ports this node\'s routing mesh is listening on.', (s) => s.mesh.ports.filter((p) => p.listening).length);
  gauge('shoal_mesh_backends', 'Backends (tasks) the routing mesh sends published ports\' connections to, all ports together.', (s) => s.mesh.ports.reduce((n, p) => n + p.backends, 0));
  new Counter({
    name: 'shoal_mesh_connections_total',
    help: 'Client connections accepted on a published port of this node, by port (since the port appeared).',
    labelNames: ['port'],
    registers,
    collect() {
      this.reset();
      for (const p of read((s) => s.mesh.ports) ?? []) this.inc({ port: String(p.port) }, p.totalConnections);
    },
  });
  new Counter({
    name: 'shoal_mesh_bytes_total',
    help: 'Bytes through a published port of this node, by port and direction (in: from clients; out: to them), counted as each connection closes.',
    labelNames: ['port', 'direction'],
    registers,
    collect() {
      this.reset();
      for (const p of read((s) => s.mesh.ports) ?? []) {
        this.inc({ port: String(p.port), direction: 'in' }, p.bytesFromClients);
        this.inc({ port: String(p.port), direction: 'out' }, p.bytesToClients);
      }
    },
  });
  gauge('shoal_mesh_open_connections', 'Client connections open now on the published ports of this node.', (s) => s.mesh.ports.reduce((n, p) => n + p.activeConnections, 0));
  counter('shoal_overlay_view_updates_total', 'Overlay network views received from the managers (each a change of the networks, their services or their endpoints).', (s) => s.overlay.viewUpdates);
  gauge('shoal_overlay_networks', 'Overlay networks in the last view this node received.', (s) => s.overlay.networks);
  gauge('shoal_overlay_endpoints', 'Task endpoints on overlay networks in the last view this node received.', (s) => s.overlay.endpoints);
  counter('shoal_mesh_forwarded_connections_total', 'Connections other nodes forwarded to this node\'s local backends.', (s) => s.mesh.forwarder.totalConnections);
  counter('shoal_mesh_forward_rejected_total', 'Forwarded connections this node refused (TLS, peer, request or target refused).', (s) => s.mesh.forwarder.rejected);

  const calls = new Histogram({
    name: 'shoal_agent_docker_call_duration_seconds',
    help: 'Time of the agent\'s calls to the container engine, by operation (prepare includes the image pull).',
    labelNames: ['operation'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
    registers,
  });
  const errors = new Counter({
    name: 'shoal_agent_docker_call_errors_total',
    help: 'Calls to the container engine that failed, by operation.',
    labelNames: ['operation'],
    registers,
  });
  return {
    dockerCall(operation, seconds, ok) {
      calls.observe({ operation }, seconds);
      if (!ok) errors.inc({ operation });
    },
  };
}
