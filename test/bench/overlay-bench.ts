// npm run bench:overlay [-- --duration 5 --connections 32 --threads 2 --rounds 3 --dns-queries 4000 --kills 7 --parts vip,dns,removal,mesh]
// Overlay networks on a lab of real hosts (1 manager + 2 workers, TestLab; LAB_IMAGE/SHOAL_IMAGE
// name the images), measured in one run, printed as ONE JSON line:
//  1. a service VIP against the plain Docker bridge, same busybox httpd, same wrk: `api` (1
//     replica on worker2) through its VIP from a client task on worker1 (VXLAN between hosts, the
//     nftables DNAT in the client's namespace) vs the same container's docker0 address from a plain
//     container on worker2's docker0 (one bridge hop); rounds alternate the two, medians reported.
//  2. the service DNS as a task sees it: A queries for api and tasks.api to the client's
//     nameserver (the network's gateway), timed inside the client's namespace.
//  3. how long a dead replica stays visible: api at 3 replicas, one killed (`docker kill` on its
//     host) again and again; from its death to (a) tasks.api without its address, (b) the client's
//     VIP map (nft table ip shoal_lb in the client's namespace) without it.
//  4. the routing mesh as it stands (measureMesh): a published port reached from this host at a
//     node without a replica and at the node with it, against the direct path.
// wrk and the DNS probe are this host's programs run in a container's network namespace
// (nsenter -n): nested containers are processes of this kernel, so only their pid is needed.
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { cpus, loadavg, release } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { CLI } from '../helpers/cli.js';
import { TestLab, lines, ok } from '../helpers/lab.js';
import { eventually } from '../helpers/shoald.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '5' },
    connections: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    rounds: { type: 'string', default: '3' },
    'dns-queries': { type: 'string', default: '4000' },
    kills: { type: 'string', default: '7' },
    // Which parts to measure: any of vip,dns,removal,mesh (the mesh alone: --parts mesh).
    parts: { type: 'string', default: 'vip,dns,removal,mesh' },
  },
});
const parts = new Set(values.parts!.split(',').map((p) => p.trim()));
for (const p of parts) if (!['vip', 'dns', 'removal', 'mesh'].includes(p)) throw new Error(`--parts: unknown part ${p} (vip, dns, removal, mesh)`);
const ROUNDS = Math.max(1, Number(values.rounds));
const NODES = ['manager1', 'worker1', 'worker2'];
const NET = 'benchnet';
const MESH_PORT = 8080;
/** How often the removal watchers look (DNS and the nft table). */
const POLL_MS = 20;
const PROBE = join(fileURLToPath(new URL('.', import.meta.url)), 'dns-probe.js');
const TARGETS = { vip_over_bridge_rps: 0.8, vip_over_bridge_p99: 1.5, dns_p99_ms: 2, removal_ms: 1000 };

/** Progress on stderr; the result alone on stdout. */
const log = (msg: string) => process.stderr.write(`[overlay-bench ${new Date().toISOString().slice(11, 19)}] ${msg}\n`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round2 = (x: number) => Math.round(x * 100) / 100;
function median(xs: number[]): number {
  const v = [...xs].sort((a, b) => a - b);
  return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
}
/** Nearest-rank percentile. */
function pct(xs: number[], p: number): number {
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.max(0, Math.ceil((p / 100) * v.length) - 1))]!;
}

/**
 * The pid, in this host's pid namespace, of an inner container's init. The lab node has a pid
 * namespace of its own, so the node engine's `State.Pid` is not a pid here, and NSpid would need
 * the node's namespace told apart from the other nodes'; the cgroup path, though, carries the inner
 * engine's full container id (64 hex digits, unique across every engine) at whatever depth it
 * nests. Of the processes in that cgroup, the one that is pid 1 of its own namespace is the init.
 */
