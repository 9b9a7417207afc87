// npm run bench:failover [-- --rounds 20]
// Kills the leader with SIGKILL, round after round, and measures the time from the kill until a
// surviving member has committed a write (a new leader exists and works). The killed member is
// restarted and catches up before the next round. Default timings. Prints one JSON line.

import { parseArgs } from 'node:util';
import { ProcessCluster } from '../src/testing/process-cluster.js';
import { quantile, round } from './stats.js';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '20' },
    nodes: { type: 'string', default: '3' },
  },
});
const rounds = Number(values.rounds);
const cluster = await ProcessCluster.start({ size: Number(values.nodes) });
const samples: number[] = [];
try {
  for (let i = 0; i < rounds; i++) {
    const leader = await cluster.waitLeader(20_000);
    await leader.request({ cmd: 'put', key: 'warm', value: String(i) });
    // Let heartbeats flow so followers are in their normal steady state.
    await new Promise((r) => setTimeout(r, 300 + Math.random() * 200));
    const survivors = cluster.members.filter((m) => m !== leader && m.running);
    const t0 = Date.now();
    await leader.kill();
    // Every survivor tries; the first committed write ends the round.
    const took = await Promise.any(
      survivors.map(async (m) => {
        for (;;) {
          try {
            await m.request({ cmd: 'put', key: `after-${i}`, value: m.id, timeoutMs: 5000 });
            return Date.now() - t0;
          } catch {
            /* keep trying until a leader takes it */
          }
        }
      }),
    );
    samples.push(took);
    await leader.start();
    await cluster.waitLeader(20_000);
  }
  console.log(
    JSON.stringify({
      nodes: Number(values.nodes),
      rounds,
      p50_ms: quantile(samples, 0.5),
      p99_ms: quantile(samples, 0.99),
      max_ms: Math.max(...samples),
      mean_ms: round(samples.reduce((a, b) => a + b, 0) / samples.length),
    }),
  );
} finally {
  await cluster.stop();
}
