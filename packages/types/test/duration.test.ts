// Durations as Go (and so docker) reads and prints them: the one parser of every duration flag.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { formatDuration, parseDuration } from '../src/duration.js';
import { SpecError } from '../src/spec-error.js';

function rejects(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof SpecError && !err.message.includes('\n') && re.test(err.message));
}

describe('parseDuration', () => {
  test('Go-style durations to milliseconds', () => {
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('5s'), 5000);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration('1.5s'), 1500);
    assert.equal(parseDuration('2h45m'), 9_900_000);
    assert.equal(parseDuration('0'), 0);
    assert.equal(parseDuration('0s'), 0);
    assert.equal(parseDuration('1500us'), 2);
    assert.equal(parseDuration(' 10s '), 10_000);
  });
  test('rejects numbers without units, negatives, garbage', () => {
    for (const bad of ['5', '', 's', '-5s', '5 s', '5sec', '1m30', 'abc', '5s!', '1d']) {
      rejects(() => parseDuration(bad, '--restart-delay'), /^invalid --restart-delay ".*": expected a number with a unit/);
    }
  });
  test('formatDuration is its inverse for display', () => {
    assert.equal(formatDuration(0), '0s');
    assert.equal(formatDuration(500), '500ms');
    assert.equal(formatDuration(5000), '5s');
    assert.equal(formatDuration(90_000), '1m30s');
    assert.equal(formatDuration(3_600_000), '1h0m0s');
    assert.equal(formatDuration(1500), '1.5s');
    for (const ms of [500, 5000, 90_000, 3_600_000, 1500, 61_250]) assert.equal(parseDuration(formatDuration(ms)), ms);
  });
});
