// Kernel mode: the iptables rules KernelRoutes generates (an injected runner records them, no
// root needed), its failure handling, the Mesh's side of it (localInKernel), and, when this
// process is root and iptables is there, the rules on the real kernel (loopback only, no Docker).

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import {
  KernelRoutes,
  execRunner,
  findRemoval,
  kernelChains,
  kernelRulesText,
  kernelSetupText,
  planKernelRoutes,
  removalText,
  splitRule,
  inSubnet,
  type CommandRunner,
  type MeshTable,
} from '../src/index.js';
import { BACKEND_HOST, BACKEND_HOST2, HOST_A, HOST_B, deadAddr, freePort, get, httpBackend, makeCluster, quietLogger, serialGet, waitFor } from './helpers.js';

const NODE = 'abcdefghij0123456789klmno';
const CH = kernelChains(NODE);

function table(...ports: MeshTable['ports']): MeshTable {
  return { ports };
}

const local = (taskId: string, addr: string) => ({ taskId, nodeId: 'me', local: true, addr, targetPort: Number(addr.split(':').pop()) });
const remote = (taskId: string, via = '127.0.0.9:4000', nodeId = 'other') => ({ taskId, nodeId, local: false, via, targetPort: 80 });
const port = (p: number, backends: MeshTable['ports'][number]['backends'], proxyProtocol = false) => ({
  port: p,
  serviceId: `s${p}`,
  serviceName: `web${p}`,
  proxyProtocol,
  backends,
});

/** A runner that records calls and answers iptables-save with `save[table]`. */
function fakeRunner(save: { nat?: string; filter?: string } = {}) {
  const calls: { file: string; args: string[]; input?: string }[] = [];
  let failRestore: string | undefined;
  let jumpsGone = false;
  const run: CommandRunner = async (file, args, input) => {
    calls.push({ file, args: [...args], input });
    if (file === 'iptables-save') return (args[1] === 'nat' ? save.nat : save.filter) ?? '';
    if (file === 'ip' && args.includes('get')) return `${args[args.length - 1]} dev docker0 src 172.17.0.1 uid 0 \\    cache `;
    if (file === 'ip' && args.includes('show')) return '172.17.0.0/16 proto kernel scope link src 172.17.0.1 \n';
    if (file === 'iptables-restore' && failRestore && input?.includes(failRestore)) throw new Error('iptables-restore: line 3 failed');
    if (file === 'iptables' && args.includes('-C') && jumpsGone) {
      jumpsGone = false; // reinstalled after this
      throw new Error('iptables: Bad rule (does a matching rule exist in that chain?)');
    }
    return '';
  };
  return {
    run,
    calls,
    restores: () => calls.filter((c) => c.file === 'iptables-restore').map((c) => c.input!),
    failOn(s: string | undefined) {
      failRestore = s;
    },
    /** The next check finds the jumps gone. */
    removeJumps() {
      jumpsGone = true;
    },
  };
}

/** The plan as the class completes it with the fake runner's routes (docker0, 172.17.0.0/16). */
const resolved = (plan: ReturnType<typeof planKernelRoutes>) => plan.map((p) => ({ ...p, masqSources: ['172.17.0.0/16'] }));

