import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { UsageError } from '../src/errors.js';
import { checkEventFilters, eventJson, eventLine, eventTime } from '../src/events-format.js';
import type { Event } from '@shoal/types';

const ev: Event = {
  type: 'service',
  action: 'update',
  actor: { id: 'k3x9abc', attributes: { 'replicas.old': '2', name: 'web', 'replicas.new': '3' } },
  timeMs: Date.parse('2026-12-08T01:02:03.456Z'),
  index: 42,
  position: 1,
  version: '42.1',
};

describe('shoal events output', () => {
  test("a line as docker's: time with nanoseconds, type, action, id, sorted attributes", () => {
    assert.equal(eventTime(Date.parse('2026-12-08T01:02:03Z')), '2026-12-08T01:02:03.000000000Z');
    assert.equal(eventLine(ev), '2026-12-08T01:02:03.456000000Z service update k3x9abc (name=web, replicas.new=3, replicas.old=2)');
    assert.equal(eventLine({ ...ev, actor: { id: 'x', attributes: {} } }), '2026-12-08T01:02:03.456000000Z service update x');
  });

  test("--format json: docker's shape, timeNano exact, the version kept", () => {
    const line = eventJson(ev);
    assert.match(line, /"timeNano":1796691723456000000[,}]/);
    const o = JSON.parse(line) as Record<string, unknown>;
    assert.deepEqual(
      { ...o, timeNano: undefined },
      { Type: 'service', Action: 'update', Actor: { ID: 'k3x9abc', Attributes: { name: 'web', 'replicas.new': '3', 'replicas.old': '2' } }, scope: 'swarm', time: 1796691723, timeNano: undefined, version: '42.1' },
    );
  });

  test('--filter: the manager\'s keys and types, else a usage error naming them', () => {
    assert.deepEqual(checkEventFilters(['type=service', 'service=web', 'node=w1', 'event=create']), ['type=service', 'service=web', 'node=w1', 'event=create']);
    assert.throws(() => checkEventFilters(['colour=red']), (e: unknown) => e instanceof UsageError && e.message === 'invalid --filter "colour=red": the key must be one of type, service, node, event');
    assert.throws(() => checkEventFilters(['type=volume']), /the type must be one of service, node, task, network, secret, config, cluster/);
    assert.throws(() => checkEventFilters(['type']), /expected type=VALUE/);
  });
});
