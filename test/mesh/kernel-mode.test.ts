// The routing mesh in kernel mode (`shoald --mesh-mode kernel`, needs root and iptables): three
// nodes on 127.0.0.1-3 sharing this machine's Docker engine; a 2-replica busybox httpd service
// pinned to w1. Connections to w1's address are DNAT'ed by the kernel straight to both replicas
// (w1's chain in `iptables -t nat -S`, its rule counters move), the other nodes still forward
// through the userland mesh, a killed replica's rule is replaced (the failures in between are
// measured and reported), scale to 0 refuses, a replica on each worker spreads over both from w1
// (the kernel takes the local share, the listener the remote one), `service rm` empties the
// chain, a crashed node's stale chains are replaced by `shoald run` (which keeps the mode), and
// `shoald` stopping (SIGTERM) removes its chains and jumps.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { promisify } from 'node:util';
import * as http from 'node:http';
import { execRunner, findRemoval, kernelChains, removalText } from '@shoal/mesh';
import { probe } from '../helpers/net.js';
import { TestCluster, type Daemon, eventually, removeContainersOf } from '../helpers/shoald.js';

const IMAGE = 'shoal/busybox:latest';
const HOSTS = { m1: '127.0.0.1', w1: '127.0.0.2', w2: '127.0.0.3' } as const;
const PORT = 29080;
const KERNEL = ['--mesh-mode', 'kernel'];

interface TaskView {
  task: { id: string; nodeId: string; desiredState: string; status: { state: string; containerId: string } };
}

/** One GET on a new connection; the body (rejects on error, or after timeoutMs). */
function get(host: string, port = PORT, timeoutMs = 3_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host, port, path: '/', agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve(body.trim()));
      res.on('error', reject);
      // Closed before its end (a no-op once resolved): never leave a client waiting.
      res.on('close', () => reject(new Error('closed before the end of the response')));
    });
    req.on('error', reject);
    // A deadline for the whole request: req.setTimeout starts only once connected, and a SYN
    // DNATed to a killed replica (its conntrack entry keeps every retransmit going there) can
    // wait minutes to connect.
    const deadline = setTimeout(() => req.destroy(new Error('timeout')), timeoutMs);
    req.on('close', () => clearTimeout(deadline));
  });
}

