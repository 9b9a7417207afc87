import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Node, Service, ServiceSpec, Task } from '@shoal/types';
import {
  clusterStatusJson,
  clusterStatusText,
  currentStateText,
  displayImage,
  humanDuration,
  managerStatusText,
  nodeLsJson,
  nodeLsTable,
  portText,
  renderTable,
  serviceInspectText,
  serviceLsJson,
  serviceLsTable,
  servicePsJson,
  servicePsTable,
  taskName,
  timeAgo,
} from '../src/format.js';
import { buildServiceSpec } from '../src/spec.js';
import type { NodeView, TaskView } from '@shoal/types';

const NOW = 1_700_000_000_000;
const SEC = 1000;
const MIN = 60 * SEC;
const HOUR = 60 * MIN;
const DAY = 24 * HOUR;

function node(id: string, hostname: string, role: 'manager' | 'worker', extra: Partial<Node> = {}): Node {
  return {
    id,
    version: 1,
    createdAt: NOW - HOUR,
    updatedAt: NOW - HOUR,
    spec: { role, availability: 'active', labels: {} },
    description: {
      hostname,
      platform: { os: 'linux', arch: 'x86_64' },
      resources: { nanoCpus: 2e9, memoryBytes: 2 * 1024 ** 3 },
      engineVersion: '27.0.1',
    },
    status: { state: 'ready', message: '', addr: `10.0.0.${hostname.length}:4242`, meshAddr: '', meshErrors: [], meshMode: '' },
    managerStatus: role === 'manager' ? { raftId: id, addr: '10.0.0.1:4242' } : null,
    attachments: [],
    ...extra,
  };
}

function service(id: string, spec: Partial<ServiceSpec> & { name: string }): Service {
  return {
    id,
    version: 7,
    createdAt: NOW - 2 * MIN,
    updatedAt: NOW - MIN,
    spec: { ...buildServiceSpec({ name: spec.name, image: 'nginx:alpine' }), ...spec },
    previousSpec: null,
    updateStatus: null,
    specVersion: 1,
    endpoint: { virtualIps: [] }, jobStatus: null,
  };
}

function task(id: string, slot: number, createdAt: number, state: Task['status']['state'], extra: Partial<Task> = {}): Task {
  return {
    id,
    version: 1,
    createdAt,
    updatedAt: createdAt,
    serviceId: 'svc1',
    serviceName: 'web',
    slot,
    nodeId: 'node-aaaa',
    desiredState: 'running',
    status: { state, timestamp: createdAt + SEC, message: '', err: '', containerId: `c-${id}`, exitCode: 0 },
    spec: buildServiceSpec({ name: 'web', image: 'nginx:alpine' }),
    specVersion: 1, networks: [], jobIteration: 0,
    ...extra,
  };
}

describe('renderTable', () => {
  test('docker-like: capital headers, aligned columns, no borders, no trailing spaces', () => {
    const out = renderTable(['id', 'name', 'replicas'], [
      ['abc', 'web', '5/5'],
      ['defghijk', 'db', ''],
    ]);
    assert.equal(out, ['ID         NAME   REPLICAS', 'abc        web    5/5', 'defghijk   db'].join('\n'));
  });
  test('no rows: the header alone; newlines in cells are flattened', () => {
    assert.equal(renderTable(['A', 'B'], []), 'A   B');
    assert.equal(renderTable(['A'], [['x\ny']]), 'A\nx y');
  });
});

describe('relative times', () => {
  test("docker's HumanDuration", () => {
    assert.equal(humanDuration(0), 'Less than a second');
    assert.equal(humanDuration(-5 * SEC), 'Less than a second');
    assert.equal(humanDuration(SEC), '1 second');
    assert.equal(humanDuration(45 * SEC), '45 seconds');
    assert.equal(humanDuration(MIN + 10 * SEC), 'About a minute');
    assert.equal(humanDuration(2 * MIN), '2 minutes');
    assert.equal(humanDuration(59 * MIN), '59 minutes');
    assert.equal(humanDuration(HOUR), 'About an hour');
    assert.equal(humanDuration(5 * HOUR), '5 hours');
    assert.equal(humanDuration(3 * DAY), '3 days');
    assert.equal(humanDuration(20 * DAY), '2 weeks');
    assert.equal(humanDuration(90 * DAY), '3 months');
    assert.equal(humanDuration(800 * DAY), '2 years');
  });
  test('ps CURRENT STATE', () => {
    assert.equal(timeAgo(NOW - 2 * MIN, NOW), '2 minutes ago');
    assert.equal(currentStateText('running', NOW - 2 * MIN, NOW), 'Running 2 minutes ago');
    assert.equal(currentStateText('preparing', NOW, NOW), 'Preparing less than a second ago');
    assert.equal(currentStateText('running', NOW - 70 * SEC, NOW), 'Running about a minute ago');
    assert.equal(currentStateText('new', 0, NOW), 'New');
  });
});

