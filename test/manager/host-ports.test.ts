// Host-mode published ports on real containers: `--publish mode=host,published=P,target=T` binds
// P on the node that runs the task, on that node's own address (each node here is a loopback
// address of this machine: 127.0.0.1-3), and the scheduler never puts two tasks using the same
// host port on one node: a task that finds the port taken everywhere stays pending and says why.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, TestCluster, type Daemon, eventually, removeContainersOf } from '../helpers/shoald.js';

const IMAGE = 'shoal/busybox:latest';
const SHOAL = join(ROOT, 'packages/cli/bin/shoal.js');
const HOSTS: Record<string, string> = { m1: '127.0.0.1', w1: '127.0.0.2', w2: '127.0.0.3' };

function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' }).trim();
}

interface TaskView {
  task: { id: string; slot: number; nodeId: string; desiredState: string; status: { state: string; err: string; containerId: string } };
  nodeHostname: string;
}

/** httpd serving "hi from <service>" as its index, on port 80 of the container. */
const web = (name: string, publishedPort: number, extra: object) => ({
  name,
  image: IMAGE,
  args: ['sh', '-c', `echo hi from ${name} > /tmp/index.html; exec httpd -f -p 80 -h /tmp`],
  ports: [{ protocol: 'tcp', targetPort: 80, publishedPort, publishMode: 'host' }],
  stopGracePeriodMs: 1_000,
  ...extra,
});

/** The body of GET http://addr/ (throws if nothing answers). */
async function get(addr: string): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://${addr}/`, { signal: AbortSignal.timeout(3_000) });
  return { status: res.status, body: await res.text() };
}

