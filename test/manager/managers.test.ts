// Three `shoald` managers as processes on loopback: the replicated store survives leader kills,
// restarts and full-cluster restarts; without quorum, writes fail fast and clearly.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, type Daemon, eventually, leaderOf } from '../helpers/shoald.js';

const spec = (name: string) => ({ name, image: 'busybox:latest', replicas: 0, mode: 'replicated' });

interface ServiceView {
  service: { id: string; spec: { name: string; replicas: number } };
}

async function serviceNames(d: Daemon): Promise<string[]> {
  const r = await d.call<{ services: ServiceView[] }>('ListServices');
  return r.services.map((s) => s.service.spec.name);
}

describe('three managers', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let m2: Daemon;
  let m3: Daemon;

  before(async () => {
    [m1, m2, m3] = await c.managers(3);
  });
  after(() => c.stop());

  test('cluster status and node list show three managers and one leader', async () => {
    const st = await m2.call<{ clusterId: string; leader: string; term: number; members: { reachable: boolean }[] }>('ClusterStatus');
    assert.ok(st.clusterId);
    assert.ok(st.leader);
    assert.equal(st.members.length, 3);
    assert.ok(st.members.every((m) => m.reachable));
    const nodes = await m3.call<{ nodes: { node: { spec: { role: string } }; leader: boolean }[] }>('ListNodes');
    assert.equal(nodes.nodes.length, 3);
    assert.ok(nodes.nodes.every((n) => n.node.spec.role === 'manager'));
    assert.equal(nodes.nodes.filter((n) => n.leader).length, 1);
    // Every manager answers with the leader's view of who is reachable, followers included.
    for (const d of [m1, m2, m3]) {
      await eventually(`${d.name} to list three reachable managers`, async () => {
        const r = await d.call<{ nodes: { reachability: string }[] }>('ListNodes');
        return r.nodes.every((n) => n.reachability === 'reachable') ? true : undefined;
      });
    }
  });

  test('writes through any manager are seen by every manager', async () => {
    await m1.call('CreateService', { spec: spec('via-m1') });
    await m2.call('CreateService', { spec: spec('via-m2') });
    await m3.call('CreateService', { spec: spec('via-m3') });
    for (const d of [m1, m2, m3]) {
      const names = await serviceNames(d);
      for (const n of ['via-m1', 'via-m2', 'via-m3']) assert.ok(names.includes(n), `${d.name} lacks ${n}`);
    }
    await assert.rejects(m2.call('CreateService', { spec: spec('via-m1') }), (err: { code?: string }) => err.code === 'ALREADY_EXISTS');
  });

  test('kill -9 of the leader while clients write, three times: nothing acknowledged is lost, nothing applied twice', async () => {
    const acked: string[] = [];
    // Each attempt creates a new name, so ALREADY_EXISTS could only answer a write applied twice
    // (its retry after a failover applied again, and refused by the first application).
    const twice: string[] = [];
    for (let round = 0; round < 3; round++) {
      const leader = await leaderOf(c);
      const others = [m1, m2, m3].filter((d) => d !== leader);
      let stop = false;
      const writers = others.map(async (d, w) => {
        let i = 0;
        while (!stop) {
          const name = `r${round}-w${w}-${i++}`;
          try {
            await d.call('CreateService', { spec: spec(name) }, 8_000);
            acked.push(name);
          } catch (err) {
            // Unknown outcome during the failover: the name may or may not exist; it is retried as a new name.
            if ((err as { code?: string }).code === 'ALREADY_EXISTS') twice.push(name);
          }
        }
      });
      // The kill lands among writes in flight, and writes go on until the survivors' new leader
      // has acknowledged some.
      const before = acked.length;
      await eventually('writes under the first leader', async () => acked.length >= before + 3);
      await leader.kill();
      const atKill = acked.length;
      await eventually('writes acknowledged after the failover', async () => acked.length >= atKill + 5);
      stop = true;
      await Promise.all(writers);
      leader.start(['run', '--data-dir', leader.dataDir]);
      await leader.ready();
    }
    assert.deepEqual(twice, [], 'writes answered ALREADY_EXISTS: applied twice');
    for (const d of [m1, m2, m3]) {
      await eventually(`${d.name} to catch up`, async () => {
        const n = await serviceNames(d);
        return acked.every((a) => n.includes(a)) ? n : undefined;
      });
    }
  });

  test('a full restart of all three keeps everything', async () => {
    const before = (await serviceNames(m1)).sort();
    await Promise.all([m1, m2, m3].map((d) => d.kill()));
    for (const d of [m1, m2, m3]) d.start(['run', '--data-dir', d.dataDir]);
    await Promise.all([m1, m2, m3].map((d) => d.ready()));
    assert.deepEqual((await serviceNames(m2)).sort(), before);
  });

  test('without quorum, writes fail with a clear error within seconds; one manager back restores them', async () => {
    const leader = await leaderOf(c);
    const [a, b] = [m1, m2, m3].filter((d) => d !== leader);
    await a.kill();
    await b.kill();
    const t0 = Date.now();
    await assert.rejects(leader.call('CreateService', { spec: spec('no-quorum') }, 20_000), /quorum/);
    assert.ok(Date.now() - t0 < 12_000, 'the error came within a bounded time');
    a.start(['run', '--data-dir', a.dataDir]);
    await a.ready();
    await eventually('writes to work again', async () => {
      await leader.call('CreateService', { spec: spec('quorum-back') }, 5_000);
      return true;
    });
    b.start(['run', '--data-dir', b.dataDir]);
    await b.ready();
  });
});

