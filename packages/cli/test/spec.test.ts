import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { isUsageError } from '../src/errors.js';
import { applyServiceUpdate, buildServiceSpec, sameSpec, validateServiceName, validateUpdateFlags } from '../src/spec.js';

function rejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(isUsageError(err), `expected a usage error, got ${String(err)}`);
    assert.ok(!err.message.includes('\n'));
    assert.match(err.message, re);
    return true;
  });
}

describe('buildServiceSpec', () => {
  test('defaults are docker\'s, sent explicitly', () => {
    assert.deepEqual(buildServiceSpec({ name: 'web', image: 'nginx' }), {
      name: 'web',
      labels: {},
      image: 'nginx',
      command: [],
      args: [],
      env: [],
      mode: 'replicated',
      replicas: 1,
      ports: [],
      restartPolicy: { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 },
      updateConfig: { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first', monitorMs: 5000, maxFailureRatio: 0 },
      rollbackConfig: { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first', monitorMs: 5000, maxFailureRatio: 0 },
      stopGracePeriodMs: 10_000,
      constraints: [],
      forceUpdate: 0,
      placementPrefs: [],
      healthcheck: null,
      resources: { limits: { nanoCpus: 0, memoryBytes: 0 }, reservations: { nanoCpus: 0, memoryBytes: 0 } },
      workdir: '',
      networks: [],
      endpointMode: 'vip',
      registryAuth: null,
      // The rest of the container: the image's and the engine's own.
      entrypoint: [],
      user: '',
      hostname: '',
      dnsConfig: null,
      init: false,
      stopSignal: '',
      readOnly: false,
      capAdd: [],
      capDrop: [],
      sysctls: {},
      ulimits: [],
      containerLabels: {},
      logDriver: null,
      tty: false,
      maxReplicasPerNode: 0,
      mounts: [],
      secrets: [],
      configs: [],
      maxConcurrent: 0,
    });
  });
  test('--network NAME | name=NAME,alias=A; update adds, leaves (by id) and sets --endpoint-mode', () => {
    const s = buildServiceSpec({ name: 'web', image: 'nginx', network: ['front', 'name=back,alias=db,alias=store'], endpointMode: 'dnsrr' });
    assert.deepEqual(s.networks, [{ target: 'front', aliases: [] }, { target: 'back', aliases: ['db', 'store'] }]);
    assert.equal(s.endpointMode, 'dnsrr');
    const u = applyServiceUpdate({ ...s, networks: [{ target: 'id-front', aliases: [] }] }, { networkRm: ['id-front'], networkAdd: ['target=mid,alias=m'], endpointMode: 'vip' });
    assert.deepEqual(u.networks, [{ target: 'mid', aliases: ['m'] }]);
    assert.equal(u.endpointMode, 'vip');
    rejects(() => buildServiceSpec({ name: 'web', image: 'nginx', network: ['alias=x'] }), /^invalid --network "alias=x": name=NETWORK is missing$/);
    rejects(() => buildServiceSpec({ name: 'web', image: 'nginx', network: ['name=a,driver-opt=x'] }), /unknown field "driver-opt"/);
    rejects(() => buildServiceSpec({ name: 'web', image: 'nginx', network: ['a', 'a'] }), /^network "a" is given twice$/);
    rejects(() => buildServiceSpec({ name: 'web', image: 'nginx', endpointMode: 'dnsrr', publish: ['8080:80'] }), /dnsrr cannot publish a port in ingress mode/);
  });
  test('--workdir: an absolute path, changed by update, the image\'s when empty', () => {
    const s = buildServiceSpec({ name: 'web', image: 'nginx', workdir: '/srv' });
    assert.equal(s.workdir, '/srv');
    assert.equal(applyServiceUpdate(s, { workdir: '/var/www' }).workdir, '/var/www');
    assert.equal(applyServiceUpdate(s, { workdir: '' }).workdir, '');
    assert.equal(applyServiceUpdate(s, {}).workdir, '/srv');
    rejects(() => buildServiceSpec({ name: 'web', image: 'nginx', workdir: 'srv' }), /^invalid working directory "srv": it must be an absolute path$/);
  });
  test('every flag', () => {
    const s = buildServiceSpec({
      name: 'web-fe',
      image: 'nginx:alpine',
      args: ['nginx', '-g', 'daemon off;'],
      replicas: '5',
      publish: ['8080:80', 'mode=host,published=9090,target=90,protocol=udp'],
      env: ['A=1', 'B='],
      label: ['tier=front'],
      constraint: ['node.role==worker', 'node.role==worker'],
      restartCondition: 'on-failure',
      restartDelay: '1m30s',
      restartMaxAttempts: '3',
      stopGracePeriod: '500ms',
      updateParallelism: '2',
      updateDelay: '10s',
    });
    assert.equal(s.replicas, 5);
    assert.deepEqual(s.args, ['nginx', '-g', 'daemon off;']);
    assert.deepEqual(s.ports, [
      { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress', proxyProtocol: false },
      { protocol: 'udp', targetPort: 90, publishedPort: 9090, publishMode: 'host', proxyProtocol: false },
    ]);
    assert.deepEqual(s.env, ['A=1', 'B=']);
    assert.deepEqual(s.labels, { tier: 'front' });
    assert.deepEqual(s.constraints, ['node.role==worker']);
    assert.deepEqual(s.restartPolicy, { condition: 'on-failure', delayMs: 90_000, maxAttempts: 3, windowMs: 0 });
    assert.equal(s.stopGracePeriodMs, 500);
    assert.deepEqual(s.updateConfig, { parallelism: 2, delayMs: 10_000, failureAction: 'pause', order: 'stop-first', monitorMs: 5000, maxFailureRatio: 0 });
  });
  test('update failure handling flags', () => {
    const s = buildServiceSpec({ name: 'a', image: 'b', updateFailureAction: 'rollback', updateMonitor: '30s', updateMaxFailureRatio: '0.2' });
    assert.deepEqual([s.updateConfig.failureAction, s.updateConfig.monitorMs, s.updateConfig.maxFailureRatio], ['rollback', 30_000, 0.2]);
    assert.deepEqual(s.rollbackConfig, { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first', monitorMs: 5000, maxFailureRatio: 0 });
  });
  test('resources: --limit-* and --reserve-*, in CPUs and Docker sizes; 0 removes one', () => {
    const s = buildServiceSpec({ name: 'a', image: 'b', limitCpu: '0.5', limitMemory: '256m', reserveCpu: '.25', reserveMemory: '0.125GiB' });
    assert.deepEqual(s.resources, { limits: { nanoCpus: 500_000_000, memoryBytes: 256 << 20 }, reservations: { nanoCpus: 250_000_000, memoryBytes: 128 << 20 } });
    const u = applyServiceUpdate(s, { limitCpu: '0', reserveMemory: '512k' });
    assert.deepEqual(u.resources, { limits: { nanoCpus: 0, memoryBytes: 256 << 20 }, reservations: { nanoCpus: 250_000_000, memoryBytes: 512 << 10 } });
    assert.equal(buildServiceSpec({ name: 'a', image: 'b', limitMemory: '8388608' }).resources.limits.memoryBytes, 8 << 20);
    // The manager's rules, applied before anything is sent.
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', limitMemory: '1048576' }), /^a memory limit must be at least 6 MiB, not 1048576 bytes$/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', limitMemory: '256m', reserveMemory: '1g' }), /the memory reserved cannot exceed the memory limit/);
    rejects(() => applyServiceUpdate(s, { reserveCpu: '2' }), /the CPUs reserved cannot exceed the CPU limit/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', limitCpu: 'half' }), /^invalid --limit-cpu "half": expected a number of CPUs, like 0.5 or 2$/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', reserveMemory: '12 parsecs' }), /^invalid --reserve-memory "12 parsecs": expected a size, like 512m or 1g$/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', limitMemory: '-1m' }), /invalid --limit-memory "-1m"/);
  });
  test('placement preferences: --placement-pref on create, -add/-rm on update', () => {
    const s = buildServiceSpec({ name: 'a', image: 'b', placementPref: ['spread=node.labels.zone', 'spread=node.labels.zone'] });
    assert.deepEqual(s.placementPrefs, ['spread=node.labels.zone']);
    const u = applyServiceUpdate(s, { placementPrefAdd: ['spread=node.labels.rack'], placementPrefRm: ['spread=node.labels.zone'] });
    assert.deepEqual(u.placementPrefs, ['spread=node.labels.rack']);
    assert.deepEqual(s.placementPrefs, ['spread=node.labels.zone'], 'the spec given is not changed');
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', placementPref: ['spread=zone'] }), /^invalid placement preference "spread=zone": expected spread=node.labels.KEY, like spread=node.labels.zone$/);
  });
  test('health checks: --health-cmd and its settings, --no-healthcheck; update keeps what is not given', () => {
    const s = buildServiceSpec({ name: 'a', image: 'b', healthCmd: 'test -f /ready', healthInterval: '2s', healthRetries: '5' });
    assert.deepEqual(s.healthcheck, { test: ['CMD-SHELL', 'test -f /ready'], intervalMs: 2000, timeoutMs: 0, retries: 5, startPeriodMs: 0 });
    assert.equal(buildServiceSpec({ name: 'a', image: 'b' }).healthcheck, null, "the image's own");
    const u = applyServiceUpdate(s, { healthTimeout: '1s' });
    assert.deepEqual(u.healthcheck, { test: ['CMD-SHELL', 'test -f /ready'], intervalMs: 2000, timeoutMs: 1000, retries: 5, startPeriodMs: 0 });
    assert.deepEqual(applyServiceUpdate(s, { noHealthcheck: true }).healthcheck!.test, ['NONE']);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', healthInterval: '1s' }), /need a --health-cmd/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', noHealthcheck: true, healthCmd: 'true' }), /--no-healthcheck cannot be combined/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', healthCmd: 'true', healthRetries: 'x' }), /invalid --health-retries "x"/);
  });
  test('--force: a new spec (the counter moves) although nothing else changed', () => {
    const s = buildServiceSpec({ name: 'a', image: 'b' });
    assert.equal(s.forceUpdate, 0);
    const f = applyServiceUpdate(s, { force: true });
    assert.equal(f.forceUpdate, 1);
    assert.equal(sameSpec(f, s), false);
    assert.equal(applyServiceUpdate(f, { force: true }).forceUpdate, 2);
  });
  test('rollback settings: --rollback-* on create and update, apart from the update settings', () => {
    const s = buildServiceSpec({ name: 'a', image: 'b', rollbackParallelism: '0', rollbackDelay: '2s', rollbackOrder: 'start-first', rollbackFailureAction: 'continue', rollbackMonitor: '1s', rollbackMaxFailureRatio: '1' });
    assert.deepEqual(s.rollbackConfig, { parallelism: 0, delayMs: 2000, failureAction: 'continue', order: 'start-first', monitorMs: 1000, maxFailureRatio: 1 });
    assert.equal(s.updateConfig.parallelism, 1);
    const u = applyServiceUpdate(s, { rollbackParallelism: '3' });
    assert.deepEqual([u.rollbackConfig.parallelism, u.rollbackConfig.delayMs, u.updateConfig.parallelism], [3, 2000, 1]);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', rollbackFailureAction: 'rollback' }), /^invalid --rollback-failure-action "rollback": expected pause or continue$/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', rollbackOrder: 'up' }), /^invalid --rollback-order "up": expected stop-first or start-first$/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', rollbackMaxFailureRatio: '2' }), /^invalid --rollback-max-failure-ratio "2"/);
  });
  test('global mode', () => {
    const s = buildServiceSpec({ name: 'agent', image: 'busybox', mode: 'global' });
    assert.equal(s.mode, 'global');
    assert.equal(s.replicas, 0);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', mode: 'global', replicas: '3' }), /^--replicas cannot be used with --mode global$/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', mode: 'daemon' }), /invalid --mode "daemon"/);
  });
  test('bad values', () => {
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', replicas: '-1' }), /invalid replicas "-1"/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', replicas: 'many' }), /invalid replicas "many"/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', env: ['NOVALUE'] }), /invalid environment variable "NOVALUE"/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', publish: ['99999:80'] }), /ports range from 1 to 65535/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', restartDelay: 'soon' }), /invalid --restart-delay "soon"/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', stopGracePeriod: '10' }), /invalid --stop-grace-period "10"/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', updateDelay: '-1s' }), /invalid --update-delay "-1s"/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', updateOrder: 'sideways' }), /invalid --update-order "sideways"/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', restartCondition: 'always' }), /invalid --restart-condition "always"/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', updateParallelism: '-2' }), /invalid --update-parallelism "-2"/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', updateFailureAction: 'retry' }), /^invalid --update-failure-action "retry": expected pause, continue or rollback$/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', updateMonitor: '0' }), /^invalid --update-monitor "0": give a duration of at least 1ms \(the default is 5s\)$/);
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', updateMonitor: 'later' }), /invalid --update-monitor "later"/);
    for (const r of ['1.5', '-0.1', 'half', '']) {
      rejects(() => buildServiceSpec({ name: 'a', image: 'b', updateMaxFailureRatio: r }), new RegExp(`^invalid --update-max-failure-ratio "${r.replace('.', '\\.')}": expected a number from 0 to 1$`));
    }
    rejects(() => buildServiceSpec({ name: 'a', image: 'b', restartMaxAttempts: 'x' }), /invalid --restart-max-attempts "x"/);
    rejects(() => buildServiceSpec({ name: 'a', image: ' ' }), /the image is empty/);
  });
  test('service names', () => {
    for (const ok of ['web', 'web-fe', 'web_fe', 'a1', 'A', 'x'.repeat(63)]) assert.equal(validateServiceName(ok), ok);
    rejects(() => validateServiceName(''), /the service name is empty/);
    rejects(() => validateServiceName('x'.repeat(64)), /at most 63 characters/);
    for (const bad of ['-web', 'web-', 'web.fe', 'web fe', 'wéb']) rejects(() => validateServiceName(bad), /invalid service name/);
  });
});

