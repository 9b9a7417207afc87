// Orchestrator and scheduler on real managers and workers: where tasks are created, placed and
// replaced (the agents run them on this machine's Docker).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';

interface TaskView {
  task: { id: string; slot: number; nodeId: string; desiredState: string; status: { state: string; err: string } };
  nodeHostname: string;
}

// The agents run these tasks for real (Docker): a long sleep keeps them running.
const spec = (name: string, replicas: number, extra: object = {}) => ({
  name,
  image: 'shoal/busybox:latest',
  args: ['sleep', '3600'],
  stopGracePeriodMs: 1_000,
  replicas,
  ...extra,
});

async function tasks(d: Daemon, service: string): Promise<TaskView[]> {
  return (await d.call<{ tasks: TaskView[] }>('ListTasks', { service })).tasks;
}

const current = (ts: TaskView[]) => ts.filter((t) => t.task.desiredState === 'running');

function perNode(ts: TaskView[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const t of current(ts)) out[t.nodeHostname] = (out[t.nodeHostname] ?? 0) + 1;
  return out;
}

describe('orchestration', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let w1: Daemon;
  before(async () => {
    [m1] = await c.managers(1);
    w1 = await c.join('w1', m1, 'worker');
    await c.join('w2', m1, 'worker');
    await eventually('three ready nodes', async () => {
      const r = await m1.call<{ nodes: { node: { status: { state: string } } }[] }>('ListNodes');
      return r.nodes.length === 3 && r.nodes.every((n) => n.node.status.state === 'ready') ? true : undefined;
    });
  });
  after(() => c.stop());

  test('5 replicas are spread over the three nodes, one task per slot', async () => {
    await m1.call('CreateService', { spec: spec('web-fe', 5) });
    const ts = await eventually('5 placed tasks', async () => {
      const t = current(await tasks(m1, 'web-fe'));
      return t.length === 5 && t.every((x) => x.task.nodeId) ? t : undefined;
    });
    assert.deepEqual(ts.map((t) => t.task.slot).sort(), [1, 2, 3, 4, 5]);
    const counts = Object.values(perNode(ts)).sort();
    assert.deepEqual(counts, [1, 2, 2]);
  });

  test('scale to 10, then down to 3 (from the most loaded nodes)', async () => {
    await m1.call('ScaleService', { service: 'web-fe', replicas: 10 });
    const ts = await eventually('10 tasks', async () => {
      const t = current(await tasks(m1, 'web-fe'));
      return t.length === 10 && t.every((x) => x.task.nodeId) ? t : undefined;
    });
    assert.deepEqual(Object.values(perNode(ts)).sort(), [3, 3, 4]);
    await m1.call('ScaleService', { service: 'web-fe', replicas: 3 });
    const down = await eventually('3 tasks', async () => {
      const t = current(await tasks(m1, 'web-fe'));
      return t.length === 3 ? t : undefined;
    });
    assert.deepEqual(Object.values(perNode(down)).sort(), [1, 1, 1]);
  });

  test('a task that fits nowhere stays pending and says why', async () => {
    await m1.call('CreateService', { spec: spec('nowhere', 1, { constraints: ['node.labels.zone==mars'] }) });
    const t = await eventually('a pending task with a reason', async () => {
      const ts = current(await tasks(m1, 'nowhere'));
      return ts.length === 1 && ts[0].task.status.err ? ts[0] : undefined;
    });
    assert.equal(t.task.status.state, 'pending');
    assert.match(t.task.status.err, /no suitable node \(3 nodes: does not satisfy node\.labels\.zone==mars\)/);
    // A label that satisfies the constraint lets it be placed.
    await m1.call('UpdateNode', { node: 'w1', labelAdd: { zone: 'mars' } });
    await eventually('placed on w1', async () => {
      const ts = current(await tasks(m1, 'nowhere'));
      return ts.length === 1 && ts[0].nodeHostname === 'w1' ? true : undefined;
    });
  });

  test('global mode: one task per eligible node', async () => {
    await m1.call('CreateService', { spec: { ...spec('agentish', 0), mode: 'global' } });
    const ts = await eventually('3 global tasks', async () => {
      const t = current(await tasks(m1, 'agentish'));
      return t.length === 3 ? t : undefined;
    });
    assert.deepEqual(ts.map((t) => t.nodeHostname).sort(), ['m1', 'w1', 'w2']);
  });

  test('drain moves tasks away; a dead node loses its tasks to the others', async () => {
    await m1.call('ScaleService', { service: 'web-fe', replicas: 6 });
    await eventually('6 tasks', async () => (current(await tasks(m1, 'web-fe')).length === 6 ? true : undefined));
    await m1.call('UpdateNode', { node: 'w2', availability: 'drain' });
    await eventually('nothing of web-fe on w2', async () => {
      const ts = current(await tasks(m1, 'web-fe'));
      return ts.length === 6 && ts.every((t) => t.nodeHostname && t.nodeHostname !== 'w2') ? true : undefined;
    });
    await m1.call('UpdateNode', { node: 'w2', availability: 'active' });
    // Placed is not started: the kill below must find w1's containers running, or there would be
    // no orphaned container to see outlive its agent.
    await eventually('the 6 tasks running', async () => {
      const ts = current(await tasks(m1, 'web-fe'));
      return ts.length === 6 && ts.every((t) => t.task.status.state === 'running') ? true : undefined;
    }, 30_000);
    await w1.kill();
    await eventually('web-fe only on m1 and w2', async () => {
      const ts = current(await tasks(m1, 'web-fe'));
      return ts.length === 6 && ts.every((t) => t.nodeHostname === 'm1' || t.nodeHostname === 'w2') ? true : undefined;
    }, 20_000);
    // w1's tasks are orphaned, saying why; its containers outlived its agent (only shoald died).
    const all = await tasks(m1, 'web-fe');
    const orphans = all.filter((t) => t.nodeHostname === 'w1' && t.task.status.state === 'orphaned');
    assert.ok(orphans.length > 0, 'the dead node\'s tasks show as orphaned');
    for (const t of orphans) {
      assert.equal(t.task.desiredState, 'shutdown');
      assert.match(t.task.status.err, /node w1 is down/);
    }
    const w1Id = orphans[0].task.nodeId;
    const runningOf = (nodeId: string) =>
      execFileSync('docker', ['ps', '-q', '--filter', `label=shoal.node.id=${nodeId}`, '--filter', 'label=shoal.service.name=web-fe'], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
    assert.ok(runningOf(w1Id).length > 0, 'the orphaned containers still run while w1 is away');
    // w1 comes back: ready again, its orphaned containers stopped, nothing moved back (the global
    // service of an earlier test does start a task there again, as it should).
    w1.start(['run', '--data-dir', w1.dataDir]);
    await eventually('w1 ready and none of its old containers running', async () => {
      const r = await m1.call<{ nodes: { node: { id: string; status: { state: string } } }[] }>('ListNodes');
      const ready = r.nodes.find((n) => n.node.id === w1Id)?.node.status.state === 'ready';
      return ready && runningOf(w1Id).length === 0 ? true : undefined;
    }, 30_000);
    assert.ok(current(await tasks(m1, 'web-fe')).every((t) => t.nodeHostname !== 'w1'), 'nothing moved back to w1');
  });

  test('a service update replaces tasks one slot at a time (parallelism 1)', async () => {
    await m1.call('CreateService', { spec: spec('rolling', 3) });
    type Full = TaskView & { task: { specVersion: number } };
    const list = async () => (await m1.call<{ tasks: Full[] }>('ListTasks', { service: 'rolling' })).tasks.filter((t) => t.task.desiredState === 'running');
    await eventually('3 running', async () => {
      const ts = await list();
      return ts.length === 3 && ts.every((t) => t.task.status.state === 'running') ? true : undefined;
    }, 30_000);
    const cur = await m1.call<{ service: { version: number; specVersion: number; spec: object } }>('GetService', { service: 'rolling' });
    const next = { ...cur.service.spec, args: ['sleep', '3601'], updateConfig: { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first' } };
    await m1.call('UpdateService', { service: 'rolling', spec: next, version: cur.service.version });
    const target = cur.service.specVersion + 1;
    let maxInFlight = 0;
    await eventually('all 3 on the new spec and running', async () => {
      const ts = await list();
      const inFlight = ts.filter((t) => t.task.specVersion === target && t.task.status.state !== 'running').length;
      maxInFlight = Math.max(maxInFlight, inFlight);
      return ts.length === 3 && ts.every((t) => t.task.specVersion === target && t.task.status.state === 'running') ? true : undefined;
    }, 60_000);
    assert.ok(maxInFlight <= 1, `at most one slot was replaced at a time (saw ${maxInFlight})`);
  });

  test('a start-first update starts each new task beside the old one: never fewer running than replicas', async () => {
    await m1.call('CreateService', { spec: spec('sf', 2) });
    type Full = TaskView & { task: { specVersion: number } };
    const list = async () => (await m1.call<{ tasks: Full[] }>('ListTasks', { service: 'sf' })).tasks;
    await eventually('2 running', async () => {
      const ts = (await list()).filter((t) => t.task.desiredState === 'running' && t.task.status.state === 'running');
      return ts.length === 2 ? true : undefined;
    }, 30_000);
    const cur = await m1.call<{ service: { version: number; specVersion: number; spec: object } }>('GetService', { service: 'sf' });
    const next = { ...cur.service.spec, args: ['sleep', '3602'], updateConfig: { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'start-first' } };
    await m1.call('UpdateService', { service: 'sf', spec: next, version: cur.service.version });
    const target = cur.service.specVersion + 1;
    let fewest = Infinity;
    let most = 0;
    await eventually('both slots on the new spec, the old tasks gone', async () => {
      const ts = await list();
      // Running and still wanted, or running and on their way out (the old task of a pair).
      const up = ts.filter((t) => t.task.status.state === 'running' && (t.task.desiredState === 'running' || t.task.specVersion < target)).length;
      fewest = Math.min(fewest, up);
      most = Math.max(most, ts.filter((t) => t.task.desiredState === 'running').length);
      const current = ts.filter((t) => t.task.desiredState === 'running');
      return current.length === 2 && current.every((t) => t.task.specVersion === target && t.task.status.state === 'running') ? true : undefined;
    }, 60_000);
    assert.ok(fewest >= 2, `never fewer than 2 running during the update (saw ${fewest})`);
    assert.ok(most >= 3, `a new task ran beside an old one (at most ${most} wanted at once)`);
    await m1.call('RemoveService', { service: 'sf' });
  });

  test('service rm removes its tasks', async () => {
    await m1.call('RemoveService', { service: 'nowhere' });
    await eventually('no task of the removed service left to run', async () => {
      const r = await m1.call<{ tasks: (TaskView & { task: { serviceName: string } })[] }>('ListTasks', {});
      const left = r.tasks.filter((t) => t.task.serviceName === 'nowhere');
      return left.every((t) => t.task.desiredState !== 'running') ? true : undefined;
    });
  });
});
