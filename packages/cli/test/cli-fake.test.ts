// `shoal` against an in-process fake of the control API (a real gRPC server on a unix socket):
// request shapes, output, progress waiting, and the mapping of every kind of failure to one line
// and an exit code. The real manager is exercised by cli-e2e.test.ts.

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';
import * as grpc from '@grpc/grpc-js';
import { ShoalError, getServiceDefinition } from '@shoal/api';
import type { Node, Service, ServiceSpec, Task } from '@shoal/store';
import { main } from '../src/cli.js';
import { Ctx } from '../src/context.js';
import { runningAtVersion } from '../src/wait.js';
import type { TaskView } from '../src/wire.js';

// ------------------------------------------------------------------ the fake manager

type Mode = 'ok' | 'not-manager' | 'no-quorum' | 'hang';

class FakeManager {
  mode: Mode = 'ok';
  services = new Map<string, Service>();
  /** Running tasks per service id; each GetService moves it one step toward desired, unless stuck. */
  running = new Map<string, number>();
  stuck = new Set<string>();
  nodes: Node[] = [];
  requests: { method: string; req: Record<string, unknown> }[] = [];
  tokens = { worker: 'SWMTKN-1-abc-worker1', manager: 'SWMTKN-1-abc-manager1' };
  private seq = 0;

  reset(): void {
    this.mode = 'ok';
    this.services.clear();
    this.running.clear();
    this.stuck.clear();
    this.requests = [];
    this.nodes = [
      this.node('n1aaaaaaaaaaaaaaaaaaaaaaa', 'manager1', 'manager'),
      this.node('n2bbbbbbbbbbbbbbbbbbbbbbb', 'worker1', 'worker'),
    ];
  }