function outerPid(containerId: string): number {
  const found: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cgroup`, 'utf8').includes(containerId)) found.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  for (const pid of found) {
    const nspid = /^NSpid:\s+(.*)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]?.trim().split(/\s+/);
    if (nspid?.at(-1) === '1') return pid;
  }
  throw new Error(`no process of container ${containerId.slice(0, 12)} found here (cgroup matches: ${found.join(', ') || 'none'})`);
}

/** True once a process is gone or a zombie (killed, not yet reaped). */
function dead(pid: number): boolean {
  try {
    return /^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true;
  }
}

interface Wrk { rps: number; p99: number; errors: number }

/** wrk against a URL, from the network namespace of `pid` (this host's own when undefined). */
function wrk(pid: number | undefined, url: string, seconds = Number(values.duration)): Wrk {
  const args = ['-t', values.threads!, '-c', values.connections!, '-d', `${seconds}s`, '--latency', '--timeout', '2s', url];
  const r = pid === undefined ? spawnSync('wrk', args, { encoding: 'utf8' }) : spawnSync('nsenter', ['-t', String(pid), '-n', 'wrk', ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`wrk failed on ${url}: ${r.stderr || r.stdout}`);
  const out = r.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const m = /99%\s+([\d.]+)(us|ms|s)\b/.exec(out);
  const p99 = m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN;
  const err = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = (err ? err.slice(1).reduce((a, x) => a + Number(x), 0) : 0) + non2xx;
  return { rps: Math.round(rps), p99: round2(p99), errors };
}

/** Median rps and p99 of rounds, with the rounds themselves and their errors summed. */
function summary(xs: Wrk[]) {
  return {
    rps: Math.round(median(xs.map((x) => x.rps))),
    p99: round2(median(xs.map((x) => x.p99))),
    errors: xs.reduce((a, x) => a + x.errors, 0),
    rounds: xs.map((x) => ({ rps: x.rps, p99: x.p99 })),
  };
}

/** A command in the network namespace of `pid`, asynchronously: its stdout. */
function inNetns(pid: number, cmd: string[]): Promise<{ code: number | null; stdout: string }> {
  return new Promise((resolve, reject) => {
    const c = spawn('nsenter', ['-t', String(pid), '-n', ...cmd], { stdio: ['ignore', 'pipe', 'ignore'] });
    let stdout = '';
    c.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    c.on('error', reject).on('exit', (code) => resolve({ code, stdout }));
  });
}

/** DNS latency: `count` A queries from the namespace of `pid` (dns-probe.js latency). */
function dnsLatency(pid: number, server: string, count: number, names: string[]) {
  const r = spawnSync('nsenter', ['-t', String(pid), '-n', process.execPath, PROBE, 'latency', server, String(count), ...names], { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`dns-probe failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { ms: number[]; timeouts: number; rcodes: Record<string, number> };
}

/** An address as a whole word of nft's listing (10.0.1.3 is not 10.0.1.30). */
const addrIn = (text: string, addr: string) => new RegExp(`(^|[^\\d.])${addr.replace(/\./g, '\\.')}(?![\\d.]|\\.\\d)`).test(text);

/** Other labs on this machine (their nodes' containers), by name. */
function otherLabs(): string[] {
  const r = spawnSync('docker', ['ps', '--filter', 'label=org.shoal.lab', '--format', '{{.Label "org.shoal.lab"}}'], { encoding: 'utf8' });
  return [...new Set(lines(r.stdout ?? ''))].filter((n) => n !== lab.name).sort();
}

const loadBefore = loadavg().map(round2);
const lab = new TestLab('obench');
const othersBefore = otherLabs();

const shoal = (...args: string[]) => ok(lab.shoal(...args));
const running = (service: string) => (lab.ps(service) ?? []).filter((t) => t.desiredState === 'running' && t.currentState === 'running');

/** The first running container of a service on a node. */
function containerOn(node: string, service: string): string {
  const [id] = lab.containers(node, service);
  if (!id) throw new Error(`no running ${service} container on ${node}`);
  return id;
}

/** A container's address on a network of its node's engine (`bridge`: docker0). */
function engineAddr(node: string, id: string, network = 'bridge'): string {
  const ip = lab.exec(node, 'docker', 'inspect', '-f', `{{(index .NetworkSettings.Networks "${network}").IPAddress}}`, id).trim();
  if (!ip) throw new Error(`container ${id.slice(0, 12)} has no address on ${node}'s ${network}`);
  return ip;
}

