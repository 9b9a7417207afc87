// npm run bench:raft -- --clients 64 --duration 10 [--size 256] [--nodes 3]
// Three member processes on loopback (real gRPC, LevelDB with sync writes); closed-loop clients
// propose commands through RaftNode.propose on the leader, the path the managers use. Prints one
// JSON line: {nodes, clients, ops_per_s, p50_ms, p99_ms}.

import { parseArgs } from 'node:util';
import { ProcessCluster } from '../src/testing/process-cluster.js';
import { quantile, round } from './stats.js';

const { values } = parseArgs({
  options: {
    clients: { type: 'string', default: '64' },
    duration: { type: 'string', default: '10' },
    size: { type: 'string', default: '256' },
    nodes: { type: 'string', default: '3' },
    warmup: { type: 'string', default: '1' },
    'snapshot-entries': { type: 'string' },
  },
});
const clients = Number(values.clients);
const durationMs = Number(values.duration) * 1000;
const size = Number(values.size);
const nodes = Number(values.nodes);

const snapshotEntries = values['snapshot-entries'] ? Number(values['snapshot-entries']) : undefined;
const cluster = await ProcessCluster.start({ size: nodes, snapshotEntries });
try {
  const leader = await cluster.waitLeader();
  await leader.request({ cmd: 'load', clients, durationMs: Number(values.warmup) * 1000, size });
  const t0 = Date.now();
  const r = await leader.request<{ latencies: number[]; errors: number }>({ cmd: 'load', clients, durationMs, size });
  const elapsed = (Date.now() - t0) / 1000;
  const out = {
    nodes,
    clients,
    ops_per_s: Math.round(r.latencies.length / elapsed),
    p50_ms: round(quantile(r.latencies, 0.5)),
    p99_ms: round(quantile(r.latencies, 0.99)),
    errors: r.errors,
    size_bytes: size,
  };
  console.log(JSON.stringify(out));
} finally {
  await cluster.stop();
}
