// npm run bench:schedule [-- --sizes 10000x1000,100000x2000 --deadline-s 120 --rtt-ms 0]
// The leader's orchestration passes (reconcile, allocate, schedule) at scale, on an in-memory
// store: the real Orchestrator commits through a StoreClient whose proposals apply at once (after
// `--rtt-ms`, a stand-in for Raft's round trip), so only the passes' own work and the store's
// apply are timed. For each size (replicas x nodes; services of up to 10,000 replicas, created
// in one transaction): the first pass after `service create` (the
// time to its first proposal), the time until every replica is placed, and the proposals it took;
// then a scale-down to half, 10% of the nodes going down (their tasks placed elsewhere), and the
// longest a full pass with nothing to do holds the event loop, and the pass after a status report.
// A size that does not converge within the deadline says how far it got. Prints one JSON line.

import os from 'node:os';
import { parseArgs } from 'node:util';
import { silentLogger } from '@shoal/raft';
import { ClusterStore, StoreClient, type Node, type Op, type Service, type StoreEvent, type Task, newId, updateOp } from '@shoal/store';
import { Orchestrator } from '../src/orchestrator/orchestrator.js';
import { validateServiceSpec } from '../src/controlapi/validate.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000x1000,100000x2000' },
    'deadline-s': { type: 'string', default: '120' },
    'rtt-ms': { type: 'string', default: '0' },
  },
});
const sizes = values.sizes.split(',').map((s) => s.split('x').map(Number) as [number, number]);
const deadlineMs = Number(values['deadline-s']) * 1000;
const rttMs = Number(values['rtt-ms']);
const round = (x: number) => Math.round(x * 10) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function mkNode(i: number, now: number): Node {
  const id = `node${String(i).padStart(5, '0')}`;
  return {
    id,
    version: 0,
    createdAt: now,
    updatedAt: now,
    spec: { role: 'worker', availability: 'active', labels: { zone: `z${i % 3}` } },
    description: { hostname: id, platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 2e9, memoryBytes: 2 ** 31 }, engineVersion: '27' },
    status: { state: 'ready', message: '', addr: '10.0.0.1:2377', meshAddr: '', meshErrors: [], meshMode: '' },
    managerStatus: null,
    attachments: [],
  };
}

/** Tasks meant to run, and of those the placed ones, kept up to date from the store's events. */
class Census {
  wanted = 0;
  placed = 0;
  private count(t: Task, sign: number): void {
    if (t.desiredState !== 'running') return;
    this.wanted += sign;
    if (t.nodeId !== '') this.placed += sign;
  }
  on(events: readonly StoreEvent[]): void {
    for (const e of events) {
      if (e.action === 'restore' || e.kind !== 'task') continue;
      if (e.action === 'update') this.count(e.previous as Task, -1);
      this.count(e.object, e.action === 'delete' ? -1 : 1);
    }
  }
}

async function until(cond: () => boolean, end: number): Promise<boolean> {
  while (!cond()) {
    if (performance.now() > end) return false;
    await sleep(2);
  }
  return true;
}

/** Runs `work`, then waits `ms`: the longest gap between two turns of the event loop meanwhile. */
async function held(work: () => Promise<unknown>, ms: number): Promise<number> {
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
  await work();
  await sleep(ms);
  running = false;
  return maxGap;
}

