// Service VIPs balanced in the client's namespace, on the REAL kernel: two "hosts" (network
// namespaces joined by a veth underlay) carry one overlay network; a client endpoint on host 1 and
// three backends (one on host 1, two on host 2), each running busybox httpd (a CGI that answers
// its own name and the caller's address) and an nc echo server that first says its name. Needs
// root (network namespaces, VXLAN, nftables, conntrack).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { ShoalError } from '@shoal/api';
import {
  Iproute,
  type NetfilterTool,
  type OverlayNetwork,
  type ServiceVip,
  applyOverlay,
  applyServiceLb,
  attachNetns,
  detachNetns,
  listNetns,
  readServiceLb,
  removeOverlay,
  removeServiceLb,
} from '../src/overlay/index.js';

const run = promisify(execFile);
const RUN = `l${process.pid % 100000}`;
const H1 = `${RUN}h1`;
const H2 = `${RUN}h2`;
const U1 = '192.0.2.1';
const U2 = '192.0.2.2';
const NET: OverlayNetwork = { id: 'lbnet', vni: 4201, subnet: '10.79.0.0/24', mtu: 1500, internal: true };
const CLIENT = { name: 'client', ip: '10.79.0.10', ns: `${RUN}c` };
const BACKENDS = [
  { name: 'b1', ip: '10.79.0.11', ns: `${RUN}b1`, host: H1 },
  { name: 'b2', ip: '10.79.0.12', ns: `${RUN}b2`, host: H2 },
  { name: 'b3', ip: '10.79.0.13', ns: `${RUN}b3`, host: H2 },
];
const ALL = BACKENDS.map((b) => b.ip);
/** VIPs: one per test, so that a test's connections do not show in another's conntrack counts. */
const VIP_SPREAD = '10.79.0.2';
const VIP_HELD = '10.79.0.3';
const VIP_EMPTY = '10.79.0.4';

const made: string[] = [];
const children: ChildProcess[] = [];
let docroot = '';

async function sh(...args: string[]): Promise<string> {
  return (await run(args[0], args.slice(1))).stdout;
}

async function netns(name: string): Promise<string> {
  await sh('ip', 'netns', 'add', name);
  made.push(name);
  await sh('ip', '-n', name, 'link', 'set', 'lo', 'up');
  return name;
}

function daemon(ns: string, ...args: string[]): ChildProcess {
  const child = spawn('ip', ['netns', 'exec', ns, ...args], { stdio: 'ignore' });
  children.push(child);
  return child;
}

/** One HTTP request from `ns`: the answering backend's CGI says "NAME CALLER-ADDRESS". */
async function who(ns: string, ip: string): Promise<{ name: string; caller: string }> {
  // No wget -T: this busybox's wget crashes with it; a generous timeout on the process instead.
  const { stdout } = await run('ip', ['netns', 'exec', ns, 'busybox', 'wget', '-q', '-O', '-', `http://${ip}/cgi-bin/who`], { timeout: 30_000 });
  const [name, caller] = stdout.trim().split(' ');
  return { name, caller };
}

/** Waits (generously) until every backend's servers answer. */
async function ready(): Promise<void> {
  for (const b of BACKENDS) {
    for (let i = 0; ; i++) {
      try {
        assert.equal((await who(CLIENT.ns, b.ip)).name, b.name);
        break;
      } catch (err) {
        if (i >= 100) throw err;
        await sleep(100);
      }
    }
  }
}

/** A long-lived TCP session from `ns` to ip:7000; resolves once the backend has said its name. */
function hold(ns: string, ip: string): Promise<{ backend: string; child: ChildProcess }> {
  const child = spawn('ip', ['netns', 'exec', ns, 'busybox', 'nc', ip, '7000'], { stdio: ['pipe', 'pipe', 'ignore'] });
  children.push(child);
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve({ backend: out.slice(0, nl), child });
    });
    child.on('exit', (code) => reject(new Error(`nc to ${ip}:7000 ended (${code}) before the backend answered`)));
  });
}

/** The client namespace's TCP conntrack entries to `vip` port 7000, as the backend address each went to. */
async function heldEntries(vip: string): Promise<string[]> {
  const { stdout } = await run('ip', ['netns', 'exec', CLIENT.ns, 'conntrack', '-L', '-p', 'tcp', '-d', vip, '--dport', '7000']);
  return stdout.split('\n').filter((l) => l.includes('ESTABLISHED')).map((l) => /src=(\S+) dst=\S+ sport=7000/.exec(l)![1]).sort();
}

