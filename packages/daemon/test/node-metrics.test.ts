// A node's metrics registry: its own (two daemons in one process keep theirs apart, and
// prom-client's global registry is left alone), the process's standard metrics, and no sample of
// a component that does not run on the node (a worker has no Raft term).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { register as globalRegistry } from 'prom-client';
import { NodeMetrics } from '../src/metrics/node-metrics.js';

test('each NodeMetrics has a registry of its own; absent components give names but no samples', async () => {
  const a = new NodeMetrics();
  const b = new NodeMetrics();
  assert.notEqual(a.registry, b.registry);
  const text = await a.registry.metrics();
  for (const name of ['shoal_raft_term', 'shoal_raft_proposal_duration_seconds', 'shoal_store_objects', 'shoal_tasks', 'shoal_dispatcher_sessions', 'shoal_agent_docker_call_duration_seconds', 'shoal_mesh_connections_total', 'process_cpu_seconds_total']) {
    assert.match(text, new RegExp(`^# TYPE ${name} `, 'm'), name);
  }
  assert.doesNotMatch(text, /^shoal_raft_term /m, 'no manager runs: no term');
  assert.doesNotMatch(text, /^shoal_node_info/m, 'no identity yet');
  // What one node is told stays in its registry.
  a.agentHooks.dockerCall('start', 0.02, true);
  a.managerHooks.raft!.proposal!(0.004, true);
  assert.match(await a.registry.metrics(), /^shoal_agent_docker_call_duration_seconds_count\{operation="start"\} 1$/m);
  assert.match(await a.registry.metrics(), /^shoal_raft_proposal_duration_seconds_count 1$/m);
  assert.doesNotMatch(await b.registry.metrics(), /operation="start"/);
  assert.match(await b.registry.metrics(), /^shoal_raft_proposal_duration_seconds_count 0$/m);
  assert.equal(globalRegistry.getMetricsAsArray().filter((m) => m.name.startsWith('shoal_')).length, 0, "prom-client's global registry is not used");
});
