import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../src/errors.js';
import { formatLogLine, parseSince, parseTail } from '../src/logs.js';

const line = { taskId: 'k3x9abcdefghijklmnopqrstu', taskName: 'web.2.k3x9abcdefghijklmnopqrstu', node: 'w1', timestamp: '2026-11-26T01:00:00.5Z', stream: 'stdout', data: 'hello' };

describe('service logs', () => {
  test('lines as Docker prints them: SERVICE.SLOT.TASKID@NODE | line', () => {
    assert.equal(formatLogLine(line, 0, { timestamps: false, noTrunc: false }), 'web.2.k3x9abcdefgh@w1 | hello');
    assert.equal(formatLogLine(line, 24, { timestamps: true, noTrunc: false }), 'web.2.k3x9abcdefgh@w1    | 2026-11-26T01:00:00.5Z hello');
    assert.equal(formatLogLine(line, 0, { timestamps: false, noTrunc: true }), 'web.2.k3x9abcdefghijklmnopqrstu@w1 | hello');
  });
  test('--since: a duration back from now, or a time', () => {
    const now = Date.parse('2026-11-26T01:00:00Z');
    assert.equal(parseSince('10m', now), '2026-11-26T00:50:00.000Z');
    assert.equal(parseSince('2026-11-25T23:00:00Z', now), '2026-11-25T23:00:00Z');
    for (const bad of ['yesterday', '2026-11-25', '-5m']) assert.throws(() => parseSince(bad, now), UsageError, bad);
  });
  test('--tail: lines or all', () => {
    assert.equal(parseTail(undefined), 0);
    assert.equal(parseTail('all'), 0);
    assert.equal(parseTail('20'), 20);
    assert.throws(() => parseTail('-1'), /invalid --tail "-1": expected a number of lines or "all"/);
  });
});

describe('task filters (service ps, node ps)', () => {
  test('desired-state and node, where allowed; anything else one clear line', async () => {
    const { taskFilters } = await import('../src/commands/common.js');
    assert.deepEqual(taskFilters(['desired-state=running', 'node=w1'], ['desired-state', 'node']), { desiredState: 'running', node: 'w1' });
    assert.throws(() => taskFilters(['bogus'], ['desired-state', 'node']), /^UsageError: invalid filter "bogus": expected desired-state=STATE or node=NODE$|invalid filter "bogus": expected desired-state=STATE or node=NODE/);
    assert.throws(() => taskFilters(['node=w1'], ['desired-state']), /invalid filter "node=w1": supported filters are desired-state$/);
  });
});
