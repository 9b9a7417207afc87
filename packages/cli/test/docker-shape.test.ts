// `--format docker` and templates on inspect: Shoal's objects in Docker's Engine API shape, read
// back as `jq` would (the printed JSON, by path) and as docker's `--format '{{...}}'` would.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Config, Network, Node, Secret, Service, ServiceSpec } from '@shoal/types';
import { dockerConfig, dockerNetwork, dockerNode, dockerSecret, dockerService, rfc3339 } from '../src/docker-shape.js';
import { parseOutput, renderObject } from '../src/output.js';
import { buildServiceSpec } from '../src/spec.js';

const T0 = Date.UTC(2026, 11, 7, 15, 4, 5, 120);

function service(spec: Partial<ServiceSpec>): Service {
  return {
    id: 'svc0123456789abcdef',
    version: 42,
    createdAt: T0,
    updatedAt: T0 + 1000,
    spec: { ...buildServiceSpec({ name: 'web', image: 'nginx:alpine', replicas: '3', publish: ['8080:80'], label: ['team=blue'] }), ...spec },
    previousSpec: null,
    updateStatus: null,
    specVersion: 1,
    endpoint: { virtualIps: [{ networkId: 'net-ingress', addr: '10.255.0.5/16' }] },
    jobStatus: null,
  };
}

/** What `shoal X inspect --format docker` prints, parsed as jq reads it. */
function printed(view: { docker: () => unknown }): unknown {
  const text = renderObject(parseOutput('docker', { docker: true }), { text: () => '', json: () => null, ...view });
  return JSON.parse(text);
}

/** A jq-style path: `[0].Spec.Mode.Replicated.Replicas`. */
function jq(v: unknown, path: string): unknown {
  let cur = v;
  for (const m of path.matchAll(/\[(\d+)\]|\.([A-Za-z0-9_]+)|\["([^"]+)"\]/g)) {
    if (cur === null || cur === undefined) return undefined;
    cur = m[1] !== undefined ? (cur as unknown[])[Number(m[1])] : (cur as Record<string, unknown>)[m[2] ?? m[3]!];
  }
  return cur;
}

const template = (t: string, docker: () => unknown): string =>
  renderObject(parseOutput(t, { docker: true }), { text: () => '', json: () => null, docker }).replace(/\n$/, '');