  node(id: string, hostname: string, role: 'manager' | 'worker'): Node {
    return {
      id,
      version: 1,
      createdAt: Date.now() - 60_000,
      updatedAt: Date.now() - 60_000,
      spec: { role, availability: 'active', labels: {} },
      description: { hostname, platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 1e9, memoryBytes: 1 << 30 }, engineVersion: '27.0' },
      status: { state: 'ready', message: '', addr: `127.0.0.1:${role === 'manager' ? 4242 : 4243}` },
      managerStatus: role === 'manager' ? { raftId: id, addr: '127.0.0.1:4242' } : null,
    };
  }

  findService(ref: string): Service {
    const all = [...this.services.values()];
    const s =
      all.find((x) => x.id === ref) ??
      all.find((x) => x.spec.name === ref) ??
      (all.filter((x) => x.id.startsWith(ref)).length === 1 ? all.find((x) => x.id.startsWith(ref)) : undefined);
    if (!s) throw new ShoalError('NOT_FOUND', `service ${ref} not found`);
    return s;
  }

  findNode(ref: string): Node {
    const n = this.nodes.find((x) => x.id === ref || x.description.hostname === ref || x.id.startsWith(ref));
    if (!n) throw new ShoalError('NOT_FOUND', `node ${ref} not found`);
    return n;
  }

  desired(s: Service): number {
    return s.spec.mode === 'global' ? this.nodes.length : s.spec.replicas;
  }

  svcResponse(s: Service, step = false): { service: Service; running: number; desired: number } {
    let r = this.running.get(s.id) ?? 0;
    const d = this.desired(s);
    if (step && !this.stuck.has(s.id) && r !== d) r += r < d ? 1 : -1;
    this.running.set(s.id, r);
    return { service: s, running: r, desired: d };
  }

  view(n: Node) {
    return { node: n, leader: n.spec.role === 'manager', reachability: n.spec.role === 'manager' ? 'reachable' : '' };
  }

  handle(method: string, req: Record<string, unknown>): unknown {
    this.requests.push({ method, req });
    switch (method) {
      case 'CreateService': {
        const spec = req['spec'] as ServiceSpec;
        if ([...this.services.values()].some((s) => s.spec.name === spec.name)) {
          throw new ShoalError('ALREADY_EXISTS', `service ${spec.name} already exists`);
        }
        if (spec.image === 'bad:image') throw new ShoalError('INVALID_ARGUMENT', 'spec.image: invalid reference format');
        const id = `s${(++this.seq).toString().padStart(3, '0')}${randomBytes(11).toString('hex')}`;
        const now = Date.now();
        const s: Service = { id, version: this.seq, createdAt: now, updatedAt: now, spec, previousSpec: null, specVersion: 1 };
        this.services.set(id, s);
        if (spec.labels['stuck'] !== undefined) this.stuck.add(id);
        return this.svcResponse(s);
      }
      case 'GetService':
        return this.svcResponse(this.findService(req['service'] as string), true);
      case 'ListServices':
        return { services: [...this.services.values()].map((s) => this.svcResponse(s)) };
      case 'UpdateService': {
        const s = this.findService(req['service'] as string);
        if (req['version'] !== s.version) throw new ShoalError('FAILED_PRECONDITION', 'update out of sequence: the service changed; retry');
        const next: Service = { ...s, version: ++this.seq, spec: req['spec'] as ServiceSpec, previousSpec: s.spec, specVersion: s.specVersion + 1 };
        this.services.set(s.id, next);
        return this.svcResponse(next);
      }
      case 'ScaleService': {
        const s = this.findService(req['service'] as string);
        if (s.spec.mode === 'global') throw new ShoalError('FAILED_PRECONDITION', `scale can only be used with replicated mode (${s.spec.name} is global)`);
        const next: Service = { ...s, version: ++this.seq, spec: { ...s.spec, replicas: req['replicas'] as number } };
        this.services.set(s.id, next);
        return this.svcResponse(next);
      }
      case 'RemoveService': {
        const s = this.findService(req['service'] as string);
        this.services.delete(s.id);
        return { id: s.id };
      }
      case 'ListTasks': {
        const s = this.findService(req['service'] as string);
        const tasks: { task: Task; nodeHostname: string }[] = [];
        const now = Date.now();
        const running = this.running.get(s.id) ?? 0;
        for (let slot = 1; slot <= s.spec.replicas; slot++) {
          tasks.push({
            task: {
              id: `t${slot}x${s.id.slice(0, 8)}`,
              version: 1,
              createdAt: now - 1000 * slot,
              updatedAt: now,
              serviceId: s.id,
              serviceName: s.spec.name,
              slot,
              nodeId: this.nodes[slot % this.nodes.length]!.id,
              desiredState: 'running',
              status: { state: slot <= running ? 'running' : 'pending', timestamp: now - 1000, message: '', err: '', containerId: '', exitCode: 0 },
              spec: s.spec,
              specVersion: s.specVersion,
            },
            nodeHostname: this.nodes[slot % this.nodes.length]!.description.hostname,
          });
        }
        return { tasks };
      }
      case 'ListNodes':
        return { nodes: this.nodes.map((n) => this.view(n)) };
      case 'GetNode':
        return { node: this.view(this.findNode(req['node'] as string)) };
      case 'UpdateNode': {
        const n = this.findNode(req['node'] as string);
        if (req['availability']) n.spec.availability = req['availability'] as Node['spec']['availability'];
        Object.assign(n.spec.labels, req['labelAdd']);
        for (const k of req['labelRm'] as string[]) {
          if (!(k in n.spec.labels)) throw new ShoalError('NOT_FOUND', `node ${n.description.hostname} has no label ${k}`);
          delete n.spec.labels[k];
        }
        return { node: this.view(n) };
      }
      case 'PromoteNode':
      case 'DemoteNode': {
        const n = this.findNode(req['node'] as string);
        n.spec.role = method === 'PromoteNode' ? 'manager' : 'worker';
        return { node: this.view(n) };
      }
      case 'RemoveNode': {
        const n = this.findNode(req['node'] as string);
        if (n.status.state !== 'down' && !req['force']) {
          throw new ShoalError('FAILED_PRECONDITION', `node ${n.description.hostname} is not down and can't be removed (use --force)`);
        }
        this.nodes = this.nodes.filter((x) => x !== n);
        return { id: n.id };
      }
      case 'ClusterStatus':
        return {
          clusterId: 'cluster1',
          leader: 'n1aaaaaaaaaaaaaaaaaaaaaaa',
          term: 2,
          members: [{ nodeId: 'n1aaaaaaaaaaaaaaaaaaaaaaa', addr: '127.0.0.1:4242', raftRole: 'leader', reachable: true, commitIndex: 7, appliedIndex: 7 }],
        };
      case 'GetJoinToken': {
        const role = req['role'] as 'worker' | 'manager';
        if (req['rotate']) this.tokens[role] = `${this.tokens[role]}r`;
        return { token: this.tokens[role] };
      }
      default:
        throw new ShoalError('INTERNAL', `unexpected method ${method}`);
    }
  }
}

