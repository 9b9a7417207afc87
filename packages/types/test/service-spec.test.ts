// A service spec's rules (what the control API and the CLI both apply): what completeServiceSpec
// fills in, what it refuses, and what the store's shape check still reads.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../src/check.js';
import type { PortConfig } from '../src/objects.js';
import { SpecError } from '../src/spec-error.js';
import { completeServiceSpec as validateServiceSpec, serviceSpecShape } from '../src/service-spec.js';

const validatePorts = (ports: Partial<PortConfig>[]) => validateServiceSpec({ ...base, ports }).ports;

const base = { name: 'web', image: 'shoal/busybox:latest' };

describe('completeServiceSpec', () => {
  test('defaults: one replica, restart any after 5 s, stop-first updates of one slot, pause on failure', () => {
    const s = validateServiceSpec(base);
    assert.equal(s.replicas, 1);
    assert.deepEqual(s.restartPolicy, { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 });
    assert.deepEqual(s.updateConfig, { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first', monitorMs: 5000, maxFailureRatio: 0 });
  });

  test('update options: order, failure action, monitor period and failure ratio, checked and defaulted', () => {
    assert.equal(validateServiceSpec({ ...base, updateConfig: { order: 'start-first' } }).updateConfig.order, 'start-first');
    const uc = validateServiceSpec({ ...base, updateConfig: { failureAction: 'rollback', maxFailureRatio: 0.25, monitorMs: 0 } }).updateConfig;
    assert.deepEqual([uc.failureAction, uc.maxFailureRatio, uc.monitorMs], ['rollback', 0.25, 5000]);
    assert.throws(() => validateServiceSpec({ ...base, updateConfig: { failureAction: 'explode' as 'pause' } }), /update failure action must be pause, continue or rollback/);
    assert.throws(() => validateServiceSpec({ ...base, updateConfig: { maxFailureRatio: 1.5 } }), /update max failure ratio must be between 0 and 1, not 1\.5/);
    assert.throws(() => validateServiceSpec({ ...base, updateConfig: { monitorMs: -1 } }), /update monitor must be an integer/);
    assert.throws(() => validateServiceSpec({ ...base, updateConfig: { order: 'sideways' as 'stop-first' } }), /must be stop-first or start-first/);
    // A rollback has the same settings of its own, but cannot itself roll back.
    assert.deepEqual(validateServiceSpec(base).rollbackConfig, { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first', monitorMs: 5000, maxFailureRatio: 0 });
    assert.equal(validateServiceSpec({ ...base, rollbackConfig: { parallelism: 0, failureAction: 'continue' } }).rollbackConfig.parallelism, 0);
    assert.throws(() => validateServiceSpec({ ...base, rollbackConfig: { failureAction: 'rollback' } }), /^.*rollback failure action must be pause or continue, not rollback$/);
  });

  test('placement preferences: spread=node.labels.KEY only', () => {
    assert.deepEqual(validateServiceSpec({ ...base, placementPrefs: ['spread=node.labels.zone'] }).placementPrefs, ['spread=node.labels.zone']);
    assert.deepEqual(validateServiceSpec(base).placementPrefs, []);
    assert.throws(() => validateServiceSpec({ ...base, placementPrefs: ['binpack=node.labels.zone'] }), /invalid placement preference "binpack=node.labels.zone": expected spread=node.labels.KEY/);
  });

  test('health checks: CMD, CMD-SHELL or NONE', () => {
    assert.equal(validateServiceSpec(base).healthcheck, null);
    assert.deepEqual(validateServiceSpec({ ...base, healthcheck: { test: ['CMD-SHELL', 'true'], intervalMs: 500 } }).healthcheck, { test: ['CMD-SHELL', 'true'], intervalMs: 500, timeoutMs: 0, retries: 0, startPeriodMs: 0 });
    assert.throws(() => validateServiceSpec({ ...base, healthcheck: { test: ['SHELL', 'true'] } }), /a health check must start with CMD, CMD-SHELL or NONE, not "SHELL"/);
    assert.throws(() => validateServiceSpec({ ...base, healthcheck: { test: ['CMD'] } }), /a CMD health check needs a command/);
    assert.throws(() => validateServiceSpec({ ...base, healthcheck: { test: ['NONE', 'x'] } }), /a health check of NONE takes no command/);
  });

  test('resources: limits and reservations, checked', () => {
    const none = { nanoCpus: 0, memoryBytes: 0 };
    assert.deepEqual(validateServiceSpec(base).resources, { limits: none, reservations: none });
    const r = validateServiceSpec({ ...base, resources: { limits: { nanoCpus: 1e9, memoryBytes: 64 << 20 }, reservations: { nanoCpus: 5e8 } } }).resources;
    assert.deepEqual(r, { limits: { nanoCpus: 1e9, memoryBytes: 64 << 20 }, reservations: { nanoCpus: 5e8, memoryBytes: 0 } });
    assert.throws(() => validateServiceSpec({ ...base, resources: { limits: { memoryBytes: 1 << 20 } } }), /a memory limit must be at least 6 MiB, not 1048576 bytes/);
    assert.throws(() => validateServiceSpec({ ...base, resources: { limits: { nanoCpus: 1e9 }, reservations: { nanoCpus: 2e9 } } }), /the CPUs reserved cannot exceed the CPU limit/);
    assert.throws(() => validateServiceSpec({ ...base, resources: { limits: { memoryBytes: 64 << 20 }, reservations: { memoryBytes: 128 << 20 } } }), /the memory reserved cannot exceed the memory limit/);
    assert.throws(() => validateServiceSpec({ ...base, resources: { limits: { nanoCpus: -1 } } }), /limit CPUs \(nanoCPUs\) must be an integer/);
  });

  test('ports: ingress by default; the PROXY protocol only on ingress tcp ports', () => {
    assert.deepEqual(validatePorts([{ targetPort: 80, publishedPort: 8080 }]), [
      { protocol: 'tcp', targetPort: 80, publishedPort: 8080, publishMode: 'ingress', proxyProtocol: false },
    ]);
    assert.equal(validatePorts([{ targetPort: 80, publishedPort: 8080, proxyProtocol: true }])[0].proxyProtocol, true);
    assert.throws(() => validatePorts([{ targetPort: 80, publishedPort: 8080, publishMode: 'host', proxyProtocol: true }]), /only with mode=ingress/);
    assert.throws(() => validatePorts([{ targetPort: 53, publishedPort: 53, protocol: 'udp', proxyProtocol: true }]), /for tcp ports/);
    assert.throws(() => validatePorts([{ targetPort: 80, publishedPort: 8080 }, { targetPort: 81, publishedPort: 8080 }]), /given twice/);
  });

  test('names: SwarmKit\'s rule, the same the CLI applies; an update keeps a name an older rule allowed', () => {
    for (const bad of ['-web', 'web-', 'web.fe', 'web fe', 'wéb', 'x'.repeat(64)]) {
      assert.throws(() => validateServiceSpec({ ...base, name: bad }), (e: unknown) => e instanceof SpecError && /service name/.test(e.message), bad);
    }
    assert.equal(validateServiceSpec({ ...base, name: 'web.fe' }, { currentName: 'web.fe' }).name, 'web.fe');
    assert.throws(() => validateServiceSpec({ ...base, name: 'web.fe' }, { currentName: 'web' }), /invalid service name "web.fe"/);
  });

  test('constraints are the CLI\'s: normalized, node.role is manager or worker, unknown keys refused', () => {
    assert.deepEqual(validateServiceSpec({ ...base, constraints: ['node.role == manager', 'node.role==manager'] }).constraints, ['node.role==manager']);
    assert.throws(() => validateServiceSpec({ ...base, constraints: ['node.role==boss'] }), /node.role is manager or worker/);
    assert.throws(() => validateServiceSpec({ ...base, constraints: ['engine.labels.x==1'] }), /unknown key "engine.labels.x"/);
  });

  test('env entries are KEY=VALUE with a key without spaces', () => {
    assert.deepEqual(validateServiceSpec({ ...base, env: ['A=1', 'B='] }).env, ['A=1', 'B=']);
    assert.throws(() => validateServiceSpec({ ...base, env: ['A B=1'] }), /the name contains whitespace/);
    assert.throws(() => validateServiceSpec({ ...base, env: ['=1'] }), /the name before '=' is empty/);
  });

  test('a completed spec passes the store\'s shape check unchanged; the shape check alone allows an older name', () => {
    const s = validateServiceSpec({ ...base, ports: [{ targetPort: 80, publishedPort: 8080 }], healthcheck: { test: ['CMD', 'true'] } });
    assert.deepEqual(serviceSpecShape(s, 'spec'), s);
    assert.equal(serviceSpecShape({ ...s, name: 'web.fe' }, 'spec').name, 'web.fe');
    assert.throws(() => serviceSpecShape({ ...s, replicas: -1 }, 'spec'), ValidationError);
    assert.throws(() => serviceSpecShape({ ...s, surprise: 1 }, 'spec'), /spec.surprise is not a known field/);
  });

  test('workdir: empty (the image\'s) by default, absolute when given; an older spec without it reads as empty', () => {
    assert.equal(validateServiceSpec(base).workdir, '');
    assert.equal(validateServiceSpec({ ...base, workdir: '/srv' }).workdir, '/srv');
    assert.throws(() => validateServiceSpec({ ...base, workdir: 'srv' }), /must be an absolute path/);
    const { workdir: _, ...older } = validateServiceSpec(base);
    assert.equal(serviceSpecShape(older, 'spec').workdir, '');
  });

  test('networks: each once, aliases DNS labels; endpoint mode vip by default, dnsrr without ingress ports; an older spec has none', () => {
    const s = validateServiceSpec({ ...base, networks: [{ target: 'front', aliases: ['www', 'www'] }, { target: 'back' }], endpointMode: 'dnsrr' });
    assert.deepEqual(s.networks, [{ target: 'front', aliases: ['www'] }, { target: 'back', aliases: [] }]);
    assert.equal(s.endpointMode, 'dnsrr');
    assert.equal(validateServiceSpec(base).endpointMode, 'vip');
    assert.throws(() => validateServiceSpec({ ...base, networks: [{ target: 'front' }, { target: 'front' }] }), /^SpecError: network "front" is given twice$/);
    assert.throws(() => validateServiceSpec({ ...base, networks: [{ target: 'front', aliases: ['a.b'] }] }), /invalid alias name "a\.b"/);
    assert.throws(() => validateServiceSpec({ ...base, networks: [{ target: '' }] }), /needs its network/);
    assert.throws(() => validateServiceSpec({ ...base, endpointMode: 'rr' }), /the endpoint mode must be vip or dnsrr, not rr/);
    assert.throws(() => validateServiceSpec({ ...base, endpointMode: 'dnsrr', ports: [{ targetPort: 80, publishedPort: 8080 }] }), /dnsrr cannot publish a port in ingress mode/);
    assert.equal(validateServiceSpec({ ...base, endpointMode: 'dnsrr', ports: [{ targetPort: 80, publishedPort: 8080, publishMode: 'host' }] }).endpointMode, 'dnsrr');
    const { networks: _n, endpointMode: _e, ...older } = validateServiceSpec(base);
    assert.deepEqual([serviceSpecShape(older, 'spec').networks, serviceSpecShape(older, 'spec').endpointMode], [[], 'vip']);
  });
});
