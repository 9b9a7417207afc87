// Command-line entry of the driver simulation (driver-sim.ts); cli.ts passes --driver runs here.
//   node packages/raft/dist/test/sim/driver-cli.js --seeds 200 [--from M] [--steps N] [--nodes 3|5]
//   node packages/raft/dist/test/sim/driver-cli.js --seed 42        # replay one seed with a trace

import { runDriverSim, nodesForSeed, driverTraceTail } from './driver-sim.js';

export async function driverMain(argv: string[]): Promise<number> {
  const get = (k: string): number | undefined => {
    const i = argv.indexOf(k);
    return i >= 0 ? Number(argv[i + 1]) : undefined;
  };
  const steps = get('--steps') ?? 5000;
  const fixedNodes = get('--nodes') as 3 | 5 | undefined;
  const one = get('--seed');
  const quiet = argv.includes('--quiet');
  const lyingFsync = argv.includes('--lying-fsync');
  if (one !== undefined) {
    const nodes = fixedNodes ?? nodesForSeed(one);
    const r = await runDriverSim({ seed: one, nodes, steps, lyingFsync, ...(quiet ? {} : { trace: (l) => console.log(l) }) });
    console.log(r.ok ? `seed ${one} ok: ${JSON.stringify(r.stats)}` : r.error);
    return r.ok ? 0 : 1;
  }
  const seeds = get('--seeds') ?? 100;
  const from = get('--from') ?? 1;
  const t0 = performance.now();
  let failed = 0;
  for (let seed = from; seed < from + seeds; seed++) {
    const nodes = fixedNodes ?? nodesForSeed(seed);
    const r = await runDriverSim({ seed, nodes, steps, lyingFsync });
    if (!r.ok) {
      failed++;
      console.log(r.error);
      if (!argv.includes('--keep-going')) {
        for (const l of await driverTraceTail({ seed, nodes, steps, lyingFsync }, 40)) console.log(`    ${l}`);
        break;
      }
    } else if (argv.includes('--verbose')) console.log(`seed ${seed}: ${JSON.stringify(r.stats)}`);
  }
  console.log(`${seeds} seeds x ${steps} steps (driver) in ${((performance.now() - t0) / 1000).toFixed(1)}s, ${failed} failed`);
  return failed > 0 ? 1 : 0;
}

if (process.env.NODE_TEST_CONTEXT === undefined && import.meta.url === `file://${process.argv[1]}`) process.exitCode = await driverMain(process.argv.slice(2));
