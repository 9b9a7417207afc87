// Mutual TLS and roles against hostile clients, on real shoald processes: every refused call
// fails with a clear error and changes nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { connect as tcpConnect } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import * as http2 from 'node:http2';
import { join } from 'node:path';
import { ShoalError, callUnary, type ServiceName } from '@shoal/api';
import {
  caFingerprint,
  createRootCA,
  identityOfPem,
  issueWithNewKey,
  managerChannel,
  newKeyAndCsr,
  signCsr,
  type RootCA,
  type TlsMaterial,
} from '@shoal/pki';
import { H2_HEADER_ERROR, NODE_SERVER_NAME, encodeForwardH2 } from '@shoal/mesh';
import { ROOT, TestCluster, type Daemon, eventually } from '../helpers/shoald.js';

interface NodeView {
  node: { id: string; description: { hostname: string }; status: { state: string; meshAddr?: string }; spec: { role: string } };
}

function material(d: Daemon): TlsMaterial {
  const f = (n: string) => readFileSync(join(d.dataDir, 'certificates', n), 'utf8');
  return { caPem: f('ca.crt'), certPem: f('node.crt'), keyPem: f('node.key') };
}

function adminMaterial(d: Daemon): TlsMaterial {
  const f = (n: string) => readFileSync(join(d.dataDir, 'admin', n), 'utf8');
  return { caPem: f('ca.pem'), certPem: f('cert.pem'), keyPem: f('key.pem') };
}

/** Expects a call to fail with `code` and a message matching `re`. */
async function refused(p: Promise<unknown>, code: string, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: ShoalError) => {
    assert.equal(e.code, code, `${e.code}: ${e.message}`);
    assert.match(e.message, re);
    assert.ok(!e.message.includes('\n'), 'one line');
    return true;
  });
}

/** The routing mesh port of the removed-node test (a service on w1 publishes it). */
const MESH_PORT = 29480;

/** A node's HTTP/2 session to another node's forwarding port (mutual TLS with `m`). */
function nodeSession(meshAddr: string, m: TlsMaterial): http2.ClientHttp2Session {
  const colon = meshAddr.lastIndexOf(':');
  const session = http2.connect(`https://${meshAddr}`, {
    createConnection: () =>
      tlsConnect({
        host: meshAddr.slice(0, colon),
        port: Number(meshAddr.slice(colon + 1)),
        servername: NODE_SERVER_NAME,
        ca: m.caPem,
        cert: m.certPem,
        key: m.keyPem,
        ALPNProtocols: ['h2'],
      }),
  });
  session.on('error', () => {});
  return session;
}

/**
 * One forwarded connection on `session`, as a node opens it (a CONNECT stream): the status (0: the
 * stream closed unanswered), the refusal's reason, and the task's answer to a GET when open.
 */
function forwardOn(session: http2.ClientHttp2Session, taskId: string): Promise<{ status: number; reason: string; body: string }> {
  return new Promise((resolve, reject) => {
    const st = session.request(encodeForwardH2({ taskId, targetPort: 8080, proxyProtocol: false }), { endStream: false });
    let status = 0;
    let reason = '';
    let body = '';
    const timer = setTimeout(() => reject(new Error(`no end of the forwarded connection (status ${status}, ${body.length} bytes)`)), 5_000);
    st.on('error', () => {});
    st.on('response', (h) => {
      status = Number(h[':status']);
      reason = String(h[H2_HEADER_ERROR] ?? '');
      // Our side ends too, so that the stream closes.
      st.end(status === 200 ? 'GET / HTTP/1.0\r\n\r\n' : undefined);
    });
    st.setEncoding('utf8');
    st.on('data', (c: string) => (body += c));
    st.on('close', () => {
      clearTimeout(timer);
      resolve({ status, reason: status === 0 ? `closed, code ${st.rstCode}` : reason, body: body.split('\r\n\r\n').slice(1).join('').trim() });
    });
  });
}

