// The container settings' rules as the control API applies them (completeServiceSpec): a spec a
// client sends with a bad mount, capability, sysctl, ulimit, DNS server, hostname template or stop
// signal is refused with one line, whatever client sent it.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SpecError } from '../src/spec-error.js';
import { completeServiceSpec } from '../src/service-spec.js';
import { checkHostnameTemplate, effectiveCapabilities, expandHostname, normalizeCapability } from '../src/container-spec.js';

const base = { name: 'web', image: 'shoal/busybox:latest' };
const complete = (over: Record<string, unknown>) => completeServiceSpec({ ...base, ...over } as Parameters<typeof completeServiceSpec>[0]);

function refused(over: Record<string, unknown>, re: RegExp): void {
  assert.throws(() => complete(over), (err: unknown) => err instanceof SpecError && !err.message.includes('\n') && re.test(err.message));
}

describe('the container rules of completeServiceSpec', () => {
  test('mounts: absolute targets, bind sources absolute, no tmpfs source, options of their own type only', () => {
    const m = complete({ mounts: [{ type: 'volume', source: 'data', target: '/data', volumeOptions: { labels: { a: 'b' } } }, { type: 'tmpfs', target: '/t', tmpfsOptions: { sizeBytes: 1024 } }] }).mounts;
    assert.deepEqual(m[0], { type: 'volume', source: 'data', target: '/data', readOnly: false, volumeOptions: { noCopy: false, labels: { a: 'b' }, driver: '', driverOptions: {} }, tmpfsOptions: null, bindPropagation: '' });
    assert.deepEqual(m[1]!.tmpfsOptions, { sizeBytes: 1024, mode: 0 });
    refused({ mounts: [{ type: 'volume', source: 'data' }] }, /a target is required/);
    refused({ mounts: [{ type: 'volume', target: 'data' }] }, /must be an absolute path/);
    refused({ mounts: [{ type: 'volume', target: '/' }] }, /cannot be \//);
    refused({ mounts: [{ type: 'tmpfs', source: 'x', target: '/t' }] }, /a tmpfs mount takes no source/);
    refused({ mounts: [{ type: 'bind', source: 'x', target: '/t' }] }, /the bind source "x" must be an absolute path/);
    refused({ mounts: [{ type: 'bind', target: '/t' }] }, /a bind mount needs a source/);
    refused({ mounts: [{ type: 'bind', source: '/x', target: '/t', volumeOptions: { driver: 'local' } }] }, /volume options \(volume-\*\) are only for type=volume/);
    refused({ mounts: [{ type: 'volume', target: '/t', tmpfsOptions: { sizeBytes: 1 } }] }, /tmpfs options \(tmpfs-\*\) are only for type=tmpfs/);
    refused({ mounts: [{ type: 'volume', target: '/t', bindPropagation: 'shared' }] }, /bind-propagation is only for type=bind/);
    refused({ mounts: [{ type: 'volume', source: '/abs', target: '/t' }] }, /not a volume name/);
    refused({ mounts: [{ type: 'nfs', target: '/t' }] }, /a mount type must be volume, bind or tmpfs/);
    refused({ mounts: [{ target: '/t' }, { type: 'tmpfs', target: '/t' }] }, /mount target \/t is given twice/);
    // Empty options of another type say nothing: accepted (and dropped).
    assert.equal(complete({ mounts: [{ type: 'bind', source: '/x', target: '/t', volumeOptions: { labels: {} } }] }).mounts[0]!.volumeOptions, null);
  });

  test('capabilities: normalized as docker does, unknown ones refused', () => {
    assert.equal(normalizeCapability(' net_admin '), 'CAP_NET_ADMIN');
    assert.equal(normalizeCapability('all'), 'ALL');
    assert.deepEqual(effectiveCapabilities(['sys_time', 'NET_ADMIN', 'CAP_NET_ADMIN'], ['net_admin', 'MKNOD']), { capAdd: ['CAP_NET_ADMIN', 'CAP_SYS_TIME'], capDrop: ['CAP_MKNOD'] });
    assert.deepEqual(effectiveCapabilities([], ['ALL', 'CHOWN']), { capAdd: [], capDrop: ['ALL'] });
    const s = complete({ capAdd: ['net_raw'], capDrop: ['chown'] });
    assert.deepEqual([s.capAdd, s.capDrop], [['CAP_NET_RAW'], ['CAP_CHOWN']]);
    refused({ capAdd: ['CAP_TELEPORT'] }, /unknown capability "CAP_TELEPORT"/);
  });

  test('sysctls, ulimits, DNS, user, stop signal, log driver, replicas per node', () => {
    assert.deepEqual(complete({ sysctls: { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1' } }).sysctls, { 'net.ipv4.ip_forward': '1', 'kernel.shmmax': '1' });
    refused({ sysctls: { 'vm.overcommit_memory': '1' } }, /not namespaced/);
    refused({ sysctls: { 'bad key': '1' } }, /invalid sysctl/);
    assert.deepEqual(complete({ ulimits: [{ name: 'nofile', soft: 1, hard: 2 }, { name: 'core', soft: -1, hard: -1 }] }).ulimits.length, 2);
    refused({ ulimits: [{ name: 'files', soft: 1, hard: 1 }] }, /invalid ulimit name "files"/);
    refused({ ulimits: [{ name: 'nofile', soft: 3, hard: 2 }] }, /soft limit 3 exceeds the hard limit 2/);
    refused({ ulimits: [{ name: 'nofile', soft: 1 }, { name: 'nofile', soft: 2 }] }, /given twice/);
    assert.deepEqual(complete({ dnsConfig: { nameservers: ['2001:db8::1', '192.0.2.1', '192.0.2.1'] } }).dnsConfig, { nameservers: ['2001:db8::1', '192.0.2.1'], search: [], options: [] });
    assert.equal(complete({ dnsConfig: { nameservers: [] } }).dnsConfig, null);
    refused({ dnsConfig: { nameservers: ['dns.example'] } }, /invalid DNS server "dns.example"/);
    refused({ dnsConfig: { search: ['-bad'] } }, /invalid DNS search domain/);
    refused({ user: 'a:b:c' }, /invalid user/);
    for (const sig of ['SIGTERM', 'term', '9', 'SIGRTMIN+3']) assert.equal(complete({ stopSignal: sig }).stopSignal, sig);
    refused({ stopSignal: 'SIGFOO' }, /invalid stop signal/);
    refused({ stopSignal: '99' }, /invalid stop signal/);
    refused({ logDriver: { name: 'bad driver' } }, /invalid log driver/);
    refused({ logDriver: { options: { a: 'b' } } }, /log options need a log driver/);
    refused({ mode: 'global', replicas: 0, maxReplicasPerNode: 1 }, /can only be used with a replicated service/);
  });
});

describe('hostname templates', () => {
  const values = { 'Service.Name': 'web', 'Service.ID': 's1', 'Task.Slot': '2', 'Task.ID': 't1', 'Task.Name': 'web.2.t1', 'Node.ID': 'n1', 'Node.Hostname': 'alpha' };

  test('checked at the edge, expanded on the node', () => {
    assert.equal(checkHostnameTemplate('{{.Service.Name}}-{{ .Task.Slot }}'), '{{.Service.Name}}-{{ .Task.Slot }}');
    assert.equal(expandHostname('{{.Service.Name}}-{{ .Task.Slot }}.{{.Node.Hostname}}', values), 'web-2.alpha');
    refused({ hostname: '{{.Node.Address}}' }, /unknown placeholder \{\{\.Node\.Address\}\}/);
    refused({ hostname: '{{ .Task.Slot' }, /not closed/);
    refused({ hostname: 'a b' }, /invalid hostname/);
    assert.throws(() => expandHostname(`${'x'.repeat(63)}{{.Task.Slot}}`, values), /longer than 63 characters/);
  });
});
