// Clock and engine faults on real daemons: a manager whose wall clock steps 10 s forward and back,
// agents whose clocks are an hour off, and an engine whose ping fails once and then hangs, mark no
// node down and move no task; an engine that keeps failing shows as a condition of its node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DockerPingProxy } from '../helpers/docker-proxy.js';
import { TestCluster, type Daemon, eventually, skewedClock, steppedClock } from '../helpers/shoald.js';

interface NodeView {
  node: { id: string; version: number; description: { hostname: string }; status: { state: string; message: string } };
}
interface TaskView {
  task: { id: string; desiredState: string; status: { state: string } };
  nodeHostname: string;
}

const spec = (name: string, replicas: number, extra: object = {}) => ({
  name,
  image: 'shoal/busybox:latest',
  args: ['sleep', '3600'],
  stopGracePeriodMs: 1_000,
  replicas,
  ...extra,
});

async function nodes(m: Daemon): Promise<NodeView[]> {
  return (await m.call<{ nodes: NodeView[] }>('ListNodes')).nodes;
}

/** The running tasks of a service, as "id@host", sorted. */
async function running(m: Daemon, service: string): Promise<string[]> {
  const r = await m.call<{ tasks: TaskView[] }>('ListTasks', { service });
  return r.tasks
    .filter((t) => t.task.desiredState === 'running' && t.task.status.state === 'running')
    .map((t) => `${t.task.id}@${t.nodeHostname}`)
    .sort();
}

/**
 * For `ms` (several heartbeat periods and the dispatcher's down limit), checks again and again
 * that every node stays ready and the running tasks stay the same ones (`sameNodes`: and that no
 * node object changed, so that no down-and-back between two looks goes unseen).
 */
async function steadyFor(m: Daemon, ms: number, service: string, tasks: string[], what: string, sameNodes = true): Promise<void> {
  const end = Date.now() + ms;
  // A node marked down and back between two looks changed its object: its version tells.
  const versions = Object.fromEntries((await nodes(m)).map((n) => [n.node.description.hostname, n.node.version]));
  while (Date.now() < end) {
    const ns = await nodes(m);
    const notReady = ns.filter((n) => n.node.status.state !== 'ready').map((n) => `${n.node.description.hostname}: ${n.node.status.state} (${n.node.status.message})`);
    assert.deepEqual(notReady, [], `${what}: every node stays ready`);
    if (sameNodes) assert.deepEqual(Object.fromEntries(ns.map((n) => [n.node.description.hostname, n.node.version])), versions, `${what}: no node changed state`);
    assert.deepEqual(await running(m, service), tasks, `${what}: no task moved`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function allReady(m: Daemon, n: number): Promise<void> {
  await eventually(`${n} ready nodes`, async () => {
    const ns = await nodes(m);
    return ns.length === n && ns.every((x) => x.node.status.state === 'ready') ? true : undefined;
  });
}

describe('clock faults', () => {
  const c = new TestCluster();
  const offsetFile = join(c.baseDir, 'm1-clock-offset');
  let m1: Daemon;
  before(async () => {
    m1 = await c.init('m1', [], steppedClock(offsetFile));
    // Agents whose wall clocks are an hour ahead and an hour behind.
    await c.join('ahead', m1, 'worker', '127.0.0.1', skewedClock(3_600_000));
    await c.join('behind', m1, 'worker', '127.0.0.1', skewedClock(-3_600_000));
    await allReady(m1, 3);
  });
  after(() => c.stop());

  /** Steps m1's wall clock to `offsetMs` off and waits until m1's own timestamps show it. */
  async function stepManagerClock(offsetMs: number): Promise<void> {
    writeFileSync(offsetFile, String(offsetMs));
    await eventually(`m1's clock ${offsetMs} ms off`, async () => {
      const before = Date.now();
      const r = await m1.call<{ service: { id: string; createdAt: number } }>('CreateService', { spec: spec(`probe${Math.abs(offsetMs)}${offsetMs < 0 ? 'b' : 'f'}${before}`, 0) });
      await m1.call('RemoveService', { service: r.service.id });
      const off = r.service.createdAt - before;
      return Math.abs(off - offsetMs) < 2_000 ? true : undefined;
    });
  }

  test('the manager\'s wall clock stepping 10 s forward, then back, marks no node down and moves no task; nor do agents an hour off', async () => {
    await m1.call('CreateService', { spec: spec('steady', 3) });
    const tasks = await eventually('3 running tasks, one per node', async () => {
      const r = await running(m1, 'steady');
      return r.length === 3 && new Set(r.map((t) => t.split('@')[1])).size === 3 ? r : undefined;
    }, 60_000);
    await steadyFor(m1, 4_000, 'steady', tasks, 'agents an hour off');
    await stepManagerClock(10_000);
    await steadyFor(m1, 5_000, 'steady', tasks, 'after a step of +10 s');
    await stepManagerClock(-10_000);
    await steadyFor(m1, 5_000, 'steady', tasks, 'after a step back to -10 s');
  });
});

describe('engine faults', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let proxy: DockerPingProxy;
  before(async () => {
    proxy = new DockerPingProxy(join(c.baseDir, 'docker-proxy.sock'));
    await proxy.listen();
    m1 = await c.init('m1');
    await c.join('w1', m1, 'worker', '127.0.0.1', {}, ['--docker-host', `unix://${proxy.path}`]);
    await allReady(m1, 2);
  });
  after(async () => {
    await c.stop();
    await proxy.close();
  });

  test('a ping that fails once, then hangs 5 s, marks no node down and moves no task; failures in a row show as a condition', async () => {
    await m1.call('CreateService', { spec: spec('on-w1', 2, { constraints: ['node.hostname==w1'] }) });
    const tasks = await eventually('2 running tasks on w1', async () => {
      const r = await running(m1, 'on-w1');
      return r.length === 2 ? r : undefined;
    }, 60_000);

    // One failed ping (an engine restarting), then every ping stalls for 5 s.
    const seen = proxy.pings.ok;
    proxy.next('fail');
    await eventually('the failed ping', async () => (proxy.pings.failed >= 1 ? true : undefined));
    proxy.mode = 'hang';
    const hangEnd = Date.now() + 5_000;
    while (Date.now() < hangEnd) {
      // (its status message may change: the engine condition may show by the end)
      await steadyFor(m1, 500, 'on-w1', tasks, 'while the engine hangs', false);
    }
    assert.ok(proxy.pings.stalled >= 1, 'pings were stalled');
    proxy.mode = 'ok';
    proxy.release();
    await eventually('pings answered again', async () => (proxy.pings.ok > seen ? true : undefined));
    await steadyFor(m1, 3_000, 'on-w1', tasks, 'after the engine came back', false);

    // Failing in a row: the node says so (node inspect's message), still ready.
    proxy.mode = 'fail';
    const shown = await eventually('the engine condition on w1', async () => {
      const w1 = (await nodes(m1)).find((n) => n.node.description.hostname === 'w1')!;
      return /docker is not answering/.test(w1.node.status.message) ? w1 : undefined;
    });
    assert.equal(shown.node.status.state, 'ready');
    assert.ok(proxy.pings.failed >= 3);
    proxy.mode = 'ok';
    await eventually('the condition cleared', async () => {
      const w1 = (await nodes(m1)).find((n) => n.node.description.hostname === 'w1')!;
      return w1.node.status.state === 'ready' && w1.node.status.message === '' ? true : undefined;
    });
  });
});
