// Autolock's wrapping of kek.json: the unlock key's form, a round trip, and a wrong key, a
// damaged file or a swapped id each refused; the file's states as a manager's start reads them.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShoalError } from '@shoal/api';
import {
  INVALID_UNLOCK_KEY,
  KeyEncryptionKey,
  MANAGER_LOCKED,
  UNLOCK_KEY_PREFIX,
  UnlockKey,
  certPaths,
  holdsKek,
  kekLocked,
  readKek,
  readKekFile,
  sealContext,
  unlockKek,
  writeKek,
  type WrappedKekFile,
} from '../src/index.js';

const invalidKey = (err: unknown) => err instanceof ShoalError && err.code === 'INVALID_ARGUMENT' && err.message === INVALID_UNLOCK_KEY;

describe('unlock key', () => {
  test('is SWMKEY-1- and 32 bytes in unpadded base64, and parses back', () => {
    const k = UnlockKey.generate();
    const s = k.toString();
    assert.match(s, /^SWMKEY-1-[A-Za-z0-9+/]{43}$/);
    assert.ok(UnlockKey.parse(s).equals(k));
    assert.ok(UnlockKey.parse(`  ${s}\n`).equals(k), 'white space around it is ignored');
    assert.ok(!UnlockKey.generate().equals(k));
  });

  test('anything else is one line: invalid unlock key', () => {
    const good = UnlockKey.generate().toString();
    const body = good.slice(UNLOCK_KEY_PREFIX.length);
    for (const bad of ['', 'maybe', body, `SWMKEY-2-${body}`, good.slice(0, -1), `${good}AA`, `${good.slice(0, -2)}!!`, 'SWMTKN-1-abc']) {
      assert.throws(() => UnlockKey.parse(bad), invalidKey, JSON.stringify(bad));
    }
  });
});

describe('kek.json wrapped by the unlock key', () => {
  const kek = KeyEncryptionKey.generate();
  const key = UnlockKey.generate();

  test('round trip: the same key-encryption key back, opening what it sealed', () => {
    const file = JSON.parse(key.wrap(kek)) as WrappedKekFile;
    const back = key.unwrap(file, 'kek.json');
    assert.equal(back.id, kek.id);
    const sealed = kek.seal('the CA key', sealContext.caKey('c1'));
    assert.equal(back.open(sealed, sealContext.caKey('c1')), 'the CA key');
  });

  test('the file shows the key id and nothing of the key', () => {
    const text = key.wrap(kek);
    const clear = JSON.parse(kek.serialize()) as { key: string };
    assert.ok(!text.includes(clear.key));
    assert.throws(() => KeyEncryptionKey.parse(text, 'kek.json'), (e: unknown) => e instanceof ShoalError && e.code === 'CORRUPT_DATA');
    assert.equal((JSON.parse(text) as WrappedKekFile).id, kek.id);
    // A new salt and nonce each time: two wraps differ.
    assert.notEqual(key.wrap(kek), text);
  });

  test('a wrong key is refused: invalid unlock key', () => {
    const file = JSON.parse(key.wrap(kek)) as WrappedKekFile;
    assert.throws(() => UnlockKey.generate().unwrap(file, 'kek.json'), invalidKey);
  });

  test('a tampered file is refused: a flipped bit, a swapped id, another salt', () => {
    const file = JSON.parse(key.wrap(kek)) as WrappedKekFile;
    const data = Buffer.from(file.data, 'base64');
    data[5] = data[5]! ^ 1;
    assert.throws(() => key.unwrap({ ...file, data: data.toString('base64') }, 'kek.json'), invalidKey);
    assert.throws(() => key.unwrap({ ...file, id: KeyEncryptionKey.generate().id }, 'kek.json'), invalidKey);
    const salt = Buffer.from(file.salt, 'base64');
    salt[0] = salt[0]! ^ 1;
    assert.throws(() => key.unwrap({ ...file, salt: salt.toString('base64') }, 'kek.json'), invalidKey);
    assert.throws(() => key.unwrap({ ...file, data: data.subarray(0, 10).toString('base64') }, 'kek.json'), (e: unknown) => e instanceof ShoalError && e.code === 'CORRUPT_DATA');
  });
});

describe('kek.json on a manager', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'shoal-autolock-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('clear, wrapped, unlocked, clear again', () => {
    const kek = KeyEncryptionKey.generate();
    const key = UnlockKey.generate();
    assert.equal(readKekFile(dir).kind, 'absent');
    assert.equal(readKek(dir), undefined);
    writeKek(dir, kek);
    assert.equal(readKek(dir)?.id, kek.id);
    assert.equal(kekLocked(dir), false);
    assert.throws(() => unlockKek(dir, key), (e: unknown) => e instanceof ShoalError && e.message === 'this manager is not locked');

    writeKek(dir, kek, key);
    assert.equal(statSync(certPaths(dir).kek).mode & 0o777, 0o600);
    assert.equal(kekLocked(dir), true);
    assert.throws(() => readKek(dir), (e: unknown) => e instanceof ShoalError && e.code === 'FAILED_PRECONDITION' && e.message === MANAGER_LOCKED);
    assert.throws(() => unlockKek(dir, UnlockKey.generate()), invalidKey);
    assert.equal(unlockKek(dir, key).id, kek.id);
    // A renewal bringing the same key leaves the wrapped file alone; another key is not held.
    assert.ok(holdsKek(dir, kek.id));
    assert.ok(!holdsKek(dir, KeyEncryptionKey.generate().id));

    writeKek(dir, kek);
    assert.equal(kekLocked(dir), false);
    assert.equal(readKek(dir)?.id, kek.id);
  });

  test('a file that is neither form is damaged, not locked', () => {
    writeFileSync(certPaths(dir).kek, '{"format":2,"id":"zz"}\n');
    assert.throws(() => readKekFile(dir), (e: unknown) => e instanceof ShoalError && e.code === 'CORRUPT_DATA');
    assert.ok(!holdsKek(dir, 'zz'));
    assert.ok(readFileSync(certPaths(dir).kek, 'utf8').includes('zz'));
  });
});