// ------------------------------------------------------------------ harness

const fake = new FakeManager();
let server: grpc.Server;
let dir: string;
let sock: string;

function serve(): Promise<void> {
  const def = getServiceDefinition('shoal.control.Control');
  const impl: grpc.UntypedServiceImplementation = {};
  for (const [name] of Object.entries(def)) {
    impl[name] = (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (fake.mode === 'hang') return; // never answers: the client's deadline must fire
      if (fake.mode === 'not-manager') return cb(new ShoalError('FAILED_PRECONDITION', 'this node is not a manager').toGrpcStatus());
      if (fake.mode === 'no-quorum') {
        return cb(new ShoalError('UNAVAILABLE', 'the cluster has no quorum: 1 of 3 managers reachable').toGrpcStatus());
      }
      try {
        cb(null, fake.handle(name, call.request));
      } catch (err) {
        cb(ShoalError.from(err).toGrpcStatus());
      }
    };
  }
  server = new grpc.Server();
  server.addService(def, impl);
  return new Promise((resolve, reject) =>
    server.bindAsync(`unix://${sock}`, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
}

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

async function shoal(...args: string[]): Promise<Result> {
  let stdout = '';
  let stderr = '';
  const out = { write: (s: string) => (stdout += s) };
  const err = { write: (s: string) => (stderr += s) };
  const code = await main(args, {
    stdout: out,
    stderr: err,
    ctxFactory: (a) =>
      new Ctx({ host: (a['host'] as string | undefined) ?? `unix://${sock}`, timeout: a['timeout'] as string | undefined }, out, err, {}),
  });
  return { code, stdout, stderr };
}

/** Asserts a failure: exit code, and one `Error: ...` line on stderr matching `re`. */
function fails(r: Result, code: number, re: RegExp): void {
  assert.equal(r.code, code, `exit code (stderr: ${r.stderr})`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `one line on stderr, got: ${r.stderr}`);
  assert.match(lines[0]!, /^Error: /);
  assert.match(lines[0]!, re);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

function ok(r: Result): Result {
  assert.equal(r.code, 0, `exit code 0 expected; stderr: ${r.stderr}`);
  return r;
}

function last(method: string): Record<string, unknown> {
  const r = [...fake.requests].reverse().find((x) => x.method === method);
  assert.ok(r, `no ${method} request`);
  return r.req;
}

before(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-cli-'));
  sock = path.join(dir, 'control.sock');
  await serve();
});
after(() => {
  server.forceShutdown();
  fs.rmSync(dir, { recursive: true, force: true });
});
beforeEach(() => fake.reset());

// ------------------------------------------------------------------ tests

describe('service commands', () => {
  test('create -d sends the full spec and prints the id', async () => {
    const r = ok(
      await shoal('service', 'create', '--name', 'web', '--replicas', '3', '-p', '8080:80', '-e', 'A=1', '--label', 'tier=front',
        '--constraint', 'node.role==worker', '--restart-delay', '1s', '-d', 'nginx:alpine', 'nginx', '-g', 'daemon off;'),
    );
    const spec = last('CreateService')['spec'] as ServiceSpec;
    assert.equal(spec.name, 'web');
    assert.equal(spec.replicas, 3);
    assert.equal(spec.image, 'nginx:alpine');
    assert.deepEqual(spec.args, ['nginx', '-g', 'daemon off;']);
    assert.deepEqual(spec.env, ['A=1']);
    assert.deepEqual(spec.labels, { tier: 'front' });
    assert.deepEqual(spec.ports, [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }]);
    assert.equal(spec.restartPolicy.delayMs, 1000);
    const id = [...fake.services.keys()][0]!;
    assert.equal(r.stdout, `${id}\n`);
    assert.equal(r.stderr, '');
  });

  test('create without -d waits: progress lines, then converged', async () => {
    const r = ok(await shoal('service', 'create', '--name', 'web', '--replicas', '2', 'nginx'));
    assert.deepEqual(r.stderr.split('\n').filter(Boolean), ['web: 1/2', 'web: 2/2', 'web: converged']);
  });

  test('create that does not converge: one-line error after --timeout, exit 1', async () => {
    const r = await shoal('--timeout', '1500ms', 'service', 'create', '--name', 'web', '--label', 'stuck', 'nginx');
    assert.equal(r.code, 1);
    const lines = r.stderr.split('\n').filter(Boolean);
    assert.deepEqual(lines.slice(0, -1), ['web: 0/1']);
    assert.match(lines.at(-1)!, /^Error: web: not converged within 1\.5s \(0\/1 tasks running\); the service was created: see 'shoal service ps web'/);
  });

  test('create errors from the server', async () => {
    ok(await shoal('service', 'create', '--name', 'web', '-d', 'nginx'));
    fails(await shoal('service', 'create', '--name', 'web', '-d', 'nginx'), 1, /^Error: service web already exists$/);
    fails(await shoal('service', 'create', '--name', 'x', '-d', 'bad:image'), 1, /^Error: spec.image: invalid reference format$/);
  });

  test('create: bad input fails before any call, exit 2', async () => {
    const cases: [string[], RegExp][] = [
      [['--replicas', '-1'], /invalid replicas "-1"/],
      [['--replicas', 'two'], /invalid replicas "two"/],
      [['--replicas', '2', '--mode', 'global'], /--replicas cannot be used with --mode global/],
      [['--mode', 'daemon'], /Invalid values: Argument: mode/],
      [['-p', '8080'], /invalid port specification "8080"/],
      [['-p', '0:80'], /ports range from 1 to 65535/],
      [['-p', '8080:99999'], /ports range from 1 to 65535/],
      [['--publish', 'mode=host,target=80'], /published=PORT is required/],
      [['-e', 'NOVALUE'], /invalid environment variable "NOVALUE": expected KEY=VALUE/],
      [['-e', '=x'], /the name before '=' is empty/],
      [['--restart-delay', '5'], /invalid --restart-delay "5"/],
      [['--stop-grace-period', 'later'], /invalid --stop-grace-period "later"/],
      [['--update-delay', '1x'], /invalid --update-delay "1x"/],
      [['--restart-condition', 'always'], /Invalid values: Argument: restart-condition/],
      [['--constraint', 'node.role=manager'], /invalid constraint/],
      [['--bogus'], /Unknown argument: bogus/],
    ];
    for (const [flags, re] of cases) {
      fails(await shoal('service', 'create', '--name', 'web', '-d', ...flags, 'nginx'), 2, re);
    }
    fails(await shoal('service', 'create', '-d', 'nginx'), 2, /missing --name NAME/);
    fails(await shoal('service', 'create', '--name', 'web', '-d'), 2, /missing IMAGE/);
    fails(await shoal('service', 'create', '--name'), 2, /Not enough arguments following: name/);
    fails(await shoal('service', 'create', '--name', 'bad.name', 'nginx'), 2, /invalid service name "bad.name"/);
    assert.equal(fake.requests.length, 0);
  });

  test('ls: table and JSON', async () => {
    ok(await shoal('service', 'create', '--name', 'web', '--replicas', '2', '-p', '8080:80', '-d', 'nginx'));
    ok(await shoal('service', 'create', '--name', 'agent', '--mode', 'global', '-d', 'busybox'));
    const t = ok(await shoal('service', 'ls')).stdout.split('\n');
    assert.match(t[0]!, /^ID\s+NAME\s+MODE\s+REPLICAS\s+IMAGE\s+PORTS$/);
    assert.match(t[1]!, /^\S{12}\s+agent\s+global\s+0\/2\s+busybox$/);
    assert.match(t[2]!, /^\S{12}\s+web\s+replicated\s+0\/2\s+nginx\s+\*:8080->80\/tcp$/);
    const j = JSON.parse(ok(await shoal('service', 'ls', '--format', 'json')).stdout) as unknown[];
    assert.deepEqual(j[1], {
      id: [...fake.services.values()].find((s) => s.spec.name === 'web')!.id,
      name: 'web',
      mode: 'replicated',
      replicas: { running: 0, desired: 2 },
      image: 'nginx',
      ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress' }],
    });
    const q = ok(await shoal('service', 'ls', '-q')).stdout.trim().split('\n');
    assert.equal(q.length, 2);
  });

  test('ps, inspect: by name or id prefix; NOT_FOUND as "no such service"', async () => {
    ok(await shoal('service', 'create', '--name', 'web', '--replicas', '2', '-d', 'nginx'));
    const id = [...fake.services.keys()][0]!;
    const ps = JSON.parse(ok(await shoal('service', 'ps', 'web', '--format', 'json')).stdout) as { name: string }[];
    assert.deepEqual(
      ps.map((t) => t.name),
      ['web.1', 'web.2'],
    );
    assert.match(ok(await shoal('service', 'ps', 'web')).stdout, /^ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\s+PORTS\n\S+\s+web\.1\s+nginx\s+worker1\s+Running\s+Pending \d+ seconds? ago/);
    const full = JSON.parse(ok(await shoal('service', 'inspect', id.slice(0, 6), '--format', 'json')).stdout) as Service;
    assert.equal(full.id, id);
    assert.equal(full.spec.name, 'web');
    assert.match(ok(await shoal('service', 'inspect', 'web')).stdout, /^Name:\s+web$/m);
    fails(await shoal('service', 'ps', 'nope'), 1, /^Error: no such service: nope$/);
    fails(await shoal('service', 'inspect', 'nope'), 1, /^Error: no such service: nope$/);
    fails(await shoal('service', 'ps'), 2, /Not enough non-option arguments/);
    fails(await shoal('service', 'ps', 'web', '--format', 'yaml'), 2, /Invalid values/);
  });

  test('update: reads, edits, sends the version it read', async () => {
    ok(await shoal('service', 'create', '--name', 'web', '--replicas', '2', '-e', 'A=1', '-p', '8080:80', '-d', 'nginx:1.25'));
    const before = [...fake.services.values()][0]!;
    const r = ok(
      await shoal('service', 'update', '--image', 'nginx:1.27', '--env-add', 'B=2', '--env-rm', 'A', '--publish-add', '9090:90',
        '--publish-rm', '8080', '--label-add', 'x=1', '--constraint-add', 'node.role==worker', '-d', 'web'),
    );
    assert.equal(r.stdout, 'web\n');
    const req = last('UpdateService');
    assert.equal(req['service'], before.id);
    assert.equal(req['version'], before.version);
    const spec = req['spec'] as ServiceSpec;
    assert.equal(spec.image, 'nginx:1.27');
    assert.deepEqual(spec.env, ['B=2']);
    assert.deepEqual(spec.ports, [{ protocol: 'tcp', targetPort: 90, publishedPort: 9090, publishMode: 'ingress' }]);
    assert.deepEqual(spec.labels, { x: '1' });
    assert.deepEqual(spec.constraints, ['node.role==worker']);
    assert.equal(spec.replicas, 2);
    // Nothing to change: no UpdateService.
    const n = fake.requests.filter((x) => x.method === 'UpdateService').length;
    ok(await shoal('service', 'update', '-d', 'web'));
    assert.equal(fake.requests.filter((x) => x.method === 'UpdateService').length, n);
  });

  test('update without -d waits for convergence (tasks of the new spec version)', async () => {
    ok(await shoal('service', 'create', '--name', 'web', '--replicas', '1', '-d', 'nginx'));
    const r = ok(await shoal('service', 'update', '--replicas', '2', '--image', 'nginx:2', 'web'));
    assert.match(r.stderr, /web: converged\n$/);
    assert.ok(fake.requests.some((x) => x.method === 'ListTasks' && x.req['desiredState'] === 'running'));
  });

  test('runningAtVersion counts running tasks of the new spec only', () => {
    const t = (specVersion: number, state: string, desiredState = 'running') =>
      ({ task: { specVersion, desiredState, status: { state } }, nodeHostname: '' }) as unknown as TaskView;
    assert.equal(runningAtVersion([t(1, 'running'), t(2, 'running'), t(2, 'starting'), t(3, 'running'), t(2, 'running', 'shutdown')], 2), 2);
  });

  test('update: bad input and errors', async () => {
    ok(await shoal('service', 'create', '--name', 'web', '-d', 'nginx'));
    ok(await shoal('service', 'create', '--name', 'g', '--mode', 'global', '-d', 'nginx'));
    fake.requests = [];
    fails(await shoal('service', 'update', '--replicas', '-2', 'web'), 2, /invalid replicas "-2"/);
    fails(await shoal('service', 'update', '--env-add', 'X', 'web'), 2, /invalid environment variable "X"/);
    fails(await shoal('service', 'update', '--publish-add', '70000:80', 'web'), 2, /ports range/);
    fails(await shoal('service', 'update', '--publish-rm', 'http', 'web'), 2, /invalid published port "http"/);
    fails(await shoal('service', 'update', '--update-delay', '3', 'web'), 2, /invalid --update-delay "3"/);
    assert.equal(fake.requests.length, 0);
    fails(await shoal('service', 'update', '--replicas', '2', 'g'), 2, /--replicas cannot be used with a global service/);
    fails(await shoal('service', 'update', '--image', 'x', '-d', 'nope'), 1, /^Error: no such service: nope$/);
  });

  test('scale: several services, progress, errors', async () => {
    ok(await shoal('service', 'create', '--name', 'web', '--replicas', '1', '-d', 'nginx'));
    ok(await shoal('service', 'create', '--name', 'db', '--replicas', '1', '-d', 'nginx'));
    const r = ok(await shoal('service', 'scale', 'web=2', 'db=0'));
    assert.equal(r.stdout, 'web scaled to 2\ndb scaled to 0\n');
    assert.match(r.stderr, /web: converged/);
    assert.match(r.stderr, /db: converged/);
    ok(await shoal('service', 'scale', '-d', 'web=5'));
    assert.deepEqual(last('ScaleService'), { service: 'web', replicas: 5 });
    fails(await shoal('service', 'scale', 'web'), 2, /invalid scale argument "web": expected SERVICE=REPLICAS/);
    fails(await shoal('service', 'scale', 'web=-1'), 2, /replicas must be a non-negative integer/);
    fails(await shoal('service', 'scale', 'web=x'), 2, /replicas must be a non-negative integer/);
    fails(await shoal('service', 'scale'), 2, /Not enough non-option arguments/);
    fails(await shoal('service', 'scale', '-d', 'nope=1'), 1, /^Error: no such service: nope$/);
    ok(await shoal('service', 'create', '--name', 'g', '--mode', 'global', '-d', 'nginx'));
    fails(await shoal('service', 'scale', '-d', 'g=3'), 1, /scale can only be used with replicated mode/);
    // One good, one bad: the good one is done, the exit code is 1.
    const mixed = await shoal('service', 'scale', '-d', 'web=1', 'nope=1');
    assert.equal(mixed.code, 1);
    assert.equal(mixed.stdout, 'web scaled to 1\n');
    assert.equal(mixed.stderr, 'Error: no such service: nope\n');
  });

  test('rm', async () => {
    ok(await shoal('service', 'create', '--name', 'web', '-d', 'nginx'));
    ok(await shoal('service', 'create', '--name', 'db', '-d', 'nginx'));
    assert.equal(ok(await shoal('service', 'rm', 'web', 'db')).stdout, 'web\ndb\n');
    assert.equal(fake.services.size, 0);
    fails(await shoal('service', 'rm', 'web'), 1, /^Error: no such service: web$/);
    fails(await shoal('service', 'rm'), 2, /Not enough non-option arguments/);
  });
});

describe('node, cluster and swarm commands', () => {
  test('node ls: table and JSON', async () => {
    const t = ok(await shoal('node', 'ls')).stdout.split('\n');
    assert.match(t[0]!, /^ID\s+HOSTNAME\s+STATUS\s+AVAILABILITY\s+MANAGER STATUS\s+ADDR\s+ENGINE VERSION$/);
    assert.match(t[1]!, /^n1a+\s+manager1\s+Ready\s+Active\s+Leader\s+127\.0\.0\.1:4242\s+27\.0$/);
    const j = JSON.parse(ok(await shoal('node', 'ls', '--format', 'json')).stdout) as unknown[];
    assert.deepEqual(j[1], {
      id: 'n2bbbbbbbbbbbbbbbbbbbbbbb',
      hostname: 'worker1',
      role: 'worker',
      availability: 'active',
      status: 'ready',
      addr: '127.0.0.1:4243',
      leader: false,
    });
  });

  test('node inspect, update, promote, demote, rm', async () => {
    const n = JSON.parse(ok(await shoal('node', 'inspect', 'worker1', '--format', 'json')).stdout) as Node;
    assert.equal(n.id, 'n2bbbbbbbbbbbbbbbbbbbbbbb');
    assert.match(ok(await shoal('node', 'inspect', 'n1')).stdout, /^Hostname:\s+manager1$/m);
    ok(await shoal('node', 'update', '--availability', 'drain', '--label-add', 'zone=a', '--label-add', 'ssd', 'worker1'));
    assert.deepEqual(last('UpdateNode'), { node: 'worker1', availability: 'drain', labelAdd: { zone: 'a', ssd: '' }, labelRm: [] });
    ok(await shoal('node', 'update', '--label-rm', 'ssd', 'worker1'));
    assert.deepEqual(last('UpdateNode'), { node: 'worker1', availability: '', labelAdd: {}, labelRm: ['ssd'] });
    // A NOT_FOUND that is not about the node keeps the server's words.
    fails(await shoal('node', 'update', '--label-rm', 'nope', 'worker1'), 1, /^Error: node worker1 has no label nope$/);
    assert.match(ok(await shoal('node', 'promote', 'worker1')).stdout, /^Node worker1 promoted to a manager/);
    assert.match(ok(await shoal('node', 'demote', 'worker1')).stdout, /^Manager worker1 demoted/);
    fails(await shoal('node', 'rm', 'worker1'), 1, /is not down and can't be removed \(use --force\)$/);
    assert.equal(ok(await shoal('node', 'rm', '--force', 'worker1')).stdout, 'worker1\n');
    fails(await shoal('node', 'inspect', 'ghost'), 1, /^Error: no such node: ghost$/);
    fails(await shoal('node', 'update', '--availability', 'away', 'n1'), 2, /Invalid values/);
    fails(await shoal('node', 'update', '--label-add', '=v', 'n1'), 2, /invalid label "=v"/);
    fails(await shoal('node', 'promote'), 2, /Not enough non-option arguments/);
  });

  test('cluster status: JSON shape and text', async () => {
    const j = JSON.parse(ok(await shoal('cluster', 'status', '--format', 'json')).stdout);
    assert.deepEqual(j, {
      clusterId: 'cluster1',
      leader: 'n1aaaaaaaaaaaaaaaaaaaaaaa',
      term: 2,
      members: [{ nodeId: 'n1aaaaaaaaaaaaaaaaaaaaaaa', addr: '127.0.0.1:4242', raftRole: 'leader', reachable: true, commitIndex: 7, appliedIndex: 7 }],
    });
    assert.match(ok(await shoal('cluster', 'status')).stdout, /^Cluster ID:\s+cluster1$/m);
  });

  test('swarm join-token', async () => {
    assert.equal(ok(await shoal('swarm', 'join-token', '-q', 'worker')).stdout, 'SWMTKN-1-abc-worker1\n');
    const full = ok(await shoal('swarm', 'join-token', 'manager')).stdout;
    assert.match(full, /To add a manager to this cluster/);
    assert.match(full, /shoald join --data-dir DIR --listen-addr HOST:PORT --join-addr 127\.0\.0\.1:4242 --token SWMTKN-1-abc-manager1/);
    assert.equal(ok(await shoal('swarm', 'join-token', '--rotate', '-q', 'worker')).stdout, 'SWMTKN-1-abc-worker1r\n');
    assert.deepEqual(last('GetJoinToken'), { role: 'worker', rotate: true });
    fails(await shoal('swarm', 'join-token', 'admin'), 2, /Invalid values/);
  });
});

describe('failures', () => {
  test('a worker answers "this node is not a manager"', async () => {
    fake.mode = 'not-manager';
    fails(await shoal('node', 'ls'), 1, /^Error: this node is not a manager$/);
  });

  test('no quorum: the server says so', async () => {
    fake.mode = 'no-quorum';
    fails(await shoal('service', 'ls'), 1, /^Error: the cluster has no quorum/);
  });

  test('no answer: the deadline fires (--timeout)', async () => {
    fake.mode = 'hang';
    const t0 = Date.now();
    fails(await shoal('--timeout', '300ms', 'cluster', 'status'), 1, /^Error: no answer from the manager at unix:\/\/.*control\.sock within 300ms/);
    assert.ok(Date.now() - t0 < 5000);
  });

  test('nothing listening: cannot reach a manager', async () => {
    fails(await shoal('--host', `unix://${dir}/none.sock`, 'node', 'ls'), 1, /^Error: cannot reach a manager at unix:\/\/.*none\.sock: no such socket/);
    fails(await shoal('--host', '127.0.0.1:1', 'node', 'ls'), 1, /^Error: cannot reach a manager at 127\.0\.0\.1:1: connection refused/);
  });

  test('no --host and no SHOAL_HOST', async () => {
    let stderr = '';
    const err = { write: (s: string) => (stderr += s) };
    const code = await main(['service', 'ls'], { stderr: err, stdout: err, ctxFactory: (a) => new Ctx({ host: a['host'] as string | undefined }, err, err, {}) });
    assert.equal(code, 2);
    assert.match(stderr, /^Error: no manager address: pass --host unix:\/\/\/PATH\/control\.sock \(or HOST:PORT\), or set SHOAL_HOST/);
  });

  test('usage errors', async () => {
    fails(await shoal(), 2, /missing a command/);
    fails(await shoal('service'), 2, /missing a service command/);
    fails(await shoal('bogus'), 2, /Unknown argument: bogus/);
    fails(await shoal('--host', 'nohost', 'node', 'ls'), 2, /invalid --host "nohost": no port/);
    fails(await shoal('--timeout', '10', 'node', 'ls'), 2, /invalid --timeout "10"/);
  });

  test('--help and --version go to stdout, exit 0', async () => {
    for (const args of [['--help'], ['service', '--help'], ['service', 'create', '--help'], ['node', 'update', '--help'], ['cluster', 'status', '--help'], ['swarm', 'join-token', '--help']]) {
      const r = ok(await shoal(...args));
      assert.match(r.stdout, /Usage: shoal/);
    }
    assert.match(ok(await shoal('--version')).stdout, /^\d+\.\d+\.\d+/);
    assert.match(ok(await shoal('completion')).stdout, /shoal --get-yargs-completions/);
  });
});
