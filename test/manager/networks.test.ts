// `shoal network create|ls|inspect|rm` through the real CLI on three manager processes: the
// networks' shapes (INTERFACE.md), every bad input refused in one line with the store unchanged,
// concurrent creates on every manager getting distinct subnets and VNIs, services joining
// networks (`--network`, `--network-add/-rm`, `--endpoint-mode`), and the networks and
// their allocations surviving the leader's death (a later create reuses no subnet).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, type Daemon, eventually, leaderOf } from '../helpers/shoald.js';
import { type CliResult, shoalCli } from '../helpers/cli.js';

interface LsRow {
  id: string;
  name: string;
  driver: string;
  scope: string;
  subnet: string;
}

interface NetworkJson {
  id: string;
  spec: { name: string; driver: string; labels: Record<string, string>; internal: boolean; attachable: boolean; ipam: { subnet: string; gateway: string } };
  subnet: string;
  gateway: string;
  vni: number;
}

function ok(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  return r.stdout;
}

async function ls(d: Daemon): Promise<LsRow[]> {
  return JSON.parse(ok(await shoalCli(d, ['network', 'ls', '--format', 'json']), 'network ls')) as LsRow[];
}

async function inspect(d: Daemon, ref: string): Promise<NetworkJson> {
  return JSON.parse(ok(await shoalCli(d, ['network', 'inspect', '--format', 'json', ref]), `network inspect ${ref}`)) as NetworkJson;
}

