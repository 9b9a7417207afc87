// A leader cut off right after it commits a scale-up (SIGSTOP the moment the call returns, before
// the followers learn the new commit index and before its orchestrator's new tasks are known
// committed): the new leader holds those entries in its log without having applied them. It must
// not orchestrate from that stale store (it would create a second task for a slot whose task the
// old leader already created, and the "keep newest" rule would then kill one of them). In the
// end each slot has exactly one task, running, no task was ever shut down, and no container was
// ever stopped. Then the old leader resumes (SIGCONT) and converges. Several rounds, each on
// whichever manager leads.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';

const SERVICE = 'grow';
const ROUNDS = 6;

interface TaskView {
  task: { id: string; slot: number; nodeId: string; desiredState: string; status: { state: string; containerId: string } };
}

interface ClusterStatusView {
  leader: string;
  members: { nodeId: string; raftRole: string }[];
}

/** The manager that leads, as every running manager but `except` sees it. */
async function leaderOf(managers: Daemon[], ids: Map<Daemon, string>, except?: Daemon): Promise<Daemon> {
  return eventually('a leader', async () => {
    const asked = managers.filter((d) => d !== except);
    const seen = await Promise.all(asked.map((d) => d.call<ClusterStatusView>('ClusterStatus', {}, 2_000).then((s) => s.leader).catch(() => '')));
    const leader = managers.find((d) => d !== except && ids.get(d) === seen[0]);
    return leader && seen.every((l) => l === seen[0]) ? leader : undefined;
  });
}

/** The service's containers on this Docker engine: task id → state. */
function containers(): Map<string, string> {
  const out = execFileSync('docker', ['ps', '-a', '--filter', `label=shoal.service.name=${SERVICE}`, '--format', '{{.Label "shoal.task.id"}} {{.State}}'], { encoding: 'utf8' }).trim();
  return new Map(out ? out.split('\n').map((l) => l.split(' ') as [string, string]) : []);
}

describe('failover right after a scale-up commits', () => {
  const c = new TestCluster();
  let managers: Daemon[] = [];
  const ids = new Map<Daemon, string>();

  before(async () => {
    // A 3 s heartbeat: the worker may first try the stopped leader (a 2 s timeout) before it finds
    // the new one, and must not be marked down meanwhile; that is not what this suite is about.
    managers = await c.managers(3, ['--dispatcher-heartbeat', '3s']);
    const nodes = await managers[0]!.call<{ nodes: { node: { id: string; description: { hostname: string } } }[] }>('ListNodes');
    for (const d of managers) ids.set(d, nodes.nodes.find((n) => n.node.description.hostname === d.name)!.node.id);
    // The tasks run on the worker alone: a stopped manager's own node goes down, and that would
    // legitimately replace tasks.
    for (const d of managers) await managers[0]!.call('UpdateNode', { node: d.name, availability: 'drain' });
    await c.join('w1', managers[0]!, 'worker');
    await eventually('the worker ready', async () => {
      const r = await managers[0]!.call<{ nodes: { node: { description: { hostname: string }; status: { state: string } } }[] }>('ListNodes');
      return r.nodes.some((n) => n.node.description.hostname === 'w1' && n.node.status.state === 'ready') ? true : undefined;
    });
  });
  after(async () => {
    for (const d of managers) if (d.running) d.child!.kill('SIGCONT');
    await c.stop();
  });

  async function converged(d: Daemon, replicas: number): Promise<TaskView['task'][]> {
    return eventually(
      `${replicas} running tasks on ${d.name}`,
      async () => {
        const all = (await d.call<{ tasks: TaskView[] }>('ListTasks', { service: SERVICE }, 3_000)).tasks.map((t) => t.task);
        const current = all.filter((t) => t.desiredState === 'running');
        return current.length === replicas && current.every((t) => t.status.state === 'running') ? all : undefined;
      },
      60_000,
    );
  }

  function check(all: TaskView['task'][], replicas: number, round: number): void {
    const shutDown = all.filter((t) => t.desiredState !== 'running').map((t) => `slot ${t.slot}: ${t.id} (${t.status.state})`);
    assert.deepEqual(shutDown, [], `round ${round}: no task is ever shut down here, yet some were`);
    assert.deepEqual(all.map((t) => t.slot).sort((a, b) => a - b), Array.from({ length: replicas }, (_, i) => i + 1), `round ${round}: one task per slot`);
    const docker = containers();
    const stopped = [...docker].filter(([, state]) => state !== 'running');
    assert.deepEqual(stopped, [], `round ${round}: no container was ever stopped`);
    assert.deepEqual([...docker.keys()].sort(), all.map((t) => t.id).sort(), `round ${round}: one container per task`);
  }

  test(`${ROUNDS} rounds: each slot ends with one running task, none killed`, async () => {
    let replicas = 2;
    await managers[0]!.call('CreateService', { spec: { name: SERVICE, image: 'shoal/busybox:latest', args: ['sleep', '3600'], stopGracePeriodMs: 1_000, replicas } });
    check(await converged(managers[0]!, replicas), replicas, 0);
    for (let round = 1; round <= ROUNDS; round++) {
      const leader = await leaderOf(managers, ids);
      replicas += 2;
      await leader.call('ScaleService', { service: SERVICE, replicas });
      leader.child!.kill('SIGSTOP');
      const next = await leaderOf(managers, ids, leader);
      check(await converged(next, replicas), replicas, round);
      leader.child!.kill('SIGCONT');
      check(await converged(leader, replicas), replicas, round);
    }
  });
});