describe('service inspect in Docker\'s shape', () => {
  const svc = service({
    entrypoint: ['/entry.sh'],
    command: ['nginx'],
    args: ['-g', 'daemon off;'],
    user: '1000:1000',
    hostname: '{{.Service.Name}}-{{.Task.Slot}}',
    workdir: '/srv',
    dnsConfig: { nameservers: ['1.1.1.1'], search: ['example.org'], options: ['ndots:2'] },
    mounts: [
      { type: 'volume', source: 'data', target: '/data', readOnly: false, volumeOptions: { noCopy: true, labels: { a: 'b' }, driver: '', driverOptions: {} }, tmpfsOptions: null, bindPropagation: '' },
      { type: 'tmpfs', source: '', target: '/scratch', readOnly: false, volumeOptions: null, tmpfsOptions: { sizeBytes: 1 << 20, mode: 0o1777 }, bindPropagation: '' },
    ],
    secrets: [{ secretId: 'sec1', secretName: 'db-pass', target: '', uid: '', gid: '', mode: 0 }],
    configs: [{ configId: 'cfg1', configName: 'site', target: '/etc/site.conf', uid: '33', gid: '33', mode: 0o440 }],
    capAdd: ['NET_ADMIN'],
    sysctls: { 'net.core.somaxconn': '1024' },
    ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }],
    containerLabels: { c: 'd' },
    logDriver: { name: 'json-file', options: { 'max-size': '10m' } },
    stopSignal: 'SIGQUIT',
    init: true,
    readOnly: true,
    maxReplicasPerNode: 2,
    constraints: ['node.role==worker'],
  });
  const doc = printed({ docker: () => dockerService(svc) });

  test('a list of one service, its identity and times (RFC 3339)', () => {
    assert.ok(Array.isArray(doc));
    assert.equal(jq(doc, '[0].ID'), svc.id);
    assert.equal(jq(doc, '[0].Version.Index'), 42);
    assert.equal(jq(doc, '[0].CreatedAt'), '2026-12-07T15:04:05.12Z');
    assert.equal(jq(doc, '[0].UpdatedAt'), '2026-12-07T15:04:06.12Z');
    assert.equal(rfc3339(Date.UTC(2026, 0, 2, 3, 4, 5)), '2026-01-02T03:04:05Z');
  });

  test('Spec: name, labels, mode, rollout and restart settings (durations in nanoseconds)', () => {
    assert.equal(jq(doc, '[0].Spec.Name'), 'web');
    assert.deepEqual(jq(doc, '[0].Spec.Labels'), { team: 'blue' });
    assert.equal(jq(doc, '[0].Spec.Mode.Replicated.Replicas'), 3);
    assert.equal(jq(doc, '[0].Spec.TaskTemplate.RestartPolicy.Condition'), 'any');
    assert.equal(jq(doc, '[0].Spec.TaskTemplate.RestartPolicy.Delay'), 5_000_000_000);
    assert.equal(jq(doc, '[0].Spec.UpdateConfig.Parallelism'), 1);
    assert.equal(jq(doc, '[0].Spec.UpdateConfig.Order'), 'stop-first');
    assert.equal(jq(doc, '[0].Spec.RollbackConfig.FailureAction'), 'pause');
    assert.deepEqual(jq(doc, '[0].Spec.TaskTemplate.Placement'), { Constraints: ['node.role==worker'], MaxReplicas: 2 });
    assert.deepEqual(jq(doc, '[0].Spec.EndpointSpec'), { Mode: 'vip', Ports: [{ Protocol: 'tcp', TargetPort: 80, PublishedPort: 8080, PublishMode: 'ingress' }] });
  });

  test('ContainerSpec: entrypoint is Command, COMMAND ARGS are Args, and the container fields', () => {
    const c = '[0].Spec.TaskTemplate.ContainerSpec';
    assert.equal(jq(doc, `${c}.Image`), 'nginx:alpine');
    assert.deepEqual(jq(doc, `${c}.Command`), ['/entry.sh']);
    assert.deepEqual(jq(doc, `${c}.Args`), ['nginx', '-g', 'daemon off;']);
    assert.equal(jq(doc, `${c}.User`), '1000:1000');
    assert.equal(jq(doc, `${c}.Dir`), '/srv');
    assert.equal(jq(doc, `${c}.Hostname`), '{{.Service.Name}}-{{.Task.Slot}}');
    assert.equal(jq(doc, `${c}.StopGracePeriod`), 10_000_000_000);
    assert.equal(jq(doc, `${c}.StopSignal`), 'SIGQUIT');
    assert.equal(jq(doc, `${c}.Init`), true);
    assert.equal(jq(doc, `${c}.ReadOnly`), true);
    assert.deepEqual(jq(doc, `${c}.DNSConfig`), { Nameservers: ['1.1.1.1'], Search: ['example.org'], Options: ['ndots:2'] });
    assert.deepEqual(jq(doc, `${c}.Mounts`), [
      { Type: 'volume', Source: 'data', Target: '/data', VolumeOptions: { NoCopy: true, Labels: { a: 'b' } } },
      { Type: 'tmpfs', Target: '/scratch', TmpfsOptions: { SizeBytes: 1048576, Mode: 0o1777 } },
    ]);
    assert.deepEqual(jq(doc, `${c}.Secrets`), [{ File: { Name: 'db-pass', UID: '0', GID: '0', Mode: 0o444 }, SecretID: 'sec1', SecretName: 'db-pass' }]);
    assert.deepEqual(jq(doc, `${c}.Configs`), [{ File: { Name: '/etc/site.conf', UID: '33', GID: '33', Mode: 0o440 }, ConfigID: 'cfg1', ConfigName: 'site' }]);
    assert.deepEqual(jq(doc, `${c}.CapabilityAdd`), ['NET_ADMIN']);
    assert.equal(jq(doc, `${c}.CapabilityDrop`), undefined, 'empty: left out (omitempty)');
    assert.deepEqual(jq(doc, `${c}.Sysctls`), { 'net.core.somaxconn': '1024' });
    assert.deepEqual(jq(doc, `${c}.Ulimits`), [{ Name: 'nofile', Soft: 1024, Hard: 2048 }]);
    assert.deepEqual(jq(doc, `${c}.Labels`), { c: 'd' });
    assert.deepEqual(jq(doc, '[0].Spec.TaskTemplate.LogDriver'), { Name: 'json-file', Options: { 'max-size': '10m' } });
  });

  test('Endpoint: virtual IPs and ports; no PreviousSpec or UpdateStatus before an update', () => {
    assert.deepEqual(jq(doc, '[0].Endpoint.VirtualIPs'), [{ NetworkID: 'net-ingress', Addr: '10.255.0.5/16' }]);
    assert.equal(jq(doc, '[0].Endpoint.Ports[0].PublishedPort'), 8080);
    assert.equal(jq(doc, '[0].PreviousSpec'), undefined);
    assert.equal(jq(doc, '[0].UpdateStatus'), undefined);
  });

  test('global and job modes; a previous spec and an update status when there are', () => {
    const g = dockerService({
      ...service({ mode: 'global' }),
      previousSpec: service({}).spec,
      updateStatus: { state: 'completed', startedAt: T0, completedAt: T0 + 2000, message: 'update completed' },
    });
    const d = printed({ docker: () => g });
    assert.deepEqual(jq(d, '[0].Spec.Mode'), { Global: {} });
    assert.equal(jq(d, '[0].PreviousSpec.Mode.Replicated.Replicas'), 3);
    assert.equal(jq(d, '[0].UpdateStatus.State'), 'completed');
    assert.equal(jq(d, '[0].UpdateStatus.CompletedAt'), '2026-12-07T15:04:07.12Z');
    const job = printed({ docker: () => dockerService(service({ mode: 'replicated-job' as ServiceSpec['mode'], replicas: 5, maxConcurrent: 2 })) });
    assert.deepEqual(jq(job, '[0].Spec.Mode'), { ReplicatedJob: { MaxConcurrent: 2, TotalCompletions: 5 } });
  });

  test('templates read the same shape, as docker service inspect --format does', () => {
    const d = () => dockerService(svc);
    assert.equal(template('{{.Spec.Name}}', d), 'web');
    assert.equal(template('{{.Spec.Mode.Replicated.Replicas}}', d), '3');
    assert.equal(template('{{index .Spec.Labels "team"}}', d), 'blue');
    assert.equal(template('{{range .Endpoint.VirtualIPs}}{{.Addr}} {{end}}', d), '10.255.0.5/16 ');
    assert.equal(template('{{json .Spec.TaskTemplate.ContainerSpec.Args}}', d), '["nginx","-g","daemon off;"]');
    assert.equal(JSON.parse(template('{{json .}}', d)).Spec.Name, 'web');
    // A field omitempty leaves out of the JSON still reads as its zero value, as Go's struct field.
    assert.equal(template('[{{.Spec.TaskTemplate.ContainerSpec.Groups}}]', d), '[[]]');
    assert.throws(() => template('{{.Spec.Nope}}', d), /^CliError: template: :1:2: executing "" at <\.Spec\.Nope>: can't evaluate field Nope$/);
    assert.equal(template('[{{.Spec.TaskTemplate.ContainerSpec.CapabilityDrop}}]', d), '[[]]');
    assert.equal(template('{{if .PreviousSpec}}yes{{else}}no{{end}}', d), 'no');
    assert.equal(template('{{.Spec.Labels.nope}}', d), '<no value>');
  });
});

