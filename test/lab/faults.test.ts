// Faults of real hosts, on a lab of three managers and two workers (test/helpers/lab.ts), through
// the CLI from the host: the leader's host powered off (the service stays whole, the CLI keeps
// working through the other managers) and a host cut from the lab network, then healed (its tasks
// are replaced elsewhere; once it is back, the duplicates it kept running are stopped: Swarm's
// orphaned tasks), and the lab's registry down while a service scales (the tasks that need the
// image say why, and the service converges once the registry is back). Needs root and a Docker engine; without them the suite fails, it does not skip.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { eventually } from '../helpers/shoald.js';
import { TestLab, ok } from '../helpers/lab.js';

const NODES = ['manager1', 'manager2', 'manager3', 'worker1', 'worker2'];

interface NodeEntry { hostname: string; status: string; leader: boolean; role: string }

describe('faults of real hosts', { timeout: 1_200_000 }, () => {
  const lab = new TestLab('faults');
  let image = '';

  const nodes = (): NodeEntry[] | undefined => {
    const r = lab.shoal('node', 'ls', '--format', 'json');
    return r.code === 0 ? (JSON.parse(r.stdout) as NodeEntry[]) : undefined;
  };
  const running = (service: string) => (lab.ps(service) ?? []).filter((t) => t.desiredState === 'running' && t.currentState === 'running');
  /** Running containers of `service` on each running host, as the hosts' own engines list them. */
  const onHosts = (service: string, hosts = NODES) => Object.fromEntries(hosts.map((n) => [n, lab.containers(n, service)]));
  const total = (m: Record<string, string[]>) => Object.values(m).reduce((n, ids) => n + ids.length, 0);

  before(() => {
    lab.up(3, 2);
    image = lab.loadImage('shoal/busybox:latest');
  });
  after(() => lab.down());

  test('the leader\'s host powered off: a new leader, the service whole on the others, the CLI answering throughout', async () => {
    ok(lab.shoal('service', 'create', '-d', '--name', 'steady', '--replicas', '6', '--stop-grace-period', '1s', image, 'sleep', '3600'));
    await eventually('6 running', async () => (running('steady').length === 6 ? true : undefined), 120_000);
    const leader = nodes()?.find((n) => n.leader)?.hostname;
    assert.ok(leader, 'a leader');

    assert.equal(ok(lab.lab('stop', leader)).trim(), leader);
    // SHOAL_HOST names every manager: the CLI gives up on the silent one and asks the next.
    await eventually('another leader, the old one down', async () => {
      const ns = nodes();
      const now = ns?.find((n) => n.leader)?.hostname;
      return now && now !== leader && ns?.find((n) => n.hostname === leader)?.status === 'down' ? true : undefined;
    }, 120_000);
    await eventually('6 running, none on the dead host', async () => {
      const rt = running('steady');
      const alive = NODES.filter((n) => n !== leader);
      return rt.length === 6 && rt.every((t) => t.node !== leader) && total(onHosts('steady', alive)) === 6 ? true : undefined;
    }, 120_000);
    // Writes go through the new leader too.
    ok(lab.shoal('service', 'scale', '-d', 'steady=7'));
    await eventually('7 running', async () => (running('steady').length === 7 ? true : undefined), 120_000);

    ok(lab.lab('start', leader));
    await eventually(`${leader} back: Ready and a reachable manager again`, async () => {
      const r = lab.shoal('node', 'ls');
      return r.code === 0 && new RegExp(`${leader}\\s+Ready\\s+Active\\s+(Reachable|Leader)`).test(r.stdout) ? true : undefined;
    }, 120_000);
    ok(lab.shoal('service', 'rm', 'steady'));
  });

  test('a host cut from the network: its tasks replaced elsewhere; healed, its duplicates are stopped', async () => {
    ok(lab.shoal('service', 'create', '-d', '--name', 'split', '--replicas', '5', '--constraint', 'node.role==worker', '--stop-grace-period', '1s',
      image, 'sleep', '3600'));
    await eventually('5 running on the workers', async () => {
      const rt = running('split');
      return rt.length === 5 && new Set(rt.map((t) => t.node)).size === 2 ? true : undefined;
    }, 120_000);
    const cut = 'worker2';
    const kept = lab.containers(cut, 'split');
    assert.ok(kept.length > 0, `${cut} runs replicas`);
    const addr = lab.addr(cut);
    const network = `shoal-${lab.name}`;

    lab.docker('network', 'disconnect', '-f', network, lab.container(cut));
    await eventually(`${cut} down, 5 running on worker1`, async () => {
      const rt = running('split');
      return nodes()?.find((n) => n.hostname === cut)?.status === 'down' && rt.length === 5 && rt.every((t) => t.node === 'worker1') ? true : undefined;
    }, 120_000);
    // Cut off, the host knows nothing of that: its containers run on (a partition is no power cut).
    assert.deepEqual(lab.containers(cut, 'split').sort(), [...kept].sort());

    lab.docker('network', 'connect', '--ip', addr, network, lab.container(cut));
    await eventually(`${cut} Ready again`, async () => (nodes()?.find((n) => n.hostname === cut)?.status === 'ready' ? true : undefined), 180_000);
    await eventually(`${cut}'s duplicates stopped: one container per slot on the hosts`, async () => {
      const m = onHosts('split', ['worker1', 'worker2']);
      return m[cut].length === 0 && m['worker1'].length === 5 ? true : undefined;
    }, 60_000);
    const slots = lab.exec('worker1', 'docker', 'ps', '--filter', 'label=shoal.service.name=split', '--format', '{{.Names}}')
      .split('\n').filter(Boolean).map((n) => n.split('.')[1]);
    assert.equal(new Set(slots).size, 5, `one container per slot: ${slots.join(' ')}`);
    assert.equal(running('split').length, 5);
    ok(lab.shoal('service', 'rm', 'split'));
  });

  test('the registry down while a service scales: the tasks that need the image say why; back, the service converges', async () => {
    // An image no node has yet: a name of its own, pushed, its host tag gone again.
    const fresh = `shoal/fresh-${randomBytes(3).toString('hex')}:1`;
    lab.docker('tag', 'shoal/busybox:latest', fresh);
    const ref = lab.loadImage(fresh);
    lab.docker('rmi', fresh);
    ok(lab.shoal('service', 'create', '-d', '--name', 'grow', '--replicas', '1', '--stop-grace-period', '1s', ref, 'sleep', '3600'));
    await eventually('1 running', async () => (running('grow').length === 1 ? true : undefined), 120_000);

    ok(lab.lab('stop', 'registry'));
    ok(lab.shoal('service', 'scale', '-d', 'grow=5'));
    const registry = ref.split('/')[0]!;
    const why = await eventually('a task that says its image cannot be pulled from the registry', async () =>
      (lab.ps('grow') ?? []).find((t) => t.error.includes(registry))?.error, 180_000);
    assert.match(why, /registry unreachable/);
    assert.ok(running('grow').length < 5, 'the scale-up needs the registry');

    ok(lab.lab('start', 'registry'));
    await eventually('5 running once the registry is back', async () => (running('grow').length === 5 ? true : undefined), 180_000);
    ok(lab.shoal('service', 'rm', 'grow'));
  });
});