describe('kernel routes: rules', () => {
  test('chain names: from the node id, at most 28 characters', () => {
    assert.deepEqual(CH, { nat: 'SHOAL-abcdefghij', post: 'SHOAL-abcdefghij-POST', fwd: 'SHOAL-abcdefghij-FWD', comment: `shoal node ${NODE}` });
    assert.ok(CH.post.length <= 28 && CH.fwd.length <= 28);
    assert.equal(kernelChains('x-y').nat, 'SHOAL-xy');
    assert.throws(() => kernelChains('--'));
  });

  test('plan: ports with a local backend; the share counts remote ones; PROXY, remote-only, IPv6, empty ports stay userland', () => {
    const plan = planKernelRoutes(
      table(
        port(9000, [local('t2', '172.17.0.6:80'), local('t1', '172.17.0.5:80')]),
        port(8000, [local('t3', '172.17.0.7:8080'), remote('t4'), remote('t5', '127.0.0.8:4000')]),
        port(7000, [remote('t6')]),
        port(7001, [local('t7', '172.17.0.9:80')], true),
        port(7002, [local('t8', '[fd00::5]:80')]),
        port(7003, []),
        port(7004, [local('t9', 'not an address')]),
      ),
    );
    assert.deepEqual(plan, [
      { port: 8000, protocol: 'tcp', serviceName: 'web8000', locals: ['172.17.0.7:8080'], remotes: [], total: 3 },
      { port: 9000, protocol: 'tcp', serviceName: 'web9000', locals: ['172.17.0.5:80', '172.17.0.6:80'], remotes: [], total: 2 },
    ]);
  });

  test('over the ingress overlay: remote replicas on serving nodes get their slots (DNAT to their node\'s ingress address, SNAT to ours); what arrives at our ingress address goes to local replicas only', () => {
    const ingress = { address: '10.255.0.2', subnet: '10.255.0.0/16', nodes: new Map([['n3', '10.255.0.3'], ['n4', '10.255.0.4']]) };
    const plan = planKernelRoutes(
      table(
        port(8000, [local('t1', '172.17.0.7:80'), remote('t2', '127.0.0.9:4000', 'n3'), remote('t3', '127.0.0.9:4000', 'n3'), remote('t4', '127.0.0.9:4000', 'n5')]),
        port(7000, [remote('t5', '127.0.0.9:4000', 'n4')]),
      ),
      ingress,
    );
    // n5 does not serve its ingress address: its replica's share stays with the userland listener.
    assert.deepEqual(plan, [
      { port: 7000, protocol: 'tcp', serviceName: 'web7000', locals: [], remotes: ['10.255.0.4'], total: 1 },
      { port: 8000, protocol: 'tcp', serviceName: 'web8000', locals: ['172.17.0.7:80'], remotes: ['10.255.0.3', '10.255.0.3'], total: 4 },
    ]);
    const rules = kernelRulesText(CH, '192.0.2.2', plan, ingress).split('\n');
    const dnat = (d: string) => rules.filter((l) => l.includes(`-d ${d}/32`) && l.includes('DNAT --to')).map((l) => `${/--dport (\d+)/.exec(l)![1]} ${/--every (\d)/.exec(l)?.[1] ?? 'all'} ${l.split(' ').at(-1)}`);
    assert.deepEqual(dnat('192.0.2.2'), ['7000 all 10.255.0.4:7000', '8000 4 172.17.0.7:80', '8000 3 10.255.0.3:8000', '8000 2 10.255.0.3:8000']);
    assert.deepEqual(dnat('10.255.0.2'), ['8000 all 172.17.0.7:80']);
    const snat = rules.filter((l) => l.includes('SNAT'));
    assert.deepEqual(snat, [
      `-A ${CH.post} -d 10.255.0.0/16 -p tcp -m conntrack --ctstate DNAT --ctorigdst 192.0.2.2/32 --ctorigdstport 7000 -j SNAT --to-source 10.255.0.2`,
      `-A ${CH.post} -d 10.255.0.0/16 -p tcp -m conntrack --ctstate DNAT --ctorigdst 192.0.2.2/32 --ctorigdstport 8000 -j SNAT --to-source 10.255.0.2`,
    ]);
    const setup = kernelSetupText(CH, '192.0.2.2', '10.255.0.2');
    assert.match(setup, /-I PREROUTING 1 -d 10\.255\.0\.2\/32 -p tcp .* -j SHOAL-abcdefghij\n/);
    assert.match(setup, /-A SHOAL-abcdefghij-FWD -p tcp -m conntrack --ctstate DNAT --ctorigdst 10\.255\.0\.2\/32 -j ACCEPT/);
    assert.doesNotMatch(kernelSetupText(CH, '192.0.2.2'), /10\.255/);
  });

  test('rules text: nth spread over the local backends, the rest falls through to the listener; a replica calling itself is left to it too', () => {
    const plan = planKernelRoutes(
      table(
        port(9000, [local('t1', '172.17.0.5:80'), local('t2', '172.17.0.6:80')]),
        port(8000, [local('t3', '172.17.0.7:8080'), remote('t4'), remote('t5')]),
      ),
    );
    const text = kernelRulesText(CH, '127.0.0.2', plan);
    assert.equal(
      text,
      [
        '*nat',
        ':SHOAL-abcdefghij - [0:0]',
        ':SHOAL-abcdefghij-POST - [0:0]',
        '-A SHOAL-abcdefghij -s 172.17.0.7/32 -d 127.0.0.2/32 -p tcp -m tcp --dport 8000 -m comment --comment "web8000 8000" -j RETURN',
        '-A SHOAL-abcdefghij -d 127.0.0.2/32 -p tcp -m tcp --dport 8000 -m comment --comment "web8000 8000" -m statistic --mode nth --every 3 --packet 0 -j DNAT --to-destination 172.17.0.7:8080',
        '-A SHOAL-abcdefghij-POST -p tcp -m conntrack --ctstate DNAT --ctorigdst 127.0.0.2/32 --ctorigdstport 8000 -j MASQUERADE',
        '-A SHOAL-abcdefghij -s 172.17.0.5/32 -d 127.0.0.2/32 -p tcp -m tcp --dport 9000 -m comment --comment "web9000 9000" -j RETURN',
        '-A SHOAL-abcdefghij -s 172.17.0.6/32 -d 127.0.0.2/32 -p tcp -m tcp --dport 9000 -m comment --comment "web9000 9000" -j RETURN',
        '-A SHOAL-abcdefghij -d 127.0.0.2/32 -p tcp -m tcp --dport 9000 -m comment --comment "web9000 9000" -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 172.17.0.5:80',
        '-A SHOAL-abcdefghij -d 127.0.0.2/32 -p tcp -m tcp --dport 9000 -m comment --comment "web9000 9000" -j DNAT --to-destination 172.17.0.6:80',
        '-A SHOAL-abcdefghij-POST -p tcp -m conntrack --ctstate DNAT --ctorigdst 127.0.0.2/32 --ctorigdstport 9000 -j MASQUERADE',
        'COMMIT',
        '',
      ].join('\n'),
    );
    // Nothing to route: the chains are declared (so flushed) and left empty.
    assert.equal(kernelRulesText(CH, '127.0.0.2', []), '*nat\n:SHOAL-abcdefghij - [0:0]\n:SHOAL-abcdefghij-POST - [0:0]\nCOMMIT\n');
  });

  test('masquerading: this host\'s clients and the given subnets only, or everyone when unknown', () => {
    const plan = planKernelRoutes(table(port(80, [local('a', '10.1.0.5:80')])));
    const post = (ps: typeof plan) => kernelRulesText(CH, '192.0.2.2', ps).split('\n').filter((l) => l.startsWith(`-A ${CH.post} `));
    assert.deepEqual(post(plan), [`-A ${CH.post} -p tcp -m conntrack --ctstate DNAT --ctorigdst 192.0.2.2/32 --ctorigdstport 80 -j MASQUERADE`]);
    assert.deepEqual(post([{ ...plan[0]!, masqSources: ['10.1.0.0/24', '172.18.0.0/16'] }]), [
      `-A ${CH.post} -p tcp -m conntrack --ctstate DNAT --ctorigdst 192.0.2.2/32 --ctorigdstport 80 -m addrtype --src-type LOCAL -j MASQUERADE`,
      `-A ${CH.post} -s 10.1.0.0/24 -p tcp -m conntrack --ctstate DNAT --ctorigdst 192.0.2.2/32 --ctorigdstport 80 -j MASQUERADE`,
      `-A ${CH.post} -s 172.18.0.0/16 -p tcp -m conntrack --ctstate DNAT --ctorigdst 192.0.2.2/32 --ctorigdstport 80 -j MASQUERADE`,
    ]);
    assert.ok(inSubnet('172.17.3.4', '172.17.0.0/16') && !inSubnet('172.18.0.1', '172.17.0.0/16') && inSubnet('10.0.0.1', '0.0.0.0/0'));
    assert.ok(!inSubnet('10.0.0.1', 'default') && !inSubnet('10.0.0.1', '10.0.0.0/33'));
  });

  test('three local backends of three: every 3, every 2, then the last unconditionally', () => {
    const plan = planKernelRoutes(table(port(80, [local('a', '10.0.0.1:80'), local('b', '10.0.0.2:80'), local('c', '10.0.0.3:80')])));
    const rules = kernelRulesText(CH, '192.0.2.2', plan).split('\n').filter((l) => l.includes('DNAT --to'));
    assert.deepEqual(
      rules.map((l) => / --every (\d) /.exec(l)?.[1] ?? 'all'),
      ['3', '2', 'all'],
    );
  });

  test('UDP: its own rules (-p udp), spread over the backends the kernel reaches only; a UDP port beside a TCP one of the same number', () => {
    const udp = (p: number, backends: MeshTable['ports'][number]['backends']) => ({ ...port(p, backends), protocol: 'udp' as const });
    const ingress = { address: '10.255.0.2', subnet: '10.255.0.0/16', nodes: new Map([['n3', '10.255.0.3']]) };
    const plan = planKernelRoutes(
      table(
        port(53, [local('a', '172.17.0.5:53'), remote('r1')]),
        udp(53, [local('a', '172.17.0.5:53'), remote('r1'), remote('r3', '127.0.0.9:4000', 'n3')]),
        // Remote replicas out of the kernel's reach: nothing this node can serve in the kernel.
        udp(54, [remote('r1')]),
      ),
      ingress,
    );
    assert.deepEqual(
      plan.map((p) => [p.port, p.protocol, p.total]),
      [
        [53, 'tcp', 2],
        [53, 'udp', 2],
      ],
      'the userland remote does not count for UDP: its share would go nowhere',
    );
    const rules = kernelRulesText(CH, '192.0.2.2', resolved(plan), ingress).split('\n');
    assert.ok(rules.includes(`-A ${CH.nat} -d 192.0.2.2/32 -p udp -m udp --dport 53 -m comment --comment "web53 53/udp" -m statistic --mode nth --every 2 --packet 0 -j DNAT --to-destination 172.17.0.5:53`), rules.join('\n'));
    assert.ok(rules.includes(`-A ${CH.nat} -d 192.0.2.2/32 -p udp -m udp --dport 53 -m comment --comment "web53 53/udp" -j DNAT --to-destination 10.255.0.3:53`));
    assert.ok(rules.includes(`-A ${CH.post} -d 10.255.0.0/16 -p udp -m conntrack --ctstate DNAT --ctorigdst 192.0.2.2/32 --ctorigdstport 53 -j SNAT --to-source 10.255.0.2`));
    assert.ok(rules.some((l) => l.includes('-p tcp -m tcp --dport 53')), 'the TCP port keeps its own rules');
  });

  test('setup text: the chains, the FORWARD accept, the jumps inserted first', () => {
    assert.equal(
      kernelSetupText(CH, '127.0.0.2'),
      [
        '*filter',
        ':SHOAL-abcdefghij-FWD - [0:0]',
        '-A SHOAL-abcdefghij-FWD -p tcp -m conntrack --ctstate DNAT --ctorigdst 127.0.0.2/32 -j ACCEPT',
        '-A SHOAL-abcdefghij-FWD -p udp -m conntrack --ctstate DNAT --ctorigdst 127.0.0.2/32 -j ACCEPT',
        `-I FORWARD 1 -m comment --comment "shoal node ${NODE}" -j SHOAL-abcdefghij-FWD`,
        'COMMIT',
        '*nat',
        ':SHOAL-abcdefghij - [0:0]',
        ':SHOAL-abcdefghij-POST - [0:0]',
        `-I PREROUTING 1 -d 127.0.0.2/32 -p tcp -m comment --comment "shoal node ${NODE}" -j SHOAL-abcdefghij`,
        `-I PREROUTING 1 -d 127.0.0.2/32 -p udp -m comment --comment "shoal node ${NODE}" -j SHOAL-abcdefghij`,
        `-I OUTPUT 1 -d 127.0.0.2/32 -p tcp -m comment --comment "shoal node ${NODE}" -j SHOAL-abcdefghij`,
        `-I OUTPUT 1 -d 127.0.0.2/32 -p udp -m comment --comment "shoal node ${NODE}" -j SHOAL-abcdefghij`,
        `-I POSTROUTING 1 -m comment --comment "shoal node ${NODE}" -j SHOAL-abcdefghij-POST`,
        'COMMIT',
        '',
      ].join('\n'),
    );
  });

  test('removal: only this node\'s jumps and chains, from iptables-save output', () => {
    const save = [
      '# Generated by iptables-save v1.8.9',
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':POSTROUTING ACCEPT [0:0]',
      ':DOCKER - [0:0]',
      ':SHOAL-abcdefghij - [0:0]',
      ':SHOAL-abcdefghij-POST - [0:0]',
      ':SHOAL-zzzzzzzzzz - [0:0]',
      '-A PREROUTING -d 127.0.0.2/32 -p tcp -m comment --comment "shoal node abcdefghij0123456789klmno" -j SHOAL-abcdefghij',
      '-A PREROUTING -d 127.0.0.3/32 -p tcp -m comment --comment "shoal node zzzzzzzzzz" -j SHOAL-zzzzzzzzzz',
      '-A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER',
      '-A OUTPUT -d 127.0.0.2/32 -p tcp -m comment --comment "shoal node abcdefghij0123456789klmno" -j SHOAL-abcdefghij',
      '-A POSTROUTING -m comment --comment "shoal node abcdefghij0123456789klmno" -j SHOAL-abcdefghij-POST',
      '-A POSTROUTING -s 172.17.0.0/16 ! -o docker0 -j MASQUERADE',
      '-A SHOAL-abcdefghij -d 127.0.0.2/32 -p tcp -m tcp --dport 80 -j DNAT --to-destination 172.17.0.5:80',
      'COMMIT',
    ].join('\n');
    const r = findRemoval(CH, save);
    assert.deepEqual(r.chains, ['SHOAL-abcdefghij', 'SHOAL-abcdefghij-POST']);
    assert.equal(r.deletes.length, 3);
    assert.equal(
      removalText('nat', r),
      [
        '*nat',
        `-D PREROUTING -d 127.0.0.2/32 -p tcp -m comment --comment "shoal node ${NODE}" -j SHOAL-abcdefghij`,
        `-D OUTPUT -d 127.0.0.2/32 -p tcp -m comment --comment "shoal node ${NODE}" -j SHOAL-abcdefghij`,
        `-D POSTROUTING -m comment --comment "shoal node ${NODE}" -j SHOAL-abcdefghij-POST`,
        '-F SHOAL-abcdefghij',
        '-F SHOAL-abcdefghij-POST',
        '-X SHOAL-abcdefghij',
        '-X SHOAL-abcdefghij-POST',
        'COMMIT',
        '',
      ].join('\n'),
    );
    assert.equal(removalText('filter', findRemoval(CH, '*filter\n:FORWARD DROP [0:0]\nCOMMIT\n')), '');
    assert.deepEqual(splitRule('-A X -m comment --comment "a \\"b\\" c" -j Y'), ['-A', 'X', '-m', 'comment', '--comment', 'a "b" c', '-j', 'Y']);
  });
});