describe('node and network inspect in Docker\'s shape', () => {
  const n: Node = {
    id: 'node1',
    version: 3,
    createdAt: T0,
    updatedAt: T0,
    spec: { role: 'manager', availability: 'active', labels: { zone: 'a' } },
    description: { hostname: 'm1', platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 2e9, memoryBytes: 1 << 30 }, engineVersion: '27.0.1' },
    status: { state: 'ready', message: '', addr: '10.0.0.2:4242', meshAddr: '', meshErrors: [], meshMode: '' },
    managerStatus: { raftId: 'node1', addr: '10.0.0.2:4242' },
    attachments: [],
  };

  test('node', () => {
    const d = printed({ docker: () => dockerNode({ node: n, leader: true, reachability: 'reachable' }) });
    assert.equal(jq(d, '[0].ID'), 'node1');
    assert.equal(jq(d, '[0].Spec.Role'), 'manager');
    assert.equal(jq(d, '[0].Spec.Labels.zone'), 'a');
    assert.equal(jq(d, '[0].Description.Hostname'), 'm1');
    assert.equal(jq(d, '[0].Description.Engine.EngineVersion'), '27.0.1');
    assert.equal(jq(d, '[0].Status.State'), 'ready');
    assert.equal(jq(d, '[0].Status.Addr'), '10.0.0.2');
    assert.deepEqual(jq(d, '[0].ManagerStatus'), { Leader: true, Reachability: 'reachable', Addr: '10.0.0.2:4242' });
    const w = printed({ docker: () => dockerNode({ node: { ...n, managerStatus: null }, leader: false, reachability: '' }) });
    assert.equal(jq(w, '[0].ManagerStatus'), undefined);
  });

  test('network: Id, IPAM config, options, labels', () => {
    const net: Network = {
      id: 'net1',
      version: 1,
      createdAt: T0,
      updatedAt: T0,
      spec: { name: 'backend', driver: 'overlay', labels: { env: 'prod' }, internal: true, attachable: false, ipam: { subnet: '', gateway: '' }, ingress: false },
      subnet: '10.0.1.0/24',
      gateway: '10.0.1.1',
      vni: 4097,
    };
    const d = printed({ docker: () => dockerNetwork(net) });
    assert.equal(jq(d, '[0].Name'), 'backend');
    assert.equal(jq(d, '[0].Id'), 'net1');
    assert.equal(jq(d, '[0].Scope'), 'swarm');
    assert.equal(jq(d, '[0].Internal'), true);
    assert.deepEqual(jq(d, '[0].IPAM.Config'), [{ Subnet: '10.0.1.0/24', Gateway: '10.0.1.1' }]);
    assert.equal(jq(d, '[0].Options["com.docker.network.driver.overlay.vxlanid_list"]'), '4097');
    assert.equal(template('{{range .IPAM.Config}}{{.Subnet}}{{end}} {{.Labels.env}}', () => dockerNetwork(net)), '10.0.1.0/24 prod');
  });

  test('secret (never data) and config (data in base64)', () => {
    const sec = { id: 'sec1', version: 2, createdAt: T0, updatedAt: T0, spec: { name: 'db-pass', labels: { a: 'b' } }, size: 5 } as unknown as Secret;
    assert.deepEqual(printed({ docker: () => dockerSecret(sec) }), [
      { ID: 'sec1', Version: { Index: 2 }, CreatedAt: '2026-12-07T15:04:05.12Z', UpdatedAt: '2026-12-07T15:04:05.12Z', Spec: { Name: 'db-pass', Labels: { a: 'b' } } },
    ]);
    const cfg = { id: 'cfg1', version: 1, createdAt: T0, updatedAt: T0, spec: { name: 'site', labels: {}, data: Buffer.from('hello') } } as unknown as Config;
    assert.equal(jq(printed({ docker: () => dockerConfig(cfg) }), '[0].Spec.Data'), Buffer.from('hello').toString('base64'));
  });
});
