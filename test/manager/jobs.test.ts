// Jobs on a real single-manager cluster (real containers): a replicated job runs until its
// completions are in, never more tasks at once than --max-concurrent, and `service create`
// without -d waits for it; `service update --force` runs it again (a new iteration); a job whose
// task fails for good makes create end in error; a global job runs once on the node.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, type Daemon } from '../helpers/shoald.js';
import { shoalCli, type PsRow } from '../helpers/cli.js';

interface LsRow {
  name: string;
  mode: string;
  replicas: { running: number; desired: number; completed?: number; total?: number };
}

describe('jobs (real containers)', () => {
  const c = new TestCluster();
  let m1: Daemon;
  const shoal = (...args: string[]) => shoalCli(m1, args, { timeoutMs: 120_000 });
  const ps = async (name: string): Promise<PsRow[]> => JSON.parse((await shoal('service', 'ps', '--format', 'json', name)).stdout) as PsRow[];
  const ls = async (name: string): Promise<LsRow> => (JSON.parse((await shoal('service', 'ls', '--format', 'json')).stdout) as LsRow[]).find((s) => s.name === name)!;

  const iteration = async (name: string): Promise<number> => {
    // One object, or (docker's shape) a list of one.
    const j = JSON.parse((await shoal('service', 'inspect', '--format', 'json', name)).stdout) as unknown;
    const o = (Array.isArray(j) ? j[0] : j) as { jobStatus?: { jobIteration: number }; JobStatus?: { JobIteration: { Index: number } } };
    return Number(o.jobStatus?.jobIteration ?? o.JobStatus?.JobIteration.Index);
  };

  before(async () => {
    m1 = await c.init('m1');
  });
  after(() => c.stop());

  test('a replicated job: create waits until its 4 completions are in, 2 at a time; --force runs it again', async () => {
    // (How many run at once is the orchestrator's unit suite's to check: ps has no times.)
    const r = await shoal(
      'service', 'create', '--name', 'batch', '--mode', 'replicated-job', '--replicas', '4', '--max-concurrent', '2', '--stop-grace-period', '500ms',
      '--timeout', '90s', 'shoal/busybox:latest', 'sh', '-c', 'sleep 0.5; exit 0',
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /job progress: 4 out of 4 complete/);
    assert.match(r.stderr, /verify: Job complete/);
    const tasks = await ps('batch');
    assert.equal(tasks.length, 4, JSON.stringify(tasks));
    assert.deepEqual(tasks.map((t) => t.slot).sort(), [1, 2, 3, 4]);
    assert.ok(tasks.every((t) => t.currentState === 'complete' && t.desiredState === 'complete'), JSON.stringify(tasks));
    const row = await ls('batch');
    assert.equal(row.mode, 'replicated-job');
    assert.deepEqual(row.replicas, { running: 0, desired: 0, completed: 4, total: 4 });
    const table = (await shoal('service', 'ls')).stdout;
    assert.match(table, /batch\s+replicated job\s+0\/0 \(4\/4 completed\)/);

    assert.equal(await iteration('batch'), 0);

    const again = await shoal('service', 'update', '--force', '--timeout', '90s', 'batch');
    assert.equal(again.code, 0, again.stderr);
    assert.match(again.stderr, /verify: Job complete/);
    assert.equal(await iteration('batch'), 1);
    const all = await ps('batch');
    assert.equal(all.filter((t) => t.currentState === 'complete').length, 8, 'both iterations ran 4 each');
    assert.deepEqual((await ls('batch')).replicas, { running: 0, desired: 0, completed: 4, total: 4 });
  });

  test('a task that fails for good (restart none): create ends in error, naming it', async () => {
    const r = await shoal(
      'service', 'create', '--name', 'doomed', '--mode', 'replicated-job', '--restart-condition', 'none', '--timeout', '60s', 'shoal/busybox:latest', 'sh', '-c', 'exit 3',
    );
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /doomed: the job cannot complete: slot 1: container exited with code 3; see 'shoal service ps doomed'/);
    const tasks = await ps('doomed');
    assert.equal(tasks.length, 1, 'never retried');
    assert.equal(tasks[0]!.currentState, 'failed');
  });

  test('a global job runs once on the node; restart any is refused for a job', async () => {
    const r = await shoal('service', 'create', '--name', 'once', '--mode', 'global-job', '--timeout', '60s', 'shoal/busybox:latest', 'true');
    assert.equal(r.code, 0, r.stderr);
    const tasks = await ps('once');
    assert.equal(tasks.length, 1);
    assert.equal(tasks[0]!.currentState, 'complete');
    assert.match((await shoal('service', 'ls')).stdout, /once\s+global job\s+0\/0 \(1\/1 completed\)/);
    const bad = await shoal('service', 'create', '--name', 'nope', '--mode', 'replicated-job', '--restart-condition', 'any', 'shoal/busybox:latest', 'true');
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /restart condition "any" is not allowed for a job/);
  });
});
