// The one retry rule (retry.ts): waits double up to the ceiling, a success or the caller's loss of
// interest ends the retries, and every failure is told with the wait that follows it.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Backoff, retryWithBackoff } from '../src/index.js';

describe('Backoff', () => {
  test('doubles up to the ceiling; reset starts over', () => {
    const b = new Backoff(200, 1_000);
    assert.deepEqual([b.next(), b.next(), b.next(), b.next(), b.next()], [200, 400, 800, 1_000, 1_000]);
    b.reset();
    assert.equal(b.next(), 200);
  });
});

describe('retryWithBackoff', () => {
  test('retries until the attempt succeeds, telling each failure and the wait after it', async () => {
    const slept: number[] = [];
    const told: [string, number][] = [];
    let calls = 0;
    const done = await retryWithBackoff(
      async () => {
        if (++calls < 5) throw new Error(`failure ${calls}`);
      },
      {
        initialMs: 100,
        maxMs: 500,
        while: () => true,
        onError: (err, ms) => told.push([(err as Error).message, ms]),
        sleep: async (ms) => void slept.push(ms),
      },
    );
    assert.equal(done, true);
    assert.equal(calls, 5);
    assert.deepEqual(slept, [100, 200, 400, 500]);
    assert.deepEqual(told, [['failure 1', 100], ['failure 2', 200], ['failure 3', 400], ['failure 4', 500]]);
  });

  test('ends without another attempt once the caller no longer wants it', async () => {
    let wanted = true;
    let calls = 0;
    const done = await retryWithBackoff(
      async () => {
        calls++;
        throw new Error('not yet');
      },
      // The caller stops during the third wait.
      { initialMs: 1, maxMs: 1, while: () => wanted, sleep: async () => void (calls === 3 && (wanted = false)) },
    );
    assert.equal(done, false);
    assert.equal(calls, 3);
    assert.equal(await retryWithBackoff(async () => assert.fail('must not run'), { initialMs: 1, maxMs: 1, while: () => false }), false);
  });

  test('a limit on attempts throws the last failure, without a wait after it', async () => {
    const slept: number[] = [];
    let calls = 0;
    const attempt = async () => {
      throw new Error(`failure ${++calls}`);
    };
    // (a retry that went on would end here, ten waits later)
    const sleep = async (ms: number) => {
      if (slept.push(ms) > 10) throw new Error('retried on and on');
    };
    await assert.rejects(retryWithBackoff(attempt, { initialMs: 1, maxMs: 4, attempts: 3, while: () => true, sleep }), /^Error: failure 3$/);
    assert.equal(calls, 3);
    assert.deepEqual(slept, [1, 2]);
  });

  test('a failure that may not be retried is thrown at once', async () => {
    let calls = 0;
    const attempt = async () => {
      throw new Error(++calls === 2 ? 'fatal' : 'transient');
    };
    const retryable = (err: unknown) => (err as Error).message !== 'fatal';
    await assert.rejects(retryWithBackoff(attempt, { initialMs: 1, maxMs: 1, retryable, while: () => calls < 10, sleep: async () => {} }), /fatal/);
    assert.equal(calls, 2);
  });

  test('waits on a real timer by default', async () => {
    let calls = 0;
    const done = await retryWithBackoff(
      async () => {
        if (++calls < 3) throw new Error('not yet');
      },
      { initialMs: 1, maxMs: 2, while: () => true },
    );
    assert.equal(done, true);
    assert.equal(calls, 3);
  });
});
