// The container's flags of `service create` and `service update` (docker's syntax), and what
// `service inspect` shows of them. Every bad value: a usage error of one line naming it.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Service } from '@shoal/types';
import { isUsageError } from '../src/errors.js';
import { containerCreateFlags } from '../src/commands/service-container.js';
import { parseEnvFile, parseMount, parseSysctl, parseUlimit, splitCsv, splitShellWords, updateCapabilities } from '../src/container-flags.js';
import { serviceInspectJson, serviceInspectText } from '../src/format.js';
import { applyServiceUpdate, buildServiceSpec, validateUpdateFlags } from '../src/spec.js';

function rejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isUsageError(err), `expected a usage error, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), err.message);
    assert.match(err.message, re);
    return true;
  });
}

const create = (f: Partial<Parameters<typeof buildServiceSpec>[0]>) => buildServiceSpec({ name: 'web', image: 'busybox', ...f });

describe('--mount', () => {
  test("docker's csv: every key and its aliases; type defaults to volume", () => {
    assert.deepEqual(parseMount('source=data,target=/data'), {
      type: 'volume', source: 'data', target: '/data', readOnly: false, volumeOptions: null, tmpfsOptions: null, bindPropagation: '',
    });
    const v = parseMount('type=volume,src=db,dst=/var/lib/db,ro,volume-label=tier=store,volume-driver=local,volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-nocopy');
    assert.deepEqual(v, {
      type: 'volume', source: 'db', target: '/var/lib/db', readOnly: true,
      volumeOptions: { noCopy: true, labels: { tier: 'store' }, driver: 'local', driverOptions: { type: 'tmpfs', device: 'tmpfs' } },
      tmpfsOptions: null, bindPropagation: '',
    });
    assert.deepEqual(parseMount('type=tmpfs,destination=/cache,tmpfs-size=64m,tmpfs-mode=1770').tmpfsOptions, { sizeBytes: 64 << 20, mode: 0o1770 });
    const b = parseMount('type=bind,source=/srv/www,target=/usr/share/www,readonly=false,bind-propagation=rslave');
    assert.deepEqual([b.type, b.source, b.readOnly, b.bindPropagation], ['bind', '/srv/www', false, 'rslave']);
    // Quoted fields, as encoding/csv reads them.
    assert.deepEqual(parseMount('type=volume,"volume-opt=o=addr=10.0.0.1,rw",target=/nfs').volumeOptions?.driverOptions, { o: 'addr=10.0.0.1,rw' });
    assert.deepEqual(splitCsv('a,"b,""c""",d', 'x'), ['a', 'b,"c"', 'd']);
  });

  test('bad mounts: one line each', () => {
    rejects(() => parseMount('type=volume,source=data'), /invalid --mount "type=volume,source=data": target=PATH is required/);
    rejects(() => parseMount('source=data,target=data'), /the target "data" must be an absolute path/);
    rejects(() => parseMount('type=volume,target=/a,colour=red'), /unknown key "colour"/);
    rejects(() => parseMount('type=tmpfs,source=x,target=/a'), /a tmpfs mount takes no source/);
    rejects(() => parseMount('type=bind,source=/x,target=/a,volume-label=a=b'), /volume-\* options are only for type=volume/);
    rejects(() => parseMount('type=volume,target=/a,tmpfs-size=1m'), /tmpfs-\* options are only for type=tmpfs/);
    rejects(() => parseMount('type=volume,target=/a,bind-propagation=shared'), /bind-propagation is only for type=bind/);
    rejects(() => parseMount('type=bind,source=./x,target=/a'), /the bind source "\.\/x" must be an absolute path/);
    rejects(() => parseMount('type=bind,target=/a'), /a bind mount needs source=/);
    rejects(() => parseMount('type=nfs,target=/a'), /unknown type "nfs"/);
    rejects(() => parseMount('type=volume,target=/a,ro=maybe'), /expected true or false/);
    rejects(() => parseMount('type=tmpfs,target=/a,tmpfs-mode=999'), /not an octal mode/);
    rejects(() => parseMount('type=volume,target=/a,bogus'), /"bogus" is not KEY=VALUE/);
    rejects(() => create({ mount: ['type=volume,source=bad name,target=/a'] }), /is not a volume name/);
    rejects(() => create({ mount: ['type=bind,source=/x,target=/a,bind-propagation=sideways'] }), /bind-propagation must be one of/);
    rejects(() => create({ mount: ['target=/a', 'type=tmpfs,target=/a'] }), /the target \/a is given twice/);
  });
});

describe('the other container flags', () => {
  test('ulimits, sysctls, capabilities, DNS, logging: parsed and normalized', () => {
    assert.deepEqual(parseUlimit('nofile=1024:2048'), { name: 'nofile', soft: 1024, hard: 2048 });
    assert.deepEqual(parseUlimit('core=-1'), { name: 'core', soft: -1, hard: -1 });
    assert.deepEqual(parseSysctl('net.core.somaxconn=1024'), { key: 'net.core.somaxconn', value: '1024' });
    const s = create({
      capAdd: ['net_admin', 'CAP_SYS_PTRACE'], capDrop: ['chown', 'NET_ADMIN'],
      dns: ['192.0.2.1'], dnsSearch: ['example.test'], dnsOption: ['ndots:2'],
      logDriver: 'json-file', logOpt: ['max-size=10m', 'max-file=3'],
      sysctl: ['net.ipv4.ip_forward=1'], ulimit: ['nofile=10', 'nofile=20:30'],
      containerLabel: ['team=blue', 'flag'],
    });
    // Adding wins over dropping (docker's EffectiveCapAddCapDrop), both sorted.
    assert.deepEqual([s.capAdd, s.capDrop], [['CAP_NET_ADMIN', 'CAP_SYS_PTRACE'], ['CAP_CHOWN']]);
    assert.deepEqual(s.dnsConfig, { nameservers: ['192.0.2.1'], search: ['example.test'], options: ['ndots:2'] });
    assert.deepEqual(s.logDriver, { name: 'json-file', options: { 'max-size': '10m', 'max-file': '3' } });
    assert.deepEqual(s.sysctls, { 'net.ipv4.ip_forward': '1' });
    assert.deepEqual(s.ulimits, [{ name: 'nofile', soft: 20, hard: 30 }]);
    assert.deepEqual(s.containerLabels, { team: 'blue', flag: '' });
    assert.deepEqual(create({ capAdd: ['ALL', 'NET_ADMIN'] }).capAdd, ['ALL']);
  });

  test('user, entrypoint (shell words), hostname template, init, stop signal, read-only, tty, replicas per node', () => {
    const s = create({
      user: 'www-data:www-data', entrypoint: `/bin/sh -c 'echo "hi there"' x\\ y`, hostname: '{{.Service.Name}}-{{ .Task.Slot }}',
      init: true, stopSignal: 'SIGQUIT', readOnly: true, tty: true, replicasMaxPerNode: '2',
    });
    assert.deepEqual(s.entrypoint, ['/bin/sh', '-c', 'echo "hi there"', 'x y']);
    assert.deepEqual([s.user, s.hostname, s.init, s.stopSignal, s.readOnly, s.tty, s.maxReplicasPerNode], ['www-data:www-data', '{{.Service.Name}}-{{ .Task.Slot }}', true, 'SIGQUIT', true, true, 2]);
    assert.deepEqual(splitShellWords(''), []);
    assert.deepEqual(splitShellWords(`a "b \\" c" 'd e'f`), ['a', 'b " c', 'd ef']);
  });

  test('bad values: one line each, nothing built', () => {
    rejects(() => parseUlimit('nofile=2048:1024'), /invalid --ulimit "nofile=2048:1024": the soft limit 2048 exceeds the hard limit 1024/);
    rejects(() => parseUlimit('nofiles=1'), /unknown name "nofiles"/);
    rejects(() => parseUlimit('nofile'), /expected NAME=SOFT\[:HARD\]/);
    rejects(() => parseSysctl('net.core.somaxconn'), /invalid --sysctl "net.core.somaxconn": expected KEY=VALUE/);
    rejects(() => parseSysctl('vm.swappiness=10'), /sysctl vm.swappiness is not namespaced/);
    rejects(() => create({ capAdd: ['NET_ADMN'] }), /unknown capability "NET_ADMN"/);
    rejects(() => create({ dns: ['8.8.8'] }), /invalid DNS server "8.8.8": expected an IP address/);
    rejects(() => create({ dnsOption: ['nd ots'] }), /invalid DNS option/);
    rejects(() => create({ hostname: '{{.Task.Number}}' }), /unknown placeholder \{\{.Task.Number\}\}/);
    rejects(() => create({ hostname: 'web {{.Task.Slot}}' }), /invalid hostname/);
    rejects(() => create({ hostname: '{{.Task.Slot' }), /not closed/);
    rejects(() => create({ stopSignal: 'SIGNOPE' }), /invalid stop signal "SIGNOPE"/);
    rejects(() => create({ user: 'a b' }), /invalid user "a b"/);
    rejects(() => create({ logOpt: ['max-size=1m'] }), /--log-opt needs --log-driver/);
    rejects(() => create({ logDriver: 'json-file', logOpt: ['max-size'] }), /invalid --log-opt "max-size"/);
    rejects(() => create({ replicasMaxPerNode: '-1' }), /--replicas-max-per-node/);
    rejects(() => create({ mode: 'global', replicasMaxPerNode: '1' }), /can only be used with a replicated service/);
    rejects(() => create({ entrypoint: "sh -c 'echo" }), /a single quote is not closed/);
  });
});