describe('nodes', () => {
  const views: NodeView[] = [
    { node: node('n2', 'worker1', 'worker'), leader: false, reachability: '' },
    { node: node('n1', 'manager1', 'manager'), leader: true, reachability: 'reachable' },
    { node: node('n3', 'manager2', 'manager', { status: { state: 'down', message: 'heartbeat', addr: '10.0.0.3:4242', meshAddr: '', meshErrors: [], meshMode: '' } }), leader: false, reachability: 'unreachable' },
    { node: null, leader: false, reachability: '' },
  ];
  test('node ls JSON shape', () => {
    const j = nodeLsJson(views);
    assert.deepEqual(j, [
      { id: 'n1', hostname: 'manager1', role: 'manager', availability: 'active', status: 'ready', addr: '10.0.0.8:4242', leader: true },
      { id: 'n3', hostname: 'manager2', role: 'manager', availability: 'active', status: 'down', addr: '10.0.0.3:4242', leader: false },
      { id: 'n2', hostname: 'worker1', role: 'worker', availability: 'active', status: 'ready', addr: '10.0.0.7:4242', leader: false },
    ]);
  });
  test('node ls table', () => {
    const lines = nodeLsTable(views).split('\n');
    assert.match(lines[0]!, /^ID\s{3,}HOSTNAME\s{3,}STATUS\s{3,}AVAILABILITY\s{3,}MANAGER STATUS\s{3,}ADDR\s{3,}ENGINE VERSION$/);
    assert.match(lines[1]!, /^n1\s+manager1\s+Ready\s+Active\s+Leader\s+10\.0\.0\.8:4242\s+27\.0\.1$/);
    assert.match(lines[2]!, /^n3\s+manager2\s+Down\s+Active\s+Unreachable\s/);
    assert.match(lines[3]!, /^n2\s+worker1\s+Ready\s+Active\s{3,}10\.0\.0\.7:4242/);
    assert.equal(managerStatusText(views[0]!), '');
  });
});

