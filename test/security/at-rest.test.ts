// Secrets at rest, on real shoald processes: the CA's private key never lies in the clear in any
// manager's Raft files (the store holds it sealed with the cluster's key-encryption key, which
// managers keep apart from Raft and workers never hold), a promoted worker that becomes leader
// can still sign, and the data directory, its subdirectories and the control socket are the
// owner's only, even when they existed with wider modes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createPrivateKey } from 'node:crypto';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { type RootCA, issuedBy, newKeyAndCsr, signCsr } from '@shoal/pki';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';

const mode = (p: string) => statSync(p).mode & 0o777;

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...filesUnder(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** The byte strings that would give `pem`'s key (or certificate) away: its DER, and each base64 line. */
function needles(pem: string): Buffer[] {
  const lines = pem.split('\n').filter((l) => l && !l.startsWith('-----'));
  const der = Buffer.from(lines.join(''), 'base64');
  return [der, ...lines.filter((l) => l.length >= 40).map((l) => Buffer.from(l))];
}

/** Which of `needles` appear in some file under `dir` (as "file: needle #i"). */
function found(dir: string, ns: Buffer[]): string[] {
  const hits: string[] = [];
  for (const f of filesUnder(dir)) {
    const data = readFileSync(f);
    ns.forEach((n, i) => {
      if (data.includes(n)) hits.push(`${f}: #${i}`);
    });
  }
  return hits;
}

describe('secrets at rest', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let m2: Daemon;
  let w1: Daemon;
  let w2: Daemon;
  const ids: Record<string, string> = {};
  let ca: RootCA & { flags: string[] };

  const privateDirs = (d: Daemon) => [d.dataDir, ...['certificates', 'raft', 'admin'].map((s) => join(d.dataDir, s)).filter(existsSync)];

  function assertManagerModes(d: Daemon): void {
    for (const dir of privateDirs(d)) assert.equal(mode(dir), 0o700, `${dir} is 0700`);
    assert.ok(existsSync(join(d.dataDir, 'raft')), 'a manager has its raft directory');
    assert.equal(mode(d.socket), 0o600, `${d.name}'s control.sock is 0600`);
    assert.equal(mode(join(d.dataDir, 'certificates', 'node.key')), 0o600);
    assert.equal(mode(join(d.dataDir, 'certificates', 'kek.json')), 0o600);
  }

  async function listNodes(d: Daemon) {
    const r = await d.call<{ nodes: { node: { id: string; description: { hostname: string }; status: { state: string } } }[] }>('ListNodes');
    return r.nodes.map((n) => n.node);
  }

  before(async () => {
    // m1's data directory exists already, opened up (a volume made by hand).
    m1 = await c.newDaemon('m1');
    mkdirSync(m1.dataDir, { recursive: true });
    chmodSync(m1.dataDir, 0o755);
    // The test's own CA, so it knows the key it searches for: shoald keeps no copy on disk.
    ca = await c.rootCA();
    m1.start(['init', '--data-dir', m1.dataDir, '--listen-addr', m1.addr, '--hostname', 'm1', ...ca.flags]);
    await m1.ready();
    m2 = await c.join('m2', m1, 'manager');
    w1 = await c.join('w1', m1, 'worker');
    w2 = await c.join('w2', m1, 'worker');
    await eventually('four ready nodes, two voters', async () => {
      const ns = await listNodes(m1);
      for (const n of ns) ids[n.description.hostname] = n.id;
      const st = await m1.call<{ members: { raftRole: string }[] }>('ClusterStatus');
      return ns.length === 4 && ns.every((n) => n.status.state === 'ready') && st.members.length === 2 && st.members.every((m) => m.raftRole !== 'learner')
        ? true
        : undefined;
    }, 60_000);
  });
  after(() => c.stop());

  test('modes after init and join: directories 0700, control.sock and keys 0600; workers hold no key-encryption key', () => {
    assertManagerModes(m1);
    assertManagerModes(m2);
    for (const w of [w1, w2]) {
      assert.equal(mode(w.dataDir), 0o700);
      assert.equal(mode(join(w.dataDir, 'certificates')), 0o700);
      assert.equal(mode(w.socket), 0o600, `${w.name}'s control.sock is 0600`);
      assert.ok(!existsSync(join(w.dataDir, 'certificates', 'kek.json')), `${w.name} holds no key-encryption key`);
    }
  });

  test("the CA key is in no file under any manager's data directory (nor is the key-encryption key under raft)", () => {
    const caKeyPem = ca.keyPem;
    const caCertPem = readFileSync(join(m1.dataDir, 'certificates', 'ca.crt'), 'utf8');
    assert.equal(caCertPem.trim(), ca.certPem.trim(), 'the cluster runs on the CA given to init');
    const jwk = createPrivateKey(caKeyPem).export({ format: 'jwk' });
    const caKey = [...needles(caKeyPem), Buffer.from(jwk.d!, 'base64url'), Buffer.from(jwk.d!)];
    for (const d of [m1, m2]) {
      const raft = join(d.dataDir, 'raft');
      // The search reads the files the cluster object lies in: the CA certificate, public and
      // stored in the clear beside the key, is found there.
      assert.ok(found(raft, needles(caCertPem)).length > 0, `${d.name}: the cluster object is in the searched files`);
      assert.deepEqual(found(raft, caKey), [], `${d.name}: no CA key bytes under ${raft}`);
      assert.deepEqual(found(d.dataDir, caKey), [], `${d.name}: no CA key bytes under ${d.dataDir}`);
    }
    const kek = JSON.parse(readFileSync(join(m1.dataDir, 'certificates', 'kek.json'), 'utf8')) as { key: string };
    for (const d of [m1, m2]) {
      assert.deepEqual(found(join(d.dataDir, 'raft'), [Buffer.from(kek.key, 'base64'), Buffer.from(kek.key)]), [], `${d.name}: no key-encryption key bytes`);
    }
  });

  test('a restart makes opened-up directories private again', async () => {
    await m1.kill('SIGTERM');
    for (const dir of privateDirs(m1)) chmodSync(dir, 0o755);
    m1.start(['run', '--data-dir', m1.dataDir]);
    await m1.ready(30_000);
    assertManagerModes(m1);
  });

  test('a manager that lost its key-encryption key gets it back when it restarts', async () => {
    const kekFile = join(m2.dataDir, 'certificates', 'kek.json');
    const want = readFileSync(join(m1.dataDir, 'certificates', 'kek.json'), 'utf8');
    await m2.kill('SIGTERM');
    rmSync(kekFile);
    m2.start(['run', '--data-dir', m2.dataDir]);
    await m2.ready(30_000);
    await eventually('m2 holds the key-encryption key again', async () => existsSync(kekFile) && readFileSync(kekFile, 'utf8') === want, 60_000);
    assert.equal(mode(kekFile), 0o600);
  });

  test('promoted workers get the key-encryption key; a demoted manager forgets it', async () => {
    await m1.call('PromoteNode', { node: 'w1' });
    await m1.call('PromoteNode', { node: 'w2' });
    await eventually('four voters', async () => {
      const st = await m1.call<{ members: { raftRole: string }[] }>('ClusterStatus');
      return st.members.length === 4 && st.members.every((m) => m.raftRole === 'leader' || m.raftRole === 'follower') ? true : undefined;
    }, 60_000);
    for (const w of [w1, w2]) {
      await eventually(`${w.name} serves the control API`, () => w.call('ListNodes').then(() => true), 30_000);
      assertManagerModes(w);
    }
    // m2 steps down (retried: a leader demoting itself hands leadership over first).
    await eventually('m2 demoted', () => m1.call('DemoteNode', { node: 'm2' }).then(() => true), 30_000);
    await eventually('m2 without the key-encryption key', async () => !existsSync(join(m2.dataDir, 'certificates', 'kek.json')), 30_000);
  });

  test('a promoted worker, once leader, signs certificates with the sealed CA key', async () => {
    await m1.kill();
    // The voters left are w1 and w2, both promoted workers: one of them leads.
    const leader = await eventually('a leader among the promoted workers', async () => {
      for (const d of [w1, w2]) {
        const st = await d.call<{ leader: string }>('ClusterStatus', {}, 3_000).catch(() => undefined);
        if (st && st.leader === ids[d.name]) return d;
      }
      return undefined;
    }, 30_000);
    const caPem = readFileSync(join(leader.dataDir, 'certificates', 'ca.crt'), 'utf8');
    // An admin certificate, signed there.
    const { csrPem } = await newKeyAndCsr();
    const admin = await eventually('an admin certificate', () => leader.call<{ cert: string }>('IssueAdminCertificate', { csr: csrPem }, 5_000), 20_000);
    assert.ok(issuedBy(admin.cert, caPem), 'signed by the cluster CA');
    // A node joining through it.
    const w3 = await c.join('w3', leader, 'worker');
    await eventually('w3 joined and ready', async () => {
      const ns = await listNodes(leader);
      return ns.some((n) => n.description.hostname === 'w3' && n.status.state === 'ready') ? true : undefined;
    }, 30_000);
    assert.ok(issuedBy(readFileSync(join(w3.dataDir, 'certificates', 'node.crt'), 'utf8'), caPem));
    // The promoted managers' Raft files hold no CA key either.
    for (const d of [w1, w2]) assert.deepEqual(found(d.dataDir, needles(ca.keyPem)), [], d.name);
  });
});