describe('kernel routes: the class, with a recording runner', () => {
  const fullTable = table(port(9000, [local('t1', '172.17.0.5:80'), local('t2', '172.17.0.6:80')]), port(8000, [remote('t3')]));

  test('start: stale chains removed, then the setup; updates debounced, applied once, unchanged ones skipped', async () => {
    const stale = `*nat\n:SHOAL-abcdefghij - [0:0]\n-A OUTPUT -d 127.0.0.2/32 -p tcp -j SHOAL-abcdefghij\nCOMMIT\n`;
    const f = fakeRunner({ nat: stale });
    const k = new KernelRoutes({ nodeId: NODE, address: '127.0.0.2', run: f.run, logger: quietLogger, debounceMs: 10 });
    await k.start();
    assert.deepEqual(
      f.calls.map((c) => `${c.file} ${c.args.join(' ')}`),
      ['iptables-save -t nat', 'iptables-restore -w 5 --noflush', 'iptables-save -t filter', 'iptables-restore -w 5 --noflush'],
    );
    assert.match(f.restores()[0]!, /-D OUTPUT -d 127.0.0.2\/32 -p tcp -j SHOAL-abcdefghij\n-F SHOAL-abcdefghij\n-X SHOAL-abcdefghij/);
    assert.equal(f.restores()[1], kernelSetupText(CH, '127.0.0.2'));
    f.calls.length = 0;

    const routed = k.update(fullTable);
    assert.deepEqual([...routed], [9000]);
    k.update(fullTable); // coalesced
    await k.settled();
    assert.equal(k.appliedCount, 1);
    // Loopback address: route_localnet on the backends' interface, once.
    assert.deepEqual(
      f.calls.map((c) => `${c.file} ${c.args.join(' ')}`),
      [
        'ip -4 -o route get 172.17.0.5',
        'ip -4 -o route show dev docker0 scope link',
        'sysctl -q -w net.ipv4.conf.docker0.route_localnet=1',
        'ip -4 -o route get 172.17.0.6',
        'ip -4 -o route show dev docker0 scope link',
        'iptables-restore -w 5 --noflush',
      ],
    );
    assert.equal(f.restores()[0], kernelRulesText(CH, '127.0.0.2', resolved(planKernelRoutes(fullTable))));
    // This host's clients and the bridge's containers (hairpin) are masqueraded, no one else.
    assert.match(f.restores()[0]!, /-A SHOAL-abcdefghij-POST -p tcp -m conntrack --ctstate DNAT --ctorigdst 127\.0\.0\.2\/32 --ctorigdstport 9000 -m addrtype --src-type LOCAL -j MASQUERADE\n/);
    assert.match(f.restores()[0]!, /-A SHOAL-abcdefghij-POST -s 172\.17\.0\.0\/16 -p tcp -m conntrack --ctstate DNAT --ctorigdst 127\.0\.0\.2\/32 --ctorigdstport 9000 -j MASQUERADE\n/);
    k.update(fullTable);
    await k.settled();
    assert.equal(k.appliedCount, 1, 'an unchanged table is not applied again');

    // A replica dies: one rule left, unconditional.
    k.update(table(port(9000, [local('t2', '172.17.0.6:80')])));
    await k.settled();
    assert.equal(k.appliedCount, 2);
    const last = f.restores().at(-1)!;
    assert.doesNotMatch(last, /172\.17\.0\.5/);
    assert.match(last, /--dport 9000 -m comment --comment "web9000 9000" -j DNAT --to-destination 172.17.0.6:80/);
    // Scale to 0: the chain is emptied.
    assert.deepEqual([...k.update(table(port(9000, [])))], []);
    await k.settled();
    assert.equal(f.restores().at(-1), kernelRulesText(CH, '127.0.0.2', []));
    assert.equal(f.calls.filter((c) => c.file === 'ip').length, 4, 'routes looked up once per address');
    await k.stop();
    assert.deepEqual([...k.update(fullTable)], [], 'nothing after stop');
  });

  test('a non-loopback address needs no route_localnet', async () => {
    const f = fakeRunner();
    const k = new KernelRoutes({ nodeId: NODE, address: '192.0.2.2', run: f.run, debounceMs: 0 });
    await k.start();
    k.update(fullTable);
    await k.settled();
    assert.ok(!f.calls.some((c) => c.file === 'sysctl'), 'no route_localnet');
    await k.stop();
  });

  test('rules removed behind its back (a firewall reload): installed and applied again', async () => {
    const f = fakeRunner();
    const k = new KernelRoutes({ nodeId: NODE, address: '192.0.2.2', run: f.run, logger: quietLogger, debounceMs: 0, verifyMs: 30 });
    await k.start();
    k.update(fullTable);
    await k.settled();
    const checks = () => f.calls.filter((c) => c.file === 'iptables' && c.args.includes('-C'));
    await waitFor(() => checks().length >= 1, 3000, 'a check of the jump rule');
    assert.deepEqual(checks()[0]!.args, ['-w', '5', '-t', 'nat', '-C', 'OUTPUT', '-d', '192.0.2.2/32', '-p', 'tcp', '-m', 'comment', '--comment', `shoal node ${NODE}`, '-j', CH.nat]);
    assert.equal(f.restores().filter((t) => t === kernelSetupText(CH, '192.0.2.2')).length, 1, 'not reinstalled while in place');
    f.removeJumps();
    const rules = kernelRulesText(CH, '192.0.2.2', resolved(planKernelRoutes(fullTable)));
    await waitFor(() => f.restores().filter((t) => t === kernelSetupText(CH, '192.0.2.2')).length >= 2 && f.restores().at(-1) === rules, 3000, 'the setup and the rules installed again');
    await k.settled();
    assert.equal(f.restores().filter((t) => t === kernelSetupText(CH, '192.0.2.2')).length, 2, 'reinstalled once');
    assert.equal(f.restores().at(-1), rules, 'and the rules applied again');
    await k.stop();
  });

  test('start refuses a non-IPv4 address, and fails when iptables does', async () => {
    for (const address of ['0.0.0.0', '::1', 'node1.example']) {
      await assert.rejects(new KernelRoutes({ nodeId: NODE, address, run: fakeRunner().run }).start(), /IPv4/);
    }
    const missing: CommandRunner = () => Promise.reject(new Error('iptables-save -t nat: iptables-save not found'));
    await assert.rejects(new KernelRoutes({ nodeId: NODE, address: '127.0.0.2', run: missing }).start(), /not found/);
  });

  test('an apply that fails: rules removed, error reported, userland serves; retried; recovers', async () => {
    const f = fakeRunner();
    const errors: (string | null)[] = [];
    const k = new KernelRoutes({
      nodeId: NODE,
      address: '192.0.2.2',
      run: f.run,
      logger: quietLogger,
      debounceMs: 0,
      retryMs: 50,
      onError: (err) => errors.push(err ? err.message : null),
    });
    await k.start();
    f.failOn('--dport 9000');
    assert.deepEqual([...k.update(fullTable)], [9000]);
    await k.settled();
    assert.equal(errors.length, 1);
    assert.match(errors[0]!, /line 3 failed/);
    assert.ok(k.error);
    assert.deepEqual([...k.routedPorts()], [], 'no kernel routes while failing');
    assert.deepEqual([...k.update(fullTable)], []);
    // The removal ran after the failure (iptables-save of both tables).
    assert.ok(f.calls.filter((c) => c.file === 'iptables-save').length >= 4);
    f.failOn(undefined);
    const t0 = Date.now();
    while (k.error && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 20));
    await k.settled();
    assert.equal(k.error, undefined, 'recovered by the retry');
    assert.deepEqual(errors.slice(-1), [null]);
    assert.deepEqual([...k.routedPorts()], [9000]);
    // Reinstalled (setup), then the rules.
    assert.equal(f.restores().at(-1), kernelRulesText(CH, '192.0.2.2', resolved(planKernelRoutes(fullTable))));
    assert.ok(f.restores().includes(kernelSetupText(CH, '192.0.2.2')));
    await k.stop();
  });
});