describe('joining', () => {
  const c = new TestCluster();
  let m1: Daemon;
  before(async () => {
    m1 = await c.init('m1');
  });
  after(() => c.stop());

  test('a wrong token: clear error, non-zero exit, nothing added', async () => {
    const { token } = await m1.call<{ token: string }>('GetJoinToken', { role: 'worker' });
    const forged = token.slice(0, -5) + 'zzzzz';
    const d = await c.newDaemon('bad');
    d.start(['join', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--join-addr', m1.addr, '--token', forged, '--hostname', 'bad']);
    assert.notEqual(await d.exited(), 0);
    assert.match(d.stderr, /invalid join token/);
    const nodes = await m1.call<{ nodes: unknown[] }>('ListNodes');
    assert.equal(nodes.nodes.length, 1);
  });

  test('--token-file: unreadable, empty, or given with --token: one-line error, nothing added', async () => {
    const d = await c.newDaemon('tf');
    const empty = d.dataDir + '.empty';
    writeFileSync(empty, '\n');
    for (const [args, why] of [
      [['--token-file', d.dataDir + '.missing'], /cannot read --token-file .*ENOENT/],
      [['--token-file', empty], /--token-file .* is empty/],
      [['--token-file', empty, '--token', 'x'], /give --token or --token-file, not both/],
      [[], /missing --token/],
    ] as const) {
      d.start(['join', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--join-addr', m1.addr, '--hostname', 'tf', ...args]);
      assert.notEqual(await d.exited(), 0);
      assert.match(d.stderr, why);
    }
    const nodes = await m1.call<{ nodes: unknown[] }>('ListNodes');
    assert.equal(nodes.nodes.length, 1);
  });

  test('a rotated token no longer works; the new one does', async () => {
    const { token: old } = await m1.call<{ token: string }>('GetJoinToken', { role: 'worker' });
    const { token: fresh } = await m1.call<{ token: string }>('GetJoinToken', { role: 'worker', rotate: true });
    assert.notEqual(old, fresh);
    const d = await c.newDaemon('w-old');
    d.start(['join', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--join-addr', m1.addr, '--token', old, '--hostname', 'w-old']);
    assert.notEqual(await d.exited(), 0);
    const w = await c.newDaemon('w1');
    // --token-file: the token stays out of the process list.
    const tokenFile = join(w.dataDir + '.token');
    writeFileSync(tokenFile, `${fresh}\n`, { mode: 0o600 });
    w.start(['join', '--data-dir', w.dataDir, '--listen-addr', w.addr, '--join-addr', m1.addr, '--token-file', tokenFile, '--hostname', 'w1']);
    await eventually('the worker to be listed', async () => {
      const nodes = await m1.call<{ nodes: { node: { description: { hostname: string }; spec: { role: string } } }[] }>('ListNodes');
      return nodes.nodes.some((n) => n.node.description.hostname === 'w1' && n.node.spec.role === 'worker') ? true : undefined;
    });
    // A worker refuses management commands.
    await eventually('the worker socket', async () => {
      await w.call('ListNodes').catch((err: Error) => {
        if (/not a manager/.test(err.message)) return;
        throw err;
      });
      return true;
    });
  });

  test('bad flags and an unusable data dir: one-line error, non-zero exit', async () => {
    const d = await c.newDaemon('flags');
    d.start(['init', '--data-dir', d.dataDir, '--listen-addr', 'nonsense']);
    assert.notEqual(await d.exited(), 0);
    assert.match(d.stderr.trim(), /^shoald: --listen-addr must be HOST:PORT/);
    // A Docker address the node could never use: refused before anything is written.
    d.start(['init', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--docker-host', 'ftp://docker.example']);
    assert.notEqual(await d.exited(), 0);
    assert.equal(d.stderr.trim(), 'shoald: --docker-host (or DOCKER_HOST): unsupported docker host "ftp://docker.example": use unix:///path/to/docker.sock, tcp://host:port or ssh://user@host');
    assert.ok(!existsSync(join(d.dataDir, 'node.json')), 'no node was made');
    d.start(['run', '--data-dir', '/proc/nonexistent-shoal']);
    assert.notEqual(await d.exited(), 0);
    assert.equal(d.stderr.trim().split('\n').length, 1);
  });
});

describe('disaster recovery', () => {
  const c = new TestCluster();
  after(() => c.stop());

  test('--force-new-cluster: a survivor restarts alone with all state, and a new manager can join', async () => {
    const [m1, m2, m3] = await c.managers(3);
    await m1.call('CreateService', { spec: spec('survives') });
    const { token: workerToken } = await m1.call<{ token: string }>('GetJoinToken', { role: 'worker' });
    await Promise.all([m1.kill(), m2.kill(), m3.kill()]);
    // m2 and m3 are lost for good; m1 comes back alone.
    m1.start(['run', '--data-dir', m1.dataDir, '--force-new-cluster']);
    await m1.ready();
    assert.deepEqual(await serviceNames(m1), ['survives']);
    const st = await m1.call<{ members: unknown[] }>('ClusterStatus');
    assert.equal(st.members.length, 1);
    const { token: again } = await m1.call<{ token: string }>('GetJoinToken', { role: 'worker' });
    assert.equal(again, workerToken, 'tokens survive');
    await m1.call('CreateService', { spec: spec('after-recovery') });
    const m4 = await c.join('m4', m1, 'manager');
    await m4.ready();
    assert.ok((await serviceNames(m4)).includes('survives'));
  });
});

describe('demotion and graceful stop', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let m2: Daemon;
  let m3: Daemon;
  before(async () => {
    [m1, m2, m3] = await c.managers(3);
  });
  after(() => c.stop());

  test('SIGTERM on the leader hands leadership over; it comes back with shoald run', async () => {
    const leader = await leaderOf(c);
    await leader.kill('SIGTERM');
    assert.equal(leader.exitCode, 0);
    const next = await leaderOf(c);
    assert.notEqual(next, leader);
    await next.call('CreateService', { spec: spec('after-handover') });
    leader.start(['run', '--data-dir', leader.dataDir]);
    await leader.ready();
    assert.ok((await serviceNames(leader)).includes('after-handover'));
  });

  test('demoting a manager that would leave no reachable quorum is refused', async () => {
    const leader = await leaderOf(c);
    const [down, other] = [m1, m2, m3].filter((d) => d !== leader);
    await down.kill();
    // The leader must notice the dead member first (CheckQuorum activity window).
    await eventually(`the leader to see ${down.name} unreachable`, async () => {
      const r = await leader.call<{ nodes: { node: { description: { hostname: string } }; reachability: string }[] }>('ListNodes');
      return r.nodes.find((n) => n.node.description.hostname === down.name)?.reachability === 'unreachable';
    });
    // A follower says so too (it asks the leader): not "unknown".
    const seen = await other.call<{ nodes: { node: { description: { hostname: string } }; reachability: string }[] }>('ListNodes');
    assert.deepEqual(seen.nodes.map((n) => n.reachability).sort(), ['reachable', 'reachable', 'unreachable']);
    await assert.rejects(leader.call('DemoteNode', { node: other.name }), /quorum/);
    const st = await leader.call<{ members: unknown[] }>('ClusterStatus');
    assert.equal(st.members.length, 3, 'nothing changed');
    down.start(['run', '--data-dir', down.dataDir]);
    await down.ready();
  });

  test('demote: the manager leaves Raft and carries on as a worker', async () => {
    const leader = await leaderOf(c);
    const target = [m1, m2, m3].find((d) => d !== leader)!;
    await leader.call('DemoteNode', { node: target.name });
    const st = await leader.call<{ members: { nodeId: string }[] }>('ClusterStatus');
    assert.equal(st.members.length, 2);
    const nodes = await leader.call<{ nodes: { node: { description: { hostname: string }; spec: { role: string } } }[] }>('ListNodes');
    assert.equal(nodes.nodes.find((n) => n.node.description.hostname === target.name)?.node.spec.role, 'worker');
    await eventually('the demoted node to refuse management commands', async () => {
      try {
        await target.call('ListNodes', {}, 2_000);
        return undefined;
      } catch (err) {
        return /not a manager/.test((err as Error).message) ? true : undefined;
      }
    });
  });
});
