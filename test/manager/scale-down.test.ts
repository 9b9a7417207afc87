// A scale-down on a real daemon (real containers): the scaled-away slots' tasks are marked
// desired `remove` (`service ps` shows Remove while they stop, as docker does), then deleted
// once stopped, containers and all; only the slots kept are left. Scaling up again makes new
// tasks (SwarmKit's desired state REMOVE and task reaper).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';
import { shoalCli, type PsRow } from '../helpers/cli.js';

const NAME = `shrink-${process.pid}`;

/** This service's containers on this engine, stopped ones included. */
const containers = (): string[] =>
  execFileSync('docker', ['ps', '-aq', '--filter', `label=shoal.service.name=${NAME}`], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);

describe('scale-down: the slots scaled away go, tasks and containers', () => {
  const c = new TestCluster();
  let m1: Daemon;
  const shoal = (...args: string[]) => shoalCli(m1, args, { timeoutMs: 90_000 });
  const ps = async (): Promise<PsRow[]> => JSON.parse((await shoal('service', 'ps', '--format', 'json', NAME)).stdout) as PsRow[];
  const running = async () => {
    const rows = await ps();
    return rows.filter((t) => t.desiredState === 'running' && t.currentState === 'running');
  };

  before(async () => {
    m1 = await c.init('m1');
  });
  after(() => c.stop());

  test('6 → 2: Remove while they stop, then exactly 2 slots\' tasks and containers; → 4: new slots', async () => {
    // `sleep` as PID 1 ignores SIGTERM: each victim takes its whole grace period to stop, long
    // enough for `service ps` to show it marked for removal.
    const r = await shoal('service', 'create', '-d', '--name', NAME, '--replicas', '6', '--stop-grace-period', '3s', 'shoal/busybox:latest', 'sleep', '3600');
    assert.equal(r.code, 0, r.stderr);
    const six = await eventually('6 tasks running', async () => ((await running()).length === 6 ? running() : undefined), 60_000);
    const scaled = await shoal('service', 'scale', '-d', `${NAME}=2`);
    assert.equal(scaled.code, 0, scaled.stderr);

    // Marked, not yet stopped: docker's `service ps` says Remove (the table capitalizes).
    const table = await eventually('4 tasks shown as Remove', async () => {
      const out = (await shoal('service', 'ps', NAME)).stdout;
      return out.split('\n').filter((l) => /\sRemove\s/.test(l)).length === 4 ? out : undefined;
    }, 10_000);
    assert.equal(table.split('\n').filter((l) => /\sRunning\s+Running/.test(l)).length, 2, table);
    const filtered = await shoal('service', 'ps', '-q', '--no-trunc', '--filter', 'desired-state=remove', NAME);
    assert.equal(filtered.code, 0, filtered.stderr);
    for (const id of filtered.stdout.trim().split('\n').filter(Boolean)) assert.ok(six.some((t) => t.id === id), `${id} is one of the six`);

    const kept = await eventually('only the 2 kept tasks left', async () => {
      const rows = await ps();
      return rows.length === 2 && rows.every((t) => t.desiredState === 'running' && t.currentState === 'running') ? rows : undefined;
    }, 30_000);
    assert.equal(new Set(kept.map((t) => t.slot)).size, 2);
    assert.ok(kept.every((t) => six.some((s) => s.id === t.id)), 'the kept tasks are the ones that ran');
    await eventually('2 containers left', async () => (containers().length === 2 ? true : undefined), 30_000);

    assert.equal((await shoal('service', 'scale', '-d', `${NAME}=4`)).code, 0);
    const four = await eventually('4 tasks running', async () => {
      const rows = await running();
      return rows.length === 4 ? rows : undefined;
    }, 60_000);
    assert.deepEqual(four.map((t) => t.slot).sort(), [1, 2, 3, 4], 'the slots scaled away are taken afresh');
    assert.equal(four.filter((t) => !six.some((s) => s.id === t.id)).length, 2, 'two new tasks');
    assert.equal((await ps()).length, 4, 'nothing else left in the service');
    await eventually('4 containers', async () => (containers().length === 4 ? true : undefined), 30_000);
    assert.equal((await shoal('service', 'rm', NAME)).code, 0);
    await eventually('no containers left', async () => (containers().length === 0 ? true : undefined), 30_000);
  });
});