describe('--env-file', () => {
  test("docker's format: KEY=VALUE as written, comments and blank lines skipped, a bare KEY from the environment", () => {
    const text = '\uFEFF# settings\nA=1\n\n  B= spaced \nC=x=y\nFROM_ENV\nUNSET\nEMPTY=\n';
    assert.deepEqual(parseEnvFile(text, 'app.env', { FROM_ENV: 'here' }), ['A=1', 'B= spaced ', 'C=x=y', 'FROM_ENV=here', 'EMPTY=']);
    rejects(() => parseEnvFile('A B=1', 'app.env', {}), /invalid env file app.env, line 1: variable "A B" contains whitespace/);
    rejects(() => parseEnvFile('ok=1\n=x', 'app.env', {}), /line 2: no variable name/);
  });

  test('a file that cannot be read: one line naming it', () => {
    rejects(() => containerCreateFlags({ _: [], envFile: '/nonexistent/app.env' }), /cannot read --env-file \/nonexistent\/app.env: ENOENT/);
  });

  test('its entries come first: an --env of the same name follows (and wins in the engine)', () => {
    assert.deepEqual(create({ envFromFiles: ['A=1', 'B=2'], env: ['A=3'] }).env, ['A=1', 'B=2', 'A=3']);
  });
});

describe('service update: the container flags', () => {
  const base = create({
    mount: ['source=data,target=/data', 'type=tmpfs,target=/tmp'],
    dns: ['192.0.2.1'], dnsSearch: ['a.test'], capAdd: ['NET_ADMIN'], capDrop: ['CHOWN'],
    sysctl: ['net.core.somaxconn=100'], ulimit: ['nofile=10'], containerLabel: ['a=1', 'b=2'],
    logDriver: 'json-file', logOpt: ['max-size=1m'], user: 'nobody', init: true,
  });

  test('-add and -rm forms, removals first; settable ones replaced', () => {
    const s = applyServiceUpdate(base, {
      mountRm: ['/tmp'], mountAdd: ['source=other,target=/data,ro', 'type=tmpfs,target=/cache'],
      dnsAdd: ['192.0.2.2'], dnsRm: ['192.0.2.1'], dnsSearchRm: ['a.test'], dnsOptionAdd: ['ndots:3'],
      sysctlRm: ['net.core.somaxconn'], sysctlAdd: ['net.ipv4.tcp_syncookies=1'],
      ulimitAdd: ['nproc=5:6'], ulimitRm: ['nofile'],
      containerLabelRm: ['a'], containerLabelAdd: ['c=3'],
      user: '', init: false, readOnly: true, tty: true, stopSignal: 'SIGINT', hostname: 'h-{{.Task.Slot}}', entrypoint: 'tini --', replicasMaxPerNode: 3,
    });
    assert.deepEqual(s.mounts.map((m) => [m.type, m.source, m.target, m.readOnly]), [['volume', 'other', '/data', true], ['tmpfs', '', '/cache', false]]);
    assert.deepEqual(s.dnsConfig, { nameservers: ['192.0.2.2'], search: [], options: ['ndots:3'] });
    assert.deepEqual(s.sysctls, { 'net.ipv4.tcp_syncookies': '1' });
    assert.deepEqual(s.ulimits, [{ name: 'nproc', soft: 5, hard: 6 }]);
    assert.deepEqual(s.containerLabels, { b: '2', c: '3' });
    assert.deepEqual([s.user, s.init, s.readOnly, s.tty, s.stopSignal, s.hostname, s.maxReplicasPerNode], ['', false, true, true, 'SIGINT', 'h-{{.Task.Slot}}', 3]);
    assert.deepEqual(s.entrypoint, ['tini', '--']);
    // Unchanged when not given.
    assert.deepEqual(applyServiceUpdate(base, {}), base);
    // The last DNS setting removed: no DNS config at all.
    assert.equal(applyServiceUpdate(base, { dnsRm: ['192.0.2.1'], dnsSearchRm: ['a.test'] }).dnsConfig, null);
  });

  test("capabilities as docker's update: a drop leaves the added, an add leaves the dropped; adding wins", () => {
    assert.deepEqual(applyServiceUpdate(base, { capDrop: ['NET_ADMIN'] }), { ...base, capAdd: [], capDrop: ['CAP_CHOWN', 'CAP_NET_ADMIN'] });
    assert.deepEqual(applyServiceUpdate(base, { capAdd: ['chown'] }), { ...base, capAdd: ['CAP_CHOWN', 'CAP_NET_ADMIN'], capDrop: [] });
    assert.deepEqual(updateCapabilities([], [], ['SYS_TIME'], ['SYS_TIME']), { capAdd: ['CAP_SYS_TIME'], capDrop: [] });
  });

  test('log driver and options are replaced together', () => {
    assert.deepEqual(applyServiceUpdate(base, { logDriver: 'local' }).logDriver, { name: 'local', options: {} });
    assert.equal(applyServiceUpdate(base, { logDriver: '' }).logDriver, null);
    rejects(() => applyServiceUpdate(base, { logOpt: ['max-file=2'] }), /--log-opt needs --log-driver/);
  });

  test('bad update flags fail before any call', () => {
    rejects(() => validateUpdateFlags({ mountAdd: ['type=bind,source=rel,target=/x'] }), /must be an absolute path/);
    rejects(() => validateUpdateFlags({ ulimitAdd: ['nofile=a'] }), /invalid --ulimit/);
    rejects(() => validateUpdateFlags({ sysctlAdd: ['kernel.panic=1'] }), /not namespaced/);
    rejects(() => validateUpdateFlags({ capAdd: ['BOGUS'] }), /unknown capability/);
    rejects(() => validateUpdateFlags({ dnsAdd: ['nope'] }), /invalid DNS server/);
    rejects(() => validateUpdateFlags({ hostname: '{{.Nope}}' }), /unknown placeholder/);
  });
});

