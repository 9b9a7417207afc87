// End to end: the real `shoald` (one manager, `init`) and the real `shoal` binary, as separate OS
// processes talking over the manager's unix control socket. Checks every command's output
// (JSON shapes of INTERFACE.md), exit codes, and the one-line errors of bad input.
//
// Docker may not run here, so no test needs a container: create/update/scale use -d, and waiting
// (the progress lines, the failure) is checked on services with 0 replicas or that can never be
// placed. Skipped if shoald is not built.

import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url)); // packages/cli/dist/test → repository root
const SHOALD = path.join(ROOT, 'packages/daemon/dist/src/bin.js');
// As a user runs it: the bundle when it is fresh (npm run build), else dist/src.
const SHOAL = path.join(ROOT, 'packages/cli/bin/shoal.js');
const HOSTNAME = 'e2e-manager';

const skip = fs.existsSync(SHOALD) ? false : `shoald is not built (${path.relative(ROOT, SHOALD)} is missing)`;

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

let dir = '';
let host = '';
let tcpAddr = '';
let daemon: ChildProcess | undefined;
let daemonLog = '';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as net.AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Runs `shoal ARGS` (with --host unless `opts.noHost`); SHOAL_HOST is never inherited. */
/**
 * The daemon's well-known socket (SHOAL_SOCKET), in the test's directory: never the machine's own
 * /run/shoal/shoal.sock, which another shoald may serve.
 */
const localSocket = () => path.join(dir, 'shoal.sock');

