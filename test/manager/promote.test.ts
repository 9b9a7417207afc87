// `shoal node promote`: a worker becomes a manager for real (a Raft voter serving the control
// API), so that promoting two workers of a one-manager cluster makes it survive that manager.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';

interface Status {
  leader: string;
  members: { nodeId: string; raftRole: string; appliedIndex: number }[];
}

describe('node promote', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let w1: Daemon;
  let w2: Daemon;
  const ids: Record<string, string> = {};

  before(async () => {
    [m1] = await c.managers(1);
    w1 = await c.join('w1', m1, 'worker');
    w2 = await c.join('w2', m1, 'worker');
    await eventually('three ready nodes', async () => {
      const r = await m1.call<{ nodes: { node: { id: string; description: { hostname: string }; status: { state: string } } }[] }>('ListNodes');
      for (const n of r.nodes) ids[n.node.description.hostname] = n.node.id;
      return r.nodes.length === 3 && r.nodes.every((n) => n.node.status.state === 'ready') ? true : undefined;
    });
  });
  after(() => c.stop());

  test('a promoted worker becomes a Raft voter and serves the control API', async () => {
    await m1.call('PromoteNode', { node: 'w1' });
    const st = await eventually('w1 a voter', async () => {
      const s = await m1.call<Status>('ClusterStatus');
      const me = s.members.find((m) => m.nodeId === ids.w1);
      return me && me.raftRole === 'follower' ? s : undefined;
    }, 60_000);
    assert.equal(st.members.length, 2);
    // Its own control socket now answers (a worker's says "not a manager").
    const nodes = await eventually('w1 answers as a manager', async () =>
      w1.call<{ nodes: { node: { id: string; spec: { role: string } } }[] }>('ListNodes').catch(() => undefined), 30_000);
    assert.equal(nodes.nodes.find((n) => n.node.id === ids.w1)?.node.spec.role, 'manager');
  });

  test('promoting a manager again is refused with a clear error', async () => {
    await assert.rejects(m1.call('PromoteNode', { node: 'w1' }), /already a manager/);
  });

  test('with w2 promoted too, the cluster survives the loss of its first manager', async () => {
    await m1.call('PromoteNode', { node: 'w2' });
    await eventually('three voters', async () => {
      const s = await m1.call<Status>('ClusterStatus');
      return s.members.length === 3 && s.members.every((m) => m.raftRole === 'leader' || m.raftRole === 'follower') ? true : undefined;
    }, 60_000);
    await m1.kill();
    await eventually('a new leader among w1 and w2, and writes go through', async () => {
      try {
        await w1.call('CreateService', { spec: { name: `after-${Date.now()}`, image: 'shoal/busybox:latest', replicas: 0 } }, 3_000);
        return true;
      } catch {
        return undefined;
      }
    }, 30_000);
    const s = await w2.call<Status>('ClusterStatus');
    assert.ok([ids.w1, ids.w2].includes(s.leader), 'the leader is one of the promoted nodes');
  });

  test('a promoted node restarts as a manager with shoald run', async () => {
    await w2.kill('SIGTERM');
    w2.start(['run', '--data-dir', w2.dataDir]);
    await eventually('w2 back as a manager', async () => {
      const s = await w2.call<Status>('ClusterStatus').catch(() => undefined);
      return s && s.members.some((m) => m.nodeId === ids.w2) ? true : undefined;
    }, 30_000);
  });
});
