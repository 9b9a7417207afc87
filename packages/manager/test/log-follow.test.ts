// `service logs -f` as a stream (the manager's side): the first batch is ServiceLogs' own answer,
// then each round asks only for what came after the newest line sent; warnings go out once;
// the loop ends when the client leaves.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { followServiceLogs, type ServiceLogsAnswer } from '../src/logbroker/log-follow.js';

const line = (ts: string, data: string) => ({ taskId: 't1', taskName: 'web.1.t1', node: 'n1', timestamp: ts, stream: 'stdout', data });

test('follows with since = the newest line sent, tail only the first time; warnings once; stops when the client leaves', async () => {
  const asked: { tail: number; since: string }[] = [];
  const answers: ServiceLogsAnswer[] = [
    { lines: [line('2026-12-08T01:00:00.1Z', 'a'), line('2026-12-08T01:00:00.2Z', 'b')], warnings: ['node w1 is down'] },
    { lines: [], warnings: ['node w1 is down'] },
    { lines: [line('2026-12-08T01:00:00.3Z', 'c')], warnings: ['node w1 is down'] },
  ];
  const sent: ServiceLogsAnswer[] = [];
  const on: Record<string, () => void> = {};
  const sink = {
    cancelled: false,
    write: (a: ServiceLogsAnswer) => (sent.push(a), true),
    once: () => undefined,
    on: (ev: string, fn: () => void) => ((on[ev] = fn), undefined),
  };
  const done = followServiceLogs(
    async (req) => {
      asked.push({ tail: req.tail, since: req.since });
      const a = answers.shift();
      if (!a) {
        on['cancelled']!();
        return { lines: [], warnings: [] };
      }
      return a;
    },
    { service: 'web', tail: 2, since: '' },
    sink,
    { pollMs: 1 },
  );
  await done;
  assert.deepEqual(asked.map((a) => a.tail), [2, 0, 0, 0]);
  assert.deepEqual(asked.slice(1).map((a) => a.since), ['2026-12-08T01:00:00.2Z', '2026-12-08T01:00:00.2Z', '2026-12-08T01:00:00.3Z']);
  assert.deepEqual(sent.map((a) => [a.lines.map((l) => l.data).join(''), a.warnings.length]), [['ab', 1], ['c', 0]]);
});
