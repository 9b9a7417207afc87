import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { logTimeKey, logTimeToUnix, newestLogLines } from '../src/index.js';

describe('log timestamps', () => {
  test('keys sort as the times do, whatever the fraction digits or the offset', () => {
    const times = ['2026-11-26T01:02:03.1Z', '2026-11-26T01:02:03.09Z', '2026-11-26T01:02:03Z', '2026-11-26T02:02:03.05+01:00', '2026-11-26T01:02:03.100000001Z'];
    const sorted = [...times].sort((a, b) => (logTimeKey(a)! < logTimeKey(b)! ? -1 : 1));
    assert.deepEqual(sorted, ['2026-11-26T01:02:03Z', '2026-11-26T02:02:03.05+01:00', '2026-11-26T01:02:03.09Z', '2026-11-26T01:02:03.1Z', '2026-11-26T01:02:03.100000001Z']);
    assert.equal(logTimeKey('2026-11-26T01:02:03.5Z'), '2026-11-26T01:02:03.500000000Z');
  });
  test('not a time: undefined', () => {
    for (const bad of ['', 'yesterday', '2026-11-26', '2026-11-26T01:02:03.1234567890Z', '10m']) assert.equal(logTimeKey(bad), undefined, bad);
  });
  test("the engine's since: seconds.nanoseconds", () => {
    assert.equal(logTimeToUnix('1970-01-01T00:00:10.25Z'), '10.250000000');
    assert.equal(logTimeToUnix('nope'), undefined);
  });
  test('newest lines within a byte budget, in time order', () => {
    const l = (ts: string, data: string) => ({ timestamp: ts, data });
    const lines = [l('2026-11-26T01:00:02Z', 'c'), l('2026-11-26T01:00:00.5Z', 'a'), l('2026-11-26T01:00:01Z', 'b')];
    assert.deepEqual(newestLogLines(lines, 1000, 10), { lines: [lines[1], lines[2], lines[0]], dropped: 0 });
    assert.deepEqual(newestLogLines(lines, 22, 10), { lines: [lines[2], lines[0]], dropped: 1 });
    assert.deepEqual(newestLogLines(lines, 5, 10), { lines: [], dropped: 3 });
  });
});
