// Services find each other on lab hosts (issue 16, section 3): overlay networks across real hosts
// (each a container with its own engine), the per-node DNS and the VIPs balanced in the kernel,
// driven through the CLI from the host. A client task reaches `api` by name over VXLAN wherever its
// replicas run; names and addresses of networks it is not on stay out of its reach.
// Needs root and a Docker engine; without them the suite fails, it does not skip.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../helpers/shoald.js';
import { TestLab, lines, ok } from '../helpers/lab.js';

const NODES = ['manager1', 'worker1', 'worker2'];

describe('overlay networks, DNS and VIPs on a lab of real hosts', { timeout: 1_500_000 }, () => {
  const lab = new TestLab('net');
  let image = '';

  /** The node and container id of a service's running task (the first found). */
  function taskContainer(service: string): { node: string; id: string } {
    for (const node of NODES) {
      const [id] = lab.containers(node, service);
      if (id) return { node, id };
    }
    throw new Error(`no running container of ${service}`);
  }

  /** A command in the client's container; its output, or undefined when it failed. */
  function inClient(...cmd: string[]): string | undefined {
    const c = taskContainer('client');
    const r = lab.lab('exec', c.node, '--', 'docker', 'exec', c.id, ...cmd);
    return r.code === 0 ? r.stdout : undefined;
  }

  /** The A records of a name as the client's resolver gives them (busybox nslookup), sorted. */
  function resolve(name: string): string[] {
    const out = inClient('nslookup', name);
    if (out === undefined) return [];
    // After the "Name:" line, each "Address: IP" (the server's own address comes before it).
    const answer = out.slice(out.indexOf('Name:'));
    return [...answer.matchAll(/Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).sort();
  }

  /** `count` HTTP requests from the client to `url`: the answers (the replicas' hostnames), failures as ''. */
  function requests(url: string, count: number): string[] {
    // busybox's own `wget -T` crashes in this image (SIGSEGV): `timeout` bounds each request instead.
    const script = `for i in $(seq ${count}); do timeout 3 wget -q -O - ${url} 2>/dev/null || echo FAILED; done`;
    const out = inClient('sh', '-c', script);
    assert.ok(out !== undefined, 'the client ran its requests');
    return lines(out).map((l) => l.trim()).map((l) => (l === 'FAILED' ? '' : l));
  }

  const running = (service: string) => (lab.ps(service) ?? []).filter((t) => t.desiredState === 'running' && t.currentState === 'running');
  /** The hostnames (short container ids) of a service's running containers, on every node. */
  const hostnames = (service: string) => NODES.flatMap((n) => lab.containers(n, service)).map((id) => id.slice(0, 12)).sort();

  before(async () => {
    lab.up(1, 2);
    image = lab.loadImage('shoal/busybox:latest');
    ok(lab.shoal('network', 'create', 'front'));
    ok(lab.shoal('network', 'create', '--subnet', '10.20.0.0/24', 'back'));
    ok(lab.shoal('network', 'create', 'iso'));
    const httpd = [image, 'httpd', '-f', '-p', '80', '-h', '/www'];
    ok(lab.shoal('service', 'create', '-d', '--name', 'api', '--replicas', '3', '--network', 'name=front,alias=backend', '--stop-grace-period', '1s', ...httpd));
    ok(lab.shoal('service', 'create', '-d', '--name', 'db', '--replicas', '2', '--network', 'back', '--endpoint-mode', 'dnsrr', '--stop-grace-period', '1s', ...httpd));
    ok(lab.shoal('service', 'create', '-d', '--name', 'hidden', '--replicas', '1', '--network', 'iso', '--stop-grace-period', '1s', ...httpd));
    ok(lab.shoal('service', 'create', '-d', '--name', 'client', '--replicas', '1', '--network', 'front', '--network', 'back', '--stop-grace-period', '1s', image, 'sleep', '3600'));
    await eventually('every task running', async () =>
      running('api').length === 3 && running('db').length === 2 && running('hidden').length === 1 && running('client').length === 1 ? true : undefined, 180_000);
  });
  after(() => lab.down());

  test('the replicas are spread over the hosts; the service holds a VIP, its tasks distinct addresses', () => {
    const where = new Set(running('api').map((t) => t.node));
    assert.ok(where.size >= 2, `api's replicas on ${[...where].join(', ')}: the test needs more than one host`);
    const api = JSON.parse(ok(lab.shoal('service', 'inspect', '--format', 'json', 'api'))) as { endpoint: { mode: string; virtualIps: { network: string; addr: string }[] } };
    assert.equal(api.endpoint.mode, 'vip');
    assert.equal(api.endpoint.virtualIps.length, 1);
    assert.match(api.endpoint.virtualIps[0]!.addr, /^10\.\d+\.\d+\.\d+\/24$/);
  });

  test('a client finds api by name: the VIP, requests spread over every replica on every host', async () => {
    const api = JSON.parse(ok(lab.shoal('service', 'inspect', '--format', 'json', 'api'))) as { endpoint: { virtualIps: { addr: string }[] } };
    const vip = api.endpoint.virtualIps[0]!.addr.split('/')[0]!;
    assert.deepEqual(await eventually('api resolves to its VIP', async () => (resolve('api').join() === vip ? resolve('api') : undefined), 60_000), [vip]);
    const answers = requests('http://api/cgi-bin/hostname', 30);
    assert.equal(answers.filter((a) => a === '').length, 0, `failed requests: ${answers.join(',')}`);
    assert.deepEqual([...new Set(answers)].sort(), hostnames('api'), 'every replica answered');
  });

  test('tasks.api lists every replica; the alias resolves; dnsrr answers the tasks', () => {
    assert.equal(resolve('tasks.api').length, 3);
    assert.deepEqual(resolve('backend'), resolve('api'));
    const db = resolve('db');
    assert.equal(db.length, 2);
    assert.ok(db.every((ip) => ip.startsWith('10.20.0.')), db.join());
    assert.deepEqual(db, resolve('tasks.db'));
  });

  test('a service on a network the client is not on is neither resolvable nor reachable', () => {
    assert.deepEqual(resolve('hidden'), []);
    const h = taskContainer('hidden');
    const ip = /inet (10\.\d+\.\d+\.\d+)\//.exec(lab.exec(h.node, 'docker', 'exec', h.id, 'ip', 'addr', 'show'))?.[1];
    assert.ok(ip, 'the hidden task has an overlay address');
    assert.deepEqual(requests(`http://${ip}/cgi-bin/hostname`, 1), ['']);
  });

  test('names outside the cluster still resolve (through the node\'s own resolver)', () => {
    // The lab network's names come from Docker's resolver on each host.
    assert.equal(resolve(lab.container('manager1')).length, 1);
  });

  test('a replica killed: once its death is known no request fails; a new replica gets traffic at once', async () => {
    const victim = taskContainer('api');
    lab.exec(victim.node, 'docker', 'kill', victim.id);
    await eventually('the dead replica out of tasks.api', async () => (resolve('tasks.api').length === 2 ? true : undefined), 30_000);
    const during = requests('http://api/cgi-bin/hostname', 20);
    assert.equal(during.filter((a) => a === '').length, 0, `failed requests: ${during.join(',')}`);
    await eventually('3 replicas again', async () => (running('api').length === 3 && resolve('tasks.api').length === 3 ? true : undefined), 120_000);
    ok(lab.shoal('service', 'scale', '-d', 'api=4'));
    await eventually('4 replicas', async () => (running('api').length === 4 && resolve('tasks.api').length === 4 ? true : undefined), 120_000);
    const after4 = requests('http://api/cgi-bin/hostname', 40);
    assert.equal(after4.filter((a) => a === '').length, 0);
    assert.deepEqual([...new Set(after4)].sort(), hostnames('api'), 'the new replica answers too');
  });

  test('the routing mesh over the ingress overlay: a published port on a host without a replica answers through the kernel', async () => {
    ok(lab.shoal('service', 'create', '-d', '--name', 'web', '--publish', 'published=8090,target=80', '--constraint', 'node.hostname==worker2', '--stop-grace-period', '1s', image, 'httpd', '-f', '-p', '80', '-h', '/www'));
    await eventually('web running', async () => (running('web').length === 1 ? true : undefined), 120_000);
    // Every host serves its ingress address in the kernel (the default where shoald is root).
    const mode = (n: string) => (JSON.parse(ok(lab.shoal('node', 'inspect', '--format', 'json', n))) as { status: { meshMode: string } }).status.meshMode;
    await eventually('kernel+ingress on every host', async () => (NODES.every((n) => mode(n) === 'kernel+ingress') ? true : undefined), 60_000);
    const [id] = lab.containers('worker2', 'web');
    for (const n of NODES) {
      const body = await eventually(`an answer on ${n}`, async () => {
        const res = await fetch(`http://${lab.addr(n)}:8090/cgi-bin/hostname`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
        return res?.ok ? (await res.text()).trim() : undefined;
      }, 30_000);
      assert.equal(body, id!.slice(0, 12), `${n} reached the replica on worker2`);
    }
    // worker1 has no replica: its connections went to worker2's ingress address by a DNAT rule
    // (counted by the kernel), and arrived there from worker1's ingress address.
    const before = dnatPackets('worker1');
    for (let i = 0; i < 5; i++) assert.ok((await fetch(`http://${lab.addr('worker1')}:8090/`, { signal: AbortSignal.timeout(3_000) })).ok);
    assert.ok(dnatPackets('worker1') >= before + 5, 'the kernel forwarded them');
    const w1 = (JSON.parse(ok(lab.shoal('node', 'inspect', '--format', 'json', 'worker1'))) as { attachments: { addr: string }[] }).attachments[0]!.addr.split('/')[0]!;
    const seen = lab.exec('worker2', 'conntrack', '-L', '-p', 'tcp', '--orig-src', w1, '--orig-port-dst', '8090');
    assert.match(seen, new RegExp(`src=${w1.replace(/\./g, '\\.')} `), 'worker2 saw worker1\'s ingress address');
  });

  /** Packets of worker's DNAT rules toward another node's ingress address (10.255.0.0/16). */
  function dnatPackets(node: string): number {
    const out = lab.exec(node, 'iptables', '-t', 'nat', '-L', '-n', '-v', '-x');
    return lines(out).filter((l) => /DNAT.*to:10\.255\./.test(l)).reduce((sum, l) => sum + Number(l.trim().split(/\s+/)[0]), 0);
  }

  test('rm of a network in use is refused, naming its users; unknown networks refused', () => {
    const r = lab.shoal('network', 'rm', 'front');
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /in use by services api, client/);
    const u = lab.shoal('service', 'create', '-d', '--name', 'x', '--network', 'nosuch', image, 'sleep', '1');
    assert.notEqual(u.code, 0);
    assert.match(u.stderr, /nosuch/);
  });
});
