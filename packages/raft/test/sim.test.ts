// CI suite of the randomized Raft simulations (see test/sim/). Each seed runs a chaos phase of
// SIM_STEPS random events (default 5000) on 3 or 5 nodes, checking the safety properties after
// every step, then a liveness phase. A failure prints the seed and the replay command
// (npm run test:sim -- [--driver] --seed N --nodes K --steps S). Scale with SIM_SEEDS / SIM_STEPS.
// Two simulations: the core one (cluster.ts: RaftCore under a scripted Ready loop that checks the
// core's Ready contract step by step) and the driver one (driver-sim.ts: the production driver,
// RaftNode's Ready loop and client path, over a disk that loses unsynced writes on power loss and
// fails writes, checking that nothing acknowledged is lost or applied twice).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { SafetyChecker, SafetyViolation } from './sim/checker.js';
import { DEFAULT_STEPS, nodesForSeed, runSim, traceTail, type SimOptions, type SimResult } from './sim/simulation.js';
import { driverTraceTail, runDriverSim, type DriverSimOptions, type DriverSimResult } from './sim/driver-sim.js';

const SEEDS = Number(process.env.SIM_SEEDS ?? 250);
const STEPS = Number(process.env.SIM_STEPS ?? DEFAULT_STEPS);

/** Runs `count` seeds on `nodes` nodes: the seeds whose default node count is `nodes` (odd: 3, even: 5). */
function runSeeds(nodes: 3 | 5, count: number, steps: number): { failures: SimResult[]; summary: string } {
  const t0 = performance.now();
  const failures: SimResult[] = [];
  let acked = 0;
  let snaps = 0;
  let crashes = 0;
  let conf = 0;
  let reads = 0;
  let leaders = 0;
  let slowest = 0;
  for (let k = 0; k < count; k++) {
    const seed = 2 * k + (nodes === 3 ? 1 : 2);
    if (nodesForSeed(seed) !== nodes) throw new Error('seed parity');
    const r = runSim({ seed, nodes, steps });
    if (!r.ok) failures.push(r);
    acked += r.stats.acked;
    snaps += r.stats.snapsDelivered;
    crashes += r.stats.crashes;
    conf += r.stats.confChangesApplied;
    reads += r.stats.readsServed;
    leaders += r.stats.leaders;
    slowest = Math.max(slowest, r.stats.livenessCommitTick);
  }
  const secs = (performance.now() - t0) / 1000;
  const summary =
    `${count} seeds x ${steps} steps on ${nodes} nodes in ${secs.toFixed(1)}s: ${leaders} leaderships, ` +
    `${acked} proposals acknowledged, ${reads} linearizable reads, ${snaps} snapshots installed, ` +
    `${crashes} crashes, ${conf} conf changes applied, slowest post-heal commit ${slowest} ticks, ` +
    `${failures.length} failed`;
  return { failures, summary };
}

function report(failures: SimResult[]): string {
  const lines = [`${failures.length} seed(s) failed:`];
  for (const f of failures.slice(0, 10)) lines.push(`- [${f.property}] ${f.error}`);
  if (failures.length > 10) lines.push(`- ... and ${failures.length - 10} more`);
  const first = failures[0]!;
  const opts: SimOptions = { seed: first.seed, nodes: first.nodes as 3 | 5, steps: first.steps };
  lines.push(`last events of seed ${first.seed}:`, ...traceTail(opts, 40).map((l) => `    ${l}`));
  return lines.join('\n');
}

describe('raft simulation', () => {
  for (const nodes of [3, 5] as const) {
    test(`${SEEDS} seeds on ${nodes} nodes, ${STEPS} steps each: safety after every step, then liveness`, (t) => {
      // Odd seeds run on 3 nodes, even ones on 5 (so `npm run test:sim -- --seed N` replays either).
      const { failures, summary } = runSeeds(nodes, SEEDS, STEPS);
      t.diagnostic(summary);
      console.log(`# sim: ${summary}`);
      if (failures.length > 0) assert.fail(report(failures));
    });
  }
});

