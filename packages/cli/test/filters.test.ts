// `--filter` on ls/ps as docker's: AND across keys, OR within a key, one line for a bad key; and
// the rows `--format` templates see on each list.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Network, Node, NodeView, Secret, Service, ServiceSummary, Task, TaskView } from '@shoal/types';
import { filterItems, labelMatch, parseFilters } from '../src/filters.js';
import {
  NETWORK_FILTERS,
  NODE_FILTERS,
  SECRET_FILTERS,
  secretRows,
  SERVICE_FILTERS,
  TASK_FILTERS,
  goTimeString,
  networkRows,
  nodeRows,
  serviceRows,
  taskRows,
} from '../src/list-rows.js';
import { buildServiceSpec } from '../src/spec.js';
import { Template } from '../src/template/exec.js';

const NOW = Date.UTC(2026, 11, 7, 12, 0, 0);

function summary(id: string, name: string, opts: { mode?: 'replicated' | 'global'; labels?: string[]; publish?: string[] } = {}): ServiceSummary {
  const spec = buildServiceSpec({ name, image: 'nginx:alpine@sha256:' + 'a'.repeat(64), mode: opts.mode, label: opts.labels ?? [], publish: opts.publish ?? [] });
  const service: Service = {
    id,
    version: 1,
    createdAt: NOW,
    updatedAt: NOW,
    spec,
    previousSpec: null,
    updateStatus: null,
    specVersion: 1,
    endpoint: { virtualIps: [] },
    jobStatus: null,
  };
  return { service, running: 1, desired: 2, completed: 0 };
}

const SERVICES = [
  summary('aaa111', 'web', { labels: ['tier=front', 'team=blue'], publish: ['8080:80'] }),
  summary('bbb222', 'api', { labels: ['tier=back'] }),
  summary('ccc333', 'agent', { mode: 'global', labels: ['team=blue'] }),
  summary('abc444', 'web-admin'),
];

const names = (xs: readonly ServiceSummary[]): string[] => xs.map((s) => s.service!.spec.name).sort();