describe('mesh: localInKernel', () => {
  test('the listener sends connections to remote backends first, local ones only when none answers', async () => {
    const c = await makeCluster();
    const r1 = await httpBackend('r1', BACKEND_HOST);
    const r2 = await httpBackend('r2', BACKEND_HOST2);
    try {
      const p = await freePort();
      const ta = c.tableFor('a', [{ port: p, tasks: [{ taskId: 't1', node: 'a', addr: r1.addr }, { taskId: 't2', node: 'b', addr: r2.addr }] }]);
      ta.ports[0]!.localInKernel = true;
      await c.a.update(ta);
      await c.b.update(c.tableFor('b', [{ port: p, tasks: [{ taskId: 't1', node: 'a', addr: r1.addr }, { taskId: 't2', node: 'b', addr: r2.addr }] }]));
      const bodies = await serialGet(20, HOST_A, p);
      assert.deepEqual([...new Set(bodies)], ['r2'], 'the remote share goes to the remote backend');
      // Through B (no flag there): spread over both as usual.
      assert.equal(new Set(await serialGet(20, HOST_B, p)).size, 2);
      // The remote backend's node forwards to a dead address: A falls back to its local one.
      const dead = await deadAddr();
      await c.b.update(c.tableFor('b', [{ port: p, tasks: [{ taskId: 't1', node: 'a', addr: r1.addr }, { taskId: 't2', node: 'b', addr: dead }] }]));
      assert.equal(await get(HOST_A, p), 'r1');
    } finally {
      await c.close();
      await r1.close();
      await r2.close();
    }
  });
});