/** One forwarded connection on a session of its own. */
async function forwardOnce(meshAddr: string, taskId: string, m: TlsMaterial): Promise<{ status: number; reason: string; body: string }> {
  const session = nodeSession(meshAddr, m);
  try {
    return await forwardOn(session, taskId);
  } finally {
    session.destroy();
  }
}

const call = (addr: string, service: ServiceName, method: string, req: unknown, m?: Partial<TlsMaterial> & { caPem: string }) =>
  callUnary(service, addr, method, req, 5_000, m ? managerChannel(m) : undefined);

describe('mutual TLS: who may call what', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let w1: Daemon;
  let w2: Daemon;
  const ids: Record<string, string> = {};
  let caPem: string;
  let ca: RootCA & { flags: string[] };

  const nodes = async () => (await m1.call<{ nodes: NodeView[] }>('ListNodes')).nodes;

  before(async () => {
    ca = await c.rootCA();
    [m1] = await c.managers(1, ca.flags);
    w1 = await c.join('w1', m1, 'worker');
    w2 = await c.join('w2', m1, 'worker');
    await eventually('three ready nodes', async () => {
      const ns = await nodes();
      for (const n of ns) ids[n.node.description.hostname] = n.node.id;
      return ns.length === 3 && ns.every((n) => n.node.status.state === 'ready') ? true : undefined;
    });
    caPem = material(m1).caPem;
  });
  after(() => c.stop());

  test('certificates: each node has its own, naming its id and role; keys are private', () => {
    for (const [d, role] of [[m1, 'manager'], [w1, 'worker'], [w2, 'worker']] as const) {
      const id = identityOfPem(material(d).certPem)!;
      assert.equal(id.nodeId, ids[d.name]);
      assert.equal(id.role, role);
      const mode = spawnSync('stat', ['-c', '%a', join(d.dataDir, 'certificates', 'node.key')], { encoding: 'utf8' }).stdout.trim();
      assert.equal(mode, '600');
    }
    // The cluster runs on the CA given to init; no node keeps its key in a file (the managers'
    // store holds it sealed).
    assert.equal(caPem.trim(), ca.certPem.trim());
    for (const d of [m1, w1, w2]) assert.ok(!existsSync(join(d.dataDir, 'certificates', 'ca.key')), d.name);
    // The join token names the CA the nodes trust.
    assert.equal(identityOfPem(adminMaterial(m1).certPem)?.role, 'admin');
  });

  test('no certificate: only Join is open; everything else is UNAUTHENTICATED', async () => {
    const anon = { caPem };
    const re = /needs a certificate of this cluster/;
    await refused(call(m1.addr, 'shoal.control.Control', 'ListNodes', {}, anon), 'UNAUTHENTICATED', re);
    await refused(call(m1.addr, 'shoal.dispatcher.Dispatcher', 'Session', { nodeId: ids.w1 }, anon), 'UNAUTHENTICATED', re);
    await refused(call(m1.addr, 'shoal.ca.CA', 'RenewCertificate', { csr: (await newKeyAndCsr()).csrPem }, anon), 'UNAUTHENTICATED', re);
    await refused(call(m1.addr, 'shoal.raft.Raft', 'Status', {}, anon), 'UNAUTHENTICATED', re);
    // Join itself wants a valid token.
    await refused(call(m1.addr, 'shoal.ca.CA', 'Join', { token: 'nope' }, anon), 'INVALID_ARGUMENT', /malformed join token/);
  });

  test('plaintext: a client without TLS gets no answer at all', async () => {
    await refused(call(m1.addr, 'shoal.control.Control', 'ListNodes', {}), 'UNAVAILABLE', /./);
  });

  test("another cluster's CA: its certificates count for nothing, whatever role they claim", async () => {
    const other = await createRootCA();
    const forged = await issueWithNewKey(other, { nodeId: ids.w1, role: 'admin', clusterId: 'whatever' }, 3600_000);
    await refused(call(m1.addr, 'shoal.control.Control', 'ListNodes', {}, { caPem, ...forged }), 'UNAUTHENTICATED', /needs a certificate of this cluster/);
    // And a client that trusts the other CA does not talk to this cluster's managers.
    await refused(call(m1.addr, 'shoal.control.Control', 'ListNodes', {}, { caPem: other.certPem, ...forged }), 'UNAVAILABLE', /./);
  });

  test('an expired certificate of this CA is refused', async () => {
    const { csrPem, keyPem } = await newKeyAndCsr();
    const certPem = await signCsr(ca, csrPem, { nodeId: ids.m1, role: 'manager', clusterId: identityOfPem(material(m1).certPem)!.clusterId }, 1_000, Date.now() - 3600_000);
    await refused(call(m1.addr, 'shoal.control.Control', 'ListNodes', {}, { caPem, certPem, keyPem }), 'UNAUTHENTICATED', /expired/);
  });

  test('a worker certificate: no control API, no Raft, no other node\'s assignments or tasks', async () => {
    const w = material(w1);
    await refused(call(m1.addr, 'shoal.control.Control', 'ListNodes', {}, w), 'PERMISSION_DENIED', /needs an admin certificate; a worker certificate may not use it/);
    await refused(call(m1.addr, 'shoal.control.Control', 'RemoveNode', { node: 'w2', force: true }, w), 'PERMISSION_DENIED', /admin certificate/);
    await refused(call(m1.addr, 'shoal.raft.Raft', 'Status', {}, w), 'PERMISSION_DENIED', /Raft is for managers/);
    await refused(call(m1.addr, 'shoal.raft.Raft', 'Propose', { from: ids.w1 }, w), 'PERMISSION_DENIED', /Raft is for managers/);
    const other = ids.w2;
    const re = new RegExp(`node ${ids.w1} may act only for itself, not for node ${other}`);
    await refused(call(m1.addr, 'shoal.dispatcher.Dispatcher', 'Assignments', { nodeId: other, sessionId: 'x' }, w), 'PERMISSION_DENIED', re);
    await refused(call(m1.addr, 'shoal.dispatcher.Dispatcher', 'UpdateTaskStatus', { nodeId: other, sessionId: 'x', updates: [] }, w), 'PERMISSION_DENIED', re);
    await refused(call(m1.addr, 'shoal.dispatcher.Dispatcher', 'Heartbeat', { nodeId: other, sessionId: 'x' }, w), 'PERMISSION_DENIED', re);
    await refused(call(m1.addr, 'shoal.dispatcher.Dispatcher', 'Session', { nodeId: '' }, w), 'PERMISSION_DENIED', /not for node \(empty\)/);
    // Nothing changed: three nodes, all ready, w2 still a worker.
    const ns = await nodes();
    assert.equal(ns.length, 3);
    assert.ok(ns.every((n) => n.node.status.state === 'ready'));
  });

  test('Raft: a manager certificate of a node that is not a Raft member is refused', async () => {
    // Signed by the real CA (as a manager demoted long ago, or a forged id, would hold).
    const clusterId = identityOfPem(material(m1).certPem)!.clusterId;
    const stranger = await issueWithNewKey(ca, { nodeId: 'notamember000000000000000', role: 'manager', clusterId }, 3600_000);
    await refused(call(m1.addr, 'shoal.raft.Raft', 'Status', {}, { caPem, ...stranger }), 'PERMISSION_DENIED', /not a Raft member of this cluster/);
    // The control API checks the store: it is no manager node there either.
    await refused(call(m1.addr, 'shoal.control.Control', 'ListNodes', {}, { caPem, ...stranger }), 'PERMISSION_DENIED', /is not \(or no longer\) a manager of this cluster/);
  });

  test('a malformed protobuf message: refused, nothing changes', async () => {
    const a = adminMaterial(m1);
    const session = http2.connect(`https://${m1.addr}`, { ca: a.caPem, cert: a.certPem, key: a.keyPem, servername: 'shoal-manager' });
    try {
      const status = await new Promise<string>((resolve, reject) => {
        const req = session.request({ ':method': 'POST', ':path': '/shoal.control.Control/CreateService', 'content-type': 'application/grpc', te: 'trailers' });
        // A gRPC frame whose body is not a valid message (a field with a truncated length).
        const body = Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x0f, 0x01]);
        const frame = Buffer.concat([Buffer.from([0, 0, 0, 0, body.length]), body]);
        let st = '';
        req.on('response', (h) => (st = String(h['grpc-status'] ?? st)));
        req.on('trailers', (h) => (st = String(h['grpc-status'] ?? st)));
        req.on('error', reject);
        req.on('close', () => resolve(st));
        req.resume();
        req.end(frame);
      });
      assert.notEqual(status, '0', 'refused');
    } finally {
      session.close();
    }
    const r = (await call(m1.addr, 'shoal.control.Control', 'ListServices', {}, a)) as { services: unknown[] };
    assert.equal(r.services.length, 0);
  });

  test('the admin certificate opens the control API over TCP, and nothing else', async () => {
    const a = adminMaterial(m1);
    const r = (await call(m1.addr, 'shoal.control.Control', 'ListNodes', {}, a)) as { nodes: unknown[] };
    assert.equal(r.nodes.length, 3);
    await refused(call(m1.addr, 'shoal.raft.Raft', 'Status', {}, a), 'PERMISSION_DENIED', /Raft is for managers, not admin certificates/);
    await refused(call(m1.addr, 'shoal.dispatcher.Dispatcher', 'Session', { nodeId: ids.w1 }, a), 'PERMISSION_DENIED', /not a node's/);
  });

  test('joining: a forged token, a token for another CA, a rotated token are refused; nothing is stored', async () => {
    const { token } = await m1.call<{ token: string }>('GetJoinToken', { role: 'worker' });
    const fp = caFingerprint(caPem);
    const other = await createRootCA();
    const tryJoin = async (name: string, tok: string) => {
      const d = await c.newDaemon(name);
      d.start(['join', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--join-addr', m1.addr, '--token', tok, '--hostname', name]);
      const code = await d.exited();
      return { code, stderr: d.stderr.trim() };
    };
    const forged = await tryJoin('forged', `SWMTKN-1-${fp}-${'a'.repeat(25)}`);
    assert.notEqual(forged.code, 0);
    assert.match(forged.stderr, /invalid join token/);
    const wrongCa = await tryJoin('wrongca', `SWMTKN-1-${other.fingerprint}-${token.split('-')[3]}`);
    assert.notEqual(wrongCa.code, 0);
    assert.match(wrongCa.stderr, /does not belong to the cluster this token is for/);
    await m1.call('GetJoinToken', { role: 'worker', rotate: true });
    const rotated = await tryJoin('rotated', token);
    assert.notEqual(rotated.code, 0);
    assert.match(rotated.stderr, /invalid join token \(it may have been rotated\)/);
    const ns = await nodes();
    assert.deepEqual(ns.map((n) => n.node.description.hostname).sort(), ['m1', 'w1', 'w2']);
    // Joined nodes are untouched by the rotation.
    assert.ok(ns.every((n) => n.node.status.state === 'ready'));
  });

  test('malformed and oversized input on the TCP port: refused, the manager carries on', async () => {
    const [host, port] = [m1.addr.split(':')[0], Number(m1.addr.split(':')[1])];
    // Garbage instead of a TLS handshake.
    await new Promise<void>((resolve) => {
      const s = tcpConnect(port, host, () => s.end(Buffer.alloc(4096, 0x41)));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
    // A TLS session that sends garbage instead of HTTP/2.
    await new Promise<void>((resolve) => {
      const s = tlsConnect({ host, port, ca: caPem, servername: 'shoal-manager', ALPNProtocols: ['h2'] }, () => s.end(Buffer.alloc(4096, 0x42)));
      s.on('error', () => resolve());
      s.on('close', () => resolve());
      s.resume();
    });
    const a = adminMaterial(m1);
    // Over the message limit.
    await refused(
      call(m1.addr, 'shoal.control.Control', 'CreateService', { spec: { name: 'big', image: 'x', env: ['A=' + 'x'.repeat(8 << 20)] } }, a),
      'RESOURCE_EXHAUSTED',
      /./,
    );
    // A CSR that is not one.
    await refused(call(m1.addr, 'shoal.ca.CA', 'RenewCertificate', { csr: 'not a csr' }, material(w1)), 'INVALID_ARGUMENT', /malformed certificate signing request/);
    const r = (await call(m1.addr, 'shoal.control.Control', 'ListServices', {}, a)) as { services: unknown[] };
    assert.equal(r.services.length, 0);
    assert.equal((await nodes()).length, 3);
  });

  test('a removed node is refused at once, although its certificate is in date', async () => {
    const w = material(w2);
    // Mesh forwarding: w2's certificate opens a connection to a task on w1 through w1's forwarding port.
    await m1.call('CreateService', {
      spec: {
        name: 'fwd',
        image: 'shoal/busybox:latest',
        args: ['sh', '-c', 'echo fwd > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'],
        replicas: 1,
        stopGracePeriodMs: 500,
        constraints: ['node.hostname==w1'],
        ports: [{ protocol: 'tcp', targetPort: 8080, publishedPort: MESH_PORT, publishMode: 'ingress' }],
      },
    });
    const taskId = await eventually('fwd running on w1', async () => {
      const ts = (await m1.call<{ tasks: { task: { id: string; nodeId: string; status: { state: string } } }[] }>('ListTasks', { service: 'fwd' })).tasks;
      return ts.find((t) => t.task.nodeId === ids.w1 && t.task.status.state === 'running')?.task.id;
    }, 60_000);
    const meshAddr = (await nodes()).find((n) => n.node.id === ids.w1)!.node.status.meshAddr;
    assert.ok(meshAddr, 'w1 reports its forwarding address');
    const before = await eventually('w2 forwards through w1', async () => {
      const r = await forwardOnce(meshAddr, taskId, w);
      return r.status === 200 ? r : undefined;
    });
    assert.equal(before.body, 'fwd');
    // A session w2 opened before its removal stays open; its next stream is judged again.
    const kept = nodeSession(meshAddr, w);
    assert.equal((await forwardOn(kept, taskId)).status, 200);
    await w2.kill();
    await m1.call('RemoveNode', { node: 'w2', force: true });
    await refused(call(m1.addr, 'shoal.dispatcher.Dispatcher', 'Session', { nodeId: ids.w2 }, w), 'UNAUTHENTICATED', /was removed from the cluster/);
    await refused(call(m1.addr, 'shoal.ca.CA', 'RenewCertificate', { csr: (await newKeyAndCsr()).csrPem }, w), 'UNAUTHENTICATED', /was removed/);
    // w1 learns of the removal from its mesh view: a new connection with w2's certificate is cut
    // right after the handshake, a stream on the session opened before is answered 403.
    const fresh = await eventually('w1 refuses w2 on its forwarding port', async () => {
      const r = await forwardOnce(meshAddr, taskId, w);
      return r.status !== 200 ? r : undefined;
    });
    assert.equal(fresh.status, 0, JSON.stringify(fresh));
    const onKept = await forwardOn(kept, taskId);
    kept.destroy();
    assert.deepEqual([onKept.status, onKept.reason, onKept.body], [403, 'peer refused', '']);
    // Another node's certificate is still served.
    assert.equal((await forwardOnce(meshAddr, taskId, material(m1))).body, 'fwd');
    // Restarted, it does not come back.
    w2.start(['run', '--data-dir', w2.dataDir]);
    await new Promise((r) => setTimeout(r, 3_000));
    assert.deepEqual((await nodes()).map((n) => n.node.description.hostname).sort(), ['m1', 'w1']);
  });
});

describe('certificate renewal and roles', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let w1: Daemon;

  before(async () => {
    m1 = await c.init('m1', ['--cert-expiry', '20s']);
    w1 = await c.join('w1', m1, 'worker');
    await eventually('w1 ready', async () => {
      const r = await m1.call<{ nodes: NodeView[] }>('ListNodes');
      return r.nodes.length === 2 && r.nodes.every((n) => n.node.status.state === 'ready') ? true : undefined;
    });
  });
  after(() => c.stop());

  test('certificates renew before they expire, without interrupting the cluster', async () => {
    const first = { m1: material(m1).certPem, w1: material(w1).certPem };
    const life = identityOfPem(first.w1)!.notAfter - Date.now();
    assert.ok(life < 21_000, 'the cluster setting applies to joined nodes');
    await eventually(
      'both certificates renewed',
      async () => (material(m1).certPem !== first.m1 && material(w1).certPem !== first.w1 ? true : undefined),
      30_000,
    );
    // Past the first certificates' expiry: still one cluster, both nodes ready, the TCP control API answers.
    await new Promise((r) => setTimeout(r, Math.max(0, identityOfPem(first.w1)!.notAfter - Date.now() + 2_000)));
    const ns = (await callUnary('shoal.control.Control', m1.addr, 'ListNodes', {}, 5_000, managerChannel(adminMaterial(m1)))) as { nodes: NodeView[] };
    assert.equal(ns.nodes.length, 2);
    assert.ok(ns.nodes.every((n) => n.node.status.state === 'ready'), JSON.stringify(ns.nodes.map((n) => n.node.status)));
    assert.ok(identityOfPem(material(w1).certPem)!.notAfter > Date.now());
  });

  test('shoal swarm update --cert-expiry: the cluster setting, with bad values refused', async () => {
    const cli = join(ROOT, 'packages/cli/dist/src/bin.js');
    const shoal = (...args: string[]) => spawnSync(process.execPath, [cli, '--host', `unix://${m1.socket}`, ...args], { encoding: 'utf8' });
    const bad = shoal('swarm', 'update', '--cert-expiry', '5s');
    assert.equal(bad.status, 1);
    assert.match(bad.stderr.trim(), /^Error: --cert-expiry must be between 10s and 87600h0m0s, not 5s$/);
    const none = shoal('swarm', 'update');
    assert.equal(none.status, 2);
    assert.match(none.stderr, /nothing to update/);
    const okRun = shoal('swarm', 'update', '--cert-expiry', '25s');
    assert.equal(okRun.status, 0, okRun.stderr);
    assert.equal(okRun.stdout.trim(), 'Swarm updated.');
    const r = await m1.call<{ certExpiryMs: string | number }>('UpdateCluster', {});
    assert.equal(Number(r.certExpiryMs), 25_000);
  });

  test('a promoted worker gets a manager certificate and joins Raft', async () => {
    await m1.call('PromoteNode', { node: 'w1' });
    await eventually('w1 holds a manager certificate', async () => (identityOfPem(material(w1).certPem)?.role === 'manager' ? true : undefined), 30_000);
    await eventually(
      'w1 a Raft voter',
      async () => {
        const s = await m1.call<{ members: { raftRole: string }[] }>('ClusterStatus');
        return s.members.length === 2 && s.members.every((m) => m.raftRole === 'leader' || m.raftRole === 'follower') ? true : undefined;
      },
      60_000,
    );
    await m1.call('DemoteNode', { node: 'w1' });
    await eventually('w1 back to a worker certificate', async () => (identityOfPem(material(w1).certPem)?.role === 'worker' ? true : undefined), 30_000);
  });
});
