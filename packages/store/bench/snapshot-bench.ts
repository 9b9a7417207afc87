// npm run bench:snapshot [-- --tasks 10000,30000 --runs 3]
// The cluster store's snapshots in steps: for each store size, the total time to encode a capture
// and to restore it, and the longest the event loop was held meanwhile (the gap between two turns
// of a setImmediate ticker), next to the one-piece form of earlier releases (one JSON.stringify of
// every object; one parse-and-validate) measured in the same run. The longest hold should stay
// well under a Raft heartbeat (100 ms). Prints one JSON line.

import { parseArgs } from 'node:util';
import { Log, create, mkCluster, mkNode, mkService, mkTask } from '../test/fixtures.js';

const { values } = parseArgs({
  options: {
    tasks: { type: 'string', default: '10000,30000' },
    runs: { type: 'string', default: '3' },
  },
});
const sizes = values.tasks.split(',').map(Number);
const runs = Number(values.runs);

function bigLog(tasks: number): Log {
  const log = new Log();
  log.ok(create('cluster', mkCluster()), create('node', mkNode('n1', 'alpha')));
  log.ok(create('service', mkService('svc1', 'web')));
  for (let b = 0; b < tasks; b += 500) {
    const ops = [];
    for (let i = b; i < Math.min(tasks, b + 500); i++) ops.push(create('task', mkTask(`t${i}`, 'svc1', i + 1, { nodeId: 'n1' })));
    log.ok(...ops);
  }
  return log;
}

/** Runs `work`, returning its total time and the longest gap between two turns of the event loop. */
async function measure<T>(work: () => Promise<T>): Promise<{ value: T; ms: number; maxBlockMs: number }> {
  let last = performance.now();
  let maxGap = 0;
  let running = true;
  const tick = () => {
    const now = performance.now();
    maxGap = Math.max(maxGap, now - last);
    last = now;
    if (running) setImmediate(tick);
  };
  setImmediate(tick);
  const t0 = performance.now();
  const value = await work();
  const ms = performance.now() - t0;
  running = false;
  // The ticker's last turn closes the final gap (the work's last step).
  await new Promise<void>((r) => setImmediate(r));
  return { value, ms, maxBlockMs: Math.max(maxGap, performance.now() - last) };
}

const round = (x: number) => Math.round(x * 10) / 10;

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

const results = [];
for (const tasks of sizes) {
  const log = bigLog(tasks);
  const store = log.store;
  const enc = { ms: [] as number[], block: [] as number[] };
  const res = { ms: [] as number[], block: [] as number[] };
  const oneEnc: number[] = [];
  const oneRes: number[] = [];
  let bytes = 0;
  let oneBytes = 0;
  for (let r = 0; r < runs; r++) {
    const e = await measure(() => store.captureSnapshot().encode());
    enc.ms.push(e.ms);
    enc.block.push(e.maxBlockMs);
    bytes = e.value.length;
    const rs = await measure(() => store.restoreAsync(e.value));
    res.ms.push(rs.ms);
    res.block.push(rs.maxBlockMs);
    // The earlier form: the whole state as one JSON document, encoded and restored in one piece.
    const o = timed(() => {
      const objects: Record<string, unknown[]> = {};
      for (const kind of ['cluster', 'node', 'service', 'task'] as const) {
        objects[kind] = store.list(kind).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      }
      return new TextEncoder().encode(JSON.stringify({ format: 'shoal-store', version: 1, index: store.appliedIndex, objects }));
    });
    oneEnc.push(o.ms);
    oneBytes = o.value.length;
    oneRes.push(timed(() => store.restore(o.value)).ms);
  }
  const med = (xs: number[]) => round([...xs].sort((a, b) => a - b)[(xs.length - 1) >> 1]!);
  results.push({
    tasks,
    bytes,
    encode_ms: med(enc.ms),
    encode_max_block_ms: round(Math.max(...enc.block)),
    restore_ms: med(res.ms),
    restore_max_block_ms: round(Math.max(...res.block)),
    one_piece_bytes: oneBytes,
    one_piece_encode_ms: med(oneEnc),
    one_piece_restore_ms: med(oneRes),
  });
}
console.log(JSON.stringify({ bench: 'snapshot', runs, heartbeat_ms: 100, results }));