describe('services', () => {
  const web = service('svc1aaaaaaaaaaaaaaaa', {
    name: 'web',
    replicas: 5,
    ports: [
      { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress', proxyProtocol: false },
      { protocol: 'udp', targetPort: 53, publishedPort: 5353, publishMode: 'host', proxyProtocol: false },
    ],
  });
  const agent = service('svc2bbbbbbbbbbbbbbbb', { name: 'agent', mode: 'global', replicas: 0, image: 'busybox' });
  const summaries = [
    { service: web, running: 3, desired: 5, completed: 0 },
    { service: agent, running: 2, desired: 2, completed: 0 },
    { service: null, running: 0, desired: 0, completed: 0 },
  ];
  test('service ls JSON shape', () => {
    assert.deepEqual(serviceLsJson(summaries), [
      { id: agent.id, name: 'agent', mode: 'global', replicas: { running: 2, desired: 2 }, image: 'busybox', ports: [] },
      {
        id: web.id,
        name: 'web',
        mode: 'replicated',
        replicas: { running: 3, desired: 5 },
        image: 'nginx:alpine',
        ports: [
          { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress', proxyProtocol: false },
          { protocol: 'udp', targetPort: 53, publishedPort: 5353, publishMode: 'host', proxyProtocol: false },
        ],
      },
    ]);
  });
  test("jobs in service ls: docker's mode words and `N/M (K/T completed)`", () => {
    const batch = service('svc3cccccccccccccccc', { name: 'batch', mode: 'replicated-job', replicas: 4, maxConcurrent: 2, image: 'busybox' });
    const once = service('svc4dddddddddddddddd', { name: 'once', mode: 'global-job', replicas: 0, image: 'busybox' });
    const jobs = [
      { service: batch, running: 2, desired: 2, completed: 1 },
      { service: once, running: 0, desired: 1, completed: 2 },
    ];
    const lines = serviceLsTable(jobs).split('\n');
    assert.match(lines[1]!, /^svc3cccccccc\s+batch\s+replicated job\s+2\/2 \(1\/4 completed\)\s+busybox$/);
    assert.match(lines[2]!, /^svc4dddddddd\s+once\s+global job\s+0\/1 \(2\/3 completed\)\s+busybox$/);
    assert.deepEqual(serviceLsJson(jobs).map((e) => [e.mode, e.replicas]), [
      ['replicated-job', { running: 2, desired: 2, completed: 1, total: 4 }],
      ['global-job', { running: 0, desired: 1, completed: 2, total: 3 }],
    ]);
  });
  test('service ls table: short ids, N/M replicas, docker port notation', () => {
    const lines = serviceLsTable(summaries).split('\n');
    assert.match(lines[0]!, /^ID\s+NAME\s+MODE\s+REPLICAS\s+IMAGE\s+PORTS$/);
    assert.match(lines[1]!, /^svc2bbbbbbbb\s+agent\s+global\s+2\/2\s+busybox$/);
    assert.match(lines[2]!, /^svc1aaaaaaaa\s+web\s+replicated\s+3\/5\s+nginx:alpine\s+\*:8080->80\/tcp, 5353->53\/udp \(host\)$/);
    assert.match(serviceLsTable(summaries, true), /svc1aaaaaaaaaaaaaaaa/);
    assert.equal(portText({ protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress', proxyProtocol: false }), '*:8080->80/tcp');
  });
  test('service inspect text', () => {
    const text = serviceInspectText(web, 3, 5);
    assert.match(text, /^ID:\s+svc1aaaaaaaaaaaaaaaa$/m);
    assert.match(text, /^Name:\s+web$/m);
    assert.match(text, /^ Replicas:\s+5$/m);
    assert.match(text, /^ PublishedPort = 8080$/m);
    assert.match(text, /^ Delay:\s+5s$/m);
  });
});

describe('images as docker shows them', () => {
  const D = 'sha256:' + 'c'.repeat(64);
  test('a pinned tag without its digest; a reference without a tag keeps it; no digest: as is', () => {
    assert.equal(displayImage(`busybox:latest@${D}`), 'busybox:latest');
    assert.equal(displayImage(`127.0.0.1:5000/team/app:v1@${D}`), '127.0.0.1:5000/team/app:v1');
    assert.equal(displayImage(`127.0.0.1:5000/team/app@${D}`), `127.0.0.1:5000/team/app@${D}`);
    assert.equal(displayImage('127.0.0.1:5000/app'), '127.0.0.1:5000/app');
  });
});

describe('tasks', () => {
  const views: TaskView[] = [
    { task: task('t-old', 1, NOW - 10 * MIN, 'failed', { desiredState: 'shutdown', status: { state: 'failed', timestamp: NOW - 9 * MIN, message: 'exited', err: 'task: non-zero exit (1)', containerId: 'c1', exitCode: 1 } }), nodeHostname: 'worker1' },
    { task: task('t-new', 1, NOW - 2 * MIN, 'running'), nodeHostname: 'worker1' },
    { task: task('t-2', 2, NOW - 5 * MIN, 'running', { nodeId: 'node-bbbb' }), nodeHostname: 'worker2' },
    { task: task('t-mid', 1, NOW - 5 * MIN, 'shutdown', { desiredState: 'shutdown' }), nodeHostname: 'worker1' },
    { task: null, nodeHostname: '' },
  ];
  test('names: SERVICE.SLOT, SERVICE.NODEID for global tasks', () => {
    assert.equal(taskName(views[1]!.task!), 'web.1');
    assert.equal(taskName({ ...views[1]!.task!, slot: 0 }), 'web.node-aaaa');
  });
  test('service ps JSON: by slot, newest first within a slot', () => {
    const j = servicePsJson(views);
    assert.deepEqual(
      j.map((t) => [t.id, t.name]),
      [
        ['t-new', 'web.1'],
        ['t-mid', 'web.1'],
        ['t-old', 'web.1'],
        ['t-2', 'web.2'],
      ],
    );
    assert.deepEqual(j[2], {
      id: 't-old',
      name: 'web.1',
      slot: 1,
      nodeId: 'node-aaaa',
      node: 'worker1',
      desiredState: 'shutdown',
      currentState: 'failed',
      error: 'task: non-zero exit (1)',
      message: 'exited',
      containerId: 'c1',
    });
    assert.deepEqual(Object.keys(j[0]!), ['id', 'name', 'slot', 'nodeId', 'node', 'desiredState', 'currentState', 'error', 'message', 'containerId']);
  });
  test('service ps table: history rows as \\_ NAME, relative times, quoted errors', () => {
    const lines = servicePsTable(views, NOW).split('\n');
    assert.match(lines[0]!, /^ID\s+NAME\s+IMAGE\s+NODE\s+DESIRED STATE\s+CURRENT STATE\s+ERROR\s+PORTS$/);
    assert.match(lines[1]!, /^t-new\s+web\.1\s+nginx:alpine\s+worker1\s+Running\s+Running about a minute ago$/);
    assert.match(lines[2]!, /^t-mid\s+ \\_ web\.1\s+nginx:alpine\s+worker1\s+Shutdown\s+Shutdown 4 minutes ago$/);
    assert.match(lines[3]!, /^t-old\s+ \\_ web\.1\s+.*Failed 9 minutes ago\s+"task: non-zero exit \(1\)"$/);
    assert.match(lines[4]!, /^t-2\s+web\.2\s+nginx:alpine\s+worker2\s+Running\s+Running 4 minutes ago$/);
  });
  test('global tasks are grouped per node', () => {
    const g = (id: string, nodeId: string, at: number): TaskView => ({
      task: task(id, 0, at, 'running', { nodeId }),
      nodeHostname: nodeId,
    });
    const j = servicePsJson([g('a', 'n2', NOW - MIN), g('b', 'n1', NOW - MIN), g('c', 'n2', NOW)]);
    assert.deepEqual(
      j.map((t) => [t.id, t.name]),
      [
        ['b', 'web.n1'],
        ['c', 'web.n2'],
        ['a', 'web.n2'],
      ],
    );
  });
});

describe('cluster status', () => {
  const r = {
    clusterId: 'c1',
    leader: 'n1',
    term: 3,
    self: 'n1',
    members: [
      { nodeId: 'n2', addr: '10.0.0.2:4242', raftRole: 'follower', reachable: false, commitIndex: 10, appliedIndex: 9 },
      { nodeId: 'n1', addr: '10.0.0.1:4242', raftRole: 'leader', reachable: true, commitIndex: 12, appliedIndex: 12 },
    ],
  };
  test('JSON shape', () => {
    assert.deepEqual(clusterStatusJson(r), {
      clusterId: 'c1',
      leader: 'n1',
      term: 3,
      members: [
        { nodeId: 'n1', addr: '10.0.0.1:4242', raftRole: 'leader', reachable: true, commitIndex: 12, appliedIndex: 12 },
        { nodeId: 'n2', addr: '10.0.0.2:4242', raftRole: 'follower', reachable: false, commitIndex: 10, appliedIndex: 9 },
      ],
    });
  });
  test('text', () => {
    const t = clusterStatusText(r);
    assert.match(t, /^Cluster ID:\s+c1$/m);
    assert.match(t, /^Leader:\s+n1$/m);
    assert.match(t, /^NODE ID\s+ADDR\s+RAFT ROLE\s+REACHABLE\s+COMMIT INDEX\s+APPLIED INDEX$/m);
    assert.match(t, /^n1\s+10\.0\.0\.1:4242\s+Leader\s+yes\s+12\s+12$/m);
  });
  test('a manager the store has and Raft not yet: listed last as pending, same JSON shape', () => {
    const withPending = {
      ...r,
      members: [{ nodeId: 'n0', addr: '10.0.0.9:4242', raftRole: 'pending', reachable: false, commitIndex: 0, appliedIndex: 0 }, ...r.members],
    };
    const j = clusterStatusJson(withPending);
    assert.deepEqual(j.members.map((m) => [m.nodeId, m.raftRole]), [['n1', 'leader'], ['n2', 'follower'], ['n0', 'pending']]);
    assert.deepEqual(j.members[2], { nodeId: 'n0', addr: '10.0.0.9:4242', raftRole: 'pending', reachable: false, commitIndex: 0, appliedIndex: 0 });
    const lines = clusterStatusText(withPending).split('\n');
    assert.match(lines[lines.length - 1]!, /^n0\s+10\.0\.0\.9:4242\s+Pending\s+no\s+-\s+-$/);
  });
});
