// Real managers (shoald processes) and hollow nodes (processes of @shoal/hollow nodes, each node
// joined with a token and holding its own certificate) on this machine: the scale benchmark and
// its CI-sized test share it.
import { type ChildProcess, fork } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setPriority } from 'node:os';
import { FLEET_PROCESS, type FleetState, addFleetState, emptyFleetState } from '@shoal/hollow';
import { type Daemon, TestCluster, leaderOf } from './shoald.js';

export interface NodeView {
  node: { id: string; spec: { role: string; availability: string }; status: { state: string }; description: { hostname: string } };
}

export interface TaskView {
  task: { id: string; nodeId: string; slot: number; serviceId: string; desiredState: string; createdAt: number; status: { state: string; timestamp: number } };
}

/** One process of hollow nodes. */
export class Fleet {
  nodeIds: string[] = [];
  failures: string[] = [];
  private pending: ((s: FleetState) => void)[] = [];

  constructor(
    readonly name: string,
    readonly child: ChildProcess,
  ) {
    child.on('message', (m: { type: string; state?: FleetState }) => {
      if (m.type === 'state') this.pending.shift()?.(m.state!);
    });
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  state(): Promise<FleetState> {
    return new Promise((resolve, reject) => {
      if (!this.alive) return reject(new Error(`fleet ${this.name} is not running`));
      this.pending.push(resolve);
      this.child.send({ type: 'state' });
    });
  }

  /** A clean stop (its nodes say goodbye; a profiled process writes its profile), else a kill after `ms`. */
  async stop(ms = 10_000): Promise<void> {
    if (!this.alive) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.send({ type: 'stop' });
    const t = setTimeout(() => this.child.kill('SIGKILL'), ms);
    await done;
    clearTimeout(t);
  }

  /** A power cut of all its nodes: no goodbye. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    const done = new Promise((r) => this.child.once('exit', r));
    this.child.kill('SIGKILL');
    await done;
  }
}

/**
 * As eventually(), polling every `everyMs`: at thousands of nodes and tasks a listing costs the
 * manager real work, and a benchmark must not measure its own polling.
 */
export async function waitFor(what: string, fn: () => Promise<boolean>, timeoutMs: number, everyMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      if (await fn()) return;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** CPU seconds (user + system) a process has used, from /proc. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // utime and stime are fields 14 and 15 of stat(5), in clock ticks (100 per second on Linux).
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

/**
 * The whole machine's CPU time so far, from /proc/stat (clock ticks): busy (everything but idle
 * and iowait) and total. Between two readings, busy/total says how full the cores were.
 */
export function machineTicks(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1, 9).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - f[4]!, total };
}

/** Resident memory of a process in MiB. */
export function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

export class HollowCluster {
  readonly c = new TestCluster();
  managers: Daemon[] = [];
  readonly fleets: Fleet[] = [];

  /** n managers, drained (hollow nodes run every task), heartbeating at `heartbeat` (e.g. "1s"). */
  async start(n: number, heartbeat: string): Promise<void> {
    this.managers = await this.c.managers(n, ['--dispatcher-heartbeat', heartbeat]);
    const first = this.managers[0];
    const nodes = await first.call<{ nodes: NodeView[] }>('ListNodes');
    for (const v of nodes.nodes) await first.call('UpdateNode', { node: v.node.id, availability: 'drain' });
  }

