// Health checks on real containers (Docker runs the probes): a task with one is `starting` until
// its container is healthy, then `running` (so `service create` without -d waits for it, as a
// rolling update does); one that turns unhealthy fails, saying so, and is replaced.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';
import { shoalCli, type PsRow } from '../helpers/cli.js';


describe('health checks (real containers)', () => {
  const c = new TestCluster();
  let m1: Daemon;
  const shoal = (...args: string[]) => shoalCli(m1, args, { timeoutMs: 90_000 });
  const ps = async (name: string): Promise<PsRow[]> => JSON.parse((await shoal('service', 'ps', '--format', 'json', name)).stdout) as PsRow[];

  before(async () => {
    m1 = await c.init('m1');
  });
  after(() => c.stop());

  test('starting until healthy, then running; create waits for it', async () => {
    const seen = new Set<string>();
    // The container becomes healthy once /tmp/ready exists, about 1.5 s after it starts.
    const create = shoal(
      'service', 'create', '--name', 'slow', '--stop-grace-period', '500ms', '--health-cmd', 'test -f /tmp/ready', '--health-interval', '200ms',
      '--health-retries', '50', 'shoal/busybox:latest', 'sh', '-c', 'sleep 1.5; touch /tmp/ready; exec sleep 3600',
    );
    const watch = (async () => {
      for (let i = 0; i < 60; i++) {
        const t = (await ps('slow').catch(() => []))[0];
        if (t) seen.add(t.currentState);
        if (t?.currentState === 'running') return;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const r = await create;
    await watch;
    assert.equal(r.code, 0, r.stderr);
    assert.ok(seen.has('starting'), `seen: ${[...seen].join(', ')}`);
    assert.equal((await ps('slow'))[0]!.currentState, 'running');
    assert.match((await shoal('service', 'inspect', 'slow')).stdout, /Healthcheck:\n Test:\s+test -f \/tmp\/ready\n Interval:\s+200ms\n/);
  });

  test('a task that turns unhealthy fails, saying so, and is replaced', async () => {
    const r = await shoal(
      'service', 'create', '-d', '--name', 'sick', '--stop-grace-period', '500ms', '--restart-delay', '0s', '--health-cmd', 'test -f /tmp/ok || { echo "no /tmp/ok"; exit 1; }',
      '--health-interval', '200ms', '--health-retries', '2', 'shoal/busybox:latest', 'sleep', '3600',
    );
    assert.equal(r.code, 0, r.stderr);
    const failed = await eventually('a failed task of sick', async () => (await ps('sick')).find((t) => t.currentState === 'failed'), 30_000);
    assert.equal(failed.error, 'container is unhealthy: no /tmp/ok');
    assert.equal(failed.desiredState, 'shutdown');
    // Replaced: another task of the slot is on its way.
    assert.ok((await ps('sick')).some((t) => t.desiredState === 'running' && t.id !== failed.id));
    // It never counted as running.
    assert.ok((await ps('sick')).every((t) => t.currentState !== 'running'));
  });

  test('a running task that turns unhealthy later fails too', async () => {
    const r = await shoal(
      'service', 'create', '-d', '--name', 'fading', '--stop-grace-period', '500ms', '--restart-condition', 'none', '--health-cmd', 'test -f /tmp/ok',
      '--health-interval', '200ms', '--health-retries', '2', 'shoal/busybox:latest', 'sh', '-c', 'touch /tmp/ok; sleep 3; rm /tmp/ok; exec sleep 3600',
    );
    assert.equal(r.code, 0, r.stderr);
    await eventually('fading running (healthy)', async () => ((await ps('fading'))[0]?.currentState === 'running' ? true : undefined), 20_000);
    const failed = await eventually('fading failed', async () => (await ps('fading')).find((t) => t.currentState === 'failed'), 30_000);
    assert.equal(failed.error, 'container is unhealthy');
  });
});