function shoal(args: string[], opts: { noHost?: boolean; env?: NodeJS.ProcessEnv } = {}): Result {
  const env: NodeJS.ProcessEnv = { ...process.env, SHOAL_SOCKET: localSocket(), ...opts.env };
  if (!opts.env?.['SHOAL_HOST']) delete env['SHOAL_HOST'];
  const r = spawnSync(process.execPath, [SHOAL, ...(opts.noHost ? [] : ['--host', host]), ...args], {
    encoding: 'utf8',
    timeout: 90_000,
    env,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** shoal, asynchronously (to run independent checks side by side). */
function shoalAsync(args: string[], opts: { noHost?: boolean } = {}): Promise<Result> {
  const env: NodeJS.ProcessEnv = { ...process.env, SHOAL_SOCKET: localSocket() };
  delete env['SHOAL_HOST'];
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SHOAL, ...(opts.noHost ? [] : ['--host', host]), ...args],
      { encoding: 'utf8', timeout: 90_000, env },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

function checkFailure(args: string[], r: Result, code: number, re: RegExp): void {
  assert.equal(r.code, code, `shoal ${args.join(' ')}: exit ${r.code} (want ${code}), stderr: ${r.stderr}${daemonState()}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `shoal ${args.join(' ')}: one line on stderr, got:\n${r.stderr}`);
  assert.match(lines[0]!, /^Error: /);
  assert.match(lines[0]!, re);
  assert.doesNotMatch(r.stderr, /^\s+at /m);
}

/** If shoald has died: its exit and the end of its log (for failure messages). */
function daemonState(): string {
  if (!daemon || (daemon.exitCode === null && daemon.signalCode === null)) return '';
  let log = '';
  try {
    log = fs.readFileSync(path.join(dir, 'shoald.log'), 'utf8').slice(-3000);
  } catch {
    // no log
  }
  return `\n(shoald has exited: code ${daemon.exitCode}, signal ${daemon.signalCode}; its log ends with:\n${log})`;
}

function ok(args: string[]): Result {
  const r = shoal(args);
  assert.equal(r.code, 0, `shoal ${args.join(' ')}: exit ${r.code}, stderr: ${r.stderr}${daemonState()}`);
  return r;
}

function json<T = unknown>(args: string[]): T {
  return JSON.parse(ok([...args, '--format', 'json']).stdout) as T;
}

/** A failure: this exit code, and exactly one `Error: ...` line on stderr matching `re`, no stack. */
function fails(args: string[], code: number, re: RegExp, opts: { noHost?: boolean; env?: NodeJS.ProcessEnv } = {}): Result {
  const r = shoal(args, opts);
  checkFailure(args, r, code, re);
  return r;
}

function keys(o: object): string[] {
  return Object.keys(o).sort();
}

interface NodeLs {
  id: string;
  hostname: string;
  role: string;
  availability: string;
  status: string;
  addr: string;
  leader: boolean;
}
interface ServiceLs {
  id: string;
  name: string;
  mode: string;
  replicas: { running: number; desired: number };
  image: string;
  ports: { protocol: string; targetPort: number; publishedPort: number; publishMode: string; proxyProtocol: boolean }[];
}
interface ServiceObj {
  id: string;
  version: number;
  spec: {
    name: string;
    image: string;
    mode: string;
    replicas: number;
    args: string[];
    env: string[];
    labels: Record<string, string>;
    constraints: string[];
    ports: ServiceLs['ports'];
    restartPolicy: { condition: string; delayMs: number; maxAttempts: number };
    updateConfig: { parallelism: number; delayMs: number };
    stopGracePeriodMs: number;
  };
  previousSpec: ServiceObj['spec'] | null;
}

/** The manager answers, has a leader, and its node is ready. */
function ready(): boolean {
  const s = shoal(['cluster', 'status', '--format', 'json']);
  if (s.code !== 0 || !(JSON.parse(s.stdout) as { leader: string }).leader) return false;
  const n = shoal(['node', 'ls', '--format', 'json']);
  return n.code === 0 && (JSON.parse(n.stdout) as NodeLs[]).every((x) => x.status === 'ready');
}

describe('shoal against a real shoald', { skip }, () => {
  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-e2e-'));
    const data = path.join(dir, 'node');
    host = `unix://${path.join(data, 'control.sock')}`;
    const port = await freePort();
    tcpAddr = `127.0.0.1:${port}`;
    const log = fs.openSync(path.join(dir, 'shoald.log'), 'w');
    daemon = spawn(
      process.execPath,
      [SHOALD, 'init', '--data-dir', data, '--listen-addr', `127.0.0.1:${port}`, '--hostname', HOSTNAME],
      { stdio: ['ignore', log, log], env: { ...process.env, SHOAL_SOCKET: localSocket() } },
    );
    fs.closeSync(log);
    let exited: number | null | undefined;
    daemon.on('exit', (code) => (exited = code));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (exited !== undefined) {
        daemonLog = fs.readFileSync(path.join(dir, 'shoald.log'), 'utf8');
        throw new Error(`shoald exited with ${exited} before answering:\n${daemonLog.slice(-3000)}`);
      }
      if (fs.existsSync(path.join(data, 'control.sock')) && ready()) break;
      if (Date.now() > deadline) {
        daemonLog = fs.readFileSync(path.join(dir, 'shoald.log'), 'utf8');
        throw new Error(`shoald was not ready (\`shoal cluster status\`: a leader; \`shoal node ls\`: ready) within 30s:\n${daemonLog.slice(-3000)}`);
      }
      await sleep(200);
    }
  });

  after(async () => {
    // The manager (and the worker of one test) ran real containers: note their nodes first.
    let nodeIds: string[] = [];
    const ls = shoal(['node', 'ls', '--format', 'json']);
    if (ls.code === 0) nodeIds = (JSON.parse(ls.stdout) as NodeLs[]).map((n) => n.id);
    if (daemon && daemon.exitCode === null && daemon.signalCode === null) {
      const gone = new Promise((r) => daemon!.once('exit', r));
      daemon.kill('SIGTERM');
      const t = setTimeout(() => daemon!.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(t);
    }
    for (const id of nodeIds) {
      const r = spawnSync('docker', ['ps', '-aq', '--filter', `label=shoal.node.id=${id}`], { encoding: 'utf8' });
      const ids = (r.stdout ?? '').trim();
      if (r.status === 0 && ids) spawnSync('docker', ['rm', '-f', ...ids.split('\n')], { stdio: 'ignore' });
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  test('cluster status: JSON shape and table', () => {
    const s = json<{ clusterId: string; leader: string; term: number; members: Record<string, unknown>[] }>(['cluster', 'status']);
    assert.deepEqual(keys(s), ['clusterId', 'leader', 'members', 'term']);
    assert.ok(s.clusterId.length > 0);
    assert.ok(s.term >= 1);
    assert.equal(s.members.length, 1);
    const m = s.members[0]!;
    assert.deepEqual(keys(m), ['addr', 'appliedIndex', 'commitIndex', 'nodeId', 'raftRole', 'reachable']);
    assert.equal(m['nodeId'], s.leader);
    assert.equal(m['raftRole'], 'leader');
    assert.equal(m['reachable'], true);
    assert.equal(typeof m['commitIndex'], 'number');
    const text = ok(['cluster', 'status']).stdout;
    assert.match(text, new RegExp(`^Cluster ID:\\s+${s.clusterId}$`, 'm'));
    assert.match(text, /^NODE ID\s+ADDR\s+RAFT ROLE\s+REACHABLE\s+COMMIT INDEX\s+APPLIED INDEX$/m);
  });

  test('node ls / inspect / update', () => {
    const nodes = json<NodeLs[]>(['node', 'ls']);
    assert.equal(nodes.length, 1);
    const n = nodes[0]!;
    assert.deepEqual(keys(n), ['addr', 'availability', 'hostname', 'id', 'leader', 'role', 'status']);
    assert.equal(n.hostname, HOSTNAME);
    assert.equal(n.role, 'manager');
    assert.equal(n.availability, 'active');
    assert.equal(n.status, 'ready');
    assert.equal(n.leader, true);
    assert.match(n.addr, /^127\.0\.0\.1:\d+$/);
    const table = ok(['node', 'ls']).stdout.split('\n');
    assert.match(table[0]!, /^ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS/);
    assert.match(table[1]!, new RegExp(`^${n.id}\\s+${HOSTNAME}\\s+Ready\\s+Active\\s+Leader`));
    assert.equal(ok(['node', 'ls', '-q']).stdout, `${n.id}\n`);

    // By hostname, id and id prefix; the full object as JSON.
    for (const ref of [HOSTNAME, n.id, n.id.slice(0, 5)]) assert.equal(json<{ id: string }>(['node', 'inspect', ref]).id, n.id);
    assert.match(ok(['node', 'inspect', HOSTNAME]).stdout, new RegExp(`^Hostname:\\s+${HOSTNAME}$`, 'm'));
    fails(['node', 'inspect', 'ghost'], 1, /^Error: no such node: ghost$/);

    ok(['node', 'update', '--availability', 'pause', '--label-add', 'zone=a', '--label-add', 'disk=ssd', HOSTNAME]);
    let full = json<{ spec: { availability: string; labels: Record<string, string> } }>(['node', 'inspect', HOSTNAME]);
    assert.equal(full.spec.availability, 'pause');
    assert.deepEqual(full.spec.labels, { disk: 'ssd', zone: 'a' });
    ok(['node', 'update', '--availability', 'active', '--label-rm', 'disk', HOSTNAME]);
    full = json(['node', 'inspect', HOSTNAME]);
    assert.equal(full.spec.availability, 'active');
    assert.deepEqual(full.spec.labels, { zone: 'a' });
    assert.equal(json<NodeLs[]>(['node', 'ls'])[0]!.availability, 'active');

    fails(['node', 'update', '--availability', 'away', HOSTNAME], 2, /availability/);
    fails(['node', 'update', '--label-add', '=x', HOSTNAME], 2, /invalid label "=x"/);
    fails(['node', 'update', '--availability', 'drain', 'ghost'], 1, /^Error: no such node: ghost$/);
    fails(['node', 'inspect'], 2, /Not enough non-option arguments/);
  });

  test('node demote / rm of the only manager are refused (one line, exit 1)', () => {
    fails(['node', 'demote', HOSTNAME], 1, /./);
    fails(['node', 'rm', HOSTNAME], 1, /./);
    fails(['node', 'promote', 'ghost'], 1, /^Error: no such node: ghost$/);
    assert.equal(json<NodeLs[]>(['node', 'ls']).length, 1);
  });

  test('swarm join-token', () => {
    const worker = ok(['swarm', 'join-token', '-q', 'worker']).stdout.trim();
    const manager = ok(['swarm', 'join-token', '-q', 'manager']).stdout.trim();
    assert.match(worker, /^SWMTKN-1-\S+$/);
    assert.match(manager, /^SWMTKN-1-\S+$/);
    assert.notEqual(worker, manager);
    const text = ok(['swarm', 'join-token', 'worker']).stdout;
    assert.match(text, /To add a worker to this cluster/);
    assert.ok(text.includes(`--token ${worker}`));
    assert.match(text, /--join-addr 127\.0\.0\.1:\d+/);
    const rotated = ok(['swarm', 'join-token', '--rotate', '-q', 'worker']).stdout.trim();
    assert.notEqual(rotated, worker);
    assert.equal(ok(['swarm', 'join-token', '-q', 'worker']).stdout.trim(), rotated);
    assert.equal(ok(['swarm', 'join-token', '-q', 'manager']).stdout.trim(), manager);
    fails(['swarm', 'join-token', 'admin'], 2, /Invalid values/);
    fails(['swarm', 'join-token'], 2, /Not enough non-option arguments/);
  });

  test('service create -d / ls / inspect', () => {
    const id = ok([
      'service', 'create', '--name', 'web', '--replicas', '3', '-p', '8080:80', '--publish', 'mode=host,published=9090,target=90,protocol=udp',
      '-e', 'A=1', '--env', 'B=two words', '--label', 'tier=front', '--constraint', 'node.role==manager',
      '--restart-condition', 'on-failure', '--restart-delay', '1m30s', '--restart-max-attempts', '4', '--stop-grace-period', '500ms',
      '--update-parallelism', '2', '--update-delay', '5s', '-d', 'nginx:alpine', 'nginx', '-g', 'daemon off;',
    ]).stdout.trim();
    assert.match(id, /^\S+$/);

    const ls = json<ServiceLs[]>(['service', 'ls']);
    assert.equal(ls.length, 1);
    assert.deepEqual(keys(ls[0]!), ['id', 'image', 'mode', 'name', 'ports', 'replicas']);
    assert.deepEqual(ls[0], {
      id,
      name: 'web',
      mode: 'replicated',
      replicas: { running: ls[0]!.replicas.running, desired: 3 },
      image: 'nginx:alpine',
      ports: [
        { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress', proxyProtocol: false },
        { protocol: 'udp', targetPort: 90, publishedPort: 9090, publishMode: 'host', proxyProtocol: false },
      ],
    });
    const table = ok(['service', 'ls']).stdout.split('\n');
    assert.match(table[0]!, /^ID\s+NAME\s+MODE\s+REPLICAS\s+IMAGE\s+PORTS$/);
    assert.match(table[1]!, new RegExp(`^${id.slice(0, 12)}\\s+web\\s+replicated\\s+\\d+/3\\s+nginx:alpine\\s+\\*:8080->80/tcp, 9090->90/udp \\(host\\)$`));

    for (const ref of ['web', id, id.slice(0, 6)]) {
      const s = json<ServiceObj>(['service', 'inspect', ref]);
      assert.equal(s.id, id);
    }
    const s = json<ServiceObj>(['service', 'inspect', 'web']);
    assert.equal(s.spec.name, 'web');
    assert.equal(s.spec.replicas, 3);
    assert.deepEqual(s.spec.args, ['nginx', '-g', 'daemon off;']);
    assert.deepEqual(s.spec.env, ['A=1', 'B=two words']);
    assert.deepEqual(s.spec.labels, { tier: 'front' });
    assert.deepEqual(s.spec.constraints, ['node.role==manager']);
    assert.deepEqual(
      [s.spec.restartPolicy.condition, s.spec.restartPolicy.delayMs, s.spec.restartPolicy.maxAttempts],
      ['on-failure', 90_000, 4],
    );
    assert.equal(s.spec.stopGracePeriodMs, 500);
    assert.deepEqual([s.spec.updateConfig.parallelism, s.spec.updateConfig.delayMs], [2, 5000]);
    assert.match(ok(['service', 'inspect', 'web']).stdout, /^Name:\s+web$/m);

    fails(['service', 'create', '--name', 'web', '-d', 'nginx'], 1, /web/);
    fails(['service', 'inspect', 'nope'], 1, /^Error: no such service: nope$/);
  });

  test('service create --mode global', () => {
    ok(['service', 'create', '--name', 'agent', '--mode', 'global', '-d', 'busybox', 'sleep', '1000']);
    const a = json<ServiceLs[]>(['service', 'ls']).find((s) => s.name === 'agent');
    assert.ok(a);
    assert.equal(a.mode, 'global');
    fails(['service', 'scale', '-d', 'agent=3'], 1, /global/);
    fails(['service', 'update', '--replicas', '2', '-d', 'agent'], 2, /global/);
    ok(['service', 'rm', 'agent']);
  });

  test('service ps: JSON shape and table', () => {
    const tasks = json<Record<string, unknown>[]>(['service', 'ps', 'web']);
    assert.ok(Array.isArray(tasks));
    for (const t of tasks) {
      assert.deepEqual(keys(t), ['containerId', 'currentState', 'desiredState', 'error', 'id', 'message', 'name', 'node', 'nodeId', 'slot']);
      assert.match(String(t['name']), /^web\.\d+$/);
      assert.match(String(t['currentState']), /^(new|pending|assigned|accepted|preparing|starting|running|complete|shutdown|failed|rejected|orphaned|remove)$/);
    }
    assert.match(ok(['service', 'ps', 'web']).stdout, /^ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\s+PORTS$/m);
    fails(['service', 'ps', 'nope'], 1, /^Error: no such service: nope$/);
  });

  test('--format templates, --filter, and inspect in Docker\'s shape (--format docker)', () => {
    ok(['service', 'create', '--name', 'tmpl-api', '--replicas', '0', '--label', 'tier=back', '-d', 'busybox', 'sleep', '1000']);
    const web = json<ServiceObj>(['service', 'inspect', 'web']);
    // service ls: docker's placeholders, one line a row; table: a header row, aligned.
    assert.equal(ok(['service', 'ls', '--format', '{{.Name}} {{.Mode}} {{.Image}}']).stdout, 'tmpl-api replicated busybox\nweb replicated nginx:alpine\n');
    assert.match(ok(['service', 'ls', '--format', '{{.Replicas}}|{{.Ports}}', '-f', 'name=web']).stdout, /^\d+\/3\|\*:8080->80\/tcp, 9090->90\/udp \(host\)\n$/);
    const table = ok(['service', 'ls', '--format', 'table {{.ID}}\\t{{.Name}}']).stdout.split('\n');
    assert.match(table[0]!, /^ID {13}NAME$/);
    assert.equal(table[2], `${web.id.slice(0, 12)}   web`);
    assert.deepEqual(JSON.parse(ok(['service', 'ls', '--format', '{{json .}}', '--filter', 'label=tier=back']).stdout), {
      ID: JSON.parse(ok(['service', 'ls', '--format', '{{json .ID}}', '-f', 'name=tmpl']).stdout),
      Image: 'busybox',
      Mode: 'replicated',
      Name: 'tmpl-api',
      Ports: '',
      Replicas: '0/0',
    });
    // Filters: AND across keys, OR within one; -q with them.
    assert.equal(ok(['service', 'ls', '-q', '-f', 'name=web', '-f', 'name=tmpl-api']).stdout.split('\n').filter(Boolean).length, 2);
    assert.equal(ok(['service', 'ls', '-q', '-f', 'name=web', '-f', 'label=tier=back']).stdout, '');
    assert.equal(ok(['service', 'ls', '-q', '-f', 'mode=replicated', '-f', 'id=' + web.id.slice(0, 8)]).stdout, `${web.id}\n`);
    fails(['service', 'ls', '-f', 'colour=red'], 2, /^Error: invalid filter 'colour'/);
    fails(['service', 'ls', '-f', 'mode=often'], 2, /^Error: invalid filter 'mode=often'/);
    fails(['service', 'ls', '--format', '{{.Nope}}'], 1, /^Error: template: :1:2: executing "" at <\.Nope>: can't evaluate field Nope$/);

    // service inspect: --format docker as docker prints it, and templates over that shape.
    const docker = JSON.parse(ok(['service', 'inspect', 'web', '--format', 'docker']).stdout) as Record<string, any>[];
    assert.equal(docker.length, 1);
    assert.equal(docker[0]!['ID'], web.id);
    assert.equal(docker[0]!['Spec'].Mode.Replicated.Replicas, 3);
    assert.deepEqual(docker[0]!['Spec'].TaskTemplate.ContainerSpec.Args, ['nginx', '-g', 'daemon off;']);
    assert.equal(docker[0]!['Spec'].TaskTemplate.RestartPolicy.Delay, 90_000_000_000);
    assert.equal(docker[0]!['Spec'].TaskTemplate.ContainerSpec.StopGracePeriod, 500_000_000);
    assert.equal(docker[0]!['Version'].Index, web.version);
    assert.match(docker[0]!['CreatedAt'], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
    assert.equal(ok(['service', 'inspect', 'web', '--format', '{{.Spec.Name}} {{index .Spec.Labels "tier"}} {{join .Spec.TaskTemplate.ContainerSpec.Env ","}}']).stdout, 'web front A=1,B=two words\n');
    assert.deepEqual(JSON.parse(ok(['service', 'inspect', 'web', '--format', '{{json .Spec}}']).stdout), docker[0]!['Spec']);
    assert.deepEqual(JSON.parse(ok(['service', 'inspect', 'web', '--format', '{{json .}}']).stdout), docker[0]);
    assert.equal(json<ServiceObj>(['service', 'inspect', 'web']).spec.name, 'web', '--format json keeps its shape');
    fails(['service', 'ls', '--format', 'docker'], 2, /--format docker is for inspect commands/);

    // service ps, node ls / ps / inspect, network ls / inspect, cluster status.
    for (const line of ok(['service', 'ps', 'web', '--format', '{{.Name}} {{.DesiredState}}']).stdout.trim().split('\n')) {
      assert.match(line, /^( \\_ )?web\.\d+ (Running|Shutdown|Ready|Accepted)$/);
    }
    assert.equal(ok(['service', 'ps', 'web', '-q', '-f', 'desired-state=running', '-f', 'name=web.1']).stdout.trim().split('\n').length >= 1, true);
    fails(['service', 'ps', 'web', '-f', 'slot=1'], 2, /^Error: invalid filter 'slot'/);
    const self = json<{ leader: string }>(['cluster', 'status']).leader;
    assert.equal(ok(['node', 'ls', '--format', '{{.Hostname}} {{.Self}} {{.Status}} {{.ManagerStatus}}']).stdout, `${HOSTNAME} true Ready Leader\n`);
    assert.equal(ok(['node', 'ls', '-q', '-f', 'role=manager', '-f', 'name=e2e']).stdout, `${self}\n`);
    assert.equal(ok(['node', 'ls', '-q', '-f', 'role=worker']).stdout, '');
    assert.equal(ok(['node', 'inspect', self, '--format', '{{.Description.Hostname}} {{.Spec.Role}} {{.ManagerStatus.Leader}}']).stdout, `${HOSTNAME} manager true\n`);
    assert.equal((JSON.parse(ok(['node', 'inspect', self, '--format', 'docker']).stdout) as { ID: string }[])[0]!.ID, self);
    assert.match(ok(['node', 'ps', '--format', '{{.Node}}', '-f', 'desired-state=running']).stdout, new RegExp(`^(${HOSTNAME}\n)*$`));
    const nets = ok(['network', 'ls', '--format', '{{.Name}} {{.Driver}} {{.Scope}}', '-f', 'driver=overlay']).stdout;
    assert.match(nets, /^ingress overlay swarm$/m);
    assert.equal(ok(['network', 'ls', '-q', '-f', 'name=no-such-net']).stdout, '');
    assert.equal(ok(['network', 'inspect', 'ingress', '--format', '{{.Name}} {{.Scope}} {{(index .IPAM.Config 0).Subnet}}']).stdout.split(' ').slice(0, 2).join(' '), 'ingress swarm');
    assert.equal(ok(['cluster', 'status', '--format', '{{.Leader}} {{len .Members}}{{range .Members}} {{.RaftRole}}{{end}}']).stdout, `${self} 1 leader\n`);
    ok(['service', 'rm', 'tmpl-api']);
  });

  test('service update -d: reads, edits, writes back', () => {
    const before = json<ServiceObj>(['service', 'inspect', 'web']);
    assert.equal(ok([
      'service', 'update', '--image', 'nginx:1.27', '--replicas', '4', '--env-add', 'C=3', '--env-add', 'A=10', '--env-rm', 'B',
      '--publish-add', '8443:443', '--publish-rm', '9090', '--label-add', 'owner=ops', '--label-rm', 'tier',
      '--constraint-rm', 'node.role==manager', '--constraint-add', 'node.labels.zone==a', '--update-delay', '1s', '-d', 'web',
    ]).stdout, 'web\n');
    const s = json<ServiceObj>(['service', 'inspect', 'web']);
    assert.ok(s.version > before.version);
    assert.equal(s.spec.image, 'nginx:1.27');
    assert.equal(s.spec.replicas, 4);
    assert.deepEqual(s.spec.env, ['A=10', 'C=3']);
    assert.deepEqual(s.spec.ports, [
      { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress', proxyProtocol: false },
      { protocol: 'tcp', targetPort: 443, publishedPort: 8443, publishMode: 'ingress', proxyProtocol: false },
    ]);
    assert.deepEqual(s.spec.labels, { owner: 'ops' });
    assert.deepEqual(s.spec.constraints, ['node.labels.zone==a']);
    assert.equal(s.spec.updateConfig.delayMs, 1000);
    assert.equal(s.previousSpec?.image, 'nginx:alpine');
    fails(['service', 'update', '--image', 'x', '-d', 'nope'], 1, /^Error: no such service: nope$/);
  });

  test('service scale -d', () => {
    assert.equal(ok(['service', 'scale', '-d', 'web=5']).stdout, 'web scaled to 5\n');
    assert.equal(json<ServiceLs[]>(['service', 'ls']).find((s) => s.name === 'web')!.replicas.desired, 5);
    ok(['service', 'create', '--name', 'db', '-d', 'postgres']);
    assert.equal(ok(['service', 'scale', '-d', 'web=2', 'db=0']).stdout, 'web scaled to 2\ndb scaled to 0\n');
    const ls = json<ServiceLs[]>(['service', 'ls']);
    assert.equal(ls.find((s) => s.name === 'web')!.replicas.desired, 2);
    assert.equal(ls.find((s) => s.name === 'db')!.replicas.desired, 0);
    fails(['service', 'scale', '-d', 'nope=1'], 1, /^Error: no such service: nope$/);
  });

  test('waiting for convergence gives up after --timeout with one line and exit 1', () => {
    // Never placeable (no node has the label), so it never converges, with or without workers.
    const r = shoal(['--timeout', '2s', 'service', 'create', '--no-resolve-image', '--name', 'stuck', '--constraint', 'node.labels.e2e-never==1', 'busybox']);
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stdout, /^\S+\n$/); // the id: the service was created
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.match(lines.at(-1)!, /^Error: stuck: not converged within 2s \(0\/1 running\)/);
    // Progress before it: plain lines (stderr is a pipe), no escape codes.
    assert.doesNotMatch(r.stderr, /\x1b/);
    assert.equal(lines[0], 'overall progress: 0 out of 1 tasks');
    for (const l of lines.slice(1, -1)) assert.match(l, /^1\/1: /);
    const r2 = shoal(['--timeout', '1s', 'service', 'scale', 'stuck=2']);
    assert.equal(r2.code, 1);
    assert.equal(r2.stdout, 'stuck scaled to 2\n');
    assert.match(r2.stderr.split('\n').filter(Boolean).at(-1)!, /^Error: stuck: not converged within 1s \(0\/2 running\)/);
    // Scaled to 0 (its tasks never ran): converged.
    const r3 = shoal(['service', 'scale', 'stuck=0']);
    assert.equal(r3.code, 0, r3.stderr);
    assert.match(r3.stderr, /^overall progress: 0 out of 0 tasks$/m);
    assert.match(r3.stderr, /^verify: Service converged\n$/m);
    ok(['service', 'rm', 'stuck']);
  });

  test('service create without -d: docker-style progress, then converged or the reason it is not', () => {
    // Nothing to run: converges at once (after the stability window).
    const r = shoal(['service', 'create', '--no-resolve-image', '--name', 'zero', '--replicas', '0', 'busybox']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^\S+\n$/);
    assert.equal(
      r.stderr,
      'overall progress: 0 out of 0 tasks\nverify: Waiting 1 second to verify that tasks are stable...\nverify: Service converged\n',
    );
    // --format json of the same service is unchanged by the waiting.
    assert.equal(json<ServiceLs[]>(['service', 'ls']).find((s) => s.name === 'zero')!.replicas.desired, 0);
    ok(['service', 'rm', 'zero']);

    // An impossible constraint: the task's error is shown, and the one-line failure says why.
    const t0 = Date.now();
    const f = shoal(['--timeout', '2s', 'service', 'create', '--no-resolve-image', '--name', 'nowhere', '--constraint', 'node.hostname==nope', 'busybox']);
    assert.ok(Date.now() - t0 < 15_000, 'bounded by --timeout');
    assert.equal(f.code, 1, f.stderr);
    assert.match(f.stdout, /^\S+\n$/);
    const lines = f.stderr.split('\n').filter(Boolean);
    assert.ok(lines.includes('overall progress: 0 out of 1 tasks'), f.stderr);
    assert.ok(lines.some((l) => /^1\/1: no suitable node \(.*node\.hostname==nope/.test(l)), f.stderr);
    assert.match(lines.at(-1)!, /^Error: nowhere: not converged within 2s \(0\/1 running\): slot 1: no suitable node \(.*node\.hostname==nope.*\); the service was created: see 'shoal service ps nowhere'/);
    assert.equal(lines.filter((l) => l.startsWith('Error: ')).length, 1);
    assert.doesNotMatch(f.stderr, /\x1b|verify:/);
    ok(['service', 'rm', 'nowhere']);
  });

  test('bad input: exit 2, one line, nothing created', async () => {
    const create = (...flags: string[]) => ['service', 'create', '--name', 'bad', '-d', ...flags, 'nginx'];
    const cases: [string[], RegExp][] = [
      [create('--replicas', '-1'), /invalid replicas "-1"/],
      [create('--replicas', 'abc'), /invalid replicas "abc"/],
      [create('--replicas', '2', '--mode', 'global'), /--replicas cannot be used with --mode global/],
      [create('-p', '8080'), /invalid port specification "8080"/],
      [create('-p', '0:80'), /ports range from 1 to 65535/],
      [create('-p', '65536:80'), /ports range from 1 to 65535/],
      [create('-p', '8080:80/sctp'), /invalid protocol "sctp"/],
      [create('--publish', 'mode=bridge,published=1,target=2'), /invalid publish mode "bridge"/],
      [create('-e', 'NOEQUALS'), /invalid environment variable "NOEQUALS": expected KEY=VALUE/],
      [create('-e', '=v'), /the name before '=' is empty/],
      [create('--restart-delay', '5'), /invalid --restart-delay "5"/],
      [create('--stop-grace-period', 'soon'), /invalid --stop-grace-period "soon"/],
      [create('--update-delay', '-1s'), /invalid --update-delay "-1s"/],
      [create('--restart-condition', 'always'), /restart-condition/],
      [create('--constraint', 'node.role=manager'), /invalid constraint/],
      [create('--unknown-flag', 'x'), /Unknown argument/],
      [['service', 'create', '-d', 'nginx'], /missing --name NAME/],
      [['service', 'create', '--name', 'bad', '-d'], /missing IMAGE/],
      [['service', 'scale', 'web'], /invalid scale argument "web": expected SERVICE=REPLICAS/],
      [['service', 'scale', 'web=-2'], /replicas must be a non-negative integer/],
      [['service', 'scale', 'web=two'], /replicas must be a non-negative integer/],
      [['service', 'update', '--replicas', '-3', 'web'], /invalid replicas "-3"/],
      [['service', 'update', '--env-add', 'X', 'web'], /invalid environment variable "X"/],
      [['service', 'update', '--publish-add', '1:2:3', 'web'], /invalid port specification/],
      [['service', 'update', '--publish-rm', 'http', 'web'], /invalid published port "http"/],
      [['service', 'ls', '--format', 'yaml'], /invalid --format "yaml": expected table, json or a Go template/],
      [['service', 'ls', '--format', '{{.Name}'], /^Error: template: :1: unexpected "}" in operand/],
      [['service', 'ls', '--filter', 'x=1'], /^Error: invalid filter 'x'/],
      [['service', 'bogus'], /Unknown argument: bogus/],
      [['bogus'], /Unknown argument: bogus/],
      [[], /missing a command/],
      [['--timeout', 'ten', 'service', 'ls'], /invalid --timeout "ten"/],
    ];
    const results = await Promise.all(cases.map(([args]) => shoalAsync(args)));
    cases.forEach(([args, re], i) => checkFailure(args, results[i]!, 2, re));
    assert.equal(json<ServiceLs[]>(['service', 'ls']).filter((s) => s.name === 'bad').length, 0);
  });

  test('addresses: TCP HOST:PORT (admin certificate), SHOAL_HOST, unreachable, none', () => {
    // The control API is also served on the TCP listen address, to holders of the admin certificate.
    const admin = path.join(dir, 'node', 'admin');
    const r0 = shoal(['--host', tcpAddr, '--cert-path', admin, 'cluster', 'status', '--format', 'json'], { noHost: true });
    assert.equal(r0.code, 0, r0.stderr);
    assert.equal((JSON.parse(r0.stdout) as { members: unknown[] }).members.length, 1);
    const r1 = shoal(['--host', tcpAddr, 'service', 'ls', '-q'], { noHost: true, env: { SHOAL_CERT_PATH: admin } });
    assert.equal(r1.code, 0, r1.stderr);
    fails(['--host', tcpAddr, 'service', 'ls'], 1, /^Error: a manager's TCP address needs the admin certificate: pass --cert-path DIR or set SHOAL_CERT_PATH/, { noHost: true });
    fails(['--host', tcpAddr, '--cert-path', path.join(dir, 'nothing'), 'service', 'ls'], 1, /^Error: --cert-path .*nothing: cannot read ca\.pem \(ENOENT\)$/, { noHost: true });
    fails(['--host', `unix://${dir}/nothing.sock`, 'service', 'ls'], 1, /^Error: cannot reach a manager at unix:\/\/.*nothing\.sock: /, { noHost: true });
    // SHOAL_HOST is the default of --host.
    const r = shoal(['service', 'ls', '-q'], { noHost: true, env: { SHOAL_HOST: host } });
    assert.equal(r.code, 0, r.stderr);
  });

  test('addresses: the well-known local socket without --host, -H, several managers with failover', () => {
    // Neither --host nor SHOAL_HOST: the socket shoald serves on a manager (SHOAL_SOCKET moves it),
    // as owner-only as control.sock.
    const expected = json<ServiceLs[]>(['service', 'ls']).map((s) => s.name);
    const d = shoal(['service', 'ls', '--format', 'json'], { noHost: true });
    assert.equal(d.code, 0, d.stderr);
    assert.deepEqual((JSON.parse(d.stdout) as ServiceLs[]).map((s) => s.name), expected);
    assert.equal(fs.statSync(localSocket()).mode & 0o777, 0o600);
    const gone = path.join(dir, 'nothing', 'shoal.sock');
    fails(['service', 'ls'], 1, /^Error: cannot reach a manager at unix:\/\/.*nothing\/shoal\.sock: no such socket/, { noHost: true, env: { SHOAL_SOCKET: gone } });
    fails(['service', 'ls'], 2, /no manager address: pass --host .* or set SHOAL_HOST/, { noHost: true, env: { SHOAL_SOCKET: '' } });
    // -H is --host.
    const h = shoal(['-H', host, 'service', 'ls', '-q'], { noHost: true });
    assert.equal(h.code, 0, h.stderr);
    // A list: the first that can be reached answers, for every call of the command.
    const dead = `unix://${path.join(dir, 'dead.sock')}`;
    const refused = `unix://${path.join(dir, 'refused.sock')}`;
    fs.writeFileSync(path.join(dir, 'refused.sock'), ''); // a file, not a socket: nothing listens
    const f = shoal(['--host', `${dead},${refused},${host}`, 'node', 'ls', '--format', 'json'], { noHost: true });
    assert.equal(f.code, 0, f.stderr);
    assert.equal((JSON.parse(f.stdout) as NodeLs[])[0]!.hostname, HOSTNAME);
    const env = shoal(['service', 'ls', '-q'], { noHost: true, env: { SHOAL_HOST: `${dead}, ${host}` } });
    assert.equal(env.code, 0, env.stderr);
    fails(['--host', `${dead},${refused}`, 'service', 'ls'], 1, /^Error: cannot reach any manager: unix:\/\/.*dead\.sock: no such socket .*; unix:\/\/.*refused\.sock: /, { noHost: true });
    fails(['--host', `${host},`, 'service', 'ls'], 2, /invalid --host .*: an empty address in the list/, { noHost: true });
  });

  test('failover past a manager that takes connections and never answers (a host powered off mid-handshake)', async () => {
    // A TCP listener that accepts and stays silent: the TLS handshake never completes, as with a
    // host that went away (no refusal comes back). The next manager answers well within the budget.
    const silent = net.createServer(() => {});
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const silentAddr = `127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    const admin = path.join(dir, 'node', 'admin');
    try {
      const r = await shoalAsync(['--host', `${silentAddr},${tcpAddr}`, '--cert-path', admin, 'node', 'ls', '--format', 'json'], { noHost: true });
      assert.equal(r.code, 0, r.stderr);
      assert.equal((JSON.parse(r.stdout) as NodeLs[])[0]!.hostname, HOSTNAME);
      // Alone in the list, the silent one is given the whole budget, then named.
      const alone = await shoalAsync(['--host', silentAddr, '--cert-path', admin, '--timeout', '2s', 'node', 'ls'], { noHost: true });
      assert.equal(alone.code, 1);
      assert.match(alone.stderr, /^Error: no answer from the manager at 127\.0\.0\.1:\d+ within 2s/);
      // Both silent: each is named.
      const both = await shoalAsync(['--host', `${silentAddr},${silentAddr}`, '--cert-path', admin, '--timeout', '5s', 'node', 'ls'], { noHost: true });
      assert.equal(both.code, 1);
      assert.match(both.stderr, /^Error: cannot reach any manager: 127\.0\.0\.1:\d+: no connection within 3s \(is the host up\?\); 127\.0\.0\.1:\d+ within 5s/);
    } finally {
      silent.close();
    }
  });

  test('swarm admin-cert: another admin certificate, its key made here; bad input issues nothing', () => {
    const out = path.join(dir, 'second-admin');
    const r = ok(['swarm', 'admin-cert', '--out', out, '--expiry', '720h']);
    assert.match(r.stdout, /^Admin certificate admin-[0-9a-z]{12} written to .*second-admin \(valid until \d{4}-\d\d-\d\dT.*Z\)\.\nUse it with: shoal --host MANAGER_HOST:PORT --cert-path .*second-admin/);
    assert.equal((fs.statSync(path.join(out, 'key.pem')).mode & 0o777).toString(8), '600');
    const notAfter = Date.parse(/valid until (\S+)\)/.exec(r.stdout)![1]!);
    assert.ok(Math.abs(notAfter - (Date.now() + 720 * 3600_000)) < 120_000, 'the asked validity');
    // It opens the control API over TCP.
    const st = shoal(['--host', tcpAddr, '--cert-path', out, 'cluster', 'status', '--format', 'json'], { noHost: true });
    assert.equal(st.code, 0, st.stderr);
    // An existing certificate is never overwritten; bad validities are refused; nothing is issued.
    const before = fs.readFileSync(path.join(out, 'cert.pem'), 'utf8');
    fails(['swarm', 'admin-cert', '--out', out], 1, /^Error: .*second-admin already holds ca\.pem, cert\.pem, key\.pem: choose an empty directory \(nothing was issued\)$/);
    assert.equal(fs.readFileSync(path.join(out, 'cert.pem'), 'utf8'), before);
    fails(['swarm', 'admin-cert', '--out', path.join(dir, 'short'), '--expiry', '1s'], 1, /^Error: --expiry must be between 10s and 87600h0m0s, not 1s$/);
    assert.ok(!fs.existsSync(path.join(dir, 'short', 'cert.pem')));
    fails(['swarm', 'admin-cert', '--out', path.join(dir, 'bad'), '--expiry', 'soon'], 2, /invalid --expiry "soon"/);
    fails(['swarm', 'admin-cert'], 2, /--out DIR is required/);
  });

  test('a worker node answers "this node is not a manager", on its socket and the well-known one', async () => {
    const token = ok(['swarm', 'join-token', 'worker', '-q']).stdout.trim();
    const wdata = path.join(dir, 'worker');
    const wport = await freePort();
    // The worker's machine: its own well-known socket (the manager's is taken by the manager).
    const wenv = { ...process.env, SHOAL_SOCKET: path.join(dir, 'worker-shoal.sock') };
    const worker = spawn(
      process.execPath,
      [SHOALD, 'join', '--data-dir', wdata, '--listen-addr', `127.0.0.1:${wport}`, '--join-addr', tcpAddr, '--token', token, '--hostname', 'e2e-worker'],
      { stdio: 'ignore', env: wenv },
    );
    const notAManager = /^Error: this node is not a manager: run the command on a manager, or point shoal at one \(-H HOST:PORT or SHOAL_HOST\)$/;
    try {
      const whost = `unix://${path.join(wdata, 'control.sock')}`;
      let r: Result | undefined;
      for (let i = 0; i < 100; i++) {
        // Neither --host nor SHOAL_HOST: the machine's well-known socket, which the worker serves.
        r = shoal(['node', 'ls'], { noHost: true, env: wenv });
        if (/not a manager/.test(r.stderr)) break;
        await sleep(200);
      }
      checkFailure(['node', 'ls'], r!, 1, notAManager);
      checkFailure(['node', 'ls'], shoal(['--host', whost, 'node', 'ls'], { noHost: true }), 1, notAManager);
      // A second daemon on the same data directory: refused in one line; the first keeps its sockets.
      const twice = spawnSync(process.execPath, [SHOALD, 'run', '--data-dir', wdata], { encoding: 'utf8', timeout: 60_000, env: wenv });
      assert.notEqual(twice.status, 0);
      assert.match(twice.stderr.trim(), new RegExp(`^shoald: ${wdata}/control.sock is served by another running process \\(another shoald\\?\\): not taking it over$`));
      checkFailure(['node', 'ls'], shoal(['--host', whost, 'node', 'ls'], { noHost: true }), 1, notAManager);
      checkFailure(['node', 'ls'], shoal(['node', 'ls'], { noHost: true, env: wenv }), 1, notAManager);
      // The worker's own certificate does not open the control API over TCP.
      const wcerts = path.join(dir, 'worker-as-admin');
      fs.mkdirSync(wcerts);
      fs.copyFileSync(path.join(wdata, 'certificates', 'ca.crt'), path.join(wcerts, 'ca.pem'));
      fs.copyFileSync(path.join(wdata, 'certificates', 'node.crt'), path.join(wcerts, 'cert.pem'));
      fs.copyFileSync(path.join(wdata, 'certificates', 'node.key'), path.join(wcerts, 'key.pem'));
      const rw = shoal(['--host', tcpAddr, '--cert-path', wcerts, 'service', 'ls'], { noHost: true });
      checkFailure(['service', 'ls'], rw, 1, /the control API needs an admin certificate; a worker certificate may not use it/);
    } finally {
      worker.kill('SIGKILL');
    }
    const nodes = json<NodeLs[]>(['node', 'ls']);
    assert.ok(nodes.some((n) => n.hostname === 'e2e-worker' && n.role === 'worker'));
  });

  test('a manager that does not answer: the deadline fires (--timeout), one line, exit 1', () => {
    // SIGSTOP freezes the real daemon: its socket accepts, nothing answers.
    daemon!.kill('SIGSTOP');
    try {
      const t0 = Date.now();
      const r = shoal(['--timeout', '2s', 'service', 'ls']);
      checkFailure(['service', 'ls'], r, 1, /.+/);
      assert.ok(Date.now() - t0 < 15_000, 'bounded by --timeout');
    } finally {
      daemon!.kill('SIGCONT');
    }
  });

  test('ui: a manager without --ui-addr says it serves no dashboard (test/ui: one that does)', () => {
    fails(['ui'], 1, /^Error: this manager serves no dashboard: start its shoald with --ui-addr HOST:PORT$/);
  });

  test('--help on every command', async () => {
    const commands = [
      [], ['service'], ['service', 'create'], ['service', 'ls'], ['service', 'ps'], ['service', 'inspect'], ['service', 'rm'],
      ['service', 'scale'], ['service', 'update'], ['node'], ['node', 'ls'], ['node', 'inspect'], ['node', 'promote'],
      ['node', 'demote'], ['node', 'rm'], ['node', 'update'], ['cluster', 'status'], ['swarm', 'join-token'], ['swarm', 'admin-cert'], ['swarm', 'update'], ['swarm', 'unlock'], ['swarm', 'unlock-key'], ['service', 'rollback'], ['node', 'ps'], ['ui'],
    ];
    const results = await Promise.all(commands.map((c) => shoalAsync([...c, '--help'], { noHost: true })));
    commands.forEach((c, i) => {
      assert.equal(results[i]!.code, 0, `${c.join(' ')} --help: ${results[i]!.stderr}`);
      assert.match(results[i]!.stdout, /Usage: shoal/);
    });
    assert.match(shoal(['completion'], { noHost: true }).stdout, /shoal --get-yargs-completions/);
  });

  test('completion: commands and flags, service and node names from the manager; nothing when it does not answer', () => {
    const complete = (words: string[], opts: { noHost?: boolean; env?: NodeJS.ProcessEnv } = { noHost: true }) => {
      const r = shoal(['--get-yargs-completions', 'shoal', ...words], opts);
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stderr, '');
      return r.stdout.split('\n').filter((l) => l !== '');
    };
    const services = json<ServiceLs[]>(['service', 'ls']).map((s) => s.name).sort();
    assert.ok(services.includes('web') && services.includes('db'), services.join(','));
    assert.ok(complete(['service', 'ins']).includes('inspect'));
    // The well-known socket (no --host), --host, -H: the manager's names after the commands' words.
    assert.deepEqual(complete(['service', 'inspect', '']).filter((w) => !w.startsWith('-')), services);
    assert.deepEqual(complete(['--host', host, 'service', 'rm', 'w']), ['web']);
    assert.deepEqual(complete(['-H', host, 'service', 'scale', 'd']), ['db=']);
    assert.deepEqual(complete(['node', 'inspect', 'e2e-m']), [HOSTNAME]);
    assert.deepEqual(complete(['service', 'ls', '']).filter((w) => !w.startsWith('-')), []);
    // No manager there: the commands and flags only, no error.
    const none = complete(['service', 'inspect', ''], { noHost: true, env: { SHOAL_SOCKET: path.join(dir, 'nothing.sock') } });
    assert.deepEqual(none.filter((w) => !w.startsWith('-')), []);
  });

  test('a mistyped command: "did you mean" when one is close, else the unknown word', () => {
    fails(['servce', 'ls'], 2, /^Error: unknown command servce: did you mean service\? \(see 'shoal --help'\)$/);
    fails(['service', 'lss'], 2, /^Error: unknown command lss: did you mean ls\? \(see 'shoal service --help'\)$/);
    fails(['node', 'inpsect', 'x'], 2, /^Error: unknown command inpsect: did you mean inspect\? /);
    fails(['service', 'bogus'], 2, /^Error: Unknown argument: bogus /);
  });

  test('service rm', () => {
    assert.equal(ok(['service', 'rm', 'web', 'db']).stdout, 'web\ndb\n');
    assert.deepEqual(json<ServiceLs[]>(['service', 'ls']), []);
    fails(['service', 'rm', 'web'], 1, /^Error: no such service: web$/);
    fails(['service', 'rm'], 2, /Not enough non-option arguments/);
  });
});
