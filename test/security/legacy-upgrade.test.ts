// An upgrade from a release that stored the CA key in the clear: the data dirs of a two-manager
// cluster that release made (test/fixtures/legacy-plaintext-ca, see its README) start under this
// code with their cluster and services intact; the leader seals the CA key with a key-encryption
// key it creates and the other manager fetches that key (the cluster object then holds only the
// sealed form: without the key the CA no longer works), and nodes join, a new manager getting it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, cpSync, existsSync, readFileSync, renameSync } from 'node:fs';
import * as net from 'node:net';
import { join } from 'node:path';
import { issuedBy, newKeyAndCsr } from '@shoal/pki';
import { Daemon, ROOT, TestCluster, eventually } from '../helpers/shoald.js';

const FIXTURE = join(ROOT, 'test/fixtures/legacy-plaintext-ca');
/** The addresses the old release's managers were made with (Raft's configuration holds them). */
const FIXTURE_ADDRS = { m1: '127.0.0.1:29381', m2: '127.0.0.1:29382' };

function portFree(addr: string): Promise<boolean> {
  const i = addr.lastIndexOf(':');
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(Number(addr.slice(i + 1)), addr.slice(0, i), () => s.close(() => resolve(true)));
  });
}

describe('upgrade from a release with the CA key in the clear', () => {
  const c = new TestCluster();
  const olds: Daemon[] = [];
  const kekOf = (d: Daemon) => join(d.dataDir, 'certificates', 'kek.json');
  const run = (d: Daemon) => d.start(['run', '--data-dir', d.dataDir]);
  const restartAll = async () => {
    await Promise.all(olds.map((d) => d.kill('SIGTERM')));
    olds.forEach(run);
    await Promise.all(olds.map((d) => d.ready(30_000)));
  };

  before(async () => {
    for (const [name, addr] of Object.entries(FIXTURE_ADDRS)) {
      assert.ok(await portFree(addr), `${addr}, the fixture manager ${name}'s address, must be free for this suite`);
      const d = new Daemon(name, join(c.baseDir, name), addr);
      c.daemons.push(d);
      olds.push(d);
      cpSync(join(FIXTURE, name), d.dataDir, { recursive: true });
      // As the old release left them on disk (git keeps no modes).
      for (const f of ['certificates/node.key', 'certificates/ca.key', 'admin/key.pem', 'node.json']) {
        if (existsSync(join(d.dataDir, f))) chmodSync(join(d.dataDir, f), 0o600);
      }
      assert.ok(!existsSync(kekOf(d)), 'the old release made no key-encryption key');
    }
    assert.ok(existsSync(join(olds[0]!.dataDir, 'certificates', 'ca.key')), "the old release's init kept a plaintext copy of the CA key");
    olds.forEach(run);
    await Promise.all(olds.map((d) => d.ready(30_000)));
  });
  after(() => c.stop());

  test('the old cluster starts with its managers, service and tasks', async () => {
    for (const d of olds) {
      const r = await d.call<{ services: { service: { spec: { name: string; replicas: number } } }[] }>('ListServices');
      assert.deepEqual(r.services.map((s) => [s.service.spec.name, s.service.spec.replicas]), [['legacy-web', 2]], d.name);
      const t = await d.call<{ tasks: unknown[] }>('ListTasks', { service: 'legacy-web' });
      assert.equal(t.tasks.length, 2, d.name);
    }
    const st = await olds[0]!.call<{ members: { addr: string; raftRole: string }[] }>('ClusterStatus');
    assert.deepEqual(st.members.map((m) => m.addr).sort(), Object.values(FIXTURE_ADDRS));
  });

  test('the leader seals the CA key with a key-encryption key it creates; the other manager fetches it; the cluster then needs it', async () => {
    await eventually('the CA key sealed', async () => (olds.some((d) => /sealed the cluster's CA key/.test(d.stderr)) ? true : undefined), 30_000);
    await eventually('both managers hold the same key-encryption key', async () => {
      const [a, b] = olds.map((d) => (existsSync(kekOf(d)) ? readFileSync(kekOf(d), 'utf8') : ''));
      return a && a === b ? true : undefined;
    }, 60_000);
    // The old release's plaintext copy of the CA key (init wrote it on the first manager) is gone
    // once the store holds the key sealed.
    const caKeyFile = (d: Daemon) => join(d.dataDir, 'certificates', 'ca.key');
    await eventually('no plaintext CA key file left', async () => (olds.every((d) => !existsSync(caKeyFile(d))) ? true : undefined), 30_000);
    // Without the key-encryption key, the CA cannot be used: the store no longer holds the key in the clear.
    for (const d of olds) {
      await d.kill('SIGTERM');
      renameSync(kekOf(d), `${kekOf(d)}.away`);
    }
    olds.forEach(run);
    await Promise.all(olds.map((d) => d.ready(30_000)));
    const { csrPem } = await newKeyAndCsr();
    for (const d of olds) await assert.rejects(d.call('IssueAdminCertificate', { csr: csrPem }), /key-encryption key/, d.name);
    for (const d of olds) {
      await d.kill('SIGTERM');
      renameSync(`${kekOf(d)}.away`, kekOf(d));
    }
    await restartAll();
    const admin = await eventually('an admin certificate', () => olds[0]!.call<{ cert: string }>('IssueAdminCertificate', { csr: csrPem }, 5_000), 20_000);
    assert.ok(issuedBy(admin.cert, readFileSync(join(olds[0]!.dataDir, 'certificates', 'ca.crt'), 'utf8')));
  });

  test('a manager and a worker join; the new manager holds the same key-encryption key and sees the service', async () => {
    const [m1] = olds as [Daemon];
    const m3 = await c.join('m3', m1, 'manager');
    const w1 = await c.join('w1', m1, 'worker');
    await m3.ready(30_000);
    await eventually('four ready nodes', async () => {
      const r = await m1.call<{ nodes: { node: { status: { state: string } } }[] }>('ListNodes');
      return r.nodes.length === 4 && r.nodes.every((n) => n.node.status.state === 'ready') ? true : undefined;
    }, 60_000);
    assert.equal(readFileSync(kekOf(m3), 'utf8'), readFileSync(kekOf(m1), 'utf8'));
    assert.ok(!existsSync(kekOf(w1)), 'a worker holds no key-encryption key');
    const r = await m3.call<{ services: { service: { spec: { name: string } } }[] }>('ListServices');
    assert.deepEqual(r.services.map((s) => s.service.spec.name), ['legacy-web']);
  });
});
