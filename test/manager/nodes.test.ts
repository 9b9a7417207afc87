// Node liveness through the dispatcher: agents heartbeat the leader; a silent node goes down
// and comes back ready; an election marks no healthy node down.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';

interface NodeView {
  node: { id: string; description: { hostname: string }; status: { state: string; message: string }; spec: { role: string } };
  leader: boolean;
}

async function states(d: Daemon): Promise<Record<string, string>> {
  const r = await d.call<{ nodes: NodeView[] }>('ListNodes');
  return Object.fromEntries(r.nodes.map((n) => [n.node.description.hostname, n.node.status.state]));
}

describe('node liveness', () => {
  const c = new TestCluster();
  after(() => c.stop());

  test('workers become ready; a killed worker goes down, then ready again after shoald run', async () => {
    const [m1] = await c.managers(1);
    const w1 = await c.join('w1', m1, 'worker');
    const w2 = await c.join('w2', m1, 'worker');
    await eventually('both workers ready', async () => {
      const s = await states(m1);
      return s.w1 === 'ready' && s.w2 === 'ready' && s.m1 === 'ready' ? true : undefined;
    });
    await w1.kill();
    await eventually('w1 down', async () => ((await states(m1)).w1 === 'down' ? true : undefined), 15_000);
    const r = await m1.call<{ nodes: NodeView[] }>('ListNodes');
    assert.match(r.nodes.find((n) => n.node.description.hostname === 'w1')!.node.status.message, /heartbeat/);
    assert.equal((await states(m1)).w2, 'ready');
    w1.start(['run', '--data-dir', w1.dataDir]);
    await eventually('w1 ready again', async () => ((await states(m1)).w1 === 'ready' ? true : undefined), 15_000);
    await w2.kill();
  });
});

describe('an unusable Docker engine', () => {
  const c = new TestCluster();
  after(() => c.stop());

  test('the node says why it is not ready, keeps running, and runs nothing', async () => {
    const [m1] = await c.managers(1);
    const { token } = await m1.call<{ token: string }>('GetJoinToken', { role: 'worker' });
    const w = await c.newDaemon('nodocker', '127.0.0.4');
    w.start(['join', '--data-dir', w.dataDir, '--listen-addr', w.addr, '--join-addr', m1.addr, '--token', token,
      '--hostname', 'nodocker', '--docker-host', 'unix:///nonexistent/docker.sock']);
    const view = await eventually('the node down with the reason', async () => {
      const r = await m1.call<{ nodes: NodeView[] }>('ListNodes');
      const n = r.nodes.find((x) => x.node.description.hostname === 'nodocker');
      return n && n.node.status.state === 'down' && /docker is unreachable/.test(n.node.status.message) ? n : undefined;
      // (an engine failing every ping for 10 s: shorter trouble leaves the node ready)
    }, 40_000);
    assert.match(view.node.status.message, /docker is unreachable/);
    await new Promise((r) => setTimeout(r, 1_500));
    assert.ok(w.running, 'the daemon keeps running and retrying');
  });
});

describe('leader change', () => {
  const c = new TestCluster();
  after(() => c.stop());

  test('killing the leader marks no healthy node down', async () => {
    const [m1, m2, m3] = await c.managers(3);
    const w1 = await c.join('w1', m1, 'worker');
    await eventually('all ready', async () => {
      const s = await states(m1);
      return Object.keys(s).length === 4 && Object.values(s).every((x) => x === 'ready') ? true : undefined;
    });
    const st = await m1.call<{ leader: string }>('ClusterStatus');
    const nodes = await m1.call<{ nodes: NodeView[] }>('ListNodes');
    const leaderHost = nodes.nodes.find((n) => n.node.id === st.leader)!.node.description.hostname;
    const leader = [m1, m2, m3].find((d) => d.name === leaderHost)!;
    const survivor = [m1, m2, m3].find((d) => d !== leader)!;
    await leader.kill();
    // Watch for 6 s (several heartbeat periods beyond the election): w1 and the surviving
    // managers must stay ready the whole time.
    const deadline = Date.now() + 6_000;
    while (Date.now() < deadline) {
      const s = await states(survivor).catch(() => undefined);
      if (s) {
        assert.equal(s.w1, 'ready', 'the worker was marked down during the election');
        for (const d of [m1, m2, m3]) if (d !== leader) assert.equal(s[d.name], 'ready', `${d.name} was marked down`);
      }
      await new Promise((r) => setTimeout(r, 200));
    }
    // The dead leader itself is judged like any other node.
    await eventually('the dead leader down', async () => ((await states(survivor))[leader.name] === 'down' ? true : undefined), 15_000);
    void w1;
  });
});
