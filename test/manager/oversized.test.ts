// Oversized work on three managers, through the `shoal` CLI: a 10,000-replica service whose tasks
// stay pending (a constraint no node meets) is accepted, listed completely by `service ps` on
// every manager, and removed, while an unrelated write keeps committing all along (before the
// store's size bound, one pass of it was an 11 MB Raft entry no follower could receive, and no
// write ever committed again). A 5 MB env is refused with one clear line; nothing is stored.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';
import { shoalCli, type PsRow } from '../helpers/cli.js';

const REPLICAS = 10_000;

interface TaskView {
  task: { serviceName: string };
}

const shoal = (d: Daemon, ...args: string[]) => shoalCli(d, ['--timeout', '60s', ...args], { timeoutMs: 120_000 });

/** Every task a manager lists (ListTasks page after page, as any API client would). */
async function allTasks(d: Daemon): Promise<TaskView[]> {
  const out: TaskView[] = [];
  let pageToken = '';
  do {
    const r = await d.call<{ tasks: TaskView[]; nextPageToken: string }>('ListTasks', { pageToken }, 30_000);
    out.push(...r.tasks);
    pageToken = r.nextPageToken;
  } while (pageToken);
  return out;
}

async function serviceNames(d: Daemon): Promise<string[]> {
  const r = await d.call<{ services: { service: { spec: { name: string } } }[] }>('ListServices');
  return r.services.map((s) => s.service.spec.name).sort();
}

/**
 * An unrelated write (a label on a node, through the managers in turn), one after the other
 * until stopped. `longestGapMs`: the longest time between two committed writes (or from the
 * start to the first), failed attempts included: a stalled cluster makes it grow without end.
 */
