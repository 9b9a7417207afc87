import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { commandPath } from '../src/cli.js';
import { isUsageError } from '../src/errors.js';
import {
  formatHost,
  parseConstraint,
  parseEnv,
  parseEnvKey,
  parseHost,
  parseHosts,
  parseLabel,
  parseLabelKey,
  parseLabels,
  parseNonNegativeInt,
  parsePublish,
  parsePublishRm,
  parsePublishes,
  parseReplicas,
  parseScaleArg,
  parseScaleArgs,
  splitTrailingArgs,
} from '../src/parse.js';

/** Asserts `fn` throws a UsageError whose one-line message matches `re`. */
function rejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isUsageError(err), `expected a usage error, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'), `message on several lines: ${err.message}`);
    assert.match(err.message, re);
    return true;
  });
}

describe('parseReplicas / parseNonNegativeInt', () => {
  test('accepts non-negative integers', () => {
    assert.equal(parseReplicas('0'), 0);
    assert.equal(parseReplicas('5'), 5);
    assert.equal(parseReplicas(' 12 '), 12);
    assert.equal(parseReplicas(3), 3);
  });
  test('rejects negative, fractional, non-numeric, huge', () => {
    rejects(() => parseReplicas('-1'), /^invalid replicas "-1": expected a non-negative integer$/);
    rejects(() => parseReplicas('1.5'), /invalid replicas "1.5"/);
    rejects(() => parseReplicas('abc'), /invalid replicas "abc"/);
    rejects(() => parseReplicas(''), /invalid replicas ""/);
    rejects(() => parseReplicas('1e3'), /invalid replicas/);
    rejects(() => parseReplicas('99999999999999999999'), /too large/);
    rejects(() => parseNonNegativeInt('x', '--restart-max-attempts'), /^invalid --restart-max-attempts "x"/);
  });
});

describe('env and labels', () => {
  test('parseEnv', () => {
    assert.deepEqual(parseEnv('A=1'), { key: 'A', value: '1', entry: 'A=1' });
    assert.deepEqual(parseEnv('A='), { key: 'A', value: '', entry: 'A=' });
    assert.deepEqual(parseEnv('URL=a=b'), { key: 'URL', value: 'a=b', entry: 'URL=a=b' });
    rejects(() => parseEnv('A'), /^invalid environment variable "A": expected KEY=VALUE$/);
    rejects(() => parseEnv('=1'), /the name before '=' is empty/);
    rejects(() => parseEnv(''), /expected KEY=VALUE/);
    rejects(() => parseEnv('A B=1'), /whitespace/);
  });
  test('parseEnvKey', () => {
    assert.equal(parseEnvKey('A'), 'A');
    rejects(() => parseEnvKey('A=1'), /invalid environment variable name/);
    rejects(() => parseEnvKey(''), /invalid environment variable name/);
  });
  test('labels', () => {
    assert.deepEqual(parseLabel('zone=a'), { key: 'zone', value: 'a' });
    assert.deepEqual(parseLabel('flag'), { key: 'flag', value: '' });
    assert.deepEqual(parseLabels(['a=1', 'b=2', 'a=3']), { a: '3', b: '2' });
    rejects(() => parseLabel('=x'), /^invalid label "=x"/);
    rejects(() => parseLabel(''), /invalid label/);
    assert.equal(parseLabelKey('zone'), 'zone');
    rejects(() => parseLabelKey('a=b'), /invalid label name/);
  });
});

describe('parsePublish', () => {
  test('short syntax is ingress', () => {
    assert.deepEqual(parsePublish('8080:80'), { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress', proxyProtocol: false });
    assert.deepEqual(parsePublish('53:53/udp'), { protocol: 'udp', targetPort: 53, publishedPort: 53, publishMode: 'ingress', proxyProtocol: false });
    assert.equal(parsePublish('1:65535').targetPort, 65535);
  });
  test('long syntax', () => {
    assert.deepEqual(parsePublish('mode=host,published=8080,target=80'), {
      protocol: 'tcp',
      targetPort: 80,
      publishedPort: 8080,
      publishMode: 'host',
      proxyProtocol: false,
    });
    assert.deepEqual(parsePublish('published=53,target=53,protocol=udp'), {
      protocol: 'udp',
      targetPort: 53,
      publishedPort: 53,
      publishMode: 'ingress',
      proxyProtocol: false,
    });
    assert.equal(parsePublish('published=80,target=8080,proxy-protocol=v2').proxyProtocol, true);
  });
  test('bad specs', () => {
    rejects(() => parsePublish('published=80,target=80,proxy-protocol=v1'), /invalid proxy-protocol "v1"/);
    rejects(() => parsePublish('mode=host,published=80,target=80,proxy-protocol=v2'), /proxy-protocol=v2 needs mode=ingress/);
    rejects(() => parsePublish('80'), /^invalid port specification "80": expected PUBLISHED:TARGET/);
    rejects(() => parsePublish('a:80'), /^invalid published port "a" in "a:80"/);
    rejects(() => parsePublish('8080:'), /invalid target port "" in "8080:"/);
    rejects(() => parsePublish('0:80'), /invalid published port 0 in "0:80": ports range from 1 to 65535/);
    rejects(() => parsePublish('80800:80'), /ports range from 1 to 65535/);
    rejects(() => parsePublish('8080:65536'), /invalid target port 65536/);
    rejects(() => parsePublish('8080:80/sctp'), /invalid protocol "sctp"/);
    rejects(() => parsePublish('1:2:3'), /invalid port specification/);
    rejects(() => parsePublish('mode=bridge,published=1,target=2'), /invalid publish mode "bridge"/);
    rejects(() => parsePublish('published=8080'), /target=PORT is required/);
    rejects(() => parsePublish('target=80'), /published=PORT is required/);
    rejects(() => parsePublish('target=80,published=8080,foo=1'), /unknown field "foo"/);
    rejects(() => parsePublish('target=80,published=8080,target=81'), /target given twice/);
    rejects(() => parsePublish('target=80,published'), /"published" is not KEY=VALUE/);
  });
  test('the same published port twice', () => {
    assert.equal(parsePublishes(['80:80', '80:80/udp']).length, 2);
    rejects(() => parsePublishes(['8080:80', '8080:81']), /published port 8080\/tcp is given twice/);
  });
  test('parsePublishRm', () => {
    assert.deepEqual(parsePublishRm('8080'), { publishedPort: 8080 });
    assert.deepEqual(parsePublishRm('53/udp'), { publishedPort: 53, protocol: 'udp' });
    rejects(() => parsePublishRm('x'), /invalid published port "x"/);
    rejects(() => parsePublishRm('0'), /ports range/);
  });
});

describe('parseConstraint', () => {
  test('accepted keys, normalized', () => {
    assert.equal(parseConstraint('node.role==manager'), 'node.role==manager');
    assert.equal(parseConstraint(' node.hostname != w1 '), 'node.hostname!=w1');
    assert.equal(parseConstraint('node.labels.zone==eu-1'), 'node.labels.zone==eu-1');
    assert.equal(parseConstraint('node.platform.os==linux'), 'node.platform.os==linux');
  });
  test('bad constraints', () => {
    rejects(() => parseConstraint('node.role=manager'), /^invalid constraint "node.role=manager": expected KEY==VALUE or KEY!=VALUE/);
    rejects(() => parseConstraint('node.colour==red'), /unknown key "node.colour"/);
    rejects(() => parseConstraint('node.role=='), /the value after == is empty/);
    rejects(() => parseConstraint('node.role==boss'), /node.role is manager or worker/);
    rejects(() => parseConstraint('node.id==a==b'), /more than one operator/);
    rejects(() => parseConstraint(''), /invalid constraint/);
  });
});

describe('scale arguments', () => {
  test('SERVICE=N', () => {
    assert.deepEqual(parseScaleArg('web=5'), { service: 'web', replicas: 5 });
    assert.deepEqual(parseScaleArg('web=0'), { service: 'web', replicas: 0 });
    assert.deepEqual(parseScaleArgs(['a=1', 'b=2']), [
      { service: 'a', replicas: 1 },
      { service: 'b', replicas: 2 },
    ]);
  });
  test('bad scale arguments', () => {
    rejects(() => parseScaleArg('web'), /^invalid scale argument "web": expected SERVICE=REPLICAS$/);
    rejects(() => parseScaleArg('=5'), /the service name before '=' is empty/);
    rejects(() => parseScaleArg('web=-1'), /replicas must be a non-negative integer/);
    rejects(() => parseScaleArg('web=x'), /replicas must be a non-negative integer/);
    rejects(() => parseScaleArg('web='), /replicas must be a non-negative integer/);
    rejects(() => parseScaleArgs([]), /at least one SERVICE=REPLICAS/);
    rejects(() => parseScaleArgs(['a=1', 'a=2']), /service "a" is given twice/);
  });
});

describe('parseHost', () => {
  test('unix sockets and TCP addresses', () => {
    assert.deepEqual(parseHost('unix:///var/run/shoal/control.sock'), { kind: 'unix', path: '/var/run/shoal/control.sock' });
    assert.deepEqual(parseHost('unix:rel/control.sock'), { kind: 'unix', path: 'rel/control.sock' });
    assert.deepEqual(parseHost('/tmp/x.sock'), { kind: 'unix', path: '/tmp/x.sock' });
    assert.deepEqual(parseHost('127.0.0.1:4242'), { kind: 'tcp', host: '127.0.0.1', port: 4242 });
    assert.deepEqual(parseHost('tcp://manager1:4242'), { kind: 'tcp', host: 'manager1', port: 4242 });
    assert.deepEqual(parseHost('[::1]:4242'), { kind: 'tcp', host: '[::1]', port: 4242 });
    assert.equal(formatHost(parseHost('unix:///a/b.sock')), 'unix:///a/b.sock');
    assert.equal(formatHost(parseHost('h:1')), 'h:1');
  });
  test('bad hosts', () => {
    rejects(() => parseHost(''), /^invalid --host "": empty/);
    rejects(() => parseHost('manager1'), /invalid --host "manager1": no port/);
    rejects(() => parseHost('h:0'), /the port must be from 1 to 65535/);
    rejects(() => parseHost('h:70000'), /the port must be from 1 to 65535/);
    rejects(() => parseHost('http://h:1'), /unsupported scheme/);
    rejects(() => parseHost('unix://'), /no socket path/);
  });
  test('a comma-separated list of managers, in order', () => {
    assert.deepEqual(parseHosts('m1:4242, m2:4242,unix:///run/shoal/shoal.sock'), [
      { kind: 'tcp', host: 'm1', port: 4242 },
      { kind: 'tcp', host: 'm2', port: 4242 },
      { kind: 'unix', path: '/run/shoal/shoal.sock' },
    ]);
    assert.deepEqual(parseHosts('m1:1'), [{ kind: 'tcp', host: 'm1', port: 1 }]);
    rejects(() => parseHosts('m1:1,,m2:1'), /an empty address in the list/);
    rejects(() => parseHosts('m1:1,m2'), /invalid --host "m2": no port/);
  });
  test('commandPath skips -H and its value', () => {
    assert.deepEqual(commandPath(['-H', 'm1:1', 'service', 'ls']), ['service', 'ls']);
  });
});

describe('argv handling', () => {
  const takesValue = (f: string) => ['name', 'e', 'env', 'p', 'publish', 'host', 'replicas'].includes(f);
  test('everything from IMAGE on goes after --', () => {
    assert.deepEqual(splitTrailingArgs(['service', 'create', '--name', 'web', '-e', 'A=1', 'busybox', 'sh', '-c', 'echo -n hi'], ['service', 'create'], takesValue), [
      'service',
      'create',
      '--name',
      'web',
      '-e',
      'A=1',
      '--',
      'busybox',
      'sh',
      '-c',
      'echo -n hi',
    ]);
    assert.deepEqual(splitTrailingArgs(['--host', 'h:1', 'service', 'create', '-d', '--name=web', 'nginx', '-d'], ['service', 'create'], takesValue), [
      '--host',
      'h:1',
      'service',
      'create',
      '-d',
      '--name=web',
      '--',
      'nginx',
      '-d',
    ]);
  });
  test('other commands, and argv already split, are left alone', () => {
    const a = ['service', 'ls', '--format', 'json'];
    assert.deepEqual(splitTrailingArgs(a, ['service', 'create'], takesValue), a);
    const b = ['service', 'create', '--name', 'x', '--', 'nginx', '-x'];
    assert.deepEqual(splitTrailingArgs(b, ['service', 'create'], takesValue), b);
    const c = ['service', 'create', '--name', 'x'];
    assert.deepEqual(splitTrailingArgs(c, ['service', 'create'], takesValue), c);
  });
  test('commandPath names the command for help hints', () => {
    assert.deepEqual(commandPath(['--host', 'h:1', 'service', 'create', '--name', 'x']), ['service', 'create']);
    assert.deepEqual(commandPath(['node', 'bogus']), ['node']);
    assert.deepEqual(commandPath(['bogus']), []);
    assert.deepEqual(commandPath([]), []);
  });
});
