// Command-line entry of the Raft simulation.
//
//   node packages/raft/dist/test/sim/cli.js --seeds 5000            # seeds 1..5000 (odd: 3 nodes, even: 5)
//   node packages/raft/dist/test/sim/cli.js --seed 42               # replay one seed with a verbose trace
//   npm run test:sim -- --seeds 1000 --steps 10000 --nodes 3
//
// Options: --seeds N (run N seeds from --from, default 1), --seed N (replay one seed, verbose),
// --steps N (chaos steps per seed, default 5000 as in CI), --nodes 3|5 (default: 3 for odd seeds,
// 5 for even ones, as in CI), --quiet (no trace when replaying), --keep-going (do not stop at the
// first failure), --fault forget-vote|send-before-persist (inject a driver bug, to see the checker
// catch it). Exits non-zero if any seed fails. A run of many seeds then runs the same seeds of the
// driver simulation (driver-cli.ts); --core runs only the core one, --driver only the driver one
// (with --seed N it replays a driver seed; --lying-fsync breaks the simulated disk's fsync).

import { driverMain } from './driver-cli.js';
import { DEFAULT_STEPS, nodesForSeed, runSim, replayCommand, type SimResult, type SimStats } from './simulation.js';

interface Args {
  seed?: number;
  seeds?: number;
  from: number;
  steps: number;
  nodes?: 3 | 5;
  quiet: boolean;
  keepGoing: boolean;
  fault: { forgetVote?: boolean; sendBeforePersist?: boolean };
  faultName: string;
}

function usage(msg?: string): never {
  if (msg) console.error(msg);
  console.error(
    'usage: cli.js [--seeds N [--from M]] [--seed N] [--steps N] [--nodes 3|5] [--quiet] [--keep-going] [--fault forget-vote|send-before-persist]',
  );
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const a: Args = { from: 1, steps: DEFAULT_STEPS, quiet: false, keepGoing: false, fault: {}, faultName: '' };
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i]!;
    const num = (): number => {
      const v = Number(argv[++i]);
      if (!Number.isInteger(v) || v < 0) usage(`${k} needs a non-negative integer`);
      return v;
    };
    switch (k) {
      case '--seed':
        a.seed = num();
        break;
      case '--seeds':
        a.seeds = num();
        break;
      case '--from':
        a.from = num();
        break;
      case '--steps':
        a.steps = num();
        break;
      case '--nodes': {
        const n = num();
        if (n !== 3 && n !== 5) usage('--nodes must be 3 or 5');
        a.nodes = n;
        break;
      }
      case '--quiet':
        a.quiet = true;
        break;
      case '--keep-going':
        a.keepGoing = true;
        break;
      case '--fault': {
        const f = argv[++i];
        if (f === 'forget-vote') a.fault = { forgetVote: true };
        else if (f === 'send-before-persist') a.fault = { sendBeforePersist: true };
        else usage('--fault must be forget-vote or send-before-persist');
        a.faultName = f;
        break;
      }
      case '-h':
      case '--help':
        usage();
        break;
      default:
        usage(`unknown argument ${k}`);
    }
  }
  return a;
}

function fmtStats(s: SimStats): string {
  return (
    `term ${s.maxTerm}, ${s.leaders} leaders, applied ${s.maxApplied}, ${s.acked} acked, ${s.readsServed} reads, ` +
    `${s.snapsDelivered} snaps, ${s.compactions} compactions, ${s.crashes} crashes (${s.midReadyCrashes} mid-Ready), ${s.asyncWrites} async writes (${s.writeTimeApplies} applies during one), ` +
    `${s.confChangesApplied} conf changes applied, ${s.transfers} transfers, ${s.partitions} partitions, ` +
    `${s.delivered} delivered / ${s.dropped} dropped, pool<=${s.maxPool}, ` +
    `liveness: commit@${s.livenessCommitTick} converge@${s.livenessConvergeTick} (${s.finalVoters} voters)`
  );
}

