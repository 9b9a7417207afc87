// The log broker on a real ClusterStore: requests reach the node that runs the tasks through its
// long poll, answers are merged in time order, and nodes that are down, silent or answering for
// others are told apart.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ShoalError } from '@shoal/api';
import { ClusterStore, decodeTxResult, encodeTx, type Op, type Service, type Task } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { LogBroker } from '../src/logbroker/log-broker.js';

const spec = mkSpec();

function task(id: string, slot: number, nodeId: string, containerId: string): Task {
  return {
    id, version: 0, createdAt: T0, updatedAt: T0, serviceId: 'svc1', serviceName: 'web', slot, nodeId, desiredState: 'running',
    status: { state: 'running', timestamp: T0, message: '', err: '', containerId, exitCode: 0 }, spec, specVersion: 1, networks: [], jobIteration: 0,
  };
}

function storeWith(): ClusterStore {
  const store = new ClusterStore();
  const service: Service = { id: 'svc1', version: 0, createdAt: T0, updatedAt: T0, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null };
  const ops: Op[] = [
    { op: 'create', kind: 'node', object: mkNode('n1', { hostname: 'host-n1' }) },
    { op: 'create', kind: 'node', object: mkNode('n2', { hostname: 'host-n2', state: 'down' }) },
    { op: 'create', kind: 'service', object: service },
    { op: 'create', kind: 'task', object: task('ta', 1, 'n1', 'c1') },
    { op: 'create', kind: 'task', object: task('tb', 2, 'n1', 'c2') },
    { op: 'create', kind: 'task', object: task('tc', 3, 'n2', 'c3') },
  ];
  const r = decodeTxResult(store.apply(encodeTx(ops), 1));
  assert.ok(r.ok);
  return store;
}

/** Sessions as the dispatcher would hold them: one per node. */
const sessions: Record<string, string> = { n1: 's1', n2: 's2' };
function verify(nodeId: string | undefined, sessionId: string | undefined): void {
  if (!nodeId || sessions[nodeId] !== sessionId) throw new ShoalError('NOT_FOUND', 'no such session');
}

function broker(over: { answerTimeoutMs?: number; maxBytes?: number } = {}): LogBroker {
  let n = 0;
  return new LogBroker(storeWith(), verify, { newId: () => `r${++n}`, answerTimeoutMs: 2_000, ...over });
}

describe('log broker', () => {
  test("a node gets the request for its tasks through its long poll; lines come back merged in time order", async () => {
    const b = broker();
    const poll = b.logRequests({ nodeId: 'n1', sessionId: 's1', waitMs: 5_000 });
    const answer = b.serviceLogs({ service: 'web', tail: 5 });
    const { requests } = await poll;
    assert.equal(requests.length, 1);
    assert.deepEqual([requests[0]!.taskIds.sort(), requests[0]!.tail, requests[0]!.since], [['ta', 'tb'], 5, '']);
    b.publishLogs({
      nodeId: 'n1', sessionId: 's1', requestId: requests[0]!.id, error: '', truncated: false,
      lines: [
        { taskId: 'tb', timestamp: '2026-11-26T01:00:00.2Z', stream: 'stdout', data: 'second' },
        { taskId: 'ta', timestamp: '2026-11-26T01:00:00.15Z', stream: 'stderr', data: 'first' },
        { taskId: 'tc', timestamp: '2026-11-26T01:00:00.1Z', stream: 'stdout', data: 'not asked of n1' },
      ],
    });
    const r = await answer;
    assert.deepEqual(r.lines.map((l) => [l.taskName, l.node, l.stream, l.data]), [
      ['web.1.ta', 'host-n1', 'stderr', 'first'],
      ['web.2.tb', 'host-n1', 'stdout', 'second'],
    ]);
    assert.deepEqual(r.warnings, ['node host-n2 is down: the logs of its 1 task(s) are not available']);
  });

  test('a node that does not answer in time is named; a late answer is ignored', async () => {
    const b = broker({ answerTimeoutMs: 100 });
    const r = await b.serviceLogs({ service: 'web' });
    assert.deepEqual(r.lines, []);
    assert.ok(r.warnings.includes('node host-n1 did not answer within 0.1s: the logs of its tasks are missing'), JSON.stringify(r.warnings));
    const { requests } = await b.logRequests({ nodeId: 'n1', sessionId: 's1', waitMs: 0 });
    assert.deepEqual(requests, [], 'the timed-out request is withdrawn');
    assert.deepEqual(b.publishLogs({ nodeId: 'n1', sessionId: 's1', requestId: 'r1', lines: [] }), {});
  });

  test("a node may not answer another node's request, nor poll without its session", async () => {
    const b = broker();
    const answer = b.serviceLogs({ service: 'web' });
    const { requests } = await b.logRequests({ nodeId: 'n1', sessionId: 's1', waitMs: 1_000 });
    assert.throws(() => b.publishLogs({ nodeId: 'n2', sessionId: 's2', requestId: requests[0]!.id, lines: [] }), /PERMISSION_DENIED|was not made to node n2/);
    await assert.rejects(b.logRequests({ nodeId: 'n1', sessionId: 'forged', waitMs: 0 }), /no such session/);
    b.publishLogs({ nodeId: 'n1', sessionId: 's1', requestId: requests[0]!.id, lines: [], error: 'task ta: engine said no', truncated: true });
    const r = await answer;
    assert.ok(r.warnings.includes('node host-n1: task ta: engine said no'));
    assert.ok(r.warnings.includes('node host-n1 cut its answer to its size limit: use --tail or --since'));
  });

  test('bad requests are refused before any node is asked', async () => {
    const b = broker();
    await assert.rejects(b.serviceLogs({ service: 'nope' }), /no such service|not found/i);
    await assert.rejects(b.serviceLogs({ service: 'web', tail: -1 }), /tail must be a non-negative integer/);
    await assert.rejects(b.serviceLogs({ service: 'web', since: 'yesterday' }), /since must be an RFC 3339 time/);
    await assert.rejects(b.serviceLogs({}), /a service name or id is required/);
    assert.deepEqual((await b.logRequests({ nodeId: 'n1', sessionId: 's1', waitMs: 0 })).requests, []);
  });

  test('beyond the size limit the newest lines are kept, and the answer says so', async () => {
    const b = broker({ maxBytes: 1_000 });
    const answer = b.serviceLogs({ service: 'web' });
    const { requests } = await b.logRequests({ nodeId: 'n1', sessionId: 's1', waitMs: 1_000 });
    const lines = Array.from({ length: 20 }, (_, i) => ({ taskId: 'ta', timestamp: `2026-11-26T01:00:${String(i).padStart(2, '0')}Z`, stream: 'stdout', data: `line ${i} ${'x'.repeat(80)}` }));
    b.publishLogs({ nodeId: 'n1', sessionId: 's1', requestId: requests[0]!.id, lines });
    const r = await answer;
    assert.ok(r.lines.length > 0 && r.lines.length < 20);
    assert.equal(r.lines.at(-1)!.data.split(' ')[1], '19');
    assert.ok(r.warnings.some((w) => /older line\(s\) left out/.test(w)), JSON.stringify(r.warnings));
  });
});