/** A command on a lab host as `lab.exec` runs it, asynchronously: its wall time (ms). */
function labExecAsync(node: string, ...cmd: string[]): Promise<number> {
  const env: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: lab.state };
  delete env['SHOAL_HOST'];
  delete env['SHOAL_CERT_PATH'];
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const c = spawn(process.execPath, [CLI, 'lab', 'exec', node, '--name', lab.name, '--', ...cmd], { env, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    c.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    c.on('error', reject).on('exit', (code) => (code === 0 ? resolve(performance.now() - t0) : reject(new Error(`lab exec ${cmd.join(' ')}: ${stderr.trim()}`))));
  });
}

interface Ctx {
  image: string;
  clientPid: number;
  nameserver: string;
  /** A plain container on worker2's docker0 (not a task): the bridge client. */
  bridgeClientPid: number;
}

/** 1: the VIP from worker1's client against docker0 on worker2, rounds alternating the two. */
function measureVip(ctx: Ctx) {
  const vipCidr = (JSON.parse(shoal('service', 'inspect', '--format', 'json', 'api')) as { endpoint: { virtualIps: { addr: string }[] } }).endpoint.virtualIps[0]!.addr;
  const vip = vipCidr.split('/')[0]!;
  const apiBridge = engineAddr('worker2', containerOn('worker2', 'api'));
  const targets = {
    vip: () => wrk(ctx.clientPid, `http://${vip}/`),
    bridge: () => wrk(ctx.bridgeClientPid, `http://${apiBridge}/`),
  };
  // Warm-up: connections, conntrack, ARP and the FDB in place before anything is counted.
  wrk(ctx.clientPid, `http://${vip}/`, 1);
  wrk(ctx.bridgeClientPid, `http://${apiBridge}/`, 1);
  const runs: Record<'vip' | 'bridge', Wrk[]> = { vip: [], bridge: [] };
  for (let i = 0; i < ROUNDS; i++) {
    const order = i % 2 === 0 ? (['vip', 'bridge'] as const) : (['bridge', 'vip'] as const);
    for (const k of order) runs[k].push(targets[k]());
  }
  return { vip, apiBridge, vip_: summary(runs.vip), bridge: summary(runs.bridge) };
}

/** 2: A queries for api and tasks.api to the client's nameserver, from its namespace. */
function measureDns(ctx: Ctx) {
  dnsLatency(ctx.clientPid, ctx.nameserver, 200, ['api', 'tasks.api']);
  const r = dnsLatency(ctx.clientPid, ctx.nameserver, Number(values['dns-queries']), ['api', 'tasks.api']);
  return {
    dns_p50_ms: round2(pct(r.ms, 50)),
    dns_p90_ms: round2(pct(r.ms, 90)),
    dns_p99_ms: round2(pct(r.ms, 99)),
    dns_max_ms: round2(Math.max(...r.ms)),
    dns_queries: r.ms.length + r.timeouts,
    dns_timeouts: r.timeouts,
    dns_rcodes: r.rcodes,
  };
}

/** The client's VIP map as nft lists it. */
async function lbTable(ctx: Ctx): Promise<string> {
  return (await inNetns(ctx.clientPid, ['nft', 'list', 'table', 'ip', 'shoal_lb'])).stdout;
}