function main(): void {
  const args = parseArgs(process.argv.slice(2));
  if (args.seed !== undefined) {
    const nodes = args.nodes ?? nodesForSeed(args.seed);
    console.log(`replaying seed ${args.seed} on ${nodes} nodes, ${args.steps} steps`);
    const res = runSim({
      seed: args.seed,
      nodes,
      steps: args.steps,
      ...args.fault,
      ...(args.quiet ? {} : { trace: (l: string) => console.log(l) }),
    });
    console.log(`params: ${JSON.stringify(res.params)}`);
    console.log(`stats: ${fmtStats(res.stats)}`);
    if (res.ok) {
      console.log(`seed ${args.seed}: ok`);
      return;
    }
    console.error(`\nFAIL ${res.error}`);
    process.exitCode = 1;
    return;
  }

  const count = args.seeds ?? 100;
  const t0 = Date.now();
  const failures: SimResult[] = [];
  const totals = { steps: 0, acked: 0, snaps: 0, crashes: 0, conf: 0, reads: 0, leaders: 0 };
  let maxCommitTick = 0;
  let done = 0;
  for (let seed = args.from; seed < args.from + count; seed++) {
    const nodes = args.nodes ?? nodesForSeed(seed);
    const res = runSim({ seed, nodes, steps: args.steps, ...args.fault });
    done++;
    totals.steps += res.stats.steps;
    totals.acked += res.stats.acked;
    totals.snaps += res.stats.snapsDelivered;
    totals.crashes += res.stats.crashes;
    totals.conf += res.stats.confChangesApplied;
    totals.reads += res.stats.readsServed;
    totals.leaders += res.stats.leaders;
    maxCommitTick = Math.max(maxCommitTick, res.stats.livenessCommitTick);
    if (!res.ok) {
      failures.push(res);
      console.error(`\nFAIL ${res.error}`);
      if (!args.keepGoing) break;
    }
    if (done % 100 === 0) {
      const secs = (Date.now() - t0) / 1000;
      console.log(`${done}/${count} seeds, ${failures.length} failed, ${secs.toFixed(1)}s`);
    }
  }
  const secs = (Date.now() - t0) / 1000;
  console.log(
    `\n${done} seeds x ${args.steps} steps (${totals.steps} steps) in ${secs.toFixed(1)}s: ` +
      `${totals.leaders} leaderships, ${totals.acked} proposals acknowledged, ${totals.reads} reads served, ` +
      `${totals.snaps} snapshots installed, ${totals.crashes} crashes, ${totals.conf} conf changes applied; ` +
      `slowest liveness commit: ${maxCommitTick} ticks`,
  );
  if (failures.length > 0) {
    console.error(`${failures.length} seed(s) FAILED:`);
    const extra = args.faultName ? ` --fault ${args.faultName}` : '';
    for (const f of failures) console.error(`  seed ${f.seed} [${f.property}]: ${replayCommand(f.seed, f.nodes, f.steps)}${extra}`);
    process.exitCode = 1;
  } else {
    console.log('all seeds passed');
  }
}

// `node --test <dir>` (Node 20) also runs every .js file under a `test` directory, this one
// included: do nothing when loaded by the test runner.
// --driver: only the driver simulation (driver-sim.ts: the production Ready loop over a simulated
// disk and network); --core: only the core one. A run of many seeds runs both by default; a
// replay (--seed N) replays the core simulation unless --driver is given.
if (process.env.NODE_TEST_CONTEXT === undefined) {
  const argv = process.argv.slice(2);
  const rest = argv.filter((a) => a !== '--driver' && a !== '--core');
  if (argv.includes('--driver')) process.exitCode = await driverMain(rest);
  else {
    process.argv = [...process.argv.slice(0, 2), ...rest];
    main();
    const fault = argv.includes('--fault');
    if (!argv.includes('--core') && !argv.includes('--seed') && !fault && !process.exitCode) process.exitCode = await driverMain(rest);
  }
}
