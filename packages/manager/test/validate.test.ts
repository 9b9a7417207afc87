// The control API's edge validation of service specs: what it fills in, what it refuses.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { validatePorts, validateServiceSpec } from '../src/controlapi/validate.js';

const base = { name: 'web', image: 'shoal/busybox:latest' };

describe('validateServiceSpec', () => {
  test('defaults: one replica, restart any after 5 s, stop-first updates of one slot, pause on failure', () => {
    const s = validateServiceSpec(base);
    assert.equal(s.replicas, 1);
    assert.deepEqual(s.restartPolicy, { condition: 'any', delayMs: 5000, maxAttempts: 0, windowMs: 0 });
    assert.deepEqual(s.updateConfig, { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first' });
  });

  test('update options the orchestrator does not implement are refused, not stored and ignored', () => {
    assert.equal(validateServiceSpec({ ...base, updateConfig: { order: 'start-first' } }).updateConfig.order, 'start-first');
    assert.throws(() => validateServiceSpec({ ...base, updateConfig: { failureAction: 'rollback' } }), /failure action rollback is not supported yet/);
    assert.throws(() => validateServiceSpec({ ...base, updateConfig: { order: 'sideways' as 'stop-first' } }), /must be stop-first or start-first/);
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
});
