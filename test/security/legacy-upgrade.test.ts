// An upgrade from a release that stored the CA key in the clear: a data dir that release made
// (test/fixtures/legacy-plaintext-ca, see its README) starts under this code with its cluster and
// services intact; its leader seals the CA key with a key-encryption key it creates (the cluster
// object then holds only the sealed form: without that key the CA no longer works), and nodes join
// it, a new manager getting the key-encryption key.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, readFileSync, renameSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { issuedBy, newKeyAndCsr } from '@shoal/pki';
import { Daemon, ROOT, TestCluster, eventually } from '../helpers/shoald.js';

const FIXTURE = join(ROOT, 'test/fixtures/legacy-plaintext-ca/data');
/** The address the old release's manager was made with (Raft's configuration holds it). */
const FIXTURE_ADDR = '127.0.0.1:29377';

function portFree(addr: string): Promise<boolean> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, host, () => s.close(() => resolve(true)));
  });
}

describe('upgrade from a release with the CA key in the clear', () => {
  const c = new TestCluster();
  let m1: Daemon;
  const kekOf = (d: Daemon) => join(d.dataDir, 'certificates', 'kek.json');

  before(async () => {
    assert.ok(await portFree(FIXTURE_ADDR), `${FIXTURE_ADDR}, the fixture manager's address, must be free for this suite`);
    m1 = new Daemon('m1', join(c.baseDir, 'm1'), FIXTURE_ADDR);
    c.daemons.push(m1);
    cpSync(FIXTURE, m1.dataDir, { recursive: true });
    // As the old release left them on disk (git keeps no modes).
    for (const f of ['certificates/node.key', 'certificates/ca.key', 'admin/key.pem', 'node.json']) chmodSync(join(m1.dataDir, f), 0o600);
    assert.ok(!existsSync(kekOf(m1)), 'the old release made no key-encryption key');
    m1.start(['run', '--data-dir', m1.dataDir]);
    await m1.ready(30_000);
  });
  after(() => c.stop());

  test('the old cluster starts with its service and tasks', async () => {
    const r = await m1.call<{ services: { service: { spec: { name: string; replicas: number } } }[] }>('ListServices');
    assert.deepEqual(r.services.map((s) => [s.service.spec.name, s.service.spec.replicas]), [['legacy-web', 2]]);
    const t = await m1.call<{ tasks: unknown[] }>('ListTasks', { service: 'legacy-web' });
    assert.equal(t.tasks.length, 2);
  });

  test('the leader seals the CA key with a key-encryption key it creates; the cluster then needs that key', async () => {
    await eventually('the CA key sealed', async () => (/sealed the cluster's CA key/.test(m1.stderr) ? true : undefined), 30_000);
    assert.ok(existsSync(kekOf(m1)));
    // Without the key-encryption key, the CA cannot be used: the store no longer holds the key in the clear.
    await m1.kill('SIGTERM');
    renameSync(kekOf(m1), `${kekOf(m1)}.away`);
    m1.start(['run', '--data-dir', m1.dataDir]);
    await m1.ready(30_000);
    const { csrPem } = await newKeyAndCsr();
    await assert.rejects(m1.call('IssueAdminCertificate', { csr: csrPem }), /holds no key-encryption key/);
    await m1.kill('SIGTERM');
    renameSync(`${kekOf(m1)}.away`, kekOf(m1));
    m1.start(['run', '--data-dir', m1.dataDir]);
    await m1.ready(30_000);
    const admin = await m1.call<{ cert: string }>('IssueAdminCertificate', { csr: csrPem });
    assert.ok(issuedBy(admin.cert, readFileSync(join(m1.dataDir, 'certificates', 'ca.crt'), 'utf8')));
  });

  test('a manager and a worker join; the new manager holds the same key-encryption key and sees the service', async () => {
    const m2 = await c.join('m2', m1, 'manager');
    const w1 = await c.join('w1', m1, 'worker');
    await m2.ready(30_000);
    await eventually('three ready nodes', async () => {
      const r = await m1.call<{ nodes: { node: { status: { state: string } } }[] }>('ListNodes');
      return r.nodes.length === 3 && r.nodes.every((n) => n.node.status.state === 'ready') ? true : undefined;
    }, 60_000);
    assert.equal(readFileSync(kekOf(m2), 'utf8'), readFileSync(kekOf(m1), 'utf8'));
    assert.ok(!existsSync(kekOf(w1)), 'a worker holds no key-encryption key');
    const r = await m2.call<{ services: { service: { spec: { name: string } } }[] }>('ListServices');
    assert.deepEqual(r.services.map((s) => s.service.spec.name), ['legacy-web']);
  });
});