function canUseIptables(): boolean {
  if (process.getuid?.() !== 0) return false;
  try {
    execFileSync('iptables-save', ['-t', 'nat'], { stdio: 'ignore', env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/sbin` } });
    return true;
  } catch {
    return false;
  }
}

describe('kernel routes: on this machine\'s iptables (root)', { skip: canUseIptables() ? false : 'needs root and iptables' }, () => {
  test('a connection to the node address reaches the local backend without a listener; stop removes everything', async () => {
    const nodeId = `test${Math.random().toString(36).slice(2, 8)}`;
    const addr = '127.0.0.2';
    const k = new KernelRoutes({ nodeId, address: addr, logger: quietLogger, debounceMs: 0 });
    const chains = kernelChains(nodeId);
    const saveNat = () => execRunner('iptables-save', ['-t', 'nat']);
    const b1 = await httpBackend('k1', BACKEND_HOST);
    const b2 = await httpBackend('k2', BACKEND_HOST2);
    try {
      await k.start();
      const p = await freePort([addr]);
      k.update(table(port(p, [local('t1', b1.addr), local('t2', b2.addr)])));
      await k.settled();
      assert.equal(k.error, undefined, k.error?.message);
      assert.match(await saveNat(), new RegExp(`-A OUTPUT -d ${addr}/32 -p tcp .*-j ${chains.nat}`));
      // Nobody listens on 127.0.0.2:p: the kernel DNATs, alternating (nth) over both backends.
      const bodies = await serialGet(10, addr, p);
      assert.deepEqual(count(bodies), { k1: 5, k2: 5 });
      // Scale to 0: the chain is empty, nobody listens: refused.
      k.update(table(port(p, [])));
      await k.settled();
      const refused = await new Promise<string>((resolve) => {
        const s = net.connect({ host: addr, port: p });
        s.on('connect', () => {
          s.destroy();
          resolve('connected');
        });
        s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
      });
      assert.equal(refused, 'ECONNREFUSED');
    } finally {
      await k.stop();
      await b1.close();
      await b2.close();
    }
    const after = (await saveNat()) + (await execRunner('iptables-save', ['-t', 'filter']));
    assert.ok(!after.includes(chains.nat), 'no chain or jump left');
  });
});

function count(xs: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const x of xs) out[x] = (out[x] ?? 0) + 1;
  return out;
}