describe('networks through the CLI', () => {
  const c = new TestCluster();
  let managers: Daemon[] = [];

  before(async () => {
    managers = await c.managers(3);
    // The leader makes the routing mesh's network on its own, once.
    await eventually('the ingress network', async () => ((await ls(managers[0]!)).some((r) => r.name === 'ingress') ? true : undefined));
  });
  after(async () => {
    await c.stop();
  });

  test('create, ls, inspect: an allocated /24 of 10.0.0.0/8 or the given subnet, a gateway, a VNI; docker\'s table', async () => {
    const [m1, m2] = managers as [Daemon, Daemon];
    const frontId = ok(await shoalCli(m1, ['network', 'create', 'front']), 'create front').trim();
    const backId = ok(
      await shoalCli(m2, ['network', 'create', '--driver', 'overlay', '--subnet', '10.20.0.0/16', '--gateway', '10.20.0.254', '--attachable', '--internal', '--label', 'tier=db', 'back']),
      'create back',
    ).trim();
    const rows = await ls(m2);
    const ingressId = rows.find((r) => r.name === 'ingress')?.id ?? '';
    assert.deepEqual(rows, [
      { id: backId, name: 'back', driver: 'overlay', scope: 'swarm', subnet: '10.20.0.0/16' },
      { id: frontId, name: 'front', driver: 'overlay', scope: 'swarm', subnet: '10.0.0.0/24' },
      { id: ingressId, name: 'ingress', driver: 'overlay', scope: 'swarm', subnet: '10.255.0.0/16' },
    ]);
    const back = await inspect(m1, 'back');
    assert.deepEqual(back.spec, { name: 'back', driver: 'overlay', labels: { tier: 'db' }, internal: true, attachable: true, ipam: { subnet: '10.20.0.0/16', gateway: '10.20.0.254' }, ingress: false });
    assert.equal(back.gateway, '10.20.0.254');
    const front = await inspect(m1, frontId.slice(0, 8));
    assert.equal(front.gateway, '10.0.0.1');
    assert.ok(front.vni >= 4096 && back.vni >= 4096 && front.vni !== back.vni, `VNIs ${front.vni}, ${back.vni}`);

    const table = ok(await shoalCli(m1, ['network', 'ls']), 'network ls').split('\n');
    assert.match(table[0]!, /^NETWORK ID\s+NAME\s+DRIVER\s+SCOPE$/);
    assert.match(table[1]!, new RegExp(`^${backId.slice(0, 12)}\\s+back\\s+overlay\\s+swarm$`));
    const text = ok(await shoalCli(m1, ['network', 'inspect', 'back']), 'inspect back');
    assert.match(text, /^Subnet:\s+10\.20\.0\.0\/16$/m);
    assert.match(text, /^Internal:\s+true$/m);
  });

  test('bad input: one line saying why, and no network changed', async () => {
    const m3 = managers[2]!;
    const before = await ls(m3);
    const cases: [string[], RegExp][] = [
      [['front'], /network name "front" is already taken/],
      [['--subnet', '10.1.0.0/33', 'n1'], /invalid subnet "10\.1\.0\.0\/33"/],
      [['--subnet', 'nonsense', 'n1'], /invalid subnet "nonsense"/],
      [['--subnet', '10.1.2.3/24', 'n1'], /host bits are set \(did you mean 10\.1\.2\.0\/24\?\)/],
      [['--subnet', '10.1.2.0/30', 'n1'], /too small/],
      [['--subnet', '10.20.5.0/24', 'n1'], /subnet 10\.20\.5\.0\/24 overlaps subnet 10\.20\.0\.0\/16 of network "back"/],
      [['--subnet', '10.0.0.0/8', 'n1'], /overlaps subnet/],
      [['--subnet', '10.30.0.0/24', '--gateway', '10.31.0.1', 'n1'], /gateway 10\.31\.0\.1 is not a host address of subnet 10\.30\.0\.0\/24/],
      [['--driver', 'bridge', 'n1'], /driver must be overlay, not bridge/],
      [['web.1'], /invalid network name "web\.1"/],
    ];
    for (const [args, re] of cases) {
      const r = await shoalCli(m3, ['network', 'create', ...args]);
      assert.notEqual(r.code, 0, `create ${args.join(' ')} succeeded`);
      const lines = r.stderr.split('\n').filter((l) => l !== '');
      assert.equal(lines.length, 1, `one line on stderr: ${r.stderr}`);
      assert.match(r.stderr, re);
    }
    const ingress = await shoalCli(m3, ['network', 'rm', 'ingress']);
    assert.equal(ingress.code, 1);
    assert.match(ingress.stderr, /network "ingress" is the routing mesh's ingress network: it cannot be removed/);
    const rm = await shoalCli(m3, ['network', 'rm', 'nope']);
    assert.equal(rm.code, 1);
    assert.match(rm.stderr, /no such network: nope/);
    const insp = await shoalCli(m3, ['network', 'inspect', 'nope']);
    assert.match(insp.stderr, /no such network: nope/);
    assert.deepEqual(await ls(m3), before);
  });

  test('concurrent creates on every manager: each gets its own subnet and VNI', async () => {
    const names = Array.from({ length: 9 }, (_, i) => `par${i}`);
    const results = await Promise.all(names.map((n, i) => shoalCli(managers[i % 3]!, ['network', 'create', n])));
    results.forEach((r, i) => ok(r, `create ${names[i]}`));
    const all = await Promise.all((await ls(managers[0]!)).map((r) => inspect(managers[0]!, r.id)));
    assert.equal(all.length, 3 + names.length, 'front, back, ingress and the new ones');
    assert.equal(new Set(all.map((n) => n.subnet)).size, all.length, `subnets: ${all.map((n) => n.subnet).join(' ')}`);
    assert.equal(new Set(all.map((n) => n.vni)).size, all.length, `VNIs: ${all.map((n) => n.vni).join(' ')}`);
  });

  test('services join networks by name (stored by id, with aliases); an unknown network is refused; rm is refused while a service uses the network', async () => {
    const [m1, m2] = managers as [Daemon, Daemon];
    const front = await inspect(m1, 'front');
    const back = await inspect(m1, 'back');
    const svc = ['-d', '--no-resolve-image', '--replicas', '0'];
    ok(await shoalCli(m1, ['service', 'create', ...svc, '--name', 'web', '--network', 'front', '--network', 'name=back,alias=db,alias=store', 'shoal/busybox:latest']), 'create web');
    const spec = async (name: string) => (JSON.parse(ok(await shoalCli(m2, ['service', 'inspect', '--format', 'json', name]), `inspect ${name}`)) as { spec: { networks: unknown; endpointMode: string } }).spec;
    assert.deepEqual((await spec('web')).networks, [{ target: front.id, aliases: [] }, { target: back.id, aliases: ['db', 'store'] }]);
    assert.equal((await spec('web')).endpointMode, 'vip');

    const services = async () => ok(await shoalCli(m2, ['service', 'ls', '--format', 'json']), 'service ls');
    const before = await services();
    const unknown = await shoalCli(m2, ['service', 'create', ...svc, '--name', 'api', '--network', 'nope', 'shoal/busybox:latest']);
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr.trim().split('\n').length, 1, unknown.stderr);
    assert.match(unknown.stderr, /unknown network "nope"/);
    const onIngress = await shoalCli(m2, ['service', 'create', ...svc, '--name', 'api', '--network', 'ingress', 'shoal/busybox:latest']);
    assert.equal(onIngress.code, 1);
    assert.match(onIngress.stderr, /cannot be attached to the ingress network "ingress"/);
    assert.equal(await services(), before);

    ok(await shoalCli(m1, ['service', 'create', ...svc, '--name', 'api', '--network', 'front', 'shoal/busybox:latest']), 'create api');
    const nets = await ls(m1);
    const inUse = await shoalCli(m1, ['network', 'rm', 'front']);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /network "front" is in use by services api, web/);
    assert.deepEqual(await ls(m1), nets);

    const badAdd = await shoalCli(m1, ['service', 'update', '-d', '--network-add', 'nope', 'web']);
    assert.match(badAdd.stderr, /unknown network "nope"/);
    ok(await shoalCli(m1, ['service', 'update', '-d', '--network-rm', 'front', '--network-add', 'name=par2,alias=x', '--endpoint-mode', 'dnsrr', 'web']), 'update web');
    const par2 = await inspect(m1, 'par2');
    assert.deepEqual((await spec('web')).networks, [{ target: back.id, aliases: ['db', 'store'] }, { target: par2.id, aliases: ['x'] }]);
    assert.equal((await spec('web')).endpointMode, 'dnsrr');
    ok(await shoalCli(m1, ['service', 'rm', 'api']), 'rm api');
    ok(await shoalCli(m1, ['network', 'rm', 'front']), 'rm front once unused');
  });

  test('rm removes; the networks and their allocations survive the leader\'s death; a new create reuses no subnet', async () => {
    ok(await shoalCli(managers[0]!, ['network', 'rm', 'par0', 'par1']), 'rm par0 par1');
    const kept = await Promise.all((await ls(managers[1]!)).map((r) => inspect(managers[1]!, r.id)));
    assert.ok(!kept.some((n) => n.spec.name === 'par0' || n.spec.name === 'par1'));
    const leader = await leaderOf(c);
    await leader.kill();
    const next = await leaderOf(c);
    const survivor = managers.find((d) => d !== leader)!;
    const after_ = await eventually('the networks from a survivor', async () => Promise.all((await ls(survivor)).map((r) => inspect(survivor, r.id))));
    assert.deepEqual(after_, kept);
    const id = ok(await shoalCli(next, ['network', 'create', 'after-failover']), 'create after failover').trim();
    const fresh = await inspect(survivor, id);
    assert.ok(!kept.some((n) => n.subnet === fresh.subnet), `${fresh.subnet} reused`);
    assert.ok(!kept.some((n) => n.vni === fresh.vni), `VNI ${fresh.vni} reused`);
  });
});