describe('filters', () => {
  test('service ls: id and name prefixes, label (key or key=value), mode', () => {
    assert.deepEqual(names(filterItems(SERVICES, ['name=web'], SERVICE_FILTERS)), ['web', 'web-admin']);
    assert.deepEqual(names(filterItems(SERVICES, ['id=ab'], SERVICE_FILTERS)), ['web-admin']);
    assert.deepEqual(names(filterItems(SERVICES, ['label=team'], SERVICE_FILTERS)), ['agent', 'web']);
    assert.deepEqual(names(filterItems(SERVICES, ['label=tier=back'], SERVICE_FILTERS)), ['api']);
    assert.deepEqual(names(filterItems(SERVICES, ['mode=global'], SERVICE_FILTERS)), ['agent']);
  });

  test('values of one key are alternatives (OR); different keys must all match (AND)', () => {
    assert.deepEqual(names(filterItems(SERVICES, ['name=api', 'name=agent'], SERVICE_FILTERS)), ['agent', 'api']);
    assert.deepEqual(names(filterItems(SERVICES, ['label=team=blue', 'mode=replicated'], SERVICE_FILTERS)), ['web']);
    assert.deepEqual(names(filterItems(SERVICES, ['label=team', 'name=api'], SERVICE_FILTERS)), []);
    assert.deepEqual(names(filterItems(SERVICES, [], SERVICE_FILTERS)), ['agent', 'api', 'web', 'web-admin']);
  });

  test('a bad filter is one line, whatever the list holds', () => {
    assert.throws(() => parseFilters(['x=1'], SERVICE_FILTERS), /^UsageError: invalid filter 'x' \(this list filters by id, name, label, mode\)$/);
    assert.throws(() => parseFilters(['nameweb'], SERVICE_FILTERS), /^UsageError: bad format of filter \(expected name=value\): "nameweb"$/);
    assert.throws(() => filterItems([], ['mode=sometimes'], SERVICE_FILTERS), /^UsageError: invalid filter 'mode=sometimes': mode is replicated, global/);
    assert.throws(() => filterItems([], ['role=boss'], NODE_FILTERS), /invalid filter 'role=boss'/);
    assert.throws(() => filterItems([], ['desired-state=sleeping'], TASK_FILTERS), /invalid filter 'desired-state=sleeping'/);
    assert.throws(() => filterItems([], ['driver=overlay', 'colour=red'], NETWORK_FILTERS), /invalid filter 'colour'/);
  });

  test('labelMatch', () => {
    assert.equal(labelMatch({ a: '' }, 'a'), true);
    assert.equal(labelMatch({ a: '' }, 'a='), true);
    assert.equal(labelMatch({ a: 'x' }, 'a=y'), false);
    assert.equal(labelMatch(null, 'a'), false);
  });

  test('node ls: name, role, membership, node.label (engine labels: none on Shoal nodes)', () => {
    const views = [view('n1', 'manager-1', 'manager', { zone: 'a' }), view('n2', 'worker-1', 'worker', { zone: 'b' }), view('n3', 'worker-2', 'worker', {})];
    const ids = (xs: NodeView[]) => xs.map((v) => v.node!.id);
    assert.deepEqual(ids(filterItems(views, ['role=worker'], NODE_FILTERS)), ['n2', 'n3']);
    assert.deepEqual(ids(filterItems(views, ['name=worker', 'node.label=zone'], NODE_FILTERS)), ['n2']);
    assert.deepEqual(ids(filterItems(views, ['node.label=zone=a', 'node.label=zone=b'], NODE_FILTERS)), ['n1', 'n2']);
    assert.deepEqual(ids(filterItems(views, ['membership=accepted', 'id=n3'], NODE_FILTERS)), ['n3']);
    assert.deepEqual(ids(filterItems(views, ['membership=pending'], NODE_FILTERS)), []);
    assert.deepEqual(ids(filterItems(views, ['label=zone'], NODE_FILTERS)), []);
  });

  test('service ps / node ps: id, name, node (id or hostname), desired-state', () => {
    const views = [tv('t1', 1, 'node-a', 'host-a', 'running'), tv('t2', 2, 'node-b', 'host-b', 'running'), tv('t0', 1, 'node-b', 'host-b', 'shutdown')];
    const ids = (xs: TaskView[]) => xs.map((v) => v.task!.id).sort();
    assert.deepEqual(ids(filterItems(views, ['desired-state=running'], TASK_FILTERS)), ['t1', 't2']);
    assert.deepEqual(ids(filterItems(views, ['node=host-b'], TASK_FILTERS)), ['t0', 't2']);
    assert.deepEqual(ids(filterItems(views, ['node=node-a', 'node=host-b', 'desired-state=running'], TASK_FILTERS)), ['t1', 't2']);
    assert.deepEqual(ids(filterItems(views, ['name=web.1'], TASK_FILTERS)), ['t0', 't1']);
    assert.deepEqual(ids(filterItems(views, ['id=t0'], TASK_FILTERS)), ['t0']);
  });

  test('network ls: name (part of it), driver, label, scope, type', () => {
    const nets = [network('n1', 'ingress', {}), network('n2', 'backend', { env: 'prod' }), network('n3', 'front-end', {})];
    const names = (xs: Network[]) => xs.map((n) => n.spec.name);
    assert.deepEqual(names(filterItems(nets, ['name=end'], NETWORK_FILTERS)), ['backend', 'front-end']);
    assert.deepEqual(names(filterItems(nets, ['label=env=prod', 'driver=overlay'], NETWORK_FILTERS)), ['backend']);
    assert.deepEqual(names(filterItems(nets, ['scope=local'], NETWORK_FILTERS)), []);
    assert.deepEqual(names(filterItems(nets, ['scope=swarm', 'type=custom'], NETWORK_FILTERS)).length, 3);
  });
});

