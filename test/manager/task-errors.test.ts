// Every task that is not running says why (real Docker): a missing image (none anywhere, a registry
// that does not answer, a tag a real registry does not have: retried, then rejected, `service ps`
// saying so), a container that exits with a code, a host port something else holds, and a
// constraint no node meets.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as net from 'node:net';
import { join } from 'node:path';
import { type PsRow, shoalCli } from '../helpers/cli.js';
import { ROOT, TestCluster, type Daemon, eventually } from '../helpers/shoald.js';

// The agent suite's real registry (one helper for both suites), loaded from its build.
type RegistryModule = typeof import('../../packages/agent/dist/test/registry.js');
const { TestRegistry, unusedPort } = (await import(join(ROOT, 'packages/agent/dist/test/registry.js'))) as RegistryModule;

const IMAGE = 'shoal/busybox:latest';

interface TaskView {
  task: { id: string; slot: number; desiredState: string; status: { state: string; err: string; message: string; exitCode: number } };
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

  test('an image no registry has: retried while preparing, then rejected saying why; service ps shows it', async () => {
    const reg = await TestRegistry.start();
    try {
      // All three at once: their retries (some 15 s) overlap.
      const images = {
        noimage: 'shoal/no-such-image:1.0',
        noregistry: `127.0.0.1:${await unusedPort()}/nope:1`,
        notag: `${reg.host}/nope:1`,
      };
      for (const [name, image] of Object.entries(images)) {
        await m1.call('CreateService', { spec: { name, image, replicas: 1, restartPolicy: { condition: 'none' } } });
      }
      // Between attempts the task stays preparing, its message the wait (as `service ps --format json` shows it).
      const waiting = await eventually('a retry shown while preparing', async () => {
        const r = await shoalCli(m1, ['service', 'ps', '--format', 'json', 'noregistry']);
        const rows = JSON.parse(r.stdout || '[]') as (PsRow & { message: string })[];
        return rows.find((t) => t.currentState === 'preparing' && /retrying in/.test(t.message));
      }, 30_000);
      assert.match(waiting.message, /^pull failed \(registry unreachable\): retrying in \d+s, attempt [2-5] of 5$/);
      const noimage = await firstError('noimage', ['rejected']);
      assert.match(noimage.status.err, /^image shoal\/no-such-image:1\.0 not found locally and cannot be pulled: /);
      const noregistry = await firstError('noregistry', ['rejected']);
      assert.match(noregistry.status.err, new RegExp(`^image ${images.noregistry} not found locally and cannot be pulled: registry unreachable: .*connection refused`));
      const notag = await firstError('notag', ['rejected']);
      assert.match(notag.status.err, new RegExp(`^image ${images.notag} not found locally and cannot be pulled: not found in the registry: .*manifest unknown`));
      // The table: Rejected, and the error (whole with --no-trunc).
      const ps = await shoalCli(m1, ['service', 'ps', '--no-trunc', 'notag']);
      assert.equal(ps.code, 0, ps.stderr);
      const row = ps.stdout.split('\n').find((l) => l.includes(notag.id))!;
      assert.match(row, /Rejected .* ago\s+"image \S+ not found locally and cannot be pulled: not found in the registry: /);
    } finally {
      await reg.stop();
    }
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
