// npm run bench:scale -- --nodes 1000 --tasks 10000 [--services 1] [--managers 3] [--heartbeat 1s]
//                        [--per-process 100] [--dead 0.1] [--step-ms 2]
// Three real managers (shoald on loopback, drained) and N hollow nodes (@shoal/hollow: the real
// agent, its session, heartbeats, long polls and status reports over gRPC and mTLS, each node
// joined with a token and its own certificate; containers are records in memory) in processes of
// `--per-process`. Prints one JSON line:
//   join_s             all nodes joined and ready
//   converge_s         `service create` of M replicas (over `--services` services) until all run
//   placements_per_s   M / converge_s
//   leader_cpu_pct / follower_cpu_pct, *_rss_mib: during the converge, and RSS after it
//   idle_leader_cpu_pct  the leader's CPU with N idle nodes heartbeating (% of one core)
//   nodes_cpu_pct / idle_nodes_cpu_pct: what the hollow nodes' processes took meanwhile
//   machine_busy_pct (and resched_/failover_): how full this machine's cores were (/proc/stat)
//   idle_floor_cpu_pct  the same heartbeats (N connections, one call per period each) against a
//                      no-op server, measured at the end, while the nodes left still run: the least
//                      any Node gRPC dispatcher could spend on them here (`--floor false`: skip)
//   detect_s           `--dead` of the nodes powered off (their processes SIGKILLed) until the
//                      managers mark them down; resched_s until their tasks run elsewhere
//                      (resched_*_s: when the replacements were created and ran, from the power-off)
//   failover_sessions_s  the leader SIGKILLed until every node has a session with the new leader
//   failover_restarted   containers started or stopped by the nodes during the failover (0 wanted)
//   failover_leader_cpu_pct / failover_nodes_cpu_pct: the new leader's and the nodes' CPU meanwhile
// The hollow nodes run at nice 19 (they stand for other hosts: see HollowCluster.addNodes).
//   check              '' when every slot runs exactly once on a ready node at the end
import { parseArgs } from 'node:util';
import { fork, spawn } from 'node:child_process';
import { once } from 'node:events';
import { setPriority } from 'node:os';
import { join } from 'node:path';
import { parseDuration } from '@shoal/types';
import { checkReplicated, cpuSeconds, HollowCluster, machineTicks, rssMiB, waitFor } from '../helpers/hollow-cluster.js';

/** How full the machine's cores were since `t0` (a machineTicks() reading), in %. */
function busySince(t0: { busy: number; total: number }): number {
  const t = machineTicks();
  return Math.round((1000 * (t.busy - t0.busy)) / Math.max(1, t.total - t0.total)) / 10;
}

/**
 * The heartbeat floor: a no-op Dispatcher server (a manager's certificate) and `n` clients, each
 * its own TLS connection beating once per period, in processes of `perProcess` at nice 19 as the
 * hollow nodes. Returns the server's CPU over `ms` (% of one core).
 */
