// A manager demoted while it was down hears of no removal (Raft's other members no longer talk to
// it): restarted with `shoald run`, it must still end as the store says, a worker that runs tasks,
// with a worker certificate and its old Raft state put aside, and Raft keeps the two voters.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { identityOfPem } from '@shoal/pki';
import { ROOT, TestCluster, type Daemon, eventually } from '../helpers/shoald.js';

const IMAGE = 'shoal/busybox:latest';

interface Status {
  leader: string;
  members: { nodeId: string; raftRole: string }[];
}
interface NodeView {
  node: { id: string; description: { hostname: string }; spec: { role: string }; status: { state: string } };
}
interface TaskView {
  task: { nodeId: string; status: { state: string } };
}

describe('a manager demoted while it was down', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let m2: Daemon;
  let m3: Daemon;
  let m3Id = '';

  before(async () => {
    [m1, m2, m3] = await c.managers(3);
    const { nodes } = await m1.call<{ nodes: NodeView[] }>('ListNodes');
    m3Id = nodes.find((n) => n.node.description.hostname === 'm3')!.node.id;
  });
  after(() => c.stop());

  test('comes back from `shoald run` as the worker the store says it is', async () => {
    await m3.kill();
    // m3 may have led: the two left elect a leader, then demote it (two of three: still a quorum).
    await eventually('m3 demoted', () => m1.call('DemoteNode', { node: 'm3' }, 10_000).then(() => true), 60_000);
    await eventually('raft without m3', async () => {
      const st = await m1.call<Status>('ClusterStatus');
      return st.members.length === 2 && !st.members.some((m) => m.nodeId === m3Id) ? true : undefined;
    }, 30_000);

    m3.start(['run', '--data-dir', m3.dataDir]);
    await eventually('m3 holds a worker certificate', async () => {
      const pem = readFileSync(join(m3.dataDir, 'certificates', 'node.crt'), 'utf8');
      return identityOfPem(pem)?.role === 'worker' ? true : undefined;
    }, 60_000);
    await eventually('m3 refuses management commands (a worker)', async () => {
      try {
        await m3.call('ListNodes', {}, 2_000);
        return undefined;
      } catch (err) {
        return /not a manager/.test((err as Error).message) ? true : undefined;
      }
    }, 30_000);
    assert.ok(!existsSync(join(m3.dataDir, 'raft')), 'its raft state is no longer in use');
    assert.ok(existsSync(join(m3.dataDir, 'raft.demoted')), 'its raft state is put aside');
    assert.ok(!existsSync(join(m3.dataDir, 'certificates', 'kek.json')), 'a worker keeps no key-encryption key');

    // It runs tasks as a worker: its agent found the leader.
    await m1.call('CreateService', {
      spec: { name: 'on-m3', image: IMAGE, args: ['sleep', '3600'], stopGracePeriodMs: 1_000, replicas: 1, constraints: ['node.hostname==m3'] },
    });
    await eventually('a task running on m3', async () => {
      const { tasks } = await m1.call<{ tasks: TaskView[] }>('ListTasks', { service: 'on-m3' });
      return tasks.some((t) => t.task.nodeId === m3Id && t.task.status.state === 'running') ? true : undefined;
    }, 60_000);

    const { nodes } = await m2.call<{ nodes: NodeView[] }>('ListNodes');
    const n3 = nodes.find((n) => n.node.id === m3Id)!;
    assert.equal(n3.node.spec.role, 'worker');
    assert.equal(n3.node.status.state, 'ready');
    const st = await m2.call<Status>('ClusterStatus');
    assert.equal(st.members.filter((m) => m.raftRole === 'leader' || m.raftRole === 'follower').length, 2, JSON.stringify(st.members));
    assert.ok(!st.members.some((m) => m.nodeId === m3Id), 'm3 is no Raft member');
    // `shoal cluster status --format json`: INTERFACE.md's shape; every store manager listed, the
    // demoted node not (not even as pending).
    const cli = spawnSync(process.execPath, [join(ROOT, 'packages/cli/dist/src/bin.js'), '--host', `unix://${m1.socket}`, 'cluster', 'status', '--format', 'json'], { encoding: 'utf8' });
    assert.equal(cli.status, 0, cli.stderr);
    const json = JSON.parse(cli.stdout) as { clusterId: string; leader: string; term: number; members: Record<string, unknown>[] };
    assert.deepEqual(Object.keys(json).sort(), ['clusterId', 'leader', 'members', 'term']);
    for (const m of json.members) assert.deepEqual(Object.keys(m).sort(), ['addr', 'appliedIndex', 'commitIndex', 'nodeId', 'raftRole', 'reachable']);
    const managers = nodes.filter((n) => n.node.spec.role === 'manager').map((n) => n.node.id).sort();
    assert.deepEqual(json.members.map((m) => m.nodeId).sort(), managers);
    assert.ok(json.members.every((m) => m.raftRole === 'leader' || m.raftRole === 'follower'), cli.stdout);
    await m1.call('RemoveService', { service: 'on-m3' });
  });
});
