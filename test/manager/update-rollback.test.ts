// Rolling updates that fail, on real containers through the `shoal` CLI: with
// --update-failure-action rollback the previous spec comes back by itself (and only the slots the
// update reached are replaced), `shoal service rollback` on demand, a paused update says why, and
// `service inspect` shows where the update stands.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';
import { shoalCli, type PsRow } from '../helpers/cli.js';


interface Inspect {
  id: string;
  specVersion: number;
  spec: { args: string[]; updateConfig: { failureAction: string; monitorMs: number }; rollbackConfig: { parallelism: number; monitorMs: number } };
  previousSpec: { args: string[] } | null;
  updateStatus: { state: string; message: string; startedAt: number; completedAt: number } | null;
}

describe('rolling update failures and rollback (CLI, real containers)', () => {
  const c = new TestCluster();
  let m1: Daemon;
  const shoal = (...args: string[]) => shoalCli(m1, args, { timeoutMs: 120_000 });
  const inspect = async (name: string): Promise<Inspect> => {
    const r = await shoal('service', 'inspect', '--format', 'json', name);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as Inspect;
  };
  const running = async (name: string): Promise<PsRow[]> => {
    const r = await shoal('service', 'ps', '--format', 'json', name);
    assert.equal(r.code, 0, r.stderr);
    return (JSON.parse(r.stdout) as PsRow[]).filter((t) => t.desiredState === 'running' && t.currentState === 'running');
  };

  before(async () => {
    m1 = await c.init('m1');
    await c.join('w1', m1, 'worker');
    await eventually('two ready nodes', async () => {
      const r = await m1.call<{ nodes: { node: { status: { state: string } } }[] }>('ListNodes');
      return r.nodes.length === 2 && r.nodes.every((n) => n.node.status.state === 'ready') ? true : undefined;
    });
    const r = await shoal(
      'service', 'create', '--name', 'roll', '--replicas', '3', '--stop-grace-period', '500ms', '--restart-delay', '200ms',
      '--update-failure-action', 'rollback', '--update-monitor', '1s', '--rollback-parallelism', '0', '--rollback-monitor', '1s',
      'shoal/busybox:latest', 'sleep', '3600',
    );
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => c.stop());

  test('a service never updated has nothing to roll back to', async () => {
    const r = await shoal('service', 'rollback', 'roll');
    assert.equal(r.code, 1);
    assert.equal(r.stderr.trim(), 'Error: service roll has no previous spec to roll back to (it was never updated)');
    assert.equal((await inspect('roll')).updateStatus, null);
  });

  test('--update-failure-action rollback: a failing update rolls itself back; untouched slots keep their tasks', async () => {
    const before = await running('roll');
    assert.equal(before.length, 3);
    // `sleep nope` exits 1 at once: the first updated slot fails.
    const r = await shoal('service', 'update', '--args', 'sleep nope', 'roll');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    const last = r.stderr.trim().split('\n').pop()!;
    assert.match(last, /^Error: roll: update rolled back due to failure or early termination of task [0-9a-z]+ \(container exited with code 1\); the previous spec runs again; see 'shoal service ps roll'$/);
    const s = await inspect('roll');
    assert.deepEqual(s.spec.args, ['sleep', '3600']);
    assert.deepEqual(s.previousSpec?.args, ['sleep', 'nope']);
    assert.equal(s.updateStatus?.state, 'rollback_completed');
    assert.match(s.updateStatus!.message, /^update rolled back due to failure or early termination of task /);
    const after = await running('roll');
    assert.equal(after.length, 3);
    // Parallelism 1: the update reached one slot (two, if the first new task ran for a moment
    // before it failed, as Swarm's updater moves on once a task runs); the others kept their tasks.
    const kept = after.filter((t) => before.some((b) => b.id === t.id));
    assert.ok(kept.length >= 1, JSON.stringify({ before, after }));
  });

  test('a good update completes (inspect says so); `service rollback` brings the previous spec back', async () => {
    const up = await shoal('service', 'update', '--args', 'sleep 3601', 'roll');
    assert.equal(up.code, 0, up.stderr);
    let s = await inspect('roll');
    assert.deepEqual(s.spec.args, ['sleep', '3601']);
    assert.equal(s.updateStatus?.state, 'completed');
    assert.ok(s.updateStatus!.completedAt >= s.updateStatus!.startedAt);
    const pretty = await shoal('service', 'inspect', 'roll');
    assert.match(pretty.stdout, /UpdateStatus:\n State:\s+completed\n Started:\s+\S+\n Completed:\s+\S+\n Message:\s+update completed\n/);
    const back = await shoal('service', 'rollback', 'roll');
    assert.equal(back.code, 0, back.stderr);
    assert.equal(back.stdout.trim(), 'roll');
    assert.match(back.stderr, /^rollback: manually requested rollback$/m);
    assert.match(back.stderr, /verify: Service converged/);
    s = await inspect('roll');
    assert.deepEqual(s.spec.args, ['sleep', '3600']);
    assert.equal(s.updateStatus?.state, 'rollback_completed');
    assert.equal(s.updateStatus?.message, 'manually requested rollback');
    assert.deepEqual([Number(s.spec.rollbackConfig.parallelism), Number(s.spec.rollbackConfig.monitorMs)], [0, 1000]);
    const ts = await running('roll');
    assert.equal(ts.length, 3);
    // `service update --rollback` is the same; it takes no other change.
    const mixed = await shoal('service', 'update', '--rollback', '--replicas', '2', 'roll');
    assert.equal(mixed.code, 2);
    assert.match(mixed.stderr, /--rollback cannot be combined with other changes/);
  });

  test('update and rollback say "converged" only once inspect says the update completed (after the monitor period)', async () => {
    // A monitor period well beyond the CLI's 1 s stability window.
    const cr = await shoal(
      'service', 'create', '--name', 'mon', '--replicas', '1', '--stop-grace-period', '500ms',
      '--update-monitor', '6s', '--rollback-monitor', '6s', 'shoal/busybox:latest', 'sleep', '3600',
    );
    assert.equal(cr.code, 0, cr.stderr);
    const up = await shoal('service', 'update', '--args', 'sleep 3601', 'mon');
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, /verify: Service converged/);
    let s = await inspect('mon');
    assert.equal(s.updateStatus?.state, 'completed', JSON.stringify(s.updateStatus));
    const back = await shoal('service', 'rollback', 'mon');
    assert.equal(back.code, 0, back.stderr);
    assert.match(back.stderr, /verify: Service converged/);
    s = await inspect('mon');
    assert.equal(s.updateStatus?.state, 'rollback_completed', JSON.stringify(s.updateStatus));
    assert.equal((await shoal('service', 'rm', 'mon')).code, 0);
  });

  test('node ps: the tasks on a node, as service ps shows them', async () => {
    const all = await running('roll');
    const r = await shoal('node', 'ps', '--format', 'json', '--filter', 'desired-state=running', 'w1', 'm1');
    assert.equal(r.code, 0, r.stderr);
    const ts = JSON.parse(r.stdout) as (PsRow & { node: string })[];
    assert.ok(ts.every((t) => t.node === 'w1' || t.node === 'm1'));
    assert.deepEqual(ts.filter((t) => t.currentState === 'running').map((t) => t.id).sort(), all.map((t) => t.id).sort());
    const table = await shoal('node', 'ps', 'w1');
    assert.match(table.stdout.split('\n')[0]!, /^ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\s+PORTS/);
    // Without a NODE: the node of the manager answering (m1), as `docker node ps`.
    const self = await shoal('node', 'ps', '--format', 'json');
    assert.equal(self.code, 0, self.stderr);
    const own = JSON.parse(self.stdout) as (PsRow & { node: string })[];
    assert.ok(own.length > 0 && own.every((t) => t.node === 'm1'), self.stdout);
    const none = await shoal('node', 'ps', 'nosuch');
    assert.equal(none.code, 1);
    assert.match(none.stderr.trim(), /^Error: .*nosuch/);
  });

  test('update --force: every task is replaced although the spec is the same (a rolling restart)', async () => {
    const before = (await running('roll')).map((t) => t.id);
    assert.equal(before.length, 3);
    const r = await shoal('service', 'update', '--force', 'roll');
    assert.equal(r.code, 0, r.stderr);
    const after = (await running('roll')).map((t) => t.id);
    assert.equal(after.length, 3);
    assert.deepEqual(after.filter((id) => before.includes(id)), [], 'all replaced');
    assert.equal((await inspect('roll')).updateStatus?.state, 'completed');
  });

  test('resources: limits reach the container; a reservation no node can give waits and says why', async () => {
    const lim = await shoal('service', 'create', '--name', 'lim', '--placement-pref', 'spread=node.labels.zone', '--limit-cpu', '0.5', '--limit-memory', '64m', '--reserve-memory', '32m', '--stop-grace-period', '500ms', 'shoal/busybox:latest', 'sleep', '3600');
    assert.equal(lim.code, 0, lim.stderr);
    const [t] = await running('lim');
    const ps = JSON.parse((await shoal('service', 'ps', '--format', 'json', 'lim')).stdout) as (PsRow & { containerId: string })[];
    const cid = ps.find((x) => x.id === t!.id)!.containerId;
    const hc = await new Promise<string>((resolve, reject) =>
      execFile('docker', ['inspect', '-f', '{{.HostConfig.NanoCpus}} {{.HostConfig.Memory}} {{.HostConfig.MemoryReservation}}', cid], { encoding: 'utf8' }, (err, out) => (err ? reject(err) : resolve(out.trim()))),
    );
    assert.equal(hc, `500000000 ${64 << 20} ${32 << 20}`);
    assert.match((await shoal('service', 'inspect', 'lim')).stdout, /Placement:\n Preferences:\n  spread=node\.labels\.zone\n/);
    assert.match((await shoal('service', 'inspect', 'lim')).stdout, /Resources:\n Reservations:\n  Memory:\s+32MiB\n Limits:\n  CPU:\s+0\.5\n  Memory:\s+64MiB\n/);
    // 100,000 GiB of memory: no node has it. The task waits, saying why.
    const big = await shoal('service', 'create', '-d', '--name', 'big', '--reserve-memory', '100000g', 'shoal/busybox:latest', 'sleep', '3600');
    assert.equal(big.code, 0, big.stderr);
    const why = await eventually('big pending with a reason', async () => {
      const r = JSON.parse((await shoal('service', 'ps', '--format', 'json', 'big')).stdout) as PsRow[];
      return r[0]?.currentState === 'pending' && r[0].error ? r[0].error : undefined;
    });
    assert.equal(why, 'no suitable node (2 nodes: insufficient resources (100000 GiB of memory to reserve))');
    // Asking for less lets it run.
    const fix = await shoal('service', 'update', '--reserve-memory', '0', 'big');
    assert.equal(fix.code, 0, fix.stderr);
    for (const name of ['lim', 'big']) assert.equal((await shoal('service', 'rm', name)).code, 0);
  });

  test('--update-failure-action pause: the update stops at the failed slot and says why', async () => {
    const old = new Set((await running('roll')).map((t) => t.id));
    const r = await shoal('service', 'update', '--update-failure-action', 'pause', '--args', 'sleep never', 'roll');
    assert.equal(r.code, 1, r.stdout + r.stderr);
    assert.match(r.stderr.trim().split('\n').pop()!, /^Error: roll: update paused due to failure or early termination of task [0-9a-z]+ \(container exited with code 1\); see 'shoal service ps roll'$/);
    const s = await inspect('roll');
    assert.equal(s.updateStatus?.state, 'paused');
    assert.deepEqual(s.spec.args, ['sleep', 'never']);
    // The slots the update had not reached still run the old spec, and no further batch starts.
    // (The failed slot's task restarts and fails again meanwhile: only the old tasks are compared.)
    const oldRunning = async () => (await running('roll')).map((t) => t.id).filter((id) => old.has(id)).sort();
    const held = await oldRunning();
    assert.ok(held.length >= 1 && held.length <= 2, JSON.stringify(held));
    await new Promise((res) => setTimeout(res, 1_500));
    assert.deepEqual(await oldRunning(), held);
    // A fix is a new update: it starts over and completes.
    const fix = await shoal('service', 'update', '--args', 'sleep 3602', 'roll');
    assert.equal(fix.code, 0, fix.stderr);
    assert.equal((await inspect('roll')).updateStatus?.state, 'completed');
  });
});