describe('an init that failed', () => {
  const c = new TestCluster();
  after(() => c.stop());

  test('a root CA of its own that does not fit: one line, exit 1, nothing written', async () => {
    const ca = await c.rootCA();
    const other = await c.rootCA();
    const leaf = join(c.baseDir, 'leaf.crt');
    const { csrPem } = await newKeyAndCsr();
    writeFileSync(leaf, await signCsr(ca, csrPem, { nodeId: 'n1', role: 'manager', clusterId: 'c1' }, 3600_000));
    const cases: [string[], RegExp][] = [
      [[ca.flags[0]!, ca.flags[1]!], /--ca-cert and --ca-key go together/],
      [[ca.flags[0]!, ca.flags[1]!, '--ca-key', join(c.baseDir, 'missing.key')], /cannot read --ca-key .*missing\.key: ENOENT/],
      [[...ca.flags.slice(0, 2), '--ca-key', other.flags[3]!], /--ca-key: does not belong to the --ca-cert certificate/],
      [['--ca-cert', leaf, '--ca-key', ca.flags[3]!], /--ca-cert: not a CA certificate/],
      [['--ca-cert', ca.flags[3]!, '--ca-key', ca.flags[3]!], /--ca-cert: not a PEM certificate/],
    ];
    for (const [flags, msg] of cases) {
      const d = await c.newDaemon('bad-ca');
      d.start(['init', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--hostname', 'm1', ...flags]);
      assert.equal(await d.exited(), 1, flags.join(' '));
      const lines = d.stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, d.stderr);
      assert.match(lines[0]!, msg);
      assert.ok(!existsSync(d.dataDir), `${flags.join(' ')}: nothing written`);
    }
  });

  test('takes away what it made (credentials, admin directory, Raft data): the next init works', async () => {
    const d = await c.newDaemon('m1');
    const [host, port] = [d.addr.slice(0, d.addr.lastIndexOf(':')), Number(d.addr.slice(d.addr.lastIndexOf(':') + 1))];
    // The address is taken: the manager cannot listen, after the credentials were written.
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(port, host, r));
    d.start(['init', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--hostname', 'm1']);
    assert.notEqual(await d.exited(), 0);
    for (const sub of ['certificates', 'admin', 'raft']) assert.ok(!existsSync(join(d.dataDir, sub)), `the failed init took ${sub} away`);
    await new Promise((r) => blocker.close(r));
    d.start(['init', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--hostname', 'm1']);
    await d.ready(30_000);
    // The admin certificate is the new cluster's.
    assert.ok(issuedBy(readFileSync(join(d.dataDir, 'admin', 'cert.pem'), 'utf8'), readFileSync(join(d.dataDir, 'certificates', 'ca.crt'), 'utf8')));
  });
});