/** 3: replicas killed one after the other; how long each stays in tasks.api and in the client's VIP map. */
async function measureRemoval(ctx: Ctx) {
  shoal('service', 'update', '-d', '--constraint-rm', 'node.hostname==worker2', '--replicas', '3', 'api');
  // The client's view of tasks.api, polled from its namespace for the whole part.
  const watch = spawn('nsenter', ['-t', String(ctx.clientPid), '-n', process.execPath, PROBE, 'watch', ctx.nameserver, 'tasks.api', String(POLL_MS)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const seen: { t: number; addrs: string[] }[] = [];
  createInterface({ input: watch.stdout }).on('line', (l) => seen.push(JSON.parse(l) as { t: number; addrs: string[] }));
  const current = () => seen.at(-1)?.addrs ?? [];
  const kills: { node: string; dns_ms: number | null; vip_ms: number | null; kill_call_ms: number }[] = [];
  try {
    for (let k = 0; k < Number(values.kills); k++) {
      // Three replicas everywhere the client looks: the orchestrator, tasks.api, the VIP map.
      await eventually('3 api replicas running, in tasks.api and in the client\'s VIP map', async () => {
        if (running('api').length !== 3 || current().length !== 3) return undefined;
        const table = await lbTable(ctx);
        return current().every((a) => addrIn(table, a)) ? true : undefined;
      }, 180_000);
      const hosts = NODES.filter((n) => lab.containers(n, 'api').length > 0);
      const node = hosts[k % hosts.length]!;
      const id = containerOn(node, 'api');
      const pid = outerPid(id);
      const own = (await inNetns(pid, ['ip', '-4', '-o', 'addr', 'show'])).stdout;
      const addr = current().find((a) => addrIn(own, a));
      if (!addr) throw new Error(`the victim ${id.slice(0, 12)} on ${node} has none of tasks.api's addresses (${current().join(', ')})`);

      // Its death is the moment its init is gone (or a zombie), seen here within a millisecond or
      // so, not when `lab exec` returns (a CLI start, a docker exec and back around the kill).
      let diedAt = 0;
      const deathWatch = setInterval(() => {
        if (!diedAt && dead(pid)) diedAt = Date.now();
      }, 1);
      let vipGoneAt = 0;
      let stopNft = false;
      const nftPoll = (async () => {
        while (!stopNft && !vipGoneAt) {
          const table = await lbTable(ctx);
          if (diedAt && table.includes('shoal_lb') && !addrIn(table, addr)) vipGoneAt = Date.now();
          else await sleep(POLL_MS);
        }
      })();
      const killCall = await labExecAsync(node, 'docker', 'kill', id);
      let dnsGoneAt = 0;
      try {
        await eventually(`replica ${addr} out of tasks.api and the VIP map`, async () => {
          if (!diedAt) return undefined;
          dnsGoneAt ||= seen.find((e) => e.t >= diedAt && !e.addrs.includes(addr))?.t ?? 0;
          return dnsGoneAt && vipGoneAt ? true : undefined;
        }, 30_000);
      } catch {
        // Reported as null: a removal that took more than 30 s is a result, not a bench failure.
      }
      stopNft = true;
      clearInterval(deathWatch);
      await nftPoll;
      log(`kill ${k + 1} on ${node} (${addr}): dns ${dnsGoneAt ? dnsGoneAt - diedAt : 'none'} ms, vip ${vipGoneAt ? vipGoneAt - diedAt : 'none'} ms`);
      kills.push({ node, dns_ms: dnsGoneAt ? dnsGoneAt - diedAt : null, vip_ms: vipGoneAt ? vipGoneAt - diedAt : null, kill_call_ms: Math.round(killCall) });
    }
  } finally {
    watch.stdin.end();
    watch.kill();
  }
  const dns = kills.map((x) => x.dns_ms).filter((x): x is number => x !== null);
  const vipMs = kills.map((x) => x.vip_ms).filter((x): x is number => x !== null);
  return {
    removal_dns_median_ms: dns.length ? median(dns) : null,
    removal_dns_p90_ms: dns.length ? pct(dns, 90) : null,
    removal_vip_median_ms: vipMs.length ? median(vipMs) : null,
    removal_vip_p90_ms: vipMs.length ? pct(vipMs, 90) : null,
    removal_kills: kills,
  };
}

/** The nodes' mesh mode as each reports it (NodeStatus.mesh_mode: userland, kernel, kernel+ingress). */
function meshModes(nodes: string[]): { modes: Record<string, string>; source: string } {
  const modes = Object.fromEntries(nodes.map((n) => [n, (JSON.parse(shoal('node', 'inspect', '--format', 'json', n)) as { status: { meshMode: string } }).status.meshMode]));
  return { modes, source: 'node inspect (status.meshMode)' };
}

/**
 * 4: the routing mesh as it stands: api back to 1 replica on worker2 with a published port; wrk
 * from this host to worker1's lab address (no replica: the mesh forwards to worker2) and to
 * worker2's (the replica's node), each round also the direct path. This host has no route to a
 * node's docker0, so "direct" is the bridge client on worker2 to the container's docker0 address
 * (the bridge_rps path), said so in the result. Separate so the mesh can be measured again alone.
 */
export async function measureMesh(ctx: Ctx) {
  shoal('service', 'update', '-d', '--replicas', '1', '--constraint-add', 'node.hostname==worker2', '--publish-add', `published=${MESH_PORT},target=80`, 'api');
  await eventually('api: 1 replica, on worker2', async () => {
    const r = running('api');
    return r.length === 1 && r[0]!.node === 'worker2' && NODES.every((n) => lab.containers(n, 'api').length === (n === 'worker2' ? 1 : 0)) ? true : undefined;
  }, 180_000);
  const urls = {
    mesh_remote: `http://${lab.addr('worker1')}:${MESH_PORT}/`,
    mesh_local: `http://${lab.addr('worker2')}:${MESH_PORT}/`,
  };
  for (const [what, url] of Object.entries(urls)) {
    await eventually(`${what} answers`, async () => ((await fetch(url, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined))?.ok ? true : undefined), 60_000);
  }
  const direct = `http://${engineAddr('worker2', containerOn('worker2', 'api'))}/`;
  const targets: Record<string, () => Wrk> = {
    mesh_remote: () => wrk(undefined, urls.mesh_remote),
    mesh_local: () => wrk(undefined, urls.mesh_local),
    direct: () => wrk(ctx.bridgeClientPid, direct),
  };
  // Warm-up: the mesh's sessions between nodes and every path's first connections.
  wrk(undefined, urls.mesh_remote, 1);
  wrk(undefined, urls.mesh_local, 1);
  wrk(ctx.bridgeClientPid, direct, 1);
  const runs: Record<string, Wrk[]> = {};
  const keys = Object.keys(targets);
  for (let i = 0; i < ROUNDS; i++) {
    // Each round starts at another target, so none is always measured first.
    for (let j = 0; j < keys.length; j++) {
      const k = keys[(i + j) % keys.length]!;
      (runs[k] ??= []).push(targets[k]!());
    }
  }
  const s = Object.fromEntries(Object.entries(runs).map(([k, v]) => [k, summary(v)]));
  const mode = meshModes(['worker1', 'worker2']);
  return {
    mesh_remote_rps: s.mesh_remote!.rps,
    mesh_local_rps: s.mesh_local!.rps,
    mesh_direct_rps: s.direct!.rps,
    mesh_remote_p99_ms: s.mesh_remote!.p99,
    mesh_local_p99_ms: s.mesh_local!.p99,
    mesh_direct_p99_ms: s.direct!.p99,
    mesh_remote_over_direct: round2(s.mesh_remote!.rps / s.direct!.rps),
    mesh_local_over_direct: round2(s.mesh_local!.rps / s.direct!.rps),
    mesh_clients: 'mesh: wrk on this host to the nodes\' lab addresses; direct: the bridge client on worker2 to the container\'s docker0 address (this host has no route to it)',
    mesh_mode: mode.modes,
    mesh_mode_source: mode.source,
    mesh_errors: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.errors])),
    mesh_rounds: Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.rounds])),
  };
}