function recorder(): { log: string[]; onCommand: (tool: NetfilterTool, args: readonly string[]) => void } {
  const log: string[] = [];
  return { log, onCommand: (tool, args) => log.push(`${tool} ${args.join(' ')}`) };
}

describe('service VIPs balanced in the client namespace (real kernel)', () => {
  before(async () => {
    await netns(H1);
    await netns(H2);
    await sh('ip', 'link', 'add', `${RUN}u1`, 'netns', H1, 'type', 'veth', 'peer', 'name', `${RUN}u2`, 'netns', H2);
    await sh('ip', '-n', H1, 'addr', 'add', `${U1}/24`, 'dev', `${RUN}u1`);
    await sh('ip', '-n', H2, 'addr', 'add', `${U2}/24`, 'dev', `${RUN}u2`);
    await sh('ip', '-n', H1, 'link', 'set', `${RUN}u1`, 'up');
    await sh('ip', '-n', H2, 'link', 'set', `${RUN}u2`, 'up');

    const eps = [{ ...CLIENT, host: H1 }, ...BACKENDS];
    for (const e of eps) await netns(e.ns);
    for (const [host, underlay, peer] of [[H1, U1, U2], [H2, U2, U1]] as const) {
      await applyOverlay(new Iproute({ netns: host }), {
        network: NET, underlay, peers: [{ underlay: peer }],
        remoteEndpoints: eps.filter((e) => e.host !== host).map((e) => ({ ip: e.ip, peer })),
        localEndpoints: eps.filter((e) => e.host === host).map((e) => ({ id: `${RUN}-${e.name}`, ip: e.ip, netns: e.ns, ifname: 'eth0' })),
      });
    }

    docroot = await mkdtemp(join(tmpdir(), `${RUN}-lb-`));
    for (const b of BACKENDS) {
      const dir = join(docroot, b.name);
      await mkdir(join(dir, 'cgi-bin'), { recursive: true });
      await writeFile(join(dir, 'cgi-bin', 'who'), `#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "${b.name} $REMOTE_ADDR"\n`);
      await writeFile(join(dir, 'echo.sh'), `#!/bin/sh\necho ${b.name}\nexec cat\n`);
      await chmod(join(dir, 'cgi-bin', 'who'), 0o755);
      await chmod(join(dir, 'echo.sh'), 0o755);
      // Bound to the IPv4 address: on a dual-stack socket the caller would read as ::ffff:A.B.C.D.
      daemon(b.ns, 'busybox', 'httpd', '-f', '-p', `${b.ip}:80`, '-h', dir);
      daemon(b.ns, 'busybox', 'nc', '-ll', '-p', '7000', '-e', join(dir, 'echo.sh'));
    }
    await ready();
  });

  after(async () => {
    for (const c of children.splice(0)) c.kill();
    for (const host of [H1, H2]) await removeOverlay(new Iproute({ netns: host }), NET).catch(() => undefined);
    for (const ns of made.splice(0)) await sh('ip', 'netns', 'del', ns).catch(() => undefined);
    if (docroot !== '') await rm(docroot, { recursive: true, force: true });
  });

  test('connections to a VIP go round robin over every backend, from the client\'s own address', async () => {
    const changes = await applyServiceLb(CLIENT.ns, [{ vip: VIP_SPREAD, backends: ALL }]);
    assert.deepEqual(changes, { added: [VIP_SPREAD], removed: [], changed: [], conntrackDeleted: 0, applied: true });
    const count = new Map<string, number>();
    for (let i = 0; i < 30; i++) {
      const { name, caller } = await who(CLIENT.ns, VIP_SPREAD);
      assert.equal(caller, CLIENT.ip, 'the backend sees the client\'s address (no SNAT)');
      count.set(name, (count.get(name) ?? 0) + 1);
    }
    assert.deepEqual([...count.keys()].sort(), ['b1', 'b2', 'b3']);
    assert.equal([...count.values()].reduce((a, b) => a + b), 30);
    for (const [name, n] of count) assert.ok(n >= 1, `${name} got ${n} connections`);
  });

  test('an update drops the removed backend: no new connections to it, its held connection\'s conntrack entry goes, the others stay', async () => {
    const three: ServiceVip[] = [{ vip: VIP_SPREAD, backends: ALL }, { vip: VIP_HELD, backends: ALL }];
    await applyServiceLb(CLIENT.ns, three);
    // Round robin: three consecutive connections go to the three backends.
    const sessions = [await hold(CLIENT.ns, VIP_HELD), await hold(CLIENT.ns, VIP_HELD), await hold(CLIENT.ns, VIP_HELD)];
    assert.deepEqual(sessions.map((s) => s.backend).sort(), ['b1', 'b2', 'b3']);
    assert.deepEqual(await heldEntries(VIP_HELD), ALL);

    const rec = recorder();
    const two = ALL.filter((ip) => ip !== '10.79.0.13');
    const changes = await applyServiceLb(CLIENT.ns, [{ vip: VIP_SPREAD, backends: ALL }, { vip: VIP_HELD, backends: two }], { onCommand: rec.onCommand });
    assert.deepEqual(changes, { added: [], removed: [], changed: [VIP_HELD], conntrackDeleted: 1, applied: true });
    assert.deepEqual(rec.log, ['nft -f -', `conntrack -D -d ${VIP_HELD} -r 10.79.0.13`]);
    assert.deepEqual(await heldEntries(VIP_HELD), two, 'only the removed backend\'s connection lost its entry');

    const seen = new Set<string>();
    for (let i = 0; i < 10; i++) seen.add((await who(CLIENT.ns, VIP_HELD)).name);
    assert.deepEqual([...seen].sort(), ['b1', 'b2']);
    for (const s of sessions) s.child.kill();
  });

  test('a VIP with no backend refuses connections at once (ECONNREFUSED, not a timeout)', async () => {
    await applyServiceLb(CLIENT.ns, [{ vip: VIP_SPREAD, backends: ALL }, { vip: VIP_EMPTY, backends: [] }]);
    const err = await run('ip', ['netns', 'exec', CLIENT.ns, 'busybox', 'nc', '-w', '30', VIP_EMPTY, '80']).then(
      () => assert.fail('nc to a VIP without backends succeeded'),
      (e: { code?: number; stderr?: string }) => e,
    );
    assert.notEqual(err.code, 0);
    assert.match(err.stderr ?? '', /Connection refused/);
    assert.deepEqual(await readServiceLb(CLIENT.ns), [{ vip: VIP_SPREAD, backends: ALL }, { vip: VIP_EMPTY, backends: [] }]);

    // A backend appears: the VIP balances again.
    const changes = await applyServiceLb(CLIENT.ns, [{ vip: VIP_SPREAD, backends: ALL }, { vip: VIP_EMPTY, backends: ['10.79.0.12'] }]);
    assert.deepEqual(changes.changed, [VIP_EMPTY]);
    assert.equal((await who(CLIENT.ns, VIP_EMPTY)).name, 'b2');
  });

  test('the same state twice runs nothing; a restarted agent converges from any previous content; only its own table is touched', async () => {
    const state: ServiceVip[] = [{ vip: VIP_SPREAD, backends: [...ALL].reverse() }, { vip: VIP_EMPTY, backends: [] }];
    await applyServiceLb(CLIENT.ns, state);
    const rec = recorder();
    const again = await applyServiceLb(CLIENT.ns, state, { onCommand: rec.onCommand });
    assert.deepEqual(rec.log, [], 'no transaction, no conntrack');
    assert.deepEqual(again, { added: [], removed: [], changed: [], conntrackDeleted: 0, applied: false });

    // Someone else's table, and a rule of nobody's in ours: a restart converges ours and keeps theirs.
    await sh('ip', 'netns', 'exec', CLIENT.ns, 'nft', `add table ip ${RUN}other; add rule ip shoal_lb nat ip daddr 10.79.0.9 dnat to 10.79.0.99`);
    const fresh = recorder();
    const other: ServiceVip[] = [{ vip: VIP_HELD, backends: ['10.79.0.11'] }];
    const changes = await applyServiceLb(CLIENT.ns, other, { onCommand: fresh.onCommand });
    assert.deepEqual(changes.added, [VIP_HELD]);
    // The hand-made rule is not one of ours (not a numgen map): replaced, but not reported as a VIP.
    assert.deepEqual([...changes.removed].sort(), [VIP_SPREAD, VIP_EMPTY]);
    assert.equal(fresh.log[0], 'nft -f -');
    assert.deepEqual(await readServiceLb(CLIENT.ns), other);
    assert.equal((await who(CLIENT.ns, VIP_HELD)).name, 'b1');
    const tables = await sh('ip', 'netns', 'exec', CLIENT.ns, 'nft', 'list', 'tables');
    assert.match(tables, new RegExp(`table ip ${RUN}other`));
    // Converged: the next run has nothing to do.
    assert.equal((await applyServiceLb(CLIENT.ns, other)).applied, false);
    await sh('ip', 'netns', 'exec', CLIENT.ns, 'nft', `delete table ip ${RUN}other`);
  });

  test('removal leaves no table; bad input is a one-line ShoalError that changes nothing', async () => {
    await applyServiceLb(CLIENT.ns, [{ vip: VIP_SPREAD, backends: ALL }]);
    await assert.rejects(applyServiceLb(CLIENT.ns, [{ vip: VIP_SPREAD, backends: ['10.79.0.300'] }]),
      (err: unknown) => err instanceof ShoalError && err.code === 'INVALID_ARGUMENT' && /10\.79\.0\.300/.test(err.message));
    await assert.rejects(applyServiceLb(CLIENT.ns, [{ vip: VIP_SPREAD, backends: [] }, { vip: VIP_SPREAD, backends: ALL }]),
      (err: unknown) => err instanceof ShoalError && err.code === 'INVALID_ARGUMENT');
    assert.deepEqual(await readServiceLb(CLIENT.ns), [{ vip: VIP_SPREAD, backends: ALL }]);

    await removeServiceLb(CLIENT.ns);
    assert.equal(await readServiceLb(CLIENT.ns), undefined);
    assert.doesNotMatch(await sh('ip', 'netns', 'exec', CLIENT.ns, 'nft', 'list', 'tables'), /shoal_lb/);
    await removeServiceLb(CLIENT.ns); // nothing left: no error
    await assert.rejects(applyServiceLb(`${RUN}nosuch`, []),
      (err: unknown) => err instanceof ShoalError && err.code === 'INTERNAL' && !err.message.includes('\n'));
  });
});