describe('service inspect shows the container settings set', () => {
  test('text and json', () => {
    const spec = create({
      mount: ['type=volume,source=data,target=/data,volume-label=tier=store', 'type=tmpfs,target=/cache,tmpfs-size=16m'],
      user: '1000', entrypoint: 'sh -c', hostname: '{{.Task.Name}}', init: true, readOnly: true, tty: true, stopSignal: 'SIGINT',
      capAdd: ['NET_ADMIN'], sysctl: ['net.core.somaxconn=64'], ulimit: ['nofile=100:200'], containerLabel: ['team=blue'],
      dns: ['192.0.2.1'], logDriver: 'json-file', logOpt: ['max-size=1m'], replicasMaxPerNode: 2,
    });
    const svc = { id: 'svc1', version: 1, createdAt: 0, updatedAt: 0, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null } as unknown as Service;
    const text = serviceInspectText(svc);
    for (const want of [
      /^ Max replicas per node: 2$/m, /^ Entrypoint:\s+\["sh","-c"\]$/m, /^ User:\s+1000$/m, /^ Hostname:\s+\{\{\.Task\.Name\}\}$/m, /^ Init:\s+true$/m,
      /^ Read only:\s+true$/m, /^ TTY:\s+true$/m, /^ Stop signal:\s+SIGINT$/m, /^ Capability Add:\n  CAP_NET_ADMIN$/m, /^ Sysctls:\n  net\.core\.somaxconn=64$/m,
      /^ Ulimits:\n  nofile=100:200$/m, /^ Labels:\n  team=blue$/m, /^  Nameservers = 192\.0\.2\.1$/m, /^ Log Driver:\n  Name = json-file\n  max-size = 1m$/m,
      /^ Mounts:\n  Target = \/data\n   Source = data\n   ReadOnly = false\n   Type = volume\n   Label tier = store\n  Target = \/cache\n/m, /^   Size = 16 ?MiB$/m,
    ]) assert.match(text, want);
    // --format json: the spec as stored.
    const json = serviceInspectJson(svc) as { spec: typeof spec };
    assert.deepEqual(json.spec.mounts, spec.mounts);
    assert.equal(json.spec.maxReplicasPerNode, 2);
    // A spec without them shows none of them.
    const plain = serviceInspectText({ ...svc, spec: create({}) } as Service);
    assert.doesNotMatch(plain, /Mounts:|Entrypoint|Capability|Log Driver|DNS:|Max replicas/);
  });
});