describe('host-mode published ports', () => {
  const c = new TestCluster();
  let m1: Daemon;
  const ids: Record<string, string> = {};
  /** Every task of hostweb (history included) once its update converged. */
  let afterUpdate: TaskView[] = [];

  const current = async (service: string) =>
    (await m1.call<{ tasks: TaskView[] }>('ListTasks', { service })).tasks.filter((t) => t.task.desiredState === 'running');

  /** The service's running tasks once there is one on each of the three nodes. */
  const onePerNode = (service: string) =>
    eventually(`${service}: one running task on each node`, async () => {
      const ts = (await current(service)).filter((t) => t.task.status.state === 'running');
      const nodes = ts.map((t) => t.nodeHostname).sort();
      return ts.length === 3 && nodes.join(',') === 'm1,w1,w2' ? ts : undefined;
    }, 60_000);

  before(async () => {
    try {
      docker('image', 'inspect', IMAGE);
    } catch {
      throw new Error(`the test image ${IMAGE} is missing: run scripts/test-env.sh (installs Docker, builds the image)`);
    }
    [m1] = await c.managers(1);
    await c.join('w1', m1, 'worker', HOSTS.w1);
    await c.join('w2', m1, 'worker', HOSTS.w2);
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

  test('3 replicas on 3 nodes: one per node, each bound on its node\'s own address', async () => {
    await m1.call('CreateService', { spec: web('hostweb', 18080, { replicas: 3 }) });
    const ts = await onePerNode('hostweb');
    for (const t of ts) {
      const host = HOSTS[t.nodeHostname];
      assert.equal(docker('port', t.task.status.containerId, '80/tcp'), `${host}:18080`, `${t.nodeHostname}'s task binds its node's address`);
    }
    for (const [node, host] of Object.entries(HOSTS)) {
      const r = await eventually(`an HTTP answer on ${host}:18080`, () => get(`${host}:18080`), 30_000);
      assert.equal(r.status, 200, `${node} answers`);
      assert.equal(r.body.trim(), 'hi from hostweb');
    }
  });

  test('a 4th replica finds the port taken on every node: it stays pending and says why', async () => {
    await m1.call('ScaleService', { service: 'hostweb', replicas: 4 });
    const pending = await eventually('a pending task with a reason', async () => {
      const ts = (await current('hostweb')).filter((t) => t.task.status.state === 'pending');
      return ts.length === 1 && ts[0].task.status.err ? ts[0] : undefined;
    });
    assert.equal(pending.task.nodeId, '');
    assert.match(pending.task.status.err, /no suitable node \(3 nodes: host port 18080\/tcp is taken\)/);
    // `shoal service ps` shows the same reason.
    const ps = JSON.parse(execFileSync(process.execPath, [SHOAL, '--host', `unix://${m1.socket}`, 'service', 'ps', 'hostweb', '--format', 'json'], { encoding: 'utf8' })) as
      { id: string; currentState: string; error: string }[];
    const row = ps.find((r) => r.id === pending.task.id);
    assert.ok(row, 'service ps lists the pending task');
    assert.match(row.currentState, /^pending/);
    assert.match(row.error, /host port 18080\/tcp is taken/);
    // Still exactly one running task per node, one container bound per address.
    const running = (await current('hostweb')).filter((t) => t.task.status.state === 'running');
    assert.deepEqual(running.map((t) => t.nodeHostname).sort(), ['m1', 'w1', 'w2']);
    for (const node of Object.keys(HOSTS)) {
      const mine = docker('ps', '-q', '--filter', `label=shoal.node.id=${ids[node]}`, '--filter', 'label=shoal.service.name=hostweb');
      assert.equal(mine.split('\n').filter(Boolean).length, 1, `one hostweb container on ${node}`);
    }
  });

  test('scaled back to 3: the pending task goes, the three keep running', async () => {
    const before = (await current('hostweb')).filter((t) => t.task.status.state === 'running').map((t) => t.task.id).sort();
    await m1.call('ScaleService', { service: 'hostweb', replicas: 3 });
    await eventually('no pending task left', async () => {
      const ts = await current('hostweb');
      return ts.length === 3 && ts.every((t) => t.task.status.state === 'running') ? true : undefined;
    });
    assert.deepEqual((await current('hostweb')).map((t) => t.task.id).sort(), before);
  });

  test('a service update replaces the tasks (stop-first): the new ones bind the port the old ones freed', async () => {
    type Full = TaskView & { task: { specVersion: number } };
    const cur = await m1.call<{ service: { version: number; specVersion: number; spec: { args: string[] } } }>('GetService', { service: 'hostweb' });
    const next = {
      ...cur.service.spec,
      args: ['sh', '-c', 'echo hi again > /tmp/index.html; exec httpd -f -p 80 -h /tmp'],
      updateConfig: { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first' },
    };
    await m1.call('UpdateService', { service: 'hostweb', spec: next, version: cur.service.version });
    const target = cur.service.specVersion + 1;
    await eventually('3 tasks of the new spec running, one per node', async () => {
      const ts = (await m1.call<{ tasks: Full[] }>('ListTasks', { service: 'hostweb' })).tasks.filter((t) => t.task.desiredState === 'running');
      return ts.length === 3 && ts.every((t) => t.task.specVersion === target && t.task.status.state === 'running') &&
        ts.map((t) => t.nodeHostname).sort().join(',') === 'm1,w1,w2'
        ? true
        : undefined;
    }, 90_000);
    afterUpdate = (await m1.call<{ tasks: TaskView[] }>('ListTasks', { service: 'hostweb' })).tasks;
    for (const host of Object.values(HOSTS)) {
      const r = await eventually(`the new answer on ${host}:18080`, async () => {
        const x = await get(`${host}:18080`);
        return x.body.trim() === 'hi again' ? x : undefined;
      }, 30_000);
      assert.equal(r.status, 200);
    }
  });

  test('the update went without port conflicts (a new task never starts while the old one holds the port)', () => {
    const conflicts = afterUpdate.filter((t) => /already in use/.test(t.task.status.err));
    assert.deepEqual(conflicts.map((t) => `${t.nodeHostname}: ${t.task.status.err}`), []);
  });

  test('a global service with a host port runs one task per node, each answering on its node', async () => {
    await m1.call('CreateService', { spec: web('hostglobal', 18081, { mode: 'global' }) });
    const ts = await onePerNode('hostglobal');
    for (const t of ts) assert.equal(docker('port', t.task.status.containerId, '80/tcp'), `${HOSTS[t.nodeHostname]}:18081`);
    for (const host of Object.values(HOSTS)) {
      const r = await eventually(`an HTTP answer on ${host}:18081`, () => get(`${host}:18081`), 30_000);
      assert.equal(r.body.trim(), 'hi from hostglobal');
    }
  });

  test('removing the services frees the ports', async () => {
    await m1.call('RemoveService', { service: 'hostweb' });
    await m1.call('RemoveService', { service: 'hostglobal' });
    await eventually('no container left', async () => {
      const left = Object.values(ids).flatMap((id) => docker('ps', '-aq', '--filter', `label=shoal.node.id=${id}`).split('\n').filter(Boolean));
      return left.length === 0 ? true : undefined;
    }, 60_000);
    for (const host of Object.values(HOSTS)) {
      await assert.rejects(get(`${host}:18080`), `nothing listens on ${host}:18080 any more`);
    }
  });
});
