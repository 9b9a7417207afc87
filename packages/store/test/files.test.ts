// The store's rules for secrets and configs: shapes (sealed data only, Swarm's names, 500 KiB),
// one name per kind, services naming only existing ones, and no removal while a service (or its
// previous spec) uses one. Every refusal leaves the state as it was.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Config, type Secret, type TxFailure, checkTxSize, encodeTx } from '../src/index.js';
import { Log, T0, create, del, mkService, update } from './fixtures.js';
import { readSnapshot } from './snapshot-fixtures.js';

const sealed = { alg: 'aes-256-gcm', kekId: 'k1', nonce: Buffer.alloc(12).toString('base64'), data: Buffer.from('ciphertext and its tag').toString('base64') } as const;

function mkSecret(id: string, name: string, over: Partial<Secret> = {}): Secret {
  return { id, version: 0, createdAt: T0, updatedAt: T0, spec: { name, labels: {} }, size: 6, data: sealed, ...over };
}

function mkConfig(id: string, name: string, data = 'a=1\n'): Config {
  return { id, version: 0, createdAt: T0, updatedAt: T0, spec: { name, labels: { tier: 'web' }, data: Buffer.from(data).toString('base64') } };
}

function refused(log: Log, op: ReturnType<typeof create>, code: string, re: RegExp): void {
  const before = log.store.snapshot();
  const r = log.tx(op) as TxFailure;
  assert.equal(r.ok, false, 'expected the transaction to fail');
  assert.equal(r.code, code, r.message);
  assert.match(r.message, re);
  assert.deepEqual(readSnapshot(log.store.snapshot()).objects, readSnapshot(before).objects);
}

function withFiles(id: string, name: string, secrets: string[], configs: string[] = []) {
  const s = mkService(id, name);
  return {
    ...s,
    spec: {
      ...s.spec,
      secrets: secrets.map((sid) => ({ secretId: sid, secretName: sid, target: sid, uid: '0', gid: '0', mode: 0o444 })),
      configs: configs.map((cid) => ({ configId: cid, configName: cid, target: `/${cid}`, uid: '0', gid: '0', mode: 0o444 })),
    },
  };
}

