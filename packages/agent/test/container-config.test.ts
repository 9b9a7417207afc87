// The container settings a task's spec gives (container-config.ts, pure): what the node adds
// (the network's resolver, its own mounts) and how it mixes with the spec's.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ShoalError } from '@shoal/api';
import { completeServiceSpec } from '@shoal/types';
import { assignedTask } from './fixtures.js';
import { containerSettings, taskHostname } from '../src/container-config.js';

const NODE = { id: 'node1', hostname: 'alpha' };

function task(input: Parameters<typeof completeServiceSpec>[0], slot = 3) {
  const spec = completeServiceSpec({ name: 'web', image: 'shoal/busybox', ...input });
  return assignedTask({ id: 'task9', nodeId: NODE.id, spec, serviceId: 'svc7', serviceName: 'web', slot });
}

describe('containerSettings', () => {
  test('a spec without container fields sets nothing but the labels (the image and the engine decide)', () => {
    const s = containerSettings(task({}), NODE, { 'shoal.task.id': 'task9' });
    assert.deepEqual(s, { config: { Labels: { 'shoal.task.id': 'task9' } }, hostConfig: {}, volumes: [] });
  });

  test("on a network the network's resolver comes first, the user's servers after it; search and options are the user's", () => {
    const t = task({ dnsConfig: { nameservers: ['192.0.2.1', '10.0.0.2'], search: ['example.test'], options: ['ndots:1'] } });
    const on = containerSettings(t, NODE, {}, { dns: ['10.0.0.2'] });
    assert.deepEqual(on.hostConfig.Dns, ['10.0.0.2', '192.0.2.1']);
    assert.deepEqual(on.hostConfig.DnsSearch, ['example.test']);
    assert.deepEqual(on.hostConfig.DnsOptions, ['ndots:1']);
    assert.deepEqual(containerSettings(t, NODE, {}).hostConfig.Dns, ['192.0.2.1', '10.0.0.2']);
    assert.deepEqual(containerSettings(task({}), NODE, {}, { dns: ['10.0.0.2'] }).hostConfig.Dns, ['10.0.0.2']);
  });

  test("the node's mounts follow the spec's and replace one of the same target", () => {
    const t = task({ mounts: [{ type: 'tmpfs', target: '/run/secrets/db' }, { type: 'volume', source: 'data', target: '/data' }] });
    const secret = { type: 'bind' as const, source: '/dev/shm/x/db', target: '/run/secrets/db', readOnly: true, volumeOptions: null, tmpfsOptions: null, bindPropagation: '' };
    const s = containerSettings(t, NODE, {}, { mounts: [secret] });
    assert.deepEqual(
      s.hostConfig.Mounts?.map((m) => [m.Type, m.Source, m.Target, m.ReadOnly]),
      [
        ['bind', '/dev/shm/x/db', '/run/secrets/db', true],
        ['volume', 'data', '/data', false],
      ],
    );
    // Only the spec's named volumes are made by the node.
    assert.deepEqual(s.volumes.map((v) => v.Name), ['data']);
  });

  test("a volume's driver, options and labels, with Shoal's labels; an anonymous volume is the engine's", () => {
    const t = task({
      mounts: [
        { type: 'volume', source: 'db', target: '/db', volumeOptions: { driver: 'local', driverOptions: { type: 'tmpfs', device: 'tmpfs' }, labels: { tier: 'store' }, noCopy: true } },
        { type: 'volume', target: '/anon' },
      ],
    });
    const s = containerSettings(t, NODE, {});
    assert.deepEqual(s.volumes, [
      { Name: 'db', Driver: 'local', DriverOpts: { type: 'tmpfs', device: 'tmpfs' }, Labels: { tier: 'store', 'shoal.node.id': 'node1', 'shoal.service.name': 'web', 'shoal.service.id': 'svc7' } },
    ]);
    assert.deepEqual(s.hostConfig.Mounts?.[0]?.VolumeOptions, { NoCopy: true, Labels: { tier: 'store' }, DriverConfig: { Name: 'local', Options: { type: 'tmpfs', device: 'tmpfs' } } });
    assert.deepEqual(s.hostConfig.Mounts?.[1], { Type: 'volume', Source: '', Target: '/anon', ReadOnly: false });
  });

  test("container labels go under Shoal's own", () => {
    const s = containerSettings(task({ containerLabels: { a: '1', 'shoal.task.id': 'mine' } }), NODE, { 'shoal.task.id': 'task9' });
    assert.deepEqual(s.config.Labels, { a: '1', 'shoal.task.id': 'task9' });
  });
});

describe('taskHostname', () => {
  test("every placeholder takes the task's or the node's value", () => {
    const t = task({ hostname: '{{.Service.Name}}.{{.Service.ID}}.{{.Task.Slot}}.{{ .Task.ID }}.{{.Node.ID}}.{{.Node.Hostname}}' });
    assert.equal(taskHostname(t, NODE), 'web.svc7.3.task9.node1.alpha');
    assert.equal(taskHostname(task({ hostname: '{{.Task.Name}}' }), NODE), 'web.3.task9');
    assert.equal(taskHostname(task({ hostname: 'fixed' }), NODE), 'fixed');
    assert.equal(taskHostname(task({}), NODE), '');
  });

  test('too long for the kernel: an invalid-spec error of one line', () => {
    const t = task({ hostname: `${'x'.repeat(60)}-{{.Task.ID}}` });
    assert.throws(() => taskHostname(t, NODE), (err: unknown) => ShoalError.is(err) && /is longer than 63 characters/.test(err.message) && !err.message.includes('\n'));
  });
});
