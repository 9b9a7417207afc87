// SCENARIO.md on real containers: one manager and two workers (each on its own loopback address,
// sharing this machine's Docker engine), the busybox test image (scripts/test-env.sh builds it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TestCluster, type Daemon, eventually, removeContainersOf } from '../helpers/shoald.js';

const IMAGE = 'shoal/busybox:latest';

function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' }).trim();
}

/** Running containers of a node (by its label), as [name, id]. */
function running(nodeId: string): { id: string; name: string; task: string }[] {
  const out = docker('ps', '--filter', `label=shoal.node.id=${nodeId}`, '--format', '{{.ID}} {{.Names}} {{.Label "shoal.task.id"}}');
  return out ? out.split('\n').map((l) => { const [id, name, task] = l.split(' '); return { id, name, task }; }) : [];
}

interface TaskView {
  task: { id: string; slot: number; nodeId: string; desiredState: string; status: { state: string; err: string } };
  nodeHostname: string;
}

describe('the walkthrough, on real containers', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let w1: Daemon;
  const ids: Record<string, string> = {};

  const tasks = async () => (await m1.call<{ tasks: TaskView[] }>('ListTasks', { service: 'web-fe' })).tasks;
  const runningTasks = async () => (await tasks()).filter((t) => t.task.desiredState === 'running' && t.task.status.state === 'running');
  const allRunning = () => [...running(ids.m1), ...running(ids.w1), ...running(ids.w2)];

  before(async () => {
    try {
      docker('image', 'inspect', IMAGE);
    } catch {
      throw new Error(`the test image ${IMAGE} is missing: run scripts/test-env.sh (installs Docker, builds the image)`);
    }
    [m1] = await c.managers(1);
    w1 = await c.join('w1', m1, 'worker', '127.0.0.2');
    await c.join('w2', m1, 'worker', '127.0.0.3');
    await eventually('three ready nodes', async () => {
      const r = await m1.call<{ nodes: { node: { id: string; description: { hostname: string }; status: { state: string } } }[] }>('ListNodes');
      if (r.nodes.length !== 3 || !r.nodes.every((n) => n.node.status.state === 'ready')) return undefined;
      for (const n of r.nodes) ids[n.node.description.hostname] = n.node.id;
      return true;
    });
  });
  after(async () => {
    await c.stop();
    removeContainersOf(Object.values(ids));
  });

  test('1-3. web-fe with 5 replicas runs on all three nodes', async () => {
    await m1.call('CreateService', {
      spec: { name: 'web-fe', image: IMAGE, replicas: 5, args: ['httpd', '-f', '-p', '8080'], ports: [{ targetPort: 8080, publishedPort: 8080 }], restartPolicy: { condition: 'any', delayMs: 0 }, stopGracePeriodMs: 1_000 },
    });
    await eventually('5 running tasks', async () => ((await runningTasks()).length === 5 ? true : undefined), 60_000);
    const containers = allRunning();
    assert.equal(containers.length, 5);
    for (const n of ['m1', 'w1', 'w2']) assert.ok(running(ids[n]).length >= 1, `${n} runs a replica`);
    for (const ct of containers) assert.match(ct.name, /^web-fe\.\d+\.[a-z0-9]{25}$/);
  });

  test('2. port 8080 answers on every node (the routing mesh)', async () => {
    for (const host of ['127.0.0.1', '127.0.0.2', '127.0.0.3']) {
      // Any HTTP answer is httpd's (busybox httpd without an index file may say 404).
      const status = await eventually(`an HTTP answer on ${host}:8080`, async () => {
        const res = await fetch(`http://${host}:8080/`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
        return res?.status;
      }, 30_000);
      assert.ok(status >= 200 && status < 500, `${host}:8080 answered ${status}`);
    }
  });

  test('4. scale to 10', async () => {
    await m1.call('ScaleService', { service: 'web-fe', replicas: 10 });
    await eventually('10 running', async () => ((await runningTasks()).length === 10 && allRunning().length === 10 ? true : undefined), 60_000);
  });

  test('5-6. a container stopped by hand is replaced; started again, it is removed', async () => {
    const victim = running(ids.w1)[0];
    docker('stop', '-t', '1', victim.id);
    await eventually('a replacement (10 running again)', async () => {
      const ts = await tasks();
      const old = ts.find((t) => t.task.id === victim.task);
      return old && old.task.desiredState === 'shutdown' && (await runningTasks()).length === 10 ? true : undefined;
    }, 30_000);
    docker('start', victim.id);
    await eventually('the revived container removed, still 10', async () => {
      const gone = !docker('ps', '-aq', '--filter', `id=${victim.id}`);
      return gone && allRunning().length === 10 ? true : undefined;
    }, 30_000);
  });

  test('7. worker1 powered off: down, 10 running on the other two', async () => {
    await w1.kill();
    const mine = docker('ps', '-aq', '--filter', `label=shoal.node.id=${ids.w1}`);
    if (mine) docker('rm', '-f', ...mine.split('\n'));
    await eventually('w1 down and 10 running elsewhere', async () => {
      const r = await m1.call<{ nodes: { node: { description: { hostname: string }; status: { state: string } } }[] }>('ListNodes');
      const down = r.nodes.find((n) => n.node.description.hostname === 'w1')?.node.status.state === 'down';
      const rt = await runningTasks();
      return down && rt.length === 10 && rt.every((t) => t.nodeHostname !== 'w1') ? true : undefined;
    }, 60_000);
  });

  test('8. worker1 back: ready, nothing moved back, nothing stale of it running', async () => {
    w1.start(['run', '--data-dir', w1.dataDir]);
    await eventually('w1 ready', async () => {
      const r = await m1.call<{ nodes: { node: { description: { hostname: string }; status: { state: string } } }[] }>('ListNodes');
      return r.nodes.find((n) => n.node.description.hostname === 'w1')?.node.status.state === 'ready' ? true : undefined;
    }, 30_000);
    await new Promise((r) => setTimeout(r, 3_000));
    assert.equal(running(ids.w1).length, 0, 'nothing moved back to w1');
    assert.equal((await runningTasks()).length, 10);
  });

  test('service rm leaves no container behind', async () => {
    await m1.call('RemoveService', { service: 'web-fe' });
    await eventually('no containers left', async () => (allRunning().length === 0 ? true : undefined), 60_000);
  });
});
