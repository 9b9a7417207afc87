// npm run bench:converge [-- --image shoal/busybox:latest]
// One manager and two workers (shoald processes on 127.0.0.1-3) on this machine's Docker. Measures,
// in one run: create 10 replicas → 10 running (converge_10_s); scale 10 → 20 (scale_to_20_s);
// `docker kill` of one container → a replacement running (selfheal_s); SIGKILL of a worker → all
// its tasks running elsewhere (node_failover_s); and the floor: 10 containers created and started
// concurrently through the Engine API from one process, no orchestration (floor_10_s).
import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import Docker from 'dockerode';
import { TestCluster, type Daemon } from '../helpers/shoald.js';

const { values } = parseArgs({
  options: {
    image: { type: 'string', default: 'shoal/busybox:latest' },
    // Docker's own timing swings a lot on this VM: each figure is the median of this many rounds,
    // the floor measured in the same rounds.
    rounds: { type: 'string', default: '3' },
  },
});
const image = values.image!;
const rounds = Math.max(1, Number(values.rounds));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)];
const round = (ms: number) => Math.round(ms) / 1000;

interface TaskView {
  task: { id: string; nodeId: string; desiredState: string; status: { state: string; containerId: string } };
  nodeHostname: string;
}

async function floor(n = 10): Promise<number> {
  const docker = new Docker();
  const t0 = performance.now();
  const cs = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      docker.createContainer({ Image: image, Cmd: ['httpd', '-f', '-p', '8080'], name: `shoal-floor-${process.pid}-${i}`, Labels: { 'shoal.bench': 'floor' } }),
    ),
  );
  await Promise.all(cs.map((c) => c.start()));
  const t = performance.now() - t0;
  await Promise.all(cs.map((c) => c.remove({ force: true })));
  return t;
}

const c = new TestCluster();
try {
  const [m1] = await c.managers(1);
  const w1 = await c.join('w1', m1, 'worker', '127.0.0.2');
  await c.join('w2', m1, 'worker', '127.0.0.3');
  for (;;) {
    const r = await m1.call<{ nodes: { node: { status: { state: string } } }[] }>('ListNodes');
    if (r.nodes.length === 3 && r.nodes.every((n) => n.node.status.state === 'ready')) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const running = async (): Promise<TaskView[]> =>
    (await m1.callPooled<{ tasks: TaskView[] }>('ListTasks', { service: 'bench' })).tasks.filter((t) => t.task.desiredState === 'running' && t.task.status.state === 'running');
  const until = async (pred: (ts: TaskView[]) => boolean): Promise<void> => {
    for (;;) {
      if (pred(await running())) return;
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  const gone = async () => {
    for (;;) {
      const left = execFileSync('docker', ['ps', '-aq', '--filter', 'label=shoal.service.name=bench'], { encoding: 'utf8' }).trim();
      const r = await m1.callPooled<{ services: unknown[] }>('ListServices');
      if (!left && r.services.length === 0) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  const floors: number[] = [];
  const floors1: number[] = [];
  const floorsBusy: number[] = [];
  const converges: number[] = [];
  const scales: number[] = [];
  // Docker tears removed containers down in the background: each measurement starts after a pause.
  const settle = () => new Promise((r) => setTimeout(r, 1_500));
  for (let k = 0; k < rounds; k++) {
    await settle();
    floors.push(await floor());
    await settle();
    floors1.push(await floor(1));
    await settle();
    let t0 = performance.now();
    if (process.env.SHOAL_BENCH_TRACE) console.error(`create-service at ${Date.now() * 1e6}`);
    await m1.call('CreateService', {
      spec: { name: 'bench', image, args: ['httpd', '-f', '-p', '8080'], replicas: 10, restartPolicy: { condition: 'any', delayMs: 0 }, stopGracePeriodMs: 1_000 },
    });
    await until((ts) => ts.length === 10);
    if (process.env.SHOAL_BENCH_TRACE) console.error(`converged at ${Date.now() * 1e6}`);
    converges.push(performance.now() - t0);

    await settle();
    // The same floor with the 10 replicas running: Docker starts containers slower when busy.
    if (process.env.SHOAL_BENCH_TRACE) console.error(`floorbusy at ${Date.now() * 1e6}`);
    floorsBusy.push(await floor());
    await settle();
    t0 = performance.now();
    if (process.env.SHOAL_BENCH_TRACE) console.error(`scale at ${Date.now() * 1e6}`);
    await m1.call('ScaleService', { service: 'bench', replicas: 20 });
    await until((ts) => ts.length === 20);
    if (process.env.SHOAL_BENCH_TRACE) console.error(`scaled at ${Date.now() * 1e6}`);
    scales.push(performance.now() - t0);
    if (k < rounds - 1) {
      await m1.call('RemoveService', { service: 'bench' });
      await gone();
    }
  }

  const heals: number[] = [];
  const kills: number[] = [];
  const floors1Busy: number[] = [];
  for (let k = 0; k < rounds; k++) {
    await settle();
    // What a self-heal cannot go below: one container created and started while the 20 run.
    floors1Busy.push(await floor(1));
    await settle();
    const victim = (await running())[0];
    const t0 = performance.now();
    execFileSync('docker', ['kill', victim.task.status.containerId]);
    kills.push(performance.now() - t0);
    await until((ts) => ts.length === 20 && !ts.some((t) => t.task.id === victim.task.id));
    heals.push(performance.now() - t0);
  }
  const [converge, scale, selfheal, floor10, floor1, floorBusy, floor1Busy, kill] = [converges, scales, heals, floors, floors1, floorsBusy, floors1Busy, kills].map(median);

  const w1Id = (await running()).find((t) => t.nodeHostname === 'w1')?.task.nodeId ?? '';
  const t0 = performance.now();
  await (w1 as Daemon).kill();
  const theirs = execFileSync('docker', ['ps', '-q', '--filter', `label=shoal.node.id=${w1Id}`], { encoding: 'utf8' }).trim();
  if (theirs) execFileSync('docker', ['rm', '-f', ...theirs.split('\n')]);
  await until((ts) => ts.length === 20 && ts.every((t) => t.nodeHostname !== 'w1'));
  const failover = performance.now() - t0;

  await m1.call('RemoveService', { service: 'bench' });
  console.log(
    JSON.stringify({
      converge_10_s: round(converge),
      scale_to_20_s: round(scale),
      selfheal_s: round(selfheal),
      node_failover_s: round(failover),
      floor_10_s: round(floor10),
      // One container created and started (what a self-heal cannot go below).
      floor_1_s: round(floor1),
      // Ten more while ten run (what scaling 10 → 20 asks of Docker).
      floor_10_busy_s: round(floorBusy),
      // One more while twenty run (what a self-heal asks of Docker), and the `docker kill` command
      // itself (part of selfheal_s, as in the Swarm figure).
      floor_1_busy_s: round(floor1Busy),
      docker_kill_cli_s: round(kill),
      selfheal_over_floor: Math.round((selfheal / floor1Busy) * 100) / 100,
      converge_over_floor: Math.round((converge / floor10) * 100) / 100,
      scale_over_floor: Math.round((scale / floor10) * 100) / 100,
      rounds,
      image,
    }),
  );
} finally {
  await c.stop();
  const left = execFileSync('docker', ['ps', '-aq', '--filter', 'label=shoal.service.name=bench'], { encoding: 'utf8' }).trim();
  if (left) execFileSync('docker', ['rm', '-f', ...left.split('\n')]);
}
