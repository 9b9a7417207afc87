// Overlay networks under faults (issue 16's last test items), on a lab of one manager and two
// workers (test/helpers/lab.ts), through the CLI from the host: bad input refused in one line with
// the store unchanged; a network's addresses exhausted (the tasks that get none wait, saying so,
// and run once addresses are freed); a host powered off while a client calls a service on it (no
// request fails once its death is known; back, its data plane works); a node's daemon restarted
// alone (its tasks keep their endpoints, no request fails meanwhile, and what the previous run
// made for a task gone while it was down does not stay behind), as after the power cycle.
// Needs root and a Docker engine; without them the suite fails, it does not skip.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually } from '../helpers/shoald.js';
import { TestLab, lines, ok } from '../helpers/lab.js';

const NODES = ['manager1', 'worker1', 'worker2'];
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

describe('overlay networks under faults on a lab of real hosts', { timeout: 2_400_000 }, () => {
  const lab = new TestLab('netf');
  let image = '';

  const running = (service: string) => (lab.ps(service) ?? []).filter((t) => t.desiredState === 'running' && t.currentState === 'running');
  const nodeStatus = (node: string) => lab.nodeStatus()?.[node];
  /** A running container of `service` on `node` (the first found), or undefined. */
  const containerOn = (node: string, service: string): string | undefined => lab.containers(node, service)[0];
  /** The hostnames (short container ids) of a service's running containers on `nodes`. */
  const hostnames = (service: string, nodes = NODES) => nodes.flatMap((n) => lab.containers(n, service)).map((id) => id.slice(0, 12)).sort();

  /** A command in a container on a node: its output, or undefined when it failed. */
  function inContainer(node: string, id: string, ...cmd: string[]): string | undefined {
    const r = lab.lab('exec', node, '--', 'docker', 'exec', id, ...cmd);
    return r.code === 0 ? r.stdout : undefined;
  }

  /** `count` HTTP requests from a container to `url`: the answers (hostnames), failures as ''. */
  function requests(node: string, id: string, url: string, count: number): string[] {
    // (busybox's `wget -T` crashes in this image: `timeout` bounds each request)
    const out = inContainer(node, id, 'sh', '-c', `for i in $(seq ${count}); do timeout 3 wget -q -O - ${url} 2>/dev/null || echo FAILED; done`);
    assert.ok(out !== undefined, 'the requests ran');
    return lines(out).map((l) => l.trim()).map((l) => (l === 'FAILED' ? '' : l));
  }

  /** The A records of a name as a container's resolver gives them, sorted. */
  function resolve(node: string, id: string, name: string): string[] {
    const out = inContainer(node, id, 'nslookup', name);
    if (out === undefined) return [];
    return [...out.slice(out.indexOf('Name:')).matchAll(/Address(?: \d+)?:\s+(\d+\.\d+\.\d+\.\d+)/g)].map((m) => m[1]!).sort();
  }

  /**
   * Requests to `url` from a container in a loop, in the background, until stopped: each line
   * "SECOND ANSWER" (SECOND: when the request began, in the hosts' shared clock; ANSWER: the
   * replica's hostname or FAILED).
   */
  function startCalls(node: string, id: string, url: string, file: string): { read: () => { at: number; answer: string }[]; stop: () => void } {
    const loop = `rm -f ${file}.stop; while [ ! -e ${file}.stop ]; do s=$(date +%s); a=$(timeout 3 wget -q -O - ${url} 2>/dev/null || echo FAILED); echo "$s $a" >>${file}; sleep 0.2; done`;
    ok(lab.lab('exec', node, '--', 'docker', 'exec', '-d', id, 'sh', '-c', loop));
    return {
      read: () =>
        lines(inContainer(node, id, 'cat', file) ?? '').map((l) => {
          const [at, answer] = l.trim().split(/\s+/);
          return { at: Number(at) * 1000, answer: answer ?? 'FAILED' };
        }),
      stop: () => void inContainer(node, id, 'touch', `${file}.stop`),
    };
  }

  /**
   * What a host holds for its overlays matches its running tasks exactly: one namespace name per
   * task (shoal-TASK), one host-side veth per task (every task here is on one network), the
   * bridge and VXLAN device of exactly the networks of its tasks and of the ingress network (every
   * host's mesh is in kernel mode, on the ingress overlay), the isolation table once.
   */
  function hostState(node: string): { netns: string[]; veths: number; bridges: string[]; vxlans: string[]; tables: string[] } {
    return {
      netns: lines(lab.exec(node, 'ip', 'netns', 'list')).map((l) => l.split(' ')[0]!).filter((n) => n.startsWith('shoal-')).sort(),
      veths: lines(lab.exec(node, 'ip', '-o', 'link', 'show')).filter((l) => /^\d+: shve[0-9a-f]{10}@/.test(l)).length,
      bridges: lines(lab.exec(node, 'ip', '-o', 'link', 'show', 'type', 'bridge')).map((l) => l.split(':')[1]!.trim().split('@')[0]!).filter((n) => n.startsWith('shbr')).sort(),
      vxlans: lines(lab.exec(node, 'ip', '-o', 'link', 'show', 'type', 'vxlan')).map((l) => l.split(':')[1]!.trim().split('@')[0]!).filter((n) => n.startsWith('shvx')).sort(),
      tables: lines(lab.exec(node, 'nft', 'list', 'tables')).filter((l) => l.includes('shoal')).sort(),
    };
  }

  /** What `hostState` should read on a node: from its engine's running task containers and the networks' VNIs. */
  function expectedHostState(node: string, networkOf: Record<string, string>): ReturnType<typeof hostState> {
    const rows = lines(lab.exec(node, 'docker', 'ps', '--filter', 'label=shoal.task.id', '--format', '{{.Label "shoal.task.id"}} {{.Label "shoal.service.name"}}'));
    const vnis = new Set(rows.map((r) => {
      const net = networkOf[r.split(' ')[1]!];
      assert.ok(net, `the test knows the network of ${r}`);
      return (JSON.parse(ok(lab.shoal('network', 'inspect', '--format', 'json', net))) as { vni: number }).vni;
    }));
    vnis.add((JSON.parse(ok(lab.shoal('network', 'inspect', '--format', 'json', 'ingress'))) as { vni: number }).vni);
    return {
      netns: rows.map((r) => `shoal-${r.split(' ')[0]}`).sort(),
      veths: rows.length,
      bridges: [...vnis].map((v) => `shbr${v}`).sort(),
      vxlans: [...vnis].map((v) => `shvx${v}`).sort(),
      tables: ['table inet shoal_overlay'],
    };
  }

  /** Each service of the suite → its network (for the hosts' expected state). */
  const networkOf: Record<string, string> = {};

  before(() => {
    lab.up(1, 2);
    image = lab.loadImage('shoal/busybox:latest');
  });
  after(() => lab.down());

  test('bad input: refused in one line each, the store unchanged', async () => {
    ok(lab.shoal('network', 'create', '--subnet', '10.30.0.0/24', 'neta'));
    ok(lab.shoal('service', 'create', '-d', '--name', 'user', '--replicas', '1', '--network', 'neta', '--stop-grace-period', '1s', image, 'sleep', '3600'));
    await eventually('user running', async () => (running('user').length === 1 ? true : undefined), 120_000);
    const store = () => [ok(lab.shoal('network', 'ls', '--format', 'json')), ok(lab.shoal('service', 'ls', '--format', 'json'))];
    const before = store();
    const refused = (why: RegExp, ...args: string[]) => {
      const r = lab.shoal(...args);
      assert.notEqual(r.code, 0, `${args.join(' ')} succeeded`);
      assert.equal(lines(r.stderr).length, 1, `one line: ${r.stderr}`);
      assert.match(r.stderr, why);
      assert.deepEqual(store(), before, `${args.join(' ')} changed the store`);
    };
    refused(/subnet 10\.30\.0\.0\/25 overlaps subnet 10\.30\.0\.0\/24 of network "neta"/, 'network', 'create', '--subnet', '10.30.0.0/25', 'netb');
    refused(/invalid subnet "10\.1\.2\.3\/33"/, 'network', 'create', '--subnet', '10.1.2.3/33', 'netb');
    refused(/invalid subnet "nonsense"/, 'network', 'create', '--subnet', 'nonsense', 'netb');
    // As Docker: an address with host bits set names no network (the CLI says which one was meant).
    refused(/invalid subnet "10\.30\.1\.1\/24": host bits are set \(did you mean 10\.30\.1\.0\/24\?\)/, 'network', 'create', '--subnet', '10.30.1.1/24', 'netb');
    refused(/network name "neta" is already taken/, 'network', 'create', 'neta');
    refused(/unknown network "nosuch"/, 'service', 'create', '-d', '--name', 'other', '--network', 'nosuch', image, 'sleep', '1');
    refused(/unknown network "nosuch"/, 'service', 'update', '-d', '--network-add', 'nosuch', 'user');
    refused(/network "neta" is in use by service user\b/, 'network', 'rm', 'neta');
    refused(/endpoint-mode.*"bogus".*"vip", "dnsrr"/, 'service', 'create', '-d', '--name', 'other', '--network', 'neta', '--endpoint-mode', 'bogus', image, 'sleep', '1');
    ok(lab.shoal('service', 'rm', 'user'));
    ok(lab.shoal('network', 'rm', 'neta'));
  });

  test('a network out of addresses: the tasks without one wait, saying so; scaled down, every task runs', async () => {
    // A /29: 8 addresses, less the network's, the broadcast's and the gateway's: 5, one of them the VIP.
    ok(lab.shoal('network', 'create', '--subnet', '10.31.0.0/29', 'tiny'));
    ok(lab.shoal('service', 'create', '-d', '--name', 'crowd', '--replicas', '6', '--network', 'tiny', '--stop-grace-period', '1s', image, 'sleep', '3600'));
    const vip = (JSON.parse(ok(lab.shoal('service', 'inspect', '--format', 'json', 'crowd'))) as { endpoint: { virtualIps: { addr: string }[] } }).endpoint.virtualIps[0]?.addr;
    assert.match(vip ?? '', /^10\.31\.0\.\d+\/29$/);
    const waiting = await eventually('4 running, 2 waiting for an address', async () => {
      const all = (lab.ps('crowd') ?? []).filter((t) => t.desiredState === 'running');
      const wait = all.filter((t) => t.currentState !== 'running');
      return running('crowd').length === 4 && wait.length === 2 && wait.every((t) => t.error !== '') ? wait : undefined;
    }, 120_000);
    for (const t of waiting) {
      assert.match(t.error, /no free address left in network "tiny" \(10\.31\.0\.0\/29\)/);
      assert.equal(t.node, '', `${t.name} is placed nowhere`);
    }
    // The hosts run 4 containers of it, no more.
    assert.equal(NODES.flatMap((n) => lab.containers(n, 'crowd')).length, 4);

    ok(lab.shoal('service', 'scale', '-d', 'crowd=4'));
    await eventually('4 running, none waiting', async () => {
      const all = (lab.ps('crowd') ?? []).filter((t) => t.desiredState === 'running');
      return all.length === 4 && running('crowd').length === 4 ? true : undefined;
    }, 120_000);
    ok(lab.shoal('service', 'rm', 'crowd'));
    await eventually('crowd gone from the hosts', async () => (NODES.every((n) => lab.containers(n, 'crowd').length === 0) ? true : undefined), 60_000);
    ok(lab.shoal('network', 'rm', 'tiny'));
  });

  test('a host powered off while a client calls api: no request fails once its death is known; back, its data plane works', async () => {
    ok(lab.shoal('network', 'create', 'web'));
    networkOf['api'] = networkOf['client'] = networkOf['probe'] = 'web';
    const httpd = [image, 'httpd', '-f', '-p', '80', '-h', '/www'];
    ok(lab.shoal('service', 'create', '-d', '--name', 'api', '--replicas', '3', '--network', 'web', '--stop-grace-period', '1s', ...httpd));
    ok(lab.shoal('service', 'create', '-d', '--name', 'client', '--replicas', '1', '--network', 'web', '--constraint', 'node.hostname==worker1', '--stop-grace-period', '1s', image, 'sleep', '3600'));
    await eventually('api on every host, the client on worker1', async () => {
      const rt = running('api');
      return rt.length === 3 && new Set(rt.map((t) => t.node)).size === 3 && running('client').length === 1 ? true : undefined;
    }, 180_000);
    const client = containerOn('worker1', 'client')!;
    assert.ok(client);
    await eventually('the client reaches every replica through api', async () => {
      const answers = requests('worker1', client, 'http://api/cgi-bin/hostname', 12);
      return answers.every((a) => a !== '') && new Set(answers).size === 3 ? true : undefined;
    }, 60_000);

    const calls = startCalls('worker1', client, 'http://api/cgi-bin/hostname', '/tmp/calls');
    await eventually('the client calling', async () => (calls.read().length >= 3 ? true : undefined), 30_000);
    assert.equal(ok(lab.lab('stop', 'worker2')).trim(), 'worker2');
    await eventually('worker2 down and its api task known dead', async () =>
      nodeStatus('worker2') === 'down' && running('api').every((t) => t.node !== 'worker2') ? true : undefined, 180_000);
    const known = Date.now();
    await eventually('3 replicas again, on the hosts left', async () => (running('api').length === 3 ? true : undefined), 120_000);
    await sleep(5_000);
    calls.stop();
    const log = calls.read();
    // Requests begun a second after the death was known (a request's second is rounded down).
    const afterKnown = log.filter((c) => c.at >= known + 2_000);
    assert.ok(afterKnown.length >= 5, `requests made after the death was known: ${afterKnown.length}`);
    assert.deepEqual(afterKnown.filter((c) => c.answer === 'FAILED'), [], 'no request failed once the death was known');

    ok(lab.lab('start', 'worker2'));
    await eventually('worker2 ready again', async () => (nodeStatus('worker2') === 'ready' ? true : undefined), 180_000);
    // Back, it runs new tasks on its networks: a replica of api (the emptiest host gets it) and a probe.
    ok(lab.shoal('service', 'scale', '-d', 'api=4'));
    ok(lab.shoal('service', 'create', '-d', '--name', 'probe', '--replicas', '1', '--network', 'web', '--constraint', 'node.hostname==worker2', '--stop-grace-period', '1s', image, 'sleep', '3600'));
    await eventually('4 api replicas, one on worker2; the probe running', async () =>
      running('api').length === 4 && running('api').some((t) => t.node === 'worker2') && running('probe').length === 1 ? true : undefined, 180_000);
    const everyReplica = hostnames('api');
    assert.equal(everyReplica.length, 4);
    await eventually('from worker1, every replica answers, worker2\'s too', async () => {
      const answers = requests('worker1', client, 'http://api/cgi-bin/hostname', 24);
      return answers.every((a) => a !== '') && [...new Set(answers)].sort().join() === everyReplica.join() ? true : undefined;
    }, 60_000);
    const probe = containerOn('worker2', 'probe')!;
    await eventually('from worker2, every replica answers', async () => {
      const answers = requests('worker2', probe, 'http://api/cgi-bin/hostname', 24);
      return answers.every((a) => a !== '') && [...new Set(answers)].sort().join() === everyReplica.join() ? true : undefined;
    }, 60_000);
    // The power cut's leftovers (names of the dead tasks' namespaces) are gone.
    await eventually('worker2 holds what its running tasks need, no more', async () => {
      const [have, want] = [hostState('worker2'), expectedHostState('worker2', networkOf)];
      return JSON.stringify(have) === JSON.stringify(want) ? true : undefined;
    }, 60_000).catch(() => assert.deepEqual(hostState('worker2'), expectedHostState('worker2', networkOf)));
  });

  test('a node\'s daemon restarted alone: its tasks keep working throughout; what it made for a task gone meanwhile goes', async () => {
    // A node is down after 3 missed heartbeats (its tasks orphaned, replaced elsewhere): beats of
    // 10 s give the restart (a daemon's boot on a busy machine takes seconds) 30 s.
    ok(lab.shoal('swarm', 'update', '--dispatcher-heartbeat', '10s'));
    // A task on worker1 alone on its network: removed while worker1's daemon is down.
    ok(lab.shoal('network', 'create', 'solo'));
    networkOf['lone'] = 'solo';
    ok(lab.shoal('service', 'create', '-d', '--name', 'lone', '--replicas', '1', '--network', 'solo', '--constraint', 'node.hostname==worker1', '--stop-grace-period', '1s', image, 'sleep', '3600'));
    await eventually('lone running', async () => (running('lone').length === 1 ? true : undefined), 120_000);
    const soloVni = (JSON.parse(ok(lab.shoal('network', 'inspect', '--format', 'json', 'solo'))) as { vni: number }).vni;
    assert.ok(lab.exec('worker1', 'ip', '-o', 'link', 'show').includes(`shbr${soloVni}`), 'worker1 has solo\'s bridge');
    assert.ok(running('api').some((t) => t.node === 'worker1'), 'worker1 runs a replica of api');
    const client = containerOn('worker1', 'client')!;
    const probe = containerOn('worker2', 'probe')!;
    const everyReplica = hostnames('api');

    // Calls across the restart from another host (the restarted node's own clients lose its DNS
    // while it is down, as Docker's embedded DNS goes with dockerd).
    const fromProbe = startCalls('worker2', probe, 'http://api/cgi-bin/hostname', '/tmp/restart');
    await eventually('calling', async () => (fromProbe.read().length >= 3 ? true : undefined), 30_000);
    const pid = lab.exec('worker1', 'cat', '/run/shoald.pid').trim();
    // Held down (docker/lab-node-entrypoint.sh) while lone is removed, then let go.
    lab.exec('worker1', 'sh', '-c', `touch /run/shoald.hold && kill ${pid}`);
    await eventually('worker1\'s daemon stopped', async () => (lab.lab('exec', 'worker1', '--', 'test', '-e', '/run/shoald.pid').code !== 0 ? true : undefined), 60_000);
    ok(lab.shoal('service', 'rm', 'lone'));
    lab.exec('worker1', 'rm', '/run/shoald.hold');
    await eventually('worker1\'s daemon running again', async () => {
      const r = lab.lab('exec', 'worker1', '--', 'cat', '/run/shoald.pid');
      return r.code === 0 && r.stdout.trim() !== pid ? true : undefined;
    }, 60_000);
    await eventually('lone\'s container removed', async () => (lab.containers('worker1', 'lone', true).length === 0 ? true : undefined), 120_000);
    await eventually('worker1 ready', async () => (nodeStatus('worker1') === 'ready' ? true : undefined), 120_000);
    // The same tasks run on (a restart is no power cut: nothing was orphaned or replaced).
    assert.equal(containerOn('worker1', 'client'), client);
    assert.deepEqual(hostnames('api'), everyReplica);
    // The restarted node answers names again (its DNS) and converges with the others.
    await eventually('worker1\'s client reaches every replica again', async () => {
      const answers = requests('worker1', client, 'http://api/cgi-bin/hostname', 24);
      return answers.every((a) => a !== '') && [...new Set(answers)].sort().join() === everyReplica.join() ? true : undefined;
    }, 60_000);
    await sleep(3_000);
    fromProbe.stop();
    // Nothing the running tasks use was taken away meanwhile: no request failed from worker2.
    const probeLog = fromProbe.read();
    assert.deepEqual(probeLog.filter((c) => c.answer === 'FAILED'), [], `from worker2, through the restart: ${probeLog.length} requests`);
    assert.deepEqual(new Set(probeLog.map((c) => c.answer)), new Set(everyReplica), 'every replica answered worker2 throughout');

    // Every replica reachable by its own address from worker2 (tasks.api), worker1's too.
    const addrs = resolve('worker2', probe, 'tasks.api');
    assert.equal(addrs.length, 4);
    for (const ip of addrs) assert.notEqual(requests('worker2', probe, `http://${ip}/cgi-bin/hostname`, 1)[0], '', `task ${ip} answers`);
    // What the previous run made for lone is gone: its namespace's name, its network's devices.
    await eventually('worker1 holds what its running tasks need, no more', async () => {
      const [have, want] = [hostState('worker1'), expectedHostState('worker1', networkOf)];
      return JSON.stringify(have) === JSON.stringify(want) ? true : undefined;
    }, 60_000).catch(() => assert.deepEqual(hostState('worker1'), expectedHostState('worker1', networkOf)));
    assert.ok(!lab.exec('worker1', 'ip', '-o', 'link', 'show').includes(`shbr${soloVni}`), 'solo\'s bridge is gone');
    ok(lab.shoal('network', 'rm', 'solo'));
  });
});