const execAsync = async (file: string, args: string[]) => (await promisify(execFile)(file, args, { encoding: 'utf8' })).stdout;
const natRules = () => execFileSync('iptables', ['-w', '5', '-t', 'nat', '-S'], { encoding: 'utf8' });
const filterRules = () => execFileSync('iptables', ['-w', '5', '-S'], { encoding: 'utf8' });
/** The DNAT targets in a node's chain, in rule order. */
function dnatTargets(chain: string): string[] {
  return dnatTargetsIn(natRules(), chain);
}
function dnatTargetsIn(rules: string, chain: string): string[] {
  return rules
    .split('\n')
    .filter((l) => l.startsWith(`-A ${chain} `) && l.includes(' -j DNAT '))
    .map((l) => / --to-destination (\S+)/.exec(l)?.[1] ?? '?');
}
/** Packets (= connections: nat sees first packets only) through a chain's DNAT rules. */
function dnatPackets(chain: string): number {
  const out = execFileSync('iptables', ['-w', '5', '-t', 'nat', '-L', chain, '-n', '-v', '-x'], { encoding: 'utf8' });
  return out
    .split('\n')
    .filter((l) => l.includes('DNAT'))
    .reduce((a, l) => a + Number(l.trim().split(/\s+/)[0]), 0);
}
const containerIp = (id: string) => execFileSync('docker', ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', id], { encoding: 'utf8' }).trim();

/** Safety net: remove whatever chains these nodes left (a daemon that did not stop cleanly). */
async function removeChains(nodeIds: string[]): Promise<string[]> {
  const left: string[] = [];
  for (const id of nodeIds) {
    const ch = kernelChains(id);
    for (const table of ['nat', 'filter'] as const) {
      const r = findRemoval(ch, await execRunner('iptables-save', ['-t', table]));
      const text = removalText(table, r);
      if (!text) continue;
      left.push(`${table}: ${r.chains.join(', ')} (${r.deletes.length} jumps)`);
      await execRunner('iptables-restore', ['-w', '5', '--noflush'], text);
    }
  }
  return left;
}

function canRun(): string | false {
  if (process.getuid?.() !== 0) return 'kernel mode needs root';
  try {
    execFileSync('iptables', ['-w', '5', '-t', 'nat', '-S'], { stdio: 'ignore' });
    execFileSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' });
    return false;
  } catch (err) {
    return `needs iptables and Docker with ${IMAGE}: ${(err as Error).message}`;
  }
}

describe('routing mesh, kernel mode', { skip: canRun() }, () => {
  const c = new TestCluster();
  let m1: Daemon;
  let w1: Daemon;
  const ids: Record<string, string> = {};
  let w1Chain = '';

  const tasks = async (service: string) => (await m1.call<{ tasks: TaskView[] }>('ListTasks', { service })).tasks;
  const running = async (service: string) =>
    (await tasks(service)).filter((t) => t.task.desiredState === 'running' && t.task.status.state === 'running');

  async function joinKernel(name: 'w1' | 'w2'): Promise<Daemon> {
    const { token } = await m1.call<{ token: string }>('GetJoinToken', { role: 'worker' });
    const d = await c.newDaemon(name, HOSTS[name]);
    d.start(['join', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--join-addr', m1.addr, '--token', token, '--hostname', name, ...KERNEL]);
    return d;
  }

  before(async () => {
    m1 = await c.init('m1', KERNEL);
    w1 = await joinKernel('w1');
    await joinKernel('w2');
    await eventually('three ready nodes', async () => {
      const r = await m1.call<{ nodes: { node: { id: string; description: { hostname: string }; status: { state: string; meshAddr: string } } }[] }>('ListNodes');
      if (!(r.nodes.length === 3 && r.nodes.every((n) => n.node.status.state === 'ready' && n.node.status.meshAddr))) return undefined;
      for (const n of r.nodes) ids[n.node.description.hostname] = n.node.id;
      return true;
    });
    w1Chain = kernelChains(ids.w1!).nat;
    await m1.call('CreateService', {
      spec: {
        name: 'kweb',
        image: IMAGE,
        args: ['sh', '-c', 'hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'],
        replicas: 2,
        stopGracePeriodMs: 500,
        restartPolicy: { condition: 'any', delayMs: 0 },
        constraints: ['node.hostname==w1'],
        ports: [{ protocol: 'tcp', targetPort: 8080, publishedPort: PORT, publishMode: 'ingress' }],
      },
    });
    await eventually('2 replicas running', async () => ((await running('kweb')).length === 2 ? true : undefined), 60_000);
  });

  after(async () => {
    // SIGTERM: each node removes its own chains; then the safety net (and report what it found).
    await Promise.all(c.daemons.map((d) => d.kill('SIGTERM')));
    const left = await removeChains(Object.values(ids));
    removeContainersOf(Object.values(ids));
    await c.stop();
    assert.deepEqual(left, [], 'chains left by a stopped node');
  });

  test('every node has its chain and jumps; w1 DNATs to both replicas', async () => {
    for (const id of Object.values(ids)) {
      const ch = kernelChains(id);
      const nat = natRules();
      assert.ok(nat.includes(`-N ${ch.nat}`) && nat.includes(`-N ${ch.post}`), `${ch.nat} exists`);
      for (const hook of ['PREROUTING', 'OUTPUT']) assert.match(nat, new RegExp(`-A ${hook} -d 127\\.0\\.0\\.\\d/32 -p tcp .*-j ${ch.nat}\\n`));
      assert.match(nat, new RegExp(`-A POSTROUTING .*-j ${ch.post}\\n`));
      assert.match(filterRules(), new RegExp(`-A FORWARD .*-j ${ch.fwd}\\n`));
    }
    const ips = (await running('kweb')).map((t) => `${containerIp(t.task.status.containerId)}:8080`).sort();
    await eventually('w1 DNATs to both replicas', async () => (JSON.stringify(dnatTargets(w1Chain)) === JSON.stringify(ips) ? true : undefined), 20_000);
    // Nodes without a local replica have nothing to DNAT.
    assert.deepEqual(dnatTargets(kernelChains(ids.m1!).nat), []);
    assert.deepEqual(dnatTargets(kernelChains(ids.w2!).nat), []);
  });

  test('through w1 (kernel) and through m1, w2 (userland): both replicas answer', async () => {
    const before = dnatPackets(w1Chain);
    for (const host of [HOSTS.w1, HOSTS.m1, HOSTS.w2]) {
      const seen = new Set<string>();
      for (let i = 0; i < 40; i++) seen.add(await get(host));
      assert.equal(seen.size, 2, `both replicas answered through ${host}: ${[...seen].join(', ')}`);
    }
    // w1's 40 went through its DNAT rules (m1's and w2's reach w1 through the forwarding port).
    assert.ok(dnatPackets(w1Chain) - before >= 40, `DNAT packets ${dnatPackets(w1Chain) - before}`);
  });

  test('a killed replica: its rule goes, requests succeed once the replacement runs (failures in between measured)', async (t) => {
    const [victim] = await running('kweb');
    const victimIp = `${containerIp(victim!.task.status.containerId)}:8080`;
    const log: { at: number; ms: number; host: string; ok: boolean; err?: string }[] = [];
    let stop = false;
    // Concurrent clients (a serial one would sit in one stuck connect for the whole window):
    // six on w1 (kernel DNAT), two on m1 (userland, forwarded to w1). Nothing below blocks the
    // event loop while they run (async exec only).
    const current: { host: string; at: number }[] = [];
    const client = async (host: string) => {
      const me = { host, at: 0 };
      current.push(me);
      while (!stop) {
        const at = Date.now();
        me.at = at;
        await get(host, PORT, 2_000).then(
          () => log.push({ at, ms: Date.now() - at, host, ok: true }),
          (err: Error) => log.push({ at, ms: Date.now() - at, host, ok: false, err: (err as NodeJS.ErrnoException).code ?? err.message }),
        );
      }
    };
    const load = Promise.all([...Array.from({ length: 6 }, () => client(HOSTS.w1)), client(HOSTS.m1), client(HOSTS.m1)]);
    // Whatever fails below, the clients stop: left running, they would keep this file from ending.
    t.after(async () => {
      stop = true;
      await load;
    });
    await eventually('the clients under way', async () => log.filter((x) => x.ok).length >= 8);
    const killedAt = Date.now();
    await execAsync('docker', ['kill', victim!.task.status.containerId]);
    const killReturnedMs = Date.now() - killedAt;
    // How long until the kernel stops sending new connections there.
    let ruleGoneMs = -1; // not seen: the replacement took the same address before a look
    for (let deadline = Date.now() + 20_000; Date.now() < deadline; ) {
      const to = dnatTargetsIn(await execAsync('iptables', ['-w', '5', '-t', 'nat', '-S', w1Chain]), w1Chain);
      if (!to.includes(victimIp) || to.length < 2) {
        ruleGoneMs = Date.now() - killedAt;
        break;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    await eventually('a replacement running', async () => {
      const r = await running('kweb');
      return r.length === 2 && !r.some((x) => x.task.id === victim!.task.id) ? true : undefined;
    }, 30_000);
    const ips = await Promise.all((await running('kweb')).map(async (x) => `${(await execAsync('docker', ['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', x.task.status.containerId])).trim()}:8080`));
    ips.sort();
    await eventually('w1 DNATs to both current replicas', async () => {
      const to = dnatTargetsIn(await execAsync('iptables', ['-w', '5', '-t', 'nat', '-S', w1Chain]), w1Chain);
      return JSON.stringify(to) === JSON.stringify(ips) ? true : undefined;
    }, 10_000);
    const replacedAt = Date.now();
    // Load on until requests begun after the replacement have come back through both nodes.
    const since = (h: string) => log.filter((x) => x.host === h && x.at >= replacedAt);
    await eventually('requests through both nodes after the replacement', async () => [HOSTS.w1, HOSTS.m1].every((h) => since(h).length >= 10), 30_000).catch((err: Error) => {
      const seen = Object.fromEntries([HOSTS.w1, HOSTS.m1].map((h) => [h, { ok: since(h).filter((x) => x.ok).length, failed: [...new Set(since(h).filter((x) => !x.ok).map((x) => x.err))] }]));
      throw new Error(`${err.message}: ${JSON.stringify(seen)}, ${log.length} requests in all; clients in their request for ${current.map((c) => `${c.host} ${Date.now() - c.at} ms`).join(', ')}`);
    });
    stop = true;
    await load;
    // In flight at the kill (served by the dying container: lost in any mode), or new ones.
    const failed = log.filter((x) => !x.ok);
    const inFlight = failed.filter((x) => x.at < killedAt);
    const newOnes = failed.filter((x) => x.at >= killedAt);
    const during = (host: string) => log.filter((x) => x.host === host && x.at >= killedAt && x.at < killedAt + Math.max(ruleGoneMs, 0));
    const report = {
      requests: log.length,
      killReturnedMs,
      ruleUpdateMs: ruleGoneMs,
      replacementMs: replacedAt - killedAt,
      startedBeforeRuleUpdate: { w1Kernel: during(HOSTS.w1).length, m1Userland: during(HOSTS.m1).length },
      failedInFlightAtKill: inFlight.length,
      failedNew: { w1Kernel: newOnes.filter((x) => x.host === HOSTS.w1).length, m1Userland: newOnes.filter((x) => x.host === HOSTS.m1).length },
      slowOver900ms: { w1Kernel: log.filter((x) => x.ok && x.host === HOSTS.w1 && x.ms >= 900).length, m1Userland: log.filter((x) => x.ok && x.host === HOSTS.m1 && x.ms >= 900).length },
      errors: [...new Set(failed.map((x) => x.err))],
    };
    t.diagnostic(`kill window: ${JSON.stringify(report)}`);
    console.log(`# kernel mode, killed replica: ${JSON.stringify(report)}`);
    assert.ok(log.length > 10, `requests were made (${log.length})`);
    const late = failed.filter((x) => x.at >= replacedAt);
    assert.deepEqual(late, [], 'no failure once the replacement runs and the rules have it');
    // After the replacement: every request succeeds, through every node, and both replicas answer
    // within the mesh's failure backoff (2 s): a replacement whose httpd was not listening yet
    // when a listener first tried it is skipped (not failed) until its backoff ends.
    for (const host of Object.values(HOSTS)) {
      const seen = new Set<string>();
      for (let deadline = Date.now() + 6_000; seen.size < 2 && Date.now() < deadline; ) {
        for (let i = 0; i < 10; i++) seen.add(await get(host));
        if (seen.size < 2) await new Promise((r) => setTimeout(r, 250));
      }
      assert.equal(seen.size, 2, `both replicas through ${host}`);
    }
  });

  test('scale to 0: w1\'s chain is empty and every node refuses; scale back: served again', async () => {
    await m1.call('ScaleService', { service: 'kweb', replicas: 0 });
    await eventually('w1 DNATs nothing', async () => (dnatTargets(w1Chain).length === 0 ? true : undefined), 30_000);
    for (const host of Object.values(HOSTS)) {
      await eventually(`${host}:${PORT} refuses`, async () => ((await probe(host, PORT)) === 'refused' ? true : undefined), 30_000);
    }
    await m1.call('ScaleService', { service: 'kweb', replicas: 2 });
    for (const host of Object.values(HOSTS)) {
      await eventually(`${host}:${PORT} serves again`, async () => get(host).catch(() => undefined), 60_000);
    }
    await eventually('w1 DNATs to 2 replicas', async () => (dnatTargets(w1Chain).length === 2 ? true : undefined), 30_000);
  });

  test('service rm: the chain is emptied and the port closed on every node', async () => {
    await m1.call('RemoveService', { service: 'kweb' });
    await eventually('w1 DNATs nothing', async () => (dnatTargets(w1Chain).length === 0 ? true : undefined), 30_000);
    assert.equal(natRules().split('\n').filter((l) => l.startsWith(`-A ${kernelChains(ids.w1!).post} `)).length, 0, 'no MASQUERADE rule left');
    for (const host of Object.values(HOSTS)) {
      await eventually(`${host}:${PORT} closed`, async () => ((await probe(host, PORT)) === 'refused' ? true : undefined), 30_000);
    }
  });

  test('a replica on each worker: from w1, the kernel takes the local share, the listener the remote one', async () => {
    await m1.call('CreateService', {
      spec: {
        name: 'kmix',
        image: IMAGE,
        args: ['sh', '-c', 'hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'],
        replicas: 2,
        stopGracePeriodMs: 500,
        constraints: ['node.role==worker'],
        ports: [{ protocol: 'tcp', targetPort: 8080, publishedPort: PORT + 1, publishMode: 'ingress' }],
      },
    });
    const r = await eventually('kmix running', async () => {
      const x = await running('kmix');
      return x.length === 2 ? x : undefined;
    }, 60_000);
    const onW1 = r.filter((x) => x.task.nodeId === ids.w1);
    if (onW1.length !== 1) {
      // The scheduler placed both on one worker: nothing mixed to check here.
      await m1.call('RemoveService', { service: 'kmix' });
      assert.fail(`expected one replica per worker, got ${onW1.length} on w1`);
    }
    const localIp = `${containerIp(onW1[0]!.task.status.containerId)}:8080`;
    await eventually('w1 DNATs one connection in two to its replica', async () => {
      const rules = natRules().split('\n').filter((l) => l.startsWith(`-A ${w1Chain} `) && l.includes(`--dport ${PORT + 1} `) && l.includes(' -j DNAT '));
      return rules.length === 1 && rules[0]!.includes('--every 2 --packet 0') && rules[0]!.includes(localIp) ? true : undefined;
    }, 30_000);
    const counts: Record<string, number> = {};
    for (let i = 0; i < 40; i++) {
      const b = await get(HOSTS.w1, PORT + 1);
      counts[b] = (counts[b] ?? 0) + 1;
    }
    const n = Object.values(counts);
    assert.equal(n.length, 2, `both replicas through w1: ${JSON.stringify(counts)}`);
    assert.ok(Math.min(...n) >= 15, `about half each: ${JSON.stringify(counts)}`);
    await m1.call('RemoveService', { service: 'kmix' });
    await eventually('w1 DNATs nothing', async () => (dnatTargets(w1Chain).length === 0 ? true : undefined), 30_000);
  });

  test('a crash leaves the chains; `shoald run` (no flag: the mode is kept) replaces them, jumps not doubled', async () => {
    const ch = kernelChains(ids.w1!);
    const jumps = () => natRules().split('\n').filter((l) => /^-A (OUTPUT|PREROUTING|POSTROUTING) /.test(l) && l.includes(`-j ${ch.nat}`)).length;
    await w1.kill('SIGKILL');
    assert.ok(natRules().includes(`-N ${ch.nat}`), 'left behind by the crash');
    // PREROUTING and OUTPUT for TCP and for UDP, POSTROUTING.
    assert.equal(jumps(), 5);
    // Mark the stale set: the restarted node must replace it, not keep it.
    execFileSync('iptables', ['-w', '5', '-t', 'nat', '-A', ch.nat, '-p', 'tcp', '--dport', '1', '-j', 'RETURN']);
    w1.start(['run', '--data-dir', w1.dataDir]);
    await eventually('w1 back in kernel mode', async () => {
      const rules = natRules();
      return rules.includes(`-N ${ch.nat}`) && !rules.includes(`-A ${ch.nat} -p tcp -m tcp --dport 1 -j RETURN`) ? true : undefined;
    }, 20_000);
    assert.equal(jumps(), 5, 'one jump per hook (and protocol)');
  });

  test('shoald stopping (SIGTERM) removes its chains and jumps', async () => {
    const ch = kernelChains(ids.w1!);
    assert.ok(natRules().includes(`-N ${ch.nat}`));
    await w1.kill('SIGTERM');
    const all = natRules() + filterRules();
    for (const name of [ch.nat, ch.post, ch.fwd]) assert.ok(!all.includes(name), `${name} gone`);
    // The other nodes keep theirs.
    assert.ok(natRules().includes(`-N ${kernelChains(ids.m1!).nat}`));
  });
});