try {
  log(`lab ${lab.name} up`);
  lab.up(1, 2);
  const image = lab.loadImage('shoal/busybox:latest');
  shoal('network', 'create', NET);
  shoal('service', 'create', '-d', '--name', 'api', '--replicas', '1', '--network', NET, '--constraint', 'node.hostname==worker2', '--stop-grace-period', '1s', image, 'httpd', '-f', '-p', '80', '-h', '/www');
  shoal('service', 'create', '-d', '--name', 'client', '--replicas', '1', '--network', NET, '--constraint', 'node.hostname==worker1', '--stop-grace-period', '1s', image, 'sleep', '1d');
  await eventually('api and client running', async () => (running('api').length === 1 && running('client').length === 1 && lab.containers('worker2', 'api').length === 1 && lab.containers('worker1', 'client').length === 1 ? true : undefined), 180_000);
  const clientPid = outerPid(containerOn('worker1', 'client'));
  // The task's resolver, as its processes read it (the container's root, seen from here).
  const nameserver = /^nameserver\s+(\S+)/m.exec(readFileSync(`/proc/${clientPid}/root/etc/resolv.conf`, 'utf8'))?.[1];
  if (!nameserver) throw new Error('the client has no nameserver in /etc/resolv.conf');
  const bridgeClient = lines(lab.exec('worker2', 'docker', 'run', '-d', '--rm', '--label', 'org.shoal.bench=overlay', image, 'sleep', '1d'))[0]!;
  const ctx: Ctx = { image, clientPid, nameserver, bridgeClientPid: outerPid(bridgeClient) };
  // The VIP answers once the client's map is written; its first requests may come before that.
  const vipOf = () => (JSON.parse(shoal('service', 'inspect', '--format', 'json', 'api')) as { endpoint: { virtualIps: { addr: string }[] } }).endpoint.virtualIps[0]!.addr.split('/')[0]!;
  const vipNow = vipOf();
  await eventually('the client reaches api through its VIP', async () => ((await inNetns(clientPid, ['wrk', '-t1', '-c1', '-d1s', `http://${vipNow}/`])).stdout.includes('Requests/sec') && addrIn(await lbTable(ctx), vipNow) ? true : undefined), 60_000);

  log(`client pid ${clientPid}, nameserver ${nameserver}, bridge client pid ${ctx.bridgeClientPid}`);
  const out: Record<string, unknown> = { bench: 'overlay' };
  const met: Record<string, boolean> = {};
  const raw: Record<string, unknown> = {};
  if (parts.has('vip')) {
    log('VIP vs bridge');
    const v = measureVip(ctx);
    const rps = round2(v.vip_.rps / v.bridge.rps);
    const p99 = round2(v.vip_.p99 / v.bridge.p99);
    Object.assign(out, {
      vip_rps: v.vip_.rps, vip_p99_ms: v.vip_.p99, bridge_rps: v.bridge.rps, bridge_p99_ms: v.bridge.p99,
      vip_over_bridge_rps: rps, vip_over_bridge_p99: p99,
    });
    met.vip_over_bridge_rps = rps >= TARGETS.vip_over_bridge_rps;
    met.vip_over_bridge_p99 = p99 <= TARGETS.vip_over_bridge_p99;
    raw.vip_paths = 'vip: client task on worker1 -> VIP (nft DNAT in its netns, VXLAN) -> api on worker2; bridge: plain container on worker2 docker0 -> api docker0 address';
    raw.errors = { vip: v.vip_.errors, bridge: v.bridge.errors };
    raw.rps_rounds = { vip: v.vip_.rounds, bridge: v.bridge.rounds };
  }
  if (parts.has('dns')) {
    log('DNS latency');
    const dns = measureDns(ctx);
    Object.assign(out, dns);
    met.dns_p99_ms = dns.dns_p99_ms < TARGETS.dns_p99_ms;
  }
  if (parts.has('removal')) {
    log('removal visibility');
    const { removal_kills, ...removal } = await measureRemoval(ctx);
    Object.assign(out, removal);
    met.removal_dns_median_ms = removal.removal_dns_median_ms !== null && removal.removal_dns_median_ms < TARGETS.removal_ms;
    met.removal_vip_median_ms = removal.removal_vip_median_ms !== null && removal.removal_vip_median_ms < TARGETS.removal_ms;
    raw.removal_kills = removal_kills;
  }
  if (parts.has('mesh')) {
    log('routing mesh');
    Object.assign(out, await measureMesh(ctx));
  }
  console.log(JSON.stringify({
    ...out,
    targets: TARGETS,
    met,
    ...raw,
    wrk: { threads: Number(values.threads), connections: Number(values.connections), duration_s: Number(values.duration), rounds: ROUNDS },
    lab: { managers: 1, workers: 2, image: process.env.LAB_IMAGE ?? 'shoal/lab-node:dev' },
    cpus: cpus().length,
    kernel: release(),
    node: process.version,
    loadavg_before: loadBefore,
    loadavg_after: loadavg().map(round2),
    // This machine is shared: another lab running meanwhile weighs on every number above.
    other_labs_before: othersBefore,
    other_labs_after: otherLabs(),
  }));
} finally {
  // The bridge client and every task go with their nodes.
  lab.down();
}