/** Runs the driver simulation on the seeds whose default node count is `nodes`. */
async function runDriverSeeds(nodes: 3 | 5, count: number, steps: number): Promise<{ failures: DriverSimResult[]; summary: string }> {
  const t0 = performance.now();
  const failures: DriverSimResult[] = [];
  const tot = { acked: 0, retries: 0, reads: 0, crashes: 0, powerLosses: 0, diskFaults: 0, fatals: 0, snapshots: 0, snaps: 0, leaders: 0 };
  for (let k = 0; k < count; k++) {
    const seed = 2 * k + (nodes === 3 ? 1 : 2);
    const r = await runDriverSim({ seed, nodes, steps });
    if (!r.ok) failures.push(r);
    tot.acked += r.stats.acked;
    tot.retries += r.stats.retries;
    tot.reads += r.stats.reads;
    tot.crashes += r.stats.crashes;
    tot.powerLosses += r.stats.powerLosses;
    tot.diskFaults += r.stats.diskFaults;
    tot.fatals += r.stats.fatals;
    tot.snapshots += r.stats.snapshots;
    tot.snaps += r.stats.snapsDelivered;
    tot.leaders += r.stats.leaders;
  }
  const secs = (performance.now() - t0) / 1000;
  const summary =
    `${count} seeds x ${steps} steps of the driver on ${nodes} nodes in ${secs.toFixed(1)}s: ${tot.leaders} leaderships, ` +
    `${tot.acked} proposals acknowledged (${tot.retries} client retries), ${tot.reads} read barriers, ${tot.snapshots} snapshots taken, ` +
    `${tot.snaps} installed, ${tot.crashes} crashes, ${tot.powerLosses} power losses, ${tot.diskFaults} disk faults ` +
    `(${tot.fatals} fatal exits), ${failures.length} failed`;
  return { failures, summary };
}

async function driverReport(failures: DriverSimResult[]): Promise<string> {
  const lines = [`${failures.length} seed(s) failed:`];
  for (const f of failures.slice(0, 10)) lines.push(`- [${f.property}] ${f.error}`);
  const first = failures[0]!;
  const opts: DriverSimOptions = { seed: first.seed, nodes: first.nodes as 3 | 5, steps: first.steps };
  lines.push(`last events of seed ${first.seed}:`, ...(await driverTraceTail(opts, 40)).map((l) => `    ${l}`));
  return lines.join('\n');
}

describe('driver simulation (the production Ready loop and client path)', () => {
  for (const nodes of [3, 5] as const) {
    test(`${SEEDS} seeds on ${nodes} nodes, ${STEPS} steps each: crashes, power losses and disk faults`, async (t) => {
      const { failures, summary } = await runDriverSeeds(nodes, SEEDS, STEPS);
      t.diagnostic(summary);
      console.log(`# sim: ${summary}`);
      if (failures.length > 0) assert.fail(await driverReport(failures));
    });
  }

  test('the driver simulation catches a disk whose fsync does nothing (acknowledged writes lost)', async (t) => {
    let found: DriverSimResult | undefined;
    for (let seed = 1; seed <= 100 && !found; seed++) {
      const r = await runDriverSim({ seed, nodes: nodesForSeed(seed), steps: 3000, skipLiveness: false, lyingFsync: true, params: { powerLossWeight: 3 } });
      if (!r.ok) found = r;
    }
    assert.ok(found, 'no violation found with a lying fsync');
    t.diagnostic(`found at seed ${found.seed}: ${found.error!.split('\n')[0]}`);
    assert.ok(['Durable proposals', 'State Machine Safety', 'Log Matching', 'Election Safety', 'Durable state', 'Linearizable reads'].includes(found.property!), found.error);
  });
});

