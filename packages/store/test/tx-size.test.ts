// The size bound of a transaction (tx-size.ts): what is over it is refused by the store client
// before anything reaches Raft, with a message that names the object and the sizes; what is
// under it commits.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ShoalError } from '@shoal/api';
import { MAX_SPEC_BYTES, MAX_TX_BYTES, StoreClient, encodeTx, type Op, type StoreProposer } from '../src/index.js';
import { Log, create, mkNode, mkService, mkTask } from './fixtures.js';

/** A store client over a log that counts what it is asked to propose. */
function client(): { log: Log; client: StoreClient; proposed: number[] } {
  const log = new Log();
  const proposed: number[] = [];
  const proposer: StoreProposer = {
    async propose(payload) {
      proposed.push(payload.length);
      const index = ++log.index;
      return { index, result: log.store.apply(payload, index) };
    },
    async readBarrier() {
      return log.index;
    },
  };
  return { log, client: new StoreClient(proposer, log.store), proposed };
}

function refused(re: RegExp) {
  return (err: unknown) => {
    assert.ok(ShoalError.is(err, 'RESOURCE_EXHAUSTED'), `expected RESOURCE_EXHAUSTED, got ${String(err)}`);
    assert.match(err.message, re);
    assert.doesNotMatch(err.message, /\n/);
    return true;
  };
}

describe('transaction size bound', () => {
  test('a service with a 5 MB env is refused, naming it and the sizes; nothing is proposed or stored', async () => {
    const { log, client: c, proposed } = client();
    const svc = mkService('s1', 'big');
    svc.spec = { ...svc.spec, env: [`X=${'x'.repeat(5_000_000)}`] };
    await assert.rejects(c.commit([create('service', svc)]), refused(/^service "big" is too large: its spec is 4\.8 MiB encoded, over the 256\.0 KiB a service spec may take/));
    assert.deepEqual(proposed, []);
    assert.equal(log.store.count('service'), 0);
  });

  test('a spec just over the spec bound is refused, one under it commits (and its tasks fit)', async () => {
    const { log, client: c, proposed } = client();
    // Env values of 60,000 characters (the store takes strings of up to 64 KiB), the last one
    // sized so that the spec is exactly `bytes` long.
    const withEnv = (id: string, bytes: number) => {
      const s = mkService(id, id);
      const env = Array.from({ length: 4 }, (_, i) => `X${i}=${'y'.repeat(60_000)}`);
      const base = Buffer.byteLength(JSON.stringify({ ...s.spec, env: [...env, 'Z='] }));
      s.spec = { ...s.spec, env: [...env, `Z=${'y'.repeat(bytes - base)}`] };
      assert.equal(Buffer.byteLength(JSON.stringify(s.spec)), bytes);
      return s;
    };
    await assert.rejects(c.commit([create('service', withEnv('over', MAX_SPEC_BYTES + 1))]), refused(/service "over" is too large/));
    assert.equal(proposed.length, 0);
    const ok = withEnv('under', MAX_SPEC_BYTES);
    await c.commit([create('service', ok)]);
    assert.equal(log.store.count('service'), 1);
    // Two tasks of that spec (a task replaced by another) fit one transaction.
    const tasks = [1, 2].map((i) => ({ ...mkTask(`t${i}`, 'under', 1), spec: ok.spec }));
    await c.commit(tasks.map((t) => create('task', t)));
    assert.ok(proposed.every((n) => n <= MAX_TX_BYTES), `proposed ${proposed.join(', ')} bytes`);
  });

  test('many small ops over the bound are refused as a whole: the caller must split them', async () => {
    const { log, client: c, proposed } = client();
    const ops: Op[] = [create('service', mkService('s1', 'web'))];
    for (let i = 0; ops.length < 3000; i++) ops.push(create('task', mkTask(`t${i}`, 's1', i + 1)));
    assert.ok(encodeTx(ops).length > MAX_TX_BYTES);
    await assert.rejects(c.commit(ops), refused(/^a transaction of 3000 ops is \d+\.\d MiB encoded, over the 1\.0 MiB limit: it must be split$/));
    assert.deepEqual(proposed, []);
    assert.equal(log.store.count('task'), 0);
    // The same ops in bounded pieces all commit.
    await c.commit(ops.slice(0, 500));
    for (let i = 500; i < ops.length; i += 500) await c.commit(ops.slice(i, i + 500));
    assert.equal(log.store.count('task'), 2999);
  });

  test('one object over the bound (a node with a 2 MB label) is named', async () => {
    const { log, client: c, proposed } = client();
    const n = mkNode('n1', 'host1');
    n.spec = { ...n.spec, labels: { big: 'z'.repeat(2_000_000) } };
    await assert.rejects(c.commit([create('node', n)]), refused(/^node "host1" is too large: 1\.9 MiB encoded, and a transaction may take at most 1\.0 MiB$/));
    assert.deepEqual(proposed, []);
    assert.equal(log.store.count('node'), 0);
  });
});
