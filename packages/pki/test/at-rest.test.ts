// A node's secrets on disk: the key and certificate replaced as one pair whatever step a crash
// stops the renewal at, a key that does not match its certificate refused at start, and the
// cluster's key-encryption key sealing what the replicated store holds.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ShoalError } from '@shoal/api';
import {
  KeyEncryptionKey,
  adminDirWriteSteps,
  readAdminMaterial,
  writeAdminMaterial,
  NodeIdentity,
  certPaths,
  createRootCA,
  issueWithNewKey,
  keyMatchesCert,
  keyPairWriteSteps,
  readKek,
  readMaterial,
  forgetManagerSecrets,
  sealContext,
  writeKek,
  writeMaterial,
  type RootCA,
} from '../src/index.js';

const DAY = 24 * 3600_000;

describe('key and certificate replaced as one pair', () => {
  let ca: RootCA;
  let base: string;
  let old: { keyPem: string; certPem: string };
  let next: { keyPem: string; certPem: string };
  before(async () => {
    ca = await createRootCA();
    base = mkdtempSync(join(tmpdir(), 'shoal-pair-'));
    old = await issueWithNewKey(ca, { nodeId: 'n1', role: 'worker', clusterId: 'c1' }, DAY);
    // The renewal that follows a promotion: a new key, a certificate for the new role.
    next = await issueWithNewKey(ca, { nodeId: 'n1', role: 'manager', clusterId: 'c1' }, DAY);
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  const stepCount = () => keyPairWriteSteps({ key: '', cert: '' }, { keyPem: '', certPem: '' }).length;

  test('a crash after any step leaves a matching pair, the old one or the new one, and a clean directory', () => {
    const n = stepCount();
    for (let k = 0; k <= n; k++) {
      const dir = join(base, `crash-${k}`);
      writeMaterial(dir, { caPem: ca.certPem, ...old });
      const p = certPaths(dir);
      // The renewal, cut short after k steps (the process died there).
      for (const step of keyPairWriteSteps(p, next).slice(0, k)) step();
      const m = readMaterial(dir);
      assert.ok(keyMatchesCert(m.keyPem, m.certPem), `after ${k} steps: the key matches the certificate`);
      const which = m.certPem === next.certPem ? 'next' : m.certPem === old.certPem ? 'old' : 'neither';
      assert.notEqual(which, 'neither', `after ${k} steps`);
      if (k === n) assert.equal(which, 'next', 'a finished renewal gives the new pair');
      // Recovery left a plain current pair: what is loaded is what is on disk, nothing pending.
      assert.equal(readFileSync(p.key, 'utf8'), m.keyPem);
      assert.equal(readFileSync(p.cert, 'utf8'), m.certPem);
      assert.ok(!existsSync(`${p.key}.next`) && !existsSync(`${p.cert}.next`), `after ${k} steps: no pending file left`);
      assert.equal(statSync(p.key).mode & 0o777, 0o600);
      // And it loads as the node's identity.
      assert.equal(NodeIdentity.load(dir).identity.role, which === 'next' ? 'manager' : 'worker');
    }
  });

  test('renames made durable out of order (a power loss): the certificate moved, the key not', () => {
    const dir = join(base, 'reordered');
    writeMaterial(dir, { caPem: ca.certPem, ...old });
    const p = certPaths(dir);
    const steps = keyPairWriteSteps(p, next);
    // write key, write cert, fsync dir, (key rename lost), cert rename.
    for (const i of [0, 1, 2, 4]) steps[i]();
    const m = readMaterial(dir);
    assert.equal(m.certPem, next.certPem);
    assert.equal(m.keyPem, next.keyPem);
  });

  test('a key that does not match its certificate is refused at start with a clear error', async () => {
    const dir = join(base, 'mismatch');
    writeMaterial(dir, { caPem: ca.certPem, ...old });
    writeFileSync(certPaths(dir).key, next.keyPem);
    assert.throws(
      () => NodeIdentity.load(dir),
      (e: ShoalError) => e.code === 'CORRUPT_DATA' && /node\.key does not match .*node\.crt \(their public keys differ\)/.test(e.message) && !e.message.includes('\n'),
    );
  });

  test('a renewal whose certificate is for another key is refused before anything is written', () => {
    const dir = join(base, 'replace');
    writeMaterial(dir, { caPem: ca.certPem, ...old });
    const id = NodeIdentity.load(dir);
    assert.throws(() => id.replace({ caPem: ca.certPem, certPem: next.certPem, keyPem: old.keyPem }), /not for the new key/);
    assert.equal(readFileSync(certPaths(dir).cert, 'utf8'), old.certPem);
    assert.equal(readFileSync(certPaths(dir).key, 'utf8'), old.keyPem);
  });

  test('the certificates directory is made private again when it was opened up', () => {
    const dir = join(base, 'modes');
    mkdirSync(join(dir, 'certificates'), { recursive: true, mode: 0o755 });
    chmodSync(join(dir, 'certificates'), 0o755);
    writeMaterial(dir, { caPem: ca.certPem, ...old });
    assert.equal(statSync(join(dir, 'certificates')).mode & 0o777, 0o700);
    chmodSync(join(dir, 'certificates'), 0o755);
    readMaterial(dir);
    assert.equal(statSync(join(dir, 'certificates')).mode & 0o777, 0o700);
  });
});

describe('key-encryption key', () => {
  const secret = '-----BEGIN PRIVATE KEY-----\nMIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg\n-----END PRIVATE KEY-----\n';

  test('seals with AES-256-GCM: the stored form does not hold the secret, and opens back', () => {
    const kek = KeyEncryptionKey.generate();
    const sealed = kek.seal(secret, sealContext.caKey('c1'));
    assert.equal(sealed.alg, 'aes-256-gcm');
    assert.equal(sealed.kekId, kek.id);
    const stored = JSON.stringify(sealed);
    assert.ok(!stored.includes('MIGHAgEAMBMGByqGSM49'), 'no plaintext in the stored form');
    assert.equal(kek.open(sealed, sealContext.caKey('c1')), secret);
    // Two seals of the same secret differ (a fresh nonce each time).
    assert.notEqual(kek.seal(secret, sealContext.caKey('c1')).data, sealed.data);
  });

  test('refuses another context, another key, and tampered data, each with a clear error', () => {
    const kek = KeyEncryptionKey.generate();
    const sealed = kek.seal(secret, sealContext.caKey('c1'));
    assert.throws(() => kek.open(sealed, sealContext.caKey('c2')), (e: ShoalError) => e.code === 'CORRUPT_DATA' && /integrity/.test(e.message));
    const other = KeyEncryptionKey.generate();
    assert.throws(() => other.open(sealed, sealContext.caKey('c1')), (e: ShoalError) => e.code === 'FAILED_PRECONDITION' && /sealed with key-encryption key/.test(e.message));
    const data = Buffer.from(sealed.data, 'base64');
    data[0] ^= 1;
    assert.throws(() => kek.open({ ...sealed, data: data.toString('base64') }, sealContext.caKey('c1')), /integrity/);
  });

  test('kept in DATA_DIR/certificates/kek.json, mode 0600; absent on a node that holds none', () => {
    const dir = mkdtempSync(join(tmpdir(), 'shoal-kek-'));
    try {
      assert.equal(readKek(dir), undefined);
      const kek = KeyEncryptionKey.generate();
      writeKek(dir, kek);
      assert.equal(statSync(certPaths(dir).kek).mode & 0o777, 0o600);
      const back = readKek(dir)!;
      assert.equal(back.id, kek.id);
      assert.equal(back.open(kek.seal(secret, 'x'), 'x'), secret);
      writeFileSync(certPaths(dir).kek, '{"format":1,"id":"zz","key":""}');
      assert.throws(() => readKek(dir), (e: ShoalError) => e.code === 'CORRUPT_DATA' && /kek\.json is not a key-encryption key/.test(e.message));
      forgetManagerSecrets(dir);
      assert.equal(readKek(dir), undefined);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('admin certificate directory written as one', () => {
  let ca: RootCA;
  let base: string;
  let admin: { caPem: string; keyPem: string; certPem: string };
  before(async () => {
    ca = await createRootCA();
    base = mkdtempSync(join(tmpdir(), 'shoal-admin-'));
    admin = { caPem: ca.certPem, ...(await issueWithNewKey(ca, { nodeId: 'admin-1', role: 'admin', clusterId: 'c1' }, DAY)) };
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  test('a crash after any step leaves no admin directory or a complete one', () => {
    const n = adminDirWriteSteps(join(base, 'x'), admin).steps.length;
    for (let k = 0; k <= n; k++) {
      const parent = join(base, `crash-${k}`);
      mkdirSync(parent);
      const dir = join(parent, 'admin');
      // The write, cut short after k steps (the process died there).
      for (const step of adminDirWriteSteps(dir, admin).steps.slice(0, k)) step();
      if (!existsSync(dir)) {
        assert.ok(k < n, `after ${k} steps: a finished write leaves the directory`);
        continue;
      }
      const m = readAdminMaterial(dir);
      assert.deepEqual(m, admin, `after ${k} steps: the directory holds the whole certificate`);
      assert.equal(statSync(join(dir, 'key.pem')).mode & 0o777, 0o600);
      assert.equal(statSync(dir).mode & 0o777, 0o700);
    }
  });

  test('written into a new or empty directory only; a refused write changes nothing and leaves nothing behind', () => {
    const fresh = join(base, 'new', 'admin');
    writeAdminMaterial(fresh, admin);
    assert.deepEqual(readAdminMaterial(fresh), admin);
    const empty = join(base, 'empty');
    mkdirSync(empty);
    writeAdminMaterial(empty, admin);
    assert.deepEqual(readAdminMaterial(empty), admin);
    assert.throws(() => writeAdminMaterial(fresh, admin), (e: ShoalError) => e.code === 'ALREADY_EXISTS' && /already holds ca\.pem, cert\.pem, key\.pem/.test(e.message));
    const busy = join(base, 'busy');
    mkdirSync(busy);
    writeFileSync(join(busy, 'notes.txt'), 'mine');
    assert.throws(() => writeAdminMaterial(busy, admin), (e: ShoalError) => e.code === 'ALREADY_EXISTS' && /is not empty/.test(e.message));
    assert.deepEqual(readdirSync(busy), ['notes.txt']);
    assert.deepEqual(readdirSync(base).filter((e) => e.includes('.tmp-')), [], 'no temporary directory left');
  });
});