describe('the checker is not vacuous', () => {
  test('two leaders in one term', () => {
    const c = new SafetyChecker();
    c.leader('n1', 2);
    c.leader('n1', 2);
    c.leader('n2', 3);
    assert.throws(() => c.leader('n3', 2), (e: unknown) => e instanceof SafetyViolation && e.property === 'Election Safety');
  });

  test('divergent applied entries', () => {
    const c = new SafetyChecker();
    c.entryApplied('n1', 1, 1, 'N:a', 11, 1);
    c.entryApplied('n2', 1, 1, 'N:a', 11, 1);
    assert.throws(
      () => c.entryApplied('n3', 1, 2, 'N:b', 12, 2),
      (e: unknown) => e instanceof SafetyViolation && e.property === 'State Machine Safety',
    );
    // Same entry at an index but different histories before it.
    c.entryApplied('n1', 2, 1, 'N:c', 21, 1);
    assert.throws(
      () => c.entryApplied('n2', 2, 1, 'N:c', 99, 1),
      (e: unknown) => e instanceof SafetyViolation && e.property === 'State Machine Safety',
    );
  });

  test('logs that share an entry but differ before it', () => {
    const c = new SafetyChecker();
    c.entryStored('n1', 5, 3, 'N:x', 2);
    assert.throws(
      () => c.entryStored('n2', 5, 3, 'N:x', 1),
      (e: unknown) => e instanceof SafetyViolation && e.property === 'Log Matching',
    );
    assert.throws(
      () => c.entryStored('n2', 5, 3, 'N:y', 2),
      (e: unknown) => e instanceof SafetyViolation && e.property === 'Log Matching',
    );
  });

  test('a later leader without a committed entry', () => {
    const c = new SafetyChecker();
    c.commitObserved(4, 2); // a leader of term 2 committed through 4
    for (let i = 1; i <= 4; i++) c.entryApplied('n1', i, i === 1 ? 1 : 2, `N:${i}`, i, 2);
    // A leader of term 3 whose log has term 1 at index 3.
    assert.throws(
      () => c.leaderLog('n2', 3, 0, (i) => (i <= 2 ? (i === 1 ? 1 : 2) : 1)),
      (e: unknown) => e instanceof SafetyViolation && e.property === 'Leader Completeness',
    );
    // A stale leader of term 2 itself is not required to have it (it committed it).
    c.leaderLog('n1', 2, 0, (i) => (i === 1 ? 1 : 2));
  });

  test('a lost acknowledged proposal, a duplicate and a stale read', () => {
    const c = new SafetyChecker();
    c.proposalApplied('n1', 'p1', 7);
    assert.throws(
      () => c.proposalApplied('n2', 'p1', 9),
      (e: unknown) => e instanceof SafetyViolation && e.property === 'Durable proposals',
    );
    assert.throws(
      () => c.proposalAppliedTwice('n1', 'p1', 7, 9),
      (e: unknown) => e instanceof SafetyViolation && e.property === 'At-most-once',
    );
    c.entryApplied('n1', 7, 1, 'N:p1', 7, 1);
    c.readIssued('n2', 'r1');
    assert.throws(
      () => c.readState('n2', 'r1', 6),
      (e: unknown) => e instanceof SafetyViolation && e.property === 'Linearizable reads',
    );
  });

  test('a double vote and a regressing term on disk', () => {
    const c = new SafetyChecker();
    c.hardStatePersisted('n1', { term: 2, vote: '', commit: 0 }, { term: 2, vote: 'n2', commit: 0 });
    assert.throws(
      () => c.hardStatePersisted('n1', { term: 2, vote: 'n2', commit: 0 }, { term: 2, vote: 'n3', commit: 0 }),
      (e: unknown) => e instanceof SafetyViolation && e.property === 'Durable state',
    );
    assert.throws(
      () => c.hardStatePersisted('n1', { term: 3, vote: 'n2', commit: 0 }, { term: 2, vote: '', commit: 0 }),
      (e: unknown) => e instanceof SafetyViolation && e.property === 'Durable state',
    );
  });

  // End to end: a deliberately broken driver must be caught by the simulation within a few seeds.
  function hunt(fault: Partial<SimOptions>, params: SimOptions['params'], maxSeeds: number): SimResult | undefined {
    for (let seed = 1; seed <= maxSeeds; seed++) {
      const r = runSim({ seed, nodes: seed % 2 === 1 ? 3 : 5, steps: 3000, skipLiveness: true, params, ...fault });
      if (!r.ok) return r;
    }
    return undefined;
  }

  test('the simulation catches a disk that forgets votes (two leaders in a term)', (t) => {
    const r = hunt({ forgetVote: true }, { crashWeight: 3, campaignWeight: 2, membership: false, partitionWeight: 0 }, 150);
    assert.ok(r, 'no violation found with a vote-forgetting disk');
    t.diagnostic(`found at seed ${r.seed}: ${r.error!.split('\n')[0]}`);
    assert.equal(r.property, 'Election Safety', r.error);
    assert.match(r.error!, /replay: npm run test:sim -- --seed \d+/);
  });

  test('the simulation catches a driver that sends before persisting (lost committed entries)', (t) => {
    const r = hunt({ sendBeforePersist: true }, { crashMid: 0.02, campaignWeight: 2, membership: false }, 150);
    assert.ok(r, 'no violation found with a driver that acknowledges before persisting');
    t.diagnostic(`found at seed ${r.seed}: ${r.error!.split('\n')[0]}`);
    assert.ok(
      ['Election Safety', 'Leader Completeness', 'State Machine Safety', 'Durable proposals', 'Log Matching'].includes(r.property!),
      r.error,
    );
  });
});
