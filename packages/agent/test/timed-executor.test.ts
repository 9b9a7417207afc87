// TimedExecutor over the real Docker executor and this host's engine: each call it passes on is
// told (operation, duration, outcome) for the Docker call latency metric, and answers as the
// executor it wraps. Read-only calls only: no container is made.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ShoalError } from '@shoal/api';
import { DockerExecutor } from '../src/docker-executor.js';
import { TimedExecutor } from '../src/timed-executor.js';

const inner = new DockerExecutor({ nodeId: `timed-${randomBytes(4).toString('hex')}` });
after(() => inner.close());

test('calls are timed by operation, failures told as such, and answered as the wrapped executor answers', async () => {
  const told: { operation: string; seconds: number; ok: boolean }[] = [];
  const ex = new TimedExecutor(inner, { dockerCall: (operation, seconds, ok) => told.push({ operation, seconds, ok }) });
  assert.equal(ex.nodeId, inner.nodeId);

  await ex.ping();
  const info = await ex.info();
  assert.ok(info.engineVersion, 'the engine describes itself through the wrapper');
  assert.deepEqual(await ex.listOwned(), [], 'a node id of its own owns no container');
  await assert.rejects(ex.inspect('shoal-timed-test-no-such-container'), (err: unknown) => ShoalError.is(err, 'NOT_FOUND'));
  // The outcome is told when the call settles (a microtask after its caller saw it).
  await new Promise((r) => setImmediate(r));

  assert.deepEqual(
    told.map((t) => [t.operation, t.ok]),
    [
      ['ping', true],
      ['info', true],
      ['list', true],
      ['inspect', false],
    ],
  );
  assert.ok(told.every((t) => t.seconds >= 0 && t.seconds < 60));
});