describe('rows of --format templates', () => {
  const fmt = (t: string, rows: object[]) => rows.map((r) => new Template(t).execute(r));

  test('secret ls / config ls: rows and filters for the commands that list them', () => {
    const secret = (id: string, name: string, labels: Record<string, string>): Secret => ({ id, version: 1, createdAt: NOW - 120_000, updatedAt: NOW - 60_000, spec: { name, labels }, size: 3 }) as Secret;
    const xs = [secret('s2', 'db-pass', { app: 'db' }), secret('s1', 'api-key', {})];
    assert.deepEqual(fmt('{{.ID}} {{.Name}} {{.CreatedAt}}|{{.UpdatedAt}}|{{.Labels}}|{{.Label "app"}}', secretRows(xs, NOW)), [
      's1 api-key 2 minutes ago|about a minute ago||',
      's2 db-pass 2 minutes ago|about a minute ago|app=db|db',
    ]);
    assert.deepEqual(filterItems(xs, ['label=app', 'name=db'], SECRET_FILTERS).map((s) => s.id), ['s2']);
    assert.throws(() => filterItems(xs, ['driver=x'], SECRET_FILTERS), /invalid filter 'driver'/);
  });

  test("service ls: docker's placeholders; {{json .}} with the fields in name order", () => {
    const rows = serviceRows(SERVICES);
    assert.deepEqual(fmt('{{.Name}} {{.Replicas}} {{.Mode}} {{.Image}} {{.Ports}}', rows)[2], 'web 1/2 replicated nginx:alpine *:8080->80/tcp');
    assert.deepEqual(JSON.parse(fmt('{{json .}}', rows)[0]!), { ID: 'ccc333', Image: 'nginx:alpine', Mode: 'global', Name: 'agent', Ports: '', Replicas: '1/2' });
  });

  test('service ps: CurrentState as the table has it, history rows marked', () => {
    const views = [tv('t1', 1, 'node-a', 'host-a', 'running'), tv('t0', 1, 'node-a', 'host-a', 'shutdown', NOW - 60_000)];
    const rows = taskRows(views, NOW + 120_000);
    assert.deepEqual(fmt('{{.Name}}|{{.Node}}|{{.DesiredState}}|{{.CurrentState}}|{{.Error}}', rows), [
      'web.1|host-a|Running|Running 2 minutes ago|',
      ' \\_ web.1|host-a|Shutdown|Shutdown 3 minutes ago|',
    ]);
  });

  test('node ls: .Self marks the node that answered; network ls: .Label "k", CreatedAt as Go prints it', () => {
    const nodes = nodeRows([view('n1', 'm1', 'manager', {}), view('n2', 'w1', 'worker', {})], 'n1');
    assert.deepEqual(fmt('{{.ID}}{{if .Self}} *{{end}} {{.Hostname}} {{.Status}} {{.Availability}} [{{.ManagerStatus}}] {{.TLSStatus}}', nodes), [
      'n1 * m1 Ready Active [Leader] Ready',
      'n2 w1 Ready Active [] Ready',
    ]);
    const nets = networkRows([network('n2aaaaaaaaaaaaaaaa', 'backend', { env: 'prod', a: 'b' })]);
    assert.deepEqual(fmt('{{.ID}} {{.Name}} {{.Labels}} {{.Label "env"}}|{{.Label "none"}}| {{.CreatedAt}}', nets), ['n2aaaaaaaaaa backend a=b,env=prod prod|| 2026-12-07 12:00:00 +0000 UTC']);
    assert.equal(goTimeString(NOW + 120), '2026-12-07 12:00:00.12 +0000 UTC');
  });
});

function view(id: string, hostname: string, role: 'manager' | 'worker', labels: Record<string, string>): NodeView {
  const node: Node = {
    id,
    version: 1,
    createdAt: NOW,
    updatedAt: NOW,
    spec: { role, availability: 'active', labels },
    description: { hostname, platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 1e9, memoryBytes: 1 << 30 }, engineVersion: '27.0.1' },
    status: { state: 'ready', message: '', addr: '10.0.0.1:4242', meshAddr: '', meshErrors: [], meshMode: '' },
    managerStatus: role === 'manager' ? { raftId: id, addr: '10.0.0.1:4242' } : null,
    attachments: [],
  };
  return { node, leader: role === 'manager', reachability: role === 'manager' ? 'reachable' : '' };
}

function tv(id: string, slot: number, nodeId: string, hostname: string, desired: Task['desiredState'], createdAt = NOW): TaskView {
  const task: Task = {
    id,
    version: 1,
    createdAt,
    updatedAt: createdAt,
    serviceId: 'svc1',
    serviceName: 'web',
    slot,
    nodeId,
    desiredState: desired,
    status: { state: desired, timestamp: createdAt, message: '', err: '', containerId: '', exitCode: 0 },
    spec: buildServiceSpec({ name: 'web', image: 'nginx:alpine' }),
    specVersion: 1,
    networks: [],
    jobIteration: 0,
  } as Task;
  return { task, nodeHostname: hostname };
}

function network(id: string, name: string, labels: Record<string, string>): Network {
  return {
    id,
    version: 1,
    createdAt: NOW,
    updatedAt: NOW,
    spec: { name, driver: 'overlay', labels, internal: false, attachable: false, ipam: { subnet: '', gateway: '' }, ingress: name === 'ingress' },
    subnet: '10.0.1.0/24',
    gateway: '10.0.1.1',
    vni: 4097,
  };
}