function writer(managers: Daemon[], nodeId: string) {
  let stop = false;
  const stats = { committed: 0, failed: 0, longestGapMs: 0, lastError: '' };
  const done = (async () => {
    let lastOk = Date.now();
    for (let i = 0; !stop; i++) {
      const d = managers[i % managers.length]!;
      const t0 = Date.now();
      try {
        await d.call('UpdateNode', { node: nodeId, labelAdd: { tick: String(i) } }, 10_000);
        if (process.env.DEBUG_WRITER && Date.now() - t0 > 1000) console.error(new Date().toISOString(), 'slow write', d.name, Date.now() - t0);
        stats.committed++;
        stats.longestGapMs = Math.max(stats.longestGapMs, Date.now() - lastOk);
        lastOk = Date.now();
      } catch (err) {
        stats.failed++;
        if (process.env.DEBUG_WRITER) console.error(new Date().toISOString(), 'failed write', d.name, Date.now() - t0, (err as Error).message);
        stats.lastError = (err as Error).message;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    // A stall still going on when the writer stops counts too.
    stats.longestGapMs = Math.max(stats.longestGapMs, Date.now() - lastOk);
  })();
  return {
    stats,
    async stop() {
      stop = true;
      await done;
      return stats;
    },
  };
}

describe('oversized work on three managers', () => {
  const c = new TestCluster();
  let managers: Daemon[];

  before(async () => {
    managers = await c.managers(3);
  });
  after(() => c.stop());

  test(`${REPLICAS} replicas pending on a constraint: created, listed by service ps on every manager, removed; writes never stall`, async () => {
    const [m1, m2, m3] = managers as [Daemon, Daemon, Daemon];
    const nodes = await m1.call<{ nodes: { node: { id: string } }[] }>('ListNodes');
    const w = writer(managers, nodes.nodes[0]!.node.id);
    try {
      const created = await shoal(m1, 'service', 'create', '-d', '--name', 'huge', '--replicas', String(REPLICAS), '--constraint', 'node.hostname==nowhere', 'shoal/busybox:latest');
      assert.equal(created.code, 0, created.stderr);

      // All of them, eventually (polled every 2 s: a listing of 10,000 tasks is work for a manager).
      const deadline = Date.now() + 180_000;
      for (;;) {
        const ps = await shoal(m1, 'service', 'ps', '-q', '--filter', 'desired-state=running', 'huge');
        if (ps.code === 0 && ps.stdout.trim().split('\n').length === REPLICAS) break;
        assert.ok(Date.now() < deadline, `not ${REPLICAS} tasks in time: ${ps.stdout.trim().split('\n').length} (${ps.stderr.trim()})`);
        await new Promise((r) => setTimeout(r, 2_000));
      }
      for (const d of [m1, m2, m3]) {
        const ps = await shoal(d, 'service', 'ps', '--format', 'json', 'huge');
        assert.equal(ps.code, 0, `${d.name}: ${ps.stderr}`);
        const tasks = JSON.parse(ps.stdout) as PsRow[];
        // Every task the manager has for the service (as the API lists them), each once.
        const listed = (await allTasks(d)).filter((t) => t.task.serviceName === 'huge').length;
        assert.equal(tasks.length, listed, d.name);
        assert.equal(new Set(tasks.map((t) => t.id)).size, tasks.length, `${d.name}: no task listed twice`);
        const current = tasks.filter((t) => t.desiredState === 'running');
        assert.equal(current.length, REPLICAS, d.name);
        assert.equal(new Set(current.map((t) => t.slot)).size, REPLICAS, `${d.name}: one task per slot`);
        assert.ok(current.every((t) => t.currentState === 'pending' && /node\.hostname==nowhere/.test(t.error)), d.name);
      }
      // The table form too (what a user types), through a follower.
      const table = await shoal(m3, 'service', 'ps', '--filter', 'desired-state=running', 'huge');
      assert.equal(table.code, 0, table.stderr);
      assert.equal(table.stdout.trim().split('\n').length, REPLICAS + 1);

      const rm = await shoal(m2, 'service', 'rm', 'huge');
      assert.equal(rm.code, 0, rm.stderr);
      await eventually(
        'every task of huge removed',
        async () => {
          await new Promise((r) => setTimeout(r, 1_000));
          return (await allTasks(m3)).every((t) => t.task.serviceName !== 'huge');
        },
        180_000,
      );
    } finally {
      const s = await w.stop();
      // Robust on a slow, shared machine (a busy one may even change leaders, a few seconds
      // without commits): the bound is generous. Without the size bound the writes stop for good
      // (and the tasks never appear).
      if (process.env.DEBUG_WRITER) console.error('writer', JSON.stringify(s));
      assert.ok(s.committed > 0 && s.longestGapMs < 10_000, `writes stalled: ${JSON.stringify(s)}`);
    }
  });

  test('a 5 MB env is refused with one clear line; nothing is stored', async () => {
    const [m1, m2] = managers as [Daemon, Daemon];
    const before = await serviceNames(m1);
    // Through the control API (a command line cannot carry 5 MB).
    await assert.rejects(
      m2.call('CreateService', { spec: { name: 'bigenv', image: 'shoal/busybox:latest', replicas: 1, env: [`X=${'x'.repeat(5_000_000)}`] } }, 30_000),
      (err: { code?: string; message?: string }) => {
        assert.equal(err.code, 'RESOURCE_EXHAUSTED', err.message);
        assert.match(err.message!, /service "bigenv" is too large: its spec is 4\.8 MiB encoded, over the 256\.0 KiB a service spec may take/);
        return true;
      },
    );
    // Through the CLI: as much env as a command line holds, still over a spec's bound.
    const env = [0, 1, 2].flatMap((i) => ['--env', `X${i}=${'y'.repeat(100_000)}`]);
    const r = await shoal(m1, 'service', 'create', '-d', '--name', 'bigenv', ...env, 'shoal/busybox:latest');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: service "bigenv" is too large: its spec is 29\d\.\d KiB encoded, over the 256\.0 KiB a service spec may take \(env, labels, args\.\.\.\)\n$/);
    for (const d of managers) assert.deepEqual(await serviceNames(d), before, d.name);
  });
});