  /** Starts `count` hollow nodes in processes of at most `perProcess`; resolves once all joined. */
  async addNodes(count: number, perProcess: number, opts: { stepMs?: number; prefix?: string } = {}): Promise<void> {
    const first = this.managers[0];
    const { token } = await first.call<{ token: string }>('GetJoinToken', { role: 'worker' });
    const joins: Promise<void>[] = [];
    for (let left = count, k = this.fleets.length; left > 0; left -= perProcess, k++) {
      const n = Math.min(perProcess, left);
      // Joins go to every manager in turn (each can sign: the CA key is shared among managers).
      const via = this.managers[k % this.managers.length];
      const name = `${opts.prefix ?? 'hollow'}${k}`;
      const child = fork(FLEET_PROCESS, [via.addr, token, String(n), name, String(opts.stepMs ?? 2)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
      // Hollow nodes stand for other hosts: on this machine they run at the lowest priority, so
      // the managers' share of the cores does not shrink with the number of simulated nodes (at
      // 1,000 nodes a reconnect storm starved the managers' event loops for a second at a time,
      // and elections followed). The nodes still get every cycle the managers leave.
      setPriority(child.pid!, 19);
      const fleet = new Fleet(name, child);
      this.fleets.push(fleet);
      joins.push(
        new Promise<void>((resolve, reject) => {
          child.once('exit', (code) => reject(new Error(`fleet ${name} exited (${code}) before joining`)));
          child.once('message', (m: { type: string; nodes: string[]; failures: string[] }) => {
            fleet.nodeIds = m.nodes;
            fleet.failures = m.failures;
            resolve();
          });
        }),
      );
    }
    await Promise.all(joins);
    const failures = this.fleets.flatMap((f) => f.failures);
    if (failures.length > 0) throw new Error(`${failures.length} hollow nodes could not join, e.g. ${failures[0]}`);
  }

  leader(): Promise<Daemon> {
    return leaderOf(this.c);
  }

  /** A running manager to ask. */
  any(): Daemon {
    const d = this.managers.find((m) => m.running);
    if (!d) throw new Error('no manager running');
    return d;
  }

  async nodes(): Promise<NodeView[]> {
    return (await this.any().callPooled<{ nodes: NodeView[] }>('ListNodes', {}, 30_000)).nodes;
  }

  /** Waits until `want` workers are in `state`. */
  async workersIn(state: string, want: number, timeoutMs: number): Promise<void> {
    await waitFor(`${want} workers ${state}`, async () => (await this.nodes()).filter((n) => n.node.spec.role === 'worker' && n.node.status.state === state).length >= want, timeoutMs, 500);
  }

  async running(service: string): Promise<number> {
    const r = await this.any().callPooled<{ services: { service: { spec: { name: string } }; running: number }[] }>('ListServices', {}, 30_000);
    return Number(r.services.find((s) => s.service.spec.name === service)?.running ?? 0);
  }

  async tasks(service: string): Promise<TaskView[]> {
    const out: TaskView[] = [];
    let pageToken = '';
    do {
      const r = await this.any().callPooled<{ tasks: TaskView[]; nextPageToken: string }>('ListTasks', { service, pageToken }, 30_000);
      out.push(...r.tasks);
      pageToken = r.nextPageToken;
    } while (pageToken);
    return out;
  }

  /** Every fleet's state, summed (a killed fleet counts nothing). */
  async fleetState(): Promise<FleetState> {
    const sum = emptyFleetState();
    for (const s of await Promise.all(this.fleets.filter((f) => f.alive).map((f) => f.state()))) addFleetState(sum, s);
    return sum;
  }

  async stop(): Promise<void> {
    await Promise.all(this.fleets.map((f) => f.stop()));
    await this.c.stop();
  }
}

/**
 * What must hold of a replicated service at rest: `replicas` tasks wanted running, in as many
 * distinct slots (a scale-down keeps any of them, as Swarm's does: by node, not by number), all
 * running, none on a node that is not ready. Returns what is wrong ('' when all holds).
 */
export function checkReplicated(tasks: TaskView[], replicas: number, readyNodes: Set<string>): string {
  const wanted = tasks.filter((t) => t.task.desiredState === 'running');
  const slots = new Map<number, number>();
  for (const t of wanted) slots.set(t.task.slot, (slots.get(t.task.slot) ?? 0) + 1);
  const dup = [...slots].filter(([, n]) => n > 1).map(([s]) => s);
  const notRunning = wanted.filter((t) => t.task.status.state !== 'running');
  const offNode = wanted.filter((t) => !readyNodes.has(t.task.nodeId));
  const problems = [
    wanted.length !== replicas ? `${wanted.length} tasks wanted running, not ${replicas}` : '',
    slots.size !== replicas ? `${slots.size} distinct slots, not ${replicas}` : '',
    [...slots.keys()].some((s) => s < 1) ? 'a replicated task without a slot' : '',
    dup.length ? `slots held twice: ${dup.slice(0, 5).join(', ')}` : '',
    notRunning.length ? `${notRunning.length} not running, e.g. ${notRunning[0].task.id} ${notRunning[0].task.status.state}` : '',
    offNode.length ? `${offNode.length} on nodes not ready` : '',
  ];
  return problems.filter(Boolean).join('; ');
}
