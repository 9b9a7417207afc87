// Restart delays on real agents whose wall clocks are an hour off (a preload shifts Date in the
// worker's process; see test/helpers/clock-skew.mjs): the delay counts on the manager's clock from
// when it learned that the task stopped, so each worker's crashing task is restarted after the
// delay, no sooner (the agent an hour behind) and not an hour later (the agent an hour ahead).
// Measured on this host's clock: a failed container's FinishedAt (Docker) against its
// replacement's creation (the manager, whose clock is right).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TestCluster, type Daemon, eventually, skewedClock } from '../helpers/shoald.js';

const HOUR = 3_600_000;
const DELAY_MS = 3_000;

interface TaskView {
  task: { id: string; slot: number; createdAt: number; desiredState: string; status: { state: string; containerId: string; timestamp: number } };
}

function finishedAt(containerId: string): number {
  return Date.parse(execFileSync('docker', ['inspect', '--format', '{{.State.FinishedAt}}', containerId], { encoding: 'utf8' }).trim());
}

describe('restart delays with agents whose clocks are an hour off', () => {
  const c = new TestCluster();
  let m1: Daemon;

  before(async () => {
    [m1] = await c.managers(1);
    await c.join('ahead', m1, 'worker', '127.0.0.1', skewedClock(HOUR));
    await c.join('behind', m1, 'worker', '127.0.0.1', skewedClock(-HOUR));
    await eventually('three ready nodes', async () => {
      const r = await m1.call<{ nodes: { node: { status: { state: string } } }[] }>('ListNodes');
      return r.nodes.length === 3 && r.nodes.every((n) => n.node.status.state === 'ready') ? true : undefined;
    });
  });
  after(() => c.stop());

  test('a crashing task is restarted after the delay, counted on the manager\'s clock', async () => {
    for (const host of ['ahead', 'behind']) {
      await m1.call('CreateService', {
        spec: {
          name: `crash-${host}`,
          image: 'shoal/busybox:latest',
          args: ['sh', '-c', 'sleep 1; exit 1'],
          replicas: 1,
          constraints: [`node.hostname==${host}`],
          restartPolicy: { condition: 'any', delayMs: DELAY_MS },
        },
      });
    }
    for (const host of ['ahead', 'behind']) {
      // Two restarts: well within a minute if the delay is right, an hour off if the agent's clock counted.
      const ts = await eventually(
        `two restarts on ${host}`,
        async () => {
          const r = await m1.call<{ tasks: TaskView[] }>('ListTasks', { service: `crash-${host}` });
          const all = r.tasks.map((t) => t.task).sort((a, b) => a.createdAt - b.createdAt);
          return all.length >= 3 ? all : undefined;
        },
        60_000,
      );
      for (let i = 0; i + 1 < ts.length; i++) {
        const [failed, next] = [ts[i]!, ts[i + 1]!];
        assert.equal(failed.status.state, 'failed', `${host}: task ${i} failed`);
        assert.ok(failed.status.containerId, `${host}: task ${i} had a container`);
        const waited = next.createdAt - finishedAt(failed.status.containerId);
        assert.ok(waited >= DELAY_MS, `${host}: task ${i + 1} was created ${waited} ms after its predecessor died (delay ${DELAY_MS} ms)`);
        // The manager stamps the statuses it stores with its own clock, not the agent's.
        assert.ok(Math.abs(failed.status.timestamp - Date.now()) < HOUR / 2, `${host}: task ${i}'s status time is the manager's`);
      }
    }
  });
});
