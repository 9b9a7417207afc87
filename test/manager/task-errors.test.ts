// Every task that is not running says why (real Docker): a missing image, a container that exits
// with a code, a host port something else holds, and a constraint no node meets.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as net from 'node:net';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';

const IMAGE = 'shoal/busybox:latest';

interface TaskView {
  task: { id: string; slot: number; desiredState: string; status: { state: string; err: string; exitCode: number } };
}

describe('task errors say why', () => {
  const c = new TestCluster();
  let m1: Daemon;

  const firstError = (service: string, states: string[]) =>
    eventually(`${service}: a task ${states.join('/')} with an error`, async () => {
      const r = await m1.call<{ tasks: TaskView[] }>('ListTasks', { service });
      return r.tasks.find((t) => states.includes(t.task.status.state) && t.task.status.err)?.task;
    }, 60_000);

  before(async () => {
    execFileSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' });
    [m1] = await c.managers(1);
  });
  after(() => c.stop());

  test('a missing image: rejected, naming the image', async () => {
    await m1.call('CreateService', { spec: { name: 'noimage', image: 'shoal/no-such-image:1.0', replicas: 1, restartPolicy: { condition: 'none' } } });
    const t = await firstError('noimage', ['rejected']);
    assert.match(t.status.err, /image shoal\/no-such-image:1\.0 not found locally/);
  });

  test('a container that exits with a code: failed, with the code', async () => {
    await m1.call('CreateService', {
      spec: { name: 'exits', image: IMAGE, args: ['sh', '-c', 'exit 3'], replicas: 1, restartPolicy: { condition: 'none' } },
    });
    const t = await firstError('exits', ['failed']);
    assert.equal(t.status.exitCode, 3);
    assert.match(t.status.err, /container exited with code 3/);
  });

  test('a host port something else holds: failed, naming the port', async () => {
    // The manager's node serves host ports on its own address (127.0.0.1 here).
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(18091, '127.0.0.1', r));
    try {
      await m1.call('CreateService', {
        spec: {
          name: 'porttaken',
          image: IMAGE,
          args: ['httpd', '-f', '-p', '80'],
          replicas: 1,
          stopGracePeriodMs: 500,
          ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 18091, publishMode: 'host' }],
          restartPolicy: { condition: 'none' },
        },
      });
      const t = await firstError('porttaken', ['failed', 'rejected']);
      assert.match(t.status.err, /18091/);
      assert.match(t.status.err, /in use|allocated/);
    } finally {
      holder.close();
    }
  });

  test('a constraint no node meets: pending, with the reason', async () => {
    await m1.call('CreateService', {
      spec: { name: 'nowhere', image: IMAGE, args: ['sleep', '60'], replicas: 1, constraints: ['node.labels.zone==mars'] },
    });
    const t = await firstError('nowhere', ['pending']);
    assert.match(t.status.err, /zone/);
  });
});
