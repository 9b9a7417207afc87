import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { createPrivateKey, generateKeyPairSync } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ShoalError, UnaryClientPool, callUnary, getServiceDefinition } from '@shoal/api';
import {
  NodeIdentity,
  caFingerprint,
  createRootCA,
  fetchPinnedCA,
  identityOfPem,
  issueWithNewKey,
  issuedBy,
  loadRootCA,
  managerChannel,
  newKeyAndCsr,
  PeerIdentityCache,
  peerIdentity,
  readMaterial,
  signCsr,
  writeMaterial,
  type PeerIdentity,
  type RootCA,
} from '../src/index.js';

const DAY = 24 * 3600_000;

describe('certificate authority', () => {
  let ca: RootCA;
  before(async () => {
    ca = await createRootCA();
  });

  test("an operator's root CA (shoald init --ca-cert/--ca-key): checked, its key taken in either PEM form", async () => {
    const sec1 = createPrivateKey(ca.keyPem).export({ type: 'sec1', format: 'pem' }) as string;
    const got = loadRootCA(ca.certPem, sec1);
    assert.equal(got.fingerprint, ca.fingerprint);
    assert.match(got.keyPem, /^-----BEGIN PRIVATE KEY-----/);
    // What it signs, the cluster trusts.
    const leaf = await issueWithNewKey(got, { nodeId: 'n1', role: 'worker', clusterId: 'c1' }, DAY);
    assert.ok(issuedBy(leaf.certPem, ca.certPem));
    const bad = (cert: string, key: string, msg: RegExp) =>
      assert.throws(() => loadRootCA(cert, key), (e: ShoalError) => e.code === 'INVALID_ARGUMENT' && msg.test(e.message) && !e.message.includes('\n'));
    const ed = generateKeyPairSync('ed25519').privateKey.export({ type: 'pkcs8', format: 'pem' }) as string;
    bad(ca.certPem, ed, /--ca-key: must be an ECDSA P-256 key/);
    bad(ca.certPem, 'nonsense', /--ca-key: not a PEM private key/);
    bad(ca.certPem, (await createRootCA()).keyPem, /does not belong to the --ca-cert/);
    bad(leaf.certPem, leaf.keyPem, /not a CA certificate/);
    // No longer valid (the root lives 20 years).
    assert.throws(() => loadRootCA(ca.certPem, ca.keyPem, Date.now() + 30 * 365 * DAY), /--ca-cert: not valid now/);
  });

  test('the fingerprint is 50 base-36 characters and names this CA only', async () => {
    assert.match(ca.fingerprint, /^[a-z0-9]{50}$/);
    assert.equal(caFingerprint(ca.certPem), ca.fingerprint);
    const other = await createRootCA();
    assert.notEqual(other.fingerprint, ca.fingerprint);
  });

  test('a signed CSR names the subject the CA chose, not the one in the request', async () => {
    const { csrPem } = await newKeyAndCsr();
    const cert = await signCsr(ca, csrPem, { nodeId: 'n1', role: 'worker', clusterId: 'c1' }, DAY);
    assert.ok(issuedBy(cert, ca.certPem));
    const id = identityOfPem(cert)!;
    assert.deepEqual({ nodeId: id.nodeId, role: id.role, clusterId: id.clusterId }, { nodeId: 'n1', role: 'worker', clusterId: 'c1' });
    assert.ok(Math.abs(id.notAfter - (Date.now() + DAY)) < 5_000);
  });

  test('bad CSRs are refused with a clear error', async () => {
    const subject = { nodeId: 'n1', role: 'worker' as const, clusterId: 'c1' };
    await assert.rejects(signCsr(ca, '', subject, DAY), (e: ShoalError) => e.code === 'INVALID_ARGUMENT' && /required/.test(e.message));
    await assert.rejects(signCsr(ca, 'garbage', subject, DAY), (e: ShoalError) => e.code === 'INVALID_ARGUMENT' && /malformed/.test(e.message));
    await assert.rejects(signCsr(ca, 'x'.repeat(100_000), subject, DAY), (e: ShoalError) => /too large/.test(e.message));
    // A certificate is not a CSR.
    await assert.rejects(signCsr(ca, ca.certPem, subject, DAY), (e: ShoalError) => e.code === 'INVALID_ARGUMENT');
  });

  test('a certificate from another CA is not issued by this one', async () => {
    const other = await createRootCA();
    const { certPem } = await issueWithNewKey(other, { nodeId: 'n1', role: 'manager', clusterId: 'c1' }, DAY);
    assert.ok(issuedBy(certPem, other.certPem));
    assert.ok(!issuedBy(certPem, ca.certPem));
  });

  test('material on disk: keys 0600, and a tampered certificate is refused on load', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pki-'));
    try {
      const m = await issueWithNewKey(ca, { nodeId: 'n1', role: 'manager', clusterId: 'c1' }, DAY);
      writeMaterial(dir, { caPem: ca.certPem, ...m });
      assert.equal(statSync(join(dir, 'certificates', 'node.key')).mode & 0o777, 0o600);
      const id = NodeIdentity.load(dir);
      assert.equal(id.identity.role, 'manager');
      const at = id.renewAt(() => 0.5);
      assert.ok(at > Date.now() && at < id.identity.notAfter);
      const other = await createRootCA();
      writeMaterial(dir, { caPem: other.certPem, ...m });
      assert.throws(() => readMaterial(dir), (e: ShoalError) => e.code === 'CORRUPT_DATA' && /not signed/.test(e.message));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('TLS between nodes (gRPC)', () => {
  let ca: RootCA;
  let server: grpc.Server;
  let addr: string;
  let identity: NodeIdentity;
  const seen: (PeerIdentity | null)[] = [];
  const cached: (PeerIdentity | null)[] = [];
  const cache = new PeerIdentityCache();
  before(async () => {
    ca = await createRootCA();
    const m = await issueWithNewKey(ca, { nodeId: 'm1', role: 'manager', clusterId: 'c1' }, DAY);
    identity = new NodeIdentity(undefined, { caPem: ca.certPem, ...m });
    server = new grpc.Server();
    server.addService(getServiceDefinition('shoal.ca.CA'), {
      Join: (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        seen.push(peerIdentity(call));
        cached.push(cache.get(call));
        cb(null, { nodeId: 'x' });
      },
    });
    const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', identity.serverCredentials(), (e, p) => (e ? rej(e) : res(p))));
    addr = `127.0.0.1:${port}`;
  });
  after(() => server.forceShutdown());

  test('a client with a node certificate is identified; one without is anonymous', async () => {
    const w = await issueWithNewKey(ca, { nodeId: 'w1', role: 'worker', clusterId: 'c1' }, DAY);
    seen.length = 0;
    await callUnary('shoal.ca.CA', addr, 'Join', {}, 5_000, managerChannel({ caPem: ca.certPem, ...w }));
    await callUnary('shoal.ca.CA', addr, 'Join', {}, 5_000, managerChannel({ caPem: ca.certPem }));
    assert.equal(seen[0]?.nodeId, 'w1');
    assert.equal(seen[0]?.role, 'worker');
    assert.equal(seen[1], null);
  });

  test('the identity is read once per connection', async () => {
    const w = await issueWithNewKey(ca, { nodeId: 'w9', role: 'worker', clusterId: 'c1' }, DAY);
    const pool = new UnaryClientPool(30_000, managerChannel({ caPem: ca.certPem, ...w }));
    try {
      cached.length = 0;
      seen.length = 0;
      await pool.call('shoal.ca.CA', addr, 'Join', {}, 5_000);
      await pool.call('shoal.ca.CA', addr, 'Join', {}, 5_000);
      await callUnary('shoal.ca.CA', addr, 'Join', {}, 5_000, managerChannel({ caPem: ca.certPem, ...w }));
      assert.equal(cached[0]?.nodeId, 'w9');
      assert.equal(cached[0], cached[1], 'same connection: the same object');
      assert.notEqual(cached[1], cached[2], 'another connection: read again');
      assert.deepEqual(cached[2], seen[2]);
    } finally {
      pool.close();
    }
  });

  test('a certificate from another CA leaves the client anonymous', async () => {
    const other = await createRootCA();
    const w = await issueWithNewKey(other, { nodeId: 'evil', role: 'manager', clusterId: 'c1' }, DAY);
    seen.length = 0;
    await callUnary('shoal.ca.CA', addr, 'Join', {}, 5_000, managerChannel({ caPem: ca.certPem, ...w }));
    assert.equal(seen[0], null);
  });

  test('an expired certificate leaves the client anonymous', async () => {
    const { csrPem, keyPem } = await newKeyAndCsr();
    const certPem = await signCsr(ca, csrPem, { nodeId: 'old', role: 'manager', clusterId: 'c1' }, 1_000, Date.now() - DAY);
    seen.length = 0;
    await callUnary('shoal.ca.CA', addr, 'Join', {}, 5_000, managerChannel({ caPem: ca.certPem, certPem, keyPem }));
    assert.equal(seen[0], null);
  });

  test('a client pinned to another CA does not talk to this server', async () => {
    const other = await createRootCA();
    await assert.rejects(callUnary('shoal.ca.CA', addr, 'Join', {}, 3_000, managerChannel({ caPem: other.certPem })), (e: ShoalError) => e.code === 'UNAVAILABLE');
  });

  test("a worker's certificate cannot serve as a manager (the manager name is missing)", async () => {
    const w = await issueWithNewKey(ca, { nodeId: 'w2', role: 'worker', clusterId: 'c1' }, DAY);
    const fake = new NodeIdentity(undefined, { caPem: ca.certPem, ...w });
    const s = new grpc.Server();
    s.addService(getServiceDefinition('shoal.ca.CA'), { Join: (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {}) });
    const port = await new Promise<number>((res, rej) => s.bindAsync('127.0.0.1:0', fake.serverCredentials(), (e, p) => (e ? rej(e) : res(p))));
    try {
      await assert.rejects(callUnary('shoal.ca.CA', `127.0.0.1:${port}`, 'Join', {}, 3_000, managerChannel({ caPem: ca.certPem })), (e: ShoalError) => e.code === 'UNAVAILABLE');
    } finally {
      s.forceShutdown();
    }
  });

  test('pinning: the root named by the token is fetched; another digest is refused', async () => {
    assert.equal(caFingerprint(await fetchPinnedCA(addr, ca.fingerprint)), ca.fingerprint);
    const other = await createRootCA();
    await assert.rejects(fetchPinnedCA(addr, other.fingerprint), (e: ShoalError) => e.code === 'PERMISSION_DENIED' && /token/.test(e.message));
    await assert.rejects(fetchPinnedCA('127.0.0.1:1', ca.fingerprint, 2_000), (e: ShoalError) => e.code === 'UNAVAILABLE');
  });

  test('a renewed server certificate is used for new connections', async () => {
    const m = await issueWithNewKey(ca, { nodeId: 'm1', role: 'manager', clusterId: 'c1' }, 2 * DAY);
    identity.replace({ caPem: ca.certPem, ...m });
    const w = await issueWithNewKey(ca, { nodeId: 'w3', role: 'worker', clusterId: 'c1' }, DAY);
    seen.length = 0;
    await callUnary('shoal.ca.CA', addr, 'Join', {}, 5_000, managerChannel({ caPem: ca.certPem, ...w }));
    assert.equal(seen[0]?.nodeId, 'w3');
  });
});