describe('applyServiceUpdate', () => {
  const base = buildServiceSpec({
    name: 'web',
    image: 'nginx:1.25',
    replicas: '3',
    env: ['A=1', 'B=2'],
    label: ['x=1'],
    publish: ['8080:80', '53:53/udp'],
    constraint: ['node.role==worker'],
  });

  test('edits, removals before additions; the input is not changed', () => {
    const before = structuredClone(base);
    const s = applyServiceUpdate(base, {
      replicas: '5',
      image: 'nginx:1.27',
      envAdd: ['B=3', 'C=4'],
      envRm: ['A'],
      labelAdd: ['y=2'],
      labelRm: ['x'],
      publishAdd: ['9090:90', '8080:81'],
      publishRm: ['53'],
      constraintAdd: ['node.labels.zone==a'],
      constraintRm: ['node.role==worker'],
      restartDelay: '2s',
      stopGracePeriod: '1m',
      updateParallelism: '0',
      updateDelay: '3s',
      restartCondition: 'none',
      restartMaxAttempts: '2',
      args: ['sleep', '10'],
    });
    assert.deepEqual(base, before);
    assert.equal(s.replicas, 5);
    assert.equal(s.image, 'nginx:1.27');
    assert.deepEqual(s.env, ['B=3', 'C=4']);
    assert.deepEqual(s.labels, { y: '2' });
    assert.deepEqual(s.ports, [
      { protocol: 'tcp', targetPort: 81, publishedPort: 8080, publishMode: 'ingress', proxyProtocol: false },
      { protocol: 'tcp', targetPort: 90, publishedPort: 9090, publishMode: 'ingress', proxyProtocol: false },
    ]);
    assert.deepEqual(s.constraints, ['node.labels.zone==a']);
    assert.deepEqual(s.restartPolicy, { condition: 'none', delayMs: 2000, maxAttempts: 2, windowMs: 0 });
    assert.equal(s.stopGracePeriodMs, 60_000);
    assert.equal(s.updateConfig.parallelism, 0);
    assert.equal(s.updateConfig.delayMs, 3000);
    assert.deepEqual(s.args, ['sleep', '10']);
  });
  test('publish-rm with a protocol removes only that one', () => {
    const s = applyServiceUpdate(buildServiceSpec({ name: 'd', image: 'x', publish: ['53:53', '53:53/udp'] }), { publishRm: ['53/udp'] });
    assert.deepEqual(
      s.ports.map((p) => p.protocol),
      ['tcp'],
    );
  });
  test('no flags: the same spec', () => {
    assert.ok(sameSpec(applyServiceUpdate(base, {}), base));
    // As a client decodes it: the store's sealed registry credentials are never on the wire.
    const { registryAuth: _none, ...decoded } = base;
    assert.ok(sameSpec(applyServiceUpdate(decoded as typeof base, {}), decoded as typeof base));
    assert.ok(!sameSpec(applyServiceUpdate(base, { replicas: '4' }), base));
  });
  test('bad edits', () => {
    rejects(() => applyServiceUpdate(base, { replicas: '-3' }), /invalid replicas "-3"/);
    rejects(() => applyServiceUpdate(base, { envAdd: ['X'] }), /invalid environment variable "X"/);
    rejects(() => applyServiceUpdate(base, { envRm: ['X=1'] }), /invalid environment variable name "X=1"/);
    rejects(() => applyServiceUpdate(base, { publishAdd: ['1:2:3'] }), /invalid port specification/);
    rejects(() => applyServiceUpdate(base, { publishRm: ['port'] }), /invalid published port "port"/);
    rejects(() => applyServiceUpdate(base, { constraintAdd: ['role=manager'] }), /invalid constraint/);
    rejects(() => applyServiceUpdate(base, { image: '' }), /--image is empty/);
    const global = buildServiceSpec({ name: 'g', image: 'x', mode: 'global' });
    rejects(() => applyServiceUpdate(global, { replicas: '2' }), /--replicas cannot be used with a global service \(g\)/);
  });
  test('validateUpdateFlags checks without a spec', () => {
    validateUpdateFlags({ replicas: '2', envAdd: ['A=1'], publishAdd: ['80:80'] });
    rejects(() => validateUpdateFlags({ replicas: 'x' }), /invalid replicas "x"/);
    rejects(() => validateUpdateFlags({ updateDelay: '5' }), /invalid --update-delay "5"/);
  });
});