async function heartbeatFloor(h: HollowCluster, n: number, periodMs: number, perProcess: number, ms: number): Promise<number> {
  const dataDir = h.managers[0]!.dataDir;
  const server = spawn(process.execPath, [new URL('./noop-control-server.js', import.meta.url).pathname, dataDir, 'shoal.dispatcher.Dispatcher'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const clients: ReturnType<typeof fork>[] = [];
  try {
    const [chunk] = (await once(server.stdout!, 'data')) as [Buffer];
    const addr = `127.0.0.1:${chunk.toString().trim()}`;
    for (let left = n; left > 0; left -= perProcess) {
      const c = fork(new URL('./heartbeat-floor-clients.js', import.meta.url).pathname, [addr, String(Math.min(perProcess, left)), String(periodMs), join(dataDir, 'admin')], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      setPriority(c.pid!, 19);
      clients.push(c);
    }
    await Promise.all(clients.map((c) => once(c, 'message')));
    await sleep(periodMs);
    const c0 = cpuSeconds(server.pid!);
    await sleep(ms);
    return pct(cpuSeconds(server.pid!) - c0, ms);
  } finally {
    for (const c of clients) c.kill('SIGKILL');
    server.kill('SIGKILL');
  }
}

const { values } = parseArgs({
  options: {
    nodes: { type: 'string', default: '200' },
    tasks: { type: 'string', default: '2000' },
    services: { type: 'string', default: '1' },
    managers: { type: 'string', default: '3' },
    heartbeat: { type: 'string', default: '1s' },
    'per-process': { type: 'string', default: '100' },
    dead: { type: 'string', default: '0.1' },
    'step-ms': { type: 'string', default: '2' },
    'idle-s': { type: 'string', default: '10' },
    floor: { type: 'string', default: 'true' },
    // `--failover false`: keep the leader (e.g. to profile it through the phases before).
    failover: { type: 'string', default: 'true' },
  },
});
const N = Number(values.nodes);
const M = Number(values.tasks);
const S = Math.max(1, Number(values.services));
const perProcess = Number(values['per-process']);
const secs = (ms: number) => Math.round(ms) / 1000;
const pct = (cpu: number, ms: number) => Math.round((cpu / (ms / 1000)) * 1000) / 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const out: Record<string, unknown> = { nodes: N, tasks: M, services: S, managers: Number(values.managers), heartbeat: values.heartbeat };
const long = 30 * 60_000;
/** Progress on stderr (the JSON line alone goes to stdout). */
const say = (what: string) => process.stderr.write(`[scale ${new Date().toISOString().slice(11, 19)}] ${what}\n`);

const h = new HollowCluster();
try {
  await h.start(Number(values.managers), values.heartbeat!);
  say(`${values.managers} managers up; joining ${N} hollow nodes`);
  let t0 = performance.now();
  await h.addNodes(N, perProcess, { stepMs: Number(values['step-ms']) });
  await h.workersIn('ready', N, long);
  out.join_s = secs(performance.now() - t0);
  say(`${N} nodes ready in ${out.join_s} s; creating ${M} replicas`);

  const leader = await h.leader();
  const follower = h.managers.find((m) => m !== leader)!;
  const fleetCpu = () => h.fleets.filter((f) => f.alive).reduce((s, f) => s + cpuSeconds(f.child.pid!), 0);
  const cpu0 = { l: cpuSeconds(leader.child!.pid!), f: follower ? cpuSeconds(follower.child!.pid!) : 0, n: fleetCpu(), m: machineTicks() };
  t0 = performance.now();
  const names = Array.from({ length: S }, (_, i) => `scale${i}`);
  await Promise.all(
    names.map((name, i) =>
      leader.call('CreateService', { spec: { name, image: 'busybox', args: ['sleep', '1d'], replicas: Math.floor(M / S) + (i < M % S ? 1 : 0) } }, 60_000),
    ),
  );
  const total = async () => (await Promise.all(names.map((n) => h.running(n)))).reduce((a, b) => a + b, 0);
  await waitFor(`${M} tasks running`, async () => (await total()) >= M, long);
  const convergeMs = performance.now() - t0;
  out.converge_s = secs(convergeMs);
  out.placements_per_s = Math.round(M / (convergeMs / 1000));
  // Where the time went: when the last task was created (by the orchestrator, already placed)
  // and when the first and the last began to run, from the create call (wall clocks of this host).
  {
    const wall0 = Date.now() - convergeMs;
    const ts = (await Promise.all(names.map((n) => h.tasks(n)))).flat().filter((v) => v.task.desiredState === 'running');
    const rel = (ms: number) => Math.round(ms - wall0) / 1000;
    out.last_created_s = rel(Math.max(...ts.map((v) => Number(v.task.createdAt))));
    const running = ts.map((v) => Number(v.task.status.timestamp)).sort((a, b) => a - b);
    out.first_running_s = rel(running[0]);
    out.median_running_s = rel(running[Math.floor(running.length / 2)]);
  }
  say(`${M} running in ${out.converge_s} s; idle`);
  out.leader_cpu_pct = pct(cpuSeconds(leader.child!.pid!) - cpu0.l, convergeMs);
  if (follower) out.follower_cpu_pct = pct(cpuSeconds(follower.child!.pid!) - cpu0.f, convergeMs);
  // What the hollow nodes themselves took of this machine's cores meanwhile (all processes, % of one core).
  out.nodes_cpu_pct = pct(fleetCpu() - cpu0.n, convergeMs);
  out.machine_busy_pct = busySince(cpu0.m);
  out.leader_rss_mib = rssMiB(leader.child!.pid!);
  if (follower) out.follower_rss_mib = rssMiB(follower.child!.pid!);

  // At rest: the cost of N nodes heartbeating and long-polling, nothing changing.
  await sleep(3_000);
  const idleMs = Number(values['idle-s']) * 1000;
  const idle0 = { l: cpuSeconds(leader.child!.pid!), n: fleetCpu() };
  await sleep(idleMs);
  out.idle_leader_cpu_pct = pct(cpuSeconds(leader.child!.pid!) - idle0.l, idleMs);
  out.idle_nodes_cpu_pct = pct(fleetCpu() - idle0.n, idleMs);

  // Power off a share of the nodes (whole processes of them), as a rack going dark.
  const deadShare = Number(values.dead);
  // (Whole processes die: at least one, never all of them.)
  const killed = Math.min(h.fleets.length - 1, Math.max(1, Math.round((N * deadShare) / perProcess)));
  if (deadShare > 0 && killed > 0) {
    const victims = h.fleets.slice(0, killed);
    const dead = new Set(victims.flatMap((f) => f.nodeIds));
    say(`powering off ${victims.length} processes of nodes`);
    t0 = performance.now();
    const m0 = machineTicks();
    await Promise.all(victims.map((f) => f.kill()));
    await waitFor(`${dead.size} nodes down`, async () => (await h.nodes()).filter((n) => dead.has(n.node.id) && n.node.status.state === 'down').length === dead.size, long);
    out.dead_nodes = dead.size;
    out.detect_s = secs(performance.now() - t0);
    // Listing every task costs the leader real work at 100,000 (a profile of this phase showed
    // the listings as its largest item): look less often the more tasks there are.
    await waitFor('every task running on a live node', async () => {
      if ((await total()) < M) return false;
      for (const name of names) if ((await h.tasks(name)).some((t) => t.task.desiredState === 'running' && dead.has(t.task.nodeId))) return false;
      return true;
    }, long, Math.max(250, M / 20));
    out.resched_s = secs(performance.now() - t0);
    out.resched_machine_busy_pct = busySince(m0);
    // Where that time went, from the power-off (wall clocks of this host): when the last
    // replacement was created (placed) and when the replacements began to run.
    const wall0 = Date.now() - (performance.now() - t0);
    const moved = (await Promise.all(names.map((n) => h.tasks(n)))).flat().filter((v) => v.task.desiredState === 'running' && Number(v.task.createdAt) >= wall0);
    if (moved.length) {
      const rel = (ms: number) => Math.round(ms - wall0) / 1000;
      const running = moved.map((v) => Number(v.task.status.timestamp)).sort((a, b) => a - b);
      out.resched_moved = moved.length;
      out.resched_first_created_s = rel(Math.min(...moved.map((v) => Number(v.task.createdAt))));
      out.resched_last_created_s = rel(Math.max(...moved.map((v) => Number(v.task.createdAt))));
      out.resched_median_running_s = rel(running[Math.floor(running.length / 2)]!);
      out.resched_last_running_s = rel(running[running.length - 1]!);
    }
  }

  // The leader dies with every node connected: sessions move to the new leader, no task restarts.
  if (h.managers.length >= 3 && values.failover !== 'false') {
    const before = await h.fleetState();
    const old = await h.leader();
    say(`killing the leader ${old.name}`);
    t0 = performance.now();
    await old.kill();
    const next = await h.leader();
    const fo0 = { l: cpuSeconds(next.child!.pid!), n: fleetCpu(), m: machineTicks() };
    const alive = h.fleets.filter((f) => f.alive).reduce((n, f) => n + f.nodeIds.length, 0);
    let told = performance.now();
    await waitFor('every node in session with the new leader', async () => {
      const { sessions } = await h.fleetState();
      if (performance.now() - told > 5_000) {
        told = performance.now();
        say(`sessions by manager ('' none): ${JSON.stringify(sessions)}`);
      }
      return (sessions[next.addr] ?? 0) === alive;
    }, long);
    const failoverMs = performance.now() - t0;
    out.failover_sessions_s = secs(failoverMs);
    // Who was busy meanwhile: the new leader, or the nodes (on this machine, they share its cores).
    out.failover_leader_cpu_pct = pct(cpuSeconds(next.child!.pid!) - fo0.l, failoverMs);
    out.failover_nodes_cpu_pct = pct(fleetCpu() - fo0.n, failoverMs);
    out.failover_machine_busy_pct = busySince(fo0.m);
    await sleep(3_000);
    const after = await h.fleetState();
    out.failover_restarted = after.started - before.started + (after.stopped - before.stopped);
  }

  const ready = new Set((await h.nodes()).filter((n) => n.node.status.state === 'ready').map((n) => n.node.id));
  const problems: string[] = [];
  for (let i = 0; i < S; i++) {
    const p = checkReplicated(await h.tasks(names[i]), Math.floor(M / S) + (i < M % S ? 1 : 0), ready);
    if (p) problems.push(`${names[i]}: ${p}`);
  }
  out.check = problems.join(' | ');
  // Last, so that its thousand TLS handshakes disturb no phase above (the nodes left still run).
  if (values.floor !== 'false') {
    out.idle_floor_cpu_pct = await heartbeatFloor(h, N, parseDuration(values.heartbeat!), perProcess, Number(values['idle-s']) * 1000);
    out.idle_leader_vs_floor = Math.round((100 * Number(out.idle_leader_cpu_pct)) / Number(out.idle_floor_cpu_pct)) / 100;
  }
  console.log(JSON.stringify(out));
} catch (err) {
  console.log(JSON.stringify({ ...out, error: (err as Error).message }));
  process.exitCode = 1;
} finally {
  await h.stop();
}
