// The cluster settings' ranges: one rule for shoald's flags, the control API and the store.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CERT_EXPIRY, HEARTBEAT_PERIOD, checkDurationIn } from '../src/cluster-settings.js';
import { SpecError } from '../src/spec-error.js';

test('a setting within its range comes back; outside it, one line naming the flag and the range as durations', () => {
  assert.equal(checkDurationIn(1000, HEARTBEAT_PERIOD, '--dispatcher-heartbeat'), 1000);
  assert.equal(checkDurationIn(CERT_EXPIRY.minMs, CERT_EXPIRY, '--cert-expiry'), 10_000);
  const refused = (ms: unknown, range = HEARTBEAT_PERIOD): string => {
    try {
      checkDurationIn(ms, range, '--flag');
    } catch (err) {
      assert.ok(err instanceof SpecError);
      return err.message;
    }
    assert.fail(`${String(ms)} was accepted`);
  };
  assert.equal(refused(50), '--flag must be between 100ms and 1h0m0s, not 50ms');
  assert.equal(refused(2 * 3_600_000), '--flag must be between 100ms and 1h0m0s, not 2h0m0s');
  assert.equal(refused(5000, CERT_EXPIRY), '--flag must be between 10s and 87600h0m0s, not 5s');
  assert.match(refused(1.5), /not 1\.5ms$/);
  assert.match(refused('x'), /not x$/);
});