describe('jobs: --mode replicated-job|global-job, --max-concurrent', () => {
  test('create: replicas are the completions, max-concurrent defaults to them, restarts on failure only', () => {
    const s = buildServiceSpec({ name: 'batch', image: 'busybox', mode: 'replicated-job', replicas: '6', maxConcurrent: '2' });
    assert.deepEqual([s.mode, s.replicas, s.maxConcurrent, s.restartPolicy.condition], ['replicated-job', 6, 2, 'on-failure']);
    assert.equal(buildServiceSpec({ name: 'batch', image: 'busybox', mode: 'replicated-job', replicas: '4' }).maxConcurrent, 4);
    assert.equal(buildServiceSpec({ name: 'once', image: 'busybox', mode: 'global-job' }).replicas, 0);
  });
  test('refused: --max-concurrent outside replicated jobs or above replicas, --replicas on a global job, restart any, update settings', () => {
    rejects(() => buildServiceSpec({ name: 'web', image: 'busybox', maxConcurrent: '2' }), /--max-concurrent can only be used with --mode replicated-job/);
    rejects(() => buildServiceSpec({ name: 'once', image: 'busybox', mode: 'global-job', replicas: '2' }), /--replicas cannot be used with --mode global-job/);
    assert.throws(() => buildServiceSpec({ name: 'b', image: 'busybox', mode: 'replicated-job', replicas: '2', maxConcurrent: '3' }), /max concurrent \(3\) cannot exceed replicas \(2\)/);
    assert.throws(() => buildServiceSpec({ name: 'b', image: 'busybox', mode: 'replicated-job', restartCondition: 'any' }), /"any" is not allowed for a job/);
    assert.throws(() => buildServiceSpec({ name: 'b', image: 'busybox', mode: 'replicated-job', updateParallelism: '2' }), /takes no update settings/);
  });
  test('update: --replicas keeps the concurrency within the new completions; --max-concurrent only on a replicated job', () => {
    const s = buildServiceSpec({ name: 'batch', image: 'busybox', mode: 'replicated-job', replicas: '4' });
    assert.equal(applyServiceUpdate(s, { replicas: '2' }).maxConcurrent, 2);
    assert.equal(applyServiceUpdate(s, { replicas: '8' }).maxConcurrent, 4);
    assert.equal(applyServiceUpdate(s, { maxConcurrent: '1' }).maxConcurrent, 1);
    rejects(() => applyServiceUpdate(buildServiceSpec({ name: 'web', image: 'busybox' }), { maxConcurrent: '1' }), /only be used with a replicated job/);
    assert.equal(applyServiceUpdate(s, { force: true }).forceUpdate, 1, '--force runs the job again');
  });
});