describe('secrets and configs in the store', () => {
  test('shapes: data only sealed, Swarm names, at most 500 KiB; good ones stored and read back', () => {
    const log = new Log();
    log.ok(create('secret', mkSecret('x1', 'db.password')), create('config', mkConfig('c1', 'nginx_conf')));
    assert.equal(log.store.get('secret', 'x1')!.size, 6);
    assert.equal(Buffer.from(log.store.get('config', 'c1')!.spec.data, 'base64').toString(), 'a=1\n');
    assert.equal(log.store.resolveSecret('db.password').id, 'x1');
    assert.equal(log.store.resolveConfig('c').id, 'c1');
    refused(log, create('secret', { ...mkSecret('x2', 'plain'), data: 'hunter2' }), 'INVALID_ARGUMENT', /data must be an object/);
    refused(log, create('secret', { ...mkSecret('x2', 'plain'), data: { ...sealed, plaintext: 'hunter2' } }), 'INVALID_ARGUMENT', /plaintext is not a known field/);
    refused(log, create('secret', mkSecret('x2', '-bad')), 'INVALID_ARGUMENT', /invalid secret name/);
    refused(log, create('secret', mkSecret('x2', 'a'.repeat(65))), 'INVALID_ARGUMENT', /at most 64/);
    refused(log, create('secret', mkSecret('x2', 'big', { size: 500 * 1024 + 1 })), 'INVALID_ARGUMENT', /size/);
    refused(log, create('config', mkConfig('c2', 'big', 'x'.repeat(500 * 1024 + 1))), 'INVALID_ARGUMENT', /data/);
    refused(log, create('config', { ...mkConfig('c2', 'bad'), spec: { ...mkConfig('c2', 'bad').spec, data: 'not base64!' } }), 'INVALID_ARGUMENT', /base64/);
    log.ok(create('config', mkConfig('c2', 'max', 'x'.repeat(500 * 1024))));
  });

  test('the largest secret and config fit in one transaction (a sealed secret is base64 of its base64 and a tag)', () => {
    const max = 500 * 1024;
    const sealedLen = Math.ceil((Math.ceil(max / 3) * 4 + 16) / 3) * 4;
    const secret = mkSecret('x1', 'big', { size: max, data: { ...sealed, data: 'A'.repeat(sealedLen) } });
    const config = mkConfig('c1', 'big', 'x'.repeat(max));
    for (const op of [create('secret', secret), create('config', config)]) {
      assert.doesNotThrow(() => checkTxSize([op], encodeTx([op]).length));
      new Log().ok(op);
    }
  });

  test('names are unique per kind (a secret and a config may share one)', () => {
    const log = new Log();
    log.ok(create('secret', mkSecret('x1', 'shared')), create('config', mkConfig('c1', 'shared')));
    refused(log, create('secret', mkSecret('x2', 'shared')), 'ALREADY_EXISTS', /secret name "shared" is already taken by secret x1/);
    refused(log, create('config', mkConfig('c2', 'shared')), 'ALREADY_EXISTS', /config name "shared" is already taken by config c1/);
    // Two creates of one name in one transaction: the second sees the first.
    const r = log.tx(create('secret', mkSecret('x4', 'twin')), create('secret', mkSecret('x5', 'twin'))) as TxFailure;
    assert.equal(r.ok, false);
    assert.match(r.message, /secret name "twin" is already taken by secret x4 \(ops\[1\]\)/);
    assert.equal(log.store.get('secret', 'x4'), null);
  });

  test('a service names existing secrets and configs only; one in use is not removed, naming its services', () => {
    const log = new Log();
    log.ok(create('secret', mkSecret('x1', 'pw')), create('config', mkConfig('c1', 'conf')));
    refused(log, create('service', withFiles('s1', 'web', ['gone'])), 'FAILED_PRECONDITION', /secret gone \(gone\) of service "web" no longer exists/);
    refused(log, create('service', withFiles('s1', 'web', [], ['nope'])), 'FAILED_PRECONDITION', /config nope \(nope\) of service "web" no longer exists/);
    log.ok(create('service', withFiles('s1', 'web', ['x1'], ['c1'])), create('service', withFiles('s2', 'api', ['x1'])));
    refused(log, del('secret', 'x1'), 'FAILED_PRECONDITION', /^secret "pw" is in use by services api, web \(ops\[0\]\)$/);
    refused(log, del('config', 'c1'), 'FAILED_PRECONDITION', /^config "conf" is in use by service web \(ops\[0\]\)$/);
    // The previous spec counts (a rollback returns to it).
    const web = log.store.get('service', 's1')!;
    log.ok(update('service', { ...web, previousSpec: web.spec, spec: { ...web.spec, secrets: [], configs: [] } }));
    log.ok(del('service', 's2'));
    refused(log, del('secret', 'x1'), 'FAILED_PRECONDITION', /in use by service web/);
    refused(log, del('config', 'c1'), 'FAILED_PRECONDITION', /in use by service web/);
    const web2 = log.store.get('service', 's1')!;
    // Leaving it and removing it in one transaction: it goes.
    log.ok(update('service', { ...web2, previousSpec: null }), del('secret', 'x1'), del('config', 'c1'));
    assert.equal(log.store.count('secret'), 0);
    assert.equal(log.store.count('config'), 0);
  });

  test('secrets and configs survive a snapshot round trip', () => {
    const log = new Log();
    log.ok(create('secret', mkSecret('x1', 'pw')), create('config', mkConfig('c1', 'conf')));
    const again = new Log();
    again.store.restore(log.store.snapshot());
    assert.deepEqual(again.store.get('secret', 'x1'), log.store.get('secret', 'x1'));
    assert.deepEqual(again.store.get('config', 'c1'), log.store.get('config', 'c1'));
    assert.deepEqual(readSnapshot(again.store.snapshot()).header.counts, { cluster: 0, node: 0, service: 0, task: 0, network: 0, secret: 1, config: 1 });
  });
});