async function run(replicas: number, nodeCount: number) {
  const store = new ClusterStore();
  let index = 0;
  const client = new StoreClient(
    {
      propose: async (payload) => {
        if (rttMs > 0) await sleep(rttMs);
        return { index: ++index, result: store.apply(payload, index) };
      },
      readBarrier: async () => index,
    },
    store,
  );
  const now = Date.now();
  for (let b = 0; b < nodeCount; b += 500) {
    const ops: Op[] = [];
    for (let i = b; i < Math.min(nodeCount, b + 500); i++) ops.push({ op: 'create', kind: 'node', object: mkNode(i, now) });
    await client.commit(ops);
  }
  const census = new Census();
  store.watch((events) => census.on(events));
  let txs = 0;
  let firstAt = 0;
  const orchestrator = new Orchestrator(
    store,
    {
      commit: (ops, opts) => {
        txs++;
        firstAt ||= performance.now();
        return client.commit(ops, opts);
      },
    },
    silentLogger(),
  );
  orchestrator.begin();
  // The first pass gives every node its ingress address.
  await until(() => store.list('node').every((n) => n.attachments.length > 0), performance.now() + deadlineMs);
  await sleep(50);

  // Services of at most 10,000 replicas (the control API's bound), created in one transaction.
  const services: Service[] = [];
  for (let left = replicas, k = 1; left > 0; left -= 10_000, k++) {
    const spec = validateServiceSpec({ name: `big${k}`, image: 'busybox', replicas: Math.min(left, 10_000), restartPolicy: { condition: 'any', delayMs: 0 } });
    services.push({ id: newId(), version: 0, createdAt: now, updatedAt: now, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null });
  }
  const out: Record<string, unknown> = { replicas, nodes: nodeCount, services: services.length };

  // Create: every replica placed.
  txs = 0;
  firstAt = 0;
  let t0 = performance.now();
  await client.commit(services.map((object) => ({ op: 'create', kind: 'service', object }) as Op));
  let done = await until(() => census.placed === replicas && census.wanted === replicas, t0 + deadlineMs);
  out.create = { firstPassMs: round(firstAt - t0), convergeMs: round(performance.now() - t0), txs, converged: done, placed: census.placed };
  if (!done) {
    orchestrator.end();
    return out;
  }
  // Every task running (what agents would report), so the later steps act on running tasks.
  const running = store.list('task').map((t) => ({ ...t, status: { ...t.status, state: 'running' as const } }));
  for (let b = 0; b < running.length; b += 500) await client.commit(running.slice(b, b + 500).map((t) => updateOp('task', t)));
  await sleep(100);

  // Scale down to half.
  let half = 0;
  txs = 0;
  firstAt = 0;
  t0 = performance.now();
  const halved = services.map((svc) => {
    const cur = store.get('service', svc.id)!;
    half += Math.floor(cur.spec.replicas / 2);
    return updateOp('service', { ...cur, spec: { ...cur.spec, replicas: Math.floor(cur.spec.replicas / 2) } });
  });
  await client.commit(halved);
  done = await until(() => census.wanted === half, t0 + deadlineMs);
  out.scaleDown = { firstPassMs: round(firstAt - t0), convergeMs: round(performance.now() - t0), txs, converged: done };
  if (!done) {
    orchestrator.end();
    return out;
  }
  await sleep(100);

  // 10% of the nodes go down: their tasks are orphaned and placed elsewhere.
  txs = 0;
  firstAt = 0;
  t0 = performance.now();
  const down = store.list('node').slice(0, Math.max(1, Math.floor(nodeCount / 10)));
  await client.commit(down.map((n) => updateOp('node', { ...n, status: { ...n.status, state: 'down' } })));
  const downIds = new Set(down.map((n) => n.id));
  const settled = () => census.wanted === half && census.placed === half;
  // Orphaning marks the lost tasks shut down: the census counts half again once all are replaced.
  done = await until(() => settled() && !store.list('task').some((t) => t.desiredState === 'running' && downIds.has(t.nodeId)), t0 + deadlineMs);
  out.nodesDown = { nodes: down.length, firstPassMs: round(firstAt - t0), convergeMs: round(performance.now() - t0), txs, converged: done };
  await sleep(1000);

  // A full pass with nothing to do (a node's label changed): the longest the event loop was held.
  const n = store.list('node').at(-1)!;
  const idle = await held(() => client.commit([updateOp('node', { ...n, spec: { ...n.spec, labels: { ...n.spec.labels, touched: '1' } } })]), 1500);
  out.idleFullPassMs = round(idle);
  await sleep(1000);

  // A status report of 500 tasks of one service (what the dispatcher writes as agents report): the
  // pass it sets off holds the event loop this long at most (the store's apply of the report included).
  const reported = store.tasksByService(services[0]!.id).filter((t) => t.desiredState === 'running' && t.status.state === 'running').slice(0, 500);
  const report = await held(() => client.commit(reported.map((t) => updateOp('task', { ...t, status: { ...t.status, message: 'still running' } }))), 1500);
  out.reportPassMs = round(report);
  orchestrator.end();
  return out;
}

const results = [];
for (const [replicas, nodes] of sizes) results.push(await run(replicas, nodes));
console.log(
  JSON.stringify({
    bench: 'schedule',
    rttMs,
    deadlineS: deadlineMs / 1000,
    loadavg: os.loadavg().map(round),
    cpus: os.cpus().length,
    node: process.version,
    results,
  }),
);
process.exit(0);