describe('named network namespaces of processes (real kernel)', () => {
  const procs: ChildProcess[] = [];
  const NAME = `${RUN}pid`;

  after(async () => {
    for (const p of procs.splice(0)) p.kill();
    await sh('ip', 'netns', 'del', NAME).catch(() => undefined);
  });

  /** A process in a network namespace of its own (unshare execs sleep: same pid). */
  async function isolated(): Promise<number> {
    const p = spawn('unshare', ['--net', 'sleep', '600'], { stdio: 'ignore' });
    procs.push(p);
    // Until unshare has made the namespace, the pid's is still ours.
    const ours = (await sh('readlink', '/proc/self/ns/net')).trim();
    for (let i = 0; i < 100 && (await sh('readlink', `/proc/${p.pid}/ns/net`)).trim() === ours; i++) await sleep(50);
    return p.pid!;
  }

  test('attach names a process\'s namespace (again: nothing; another process: replaced), detach removes the name, list filters by prefix', async () => {
    const a = await isolated();
    const b = await isolated();
    const log: string[] = [];
    const ip = new Iproute({ onCommand: (tool, args) => log.push(`${tool} ${args.join(' ')}`) });

    await attachNetns(NAME, a, ip);
    assert.equal((await sh('ip', 'netns', 'identify', String(a))).trim(), NAME);
    log.length = 0;
    await attachNetns(NAME, a, ip);
    assert.deepEqual(log, [], 'already named: nothing to do');
    await attachNetns(NAME, b, ip);
    assert.deepEqual(log, [`ip netns delete ${NAME}`, `ip netns attach ${NAME} ${b}`]);
    assert.equal((await sh('ip', 'netns', 'identify', String(b))).trim(), NAME);
    assert.equal((await sh('ip', 'netns', 'identify', String(a))).trim(), '');
    // The named namespace is usable by the rest of the module.
    await applyServiceLb(NAME, [{ vip: '10.79.9.2', backends: ['10.79.9.3'] }]);
    assert.deepEqual(await readServiceLb(NAME), [{ vip: '10.79.9.2', backends: ['10.79.9.3'] }]);

    assert.deepEqual(await listNetns(NAME), [NAME]);
    assert.deepEqual(await listNetns(`${NAME}x`), []);
    await detachNetns(NAME, ip);
    assert.deepEqual(await listNetns(NAME), []);
    await detachNetns(NAME, ip); // missing: fine

    await assert.rejects(attachNetns('../x', a), (err: unknown) => err instanceof ShoalError && err.code === 'INVALID_ARGUMENT');
    await assert.rejects(attachNetns(NAME, 0x3fffffff), (err: unknown) => err instanceof ShoalError && err.code === 'NOT_FOUND');
  });
});
