// Node-to-node forwarding under mutual TLS, on loopback with real sockets and certificates made
// by the openssl CLI: nodes a (127.0.0.1) and b (127.0.0.2), extra nodes on 127.0.0.5/6,
// backends on 127.0.0.3/4/7. Once per forwarding transport (h2: TLS sessions carrying streams;
// tcp: a TLS connection per forwarded connection).

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { X509Certificate, randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import tls from 'node:tls';
import type { Logger } from '@shoal/api';
import {
  Mesh,
  encodeForwardHeader,
  FORWARD_ACK,
  type Backend as TableBackend,
  type MeshOptions,
  type MeshTable,
  type MeshTls,
} from '../src/index.js';
import {
  BACKEND_HOST,
  BACKEND_HOST2,
  HOST_A,
  HOST_B,
  connectOutcome,
  exchange,
  freePort,
  get,
  openEcho,
  httpBackend,
  legacyForwarder,
  makeCluster,
  quietLogger,
  recordingLogger,
  serialGet,
  waitFor,
  sha256,
  tcpBackend,
  tcpRelay,
  type Backend,
  type Cluster,
} from './helpers.js';
import { makeCa, type NodeCert, type TestCa } from './tls-certs.js';

const HOST_C = '127.0.0.5';
const HOST_D = '127.0.0.6';
const BACKEND_HOST3 = '127.0.0.7';
const ALL_HOSTS = [HOST_A, HOST_B, HOST_C, HOST_D];
type Transport = NonNullable<MeshOptions['forwardTransport']>;
const TRANSPORTS: Transport[] = ['h2', 'tcp'];

let ca: TestCa;
let otherCa: TestCa;
let certA: NodeCert;
let certB: NodeCert;

before(async () => {
  ca = await makeCa('Shoal Root CA cluster1');
  otherCa = await makeCa('Some Other Root CA');
  certA = await ca.issue('node-a');
  certB = await ca.issue('node-b');
});

after(async () => {
  await ca?.remove();
  await otherCa?.remove();
});

function targetPort(addr: string): number {
  return Number(addr.slice(addr.lastIndexOf(':') + 1));
}

function localTask(taskId: string, nodeId: string, addr: string): TableBackend {
  return { taskId, nodeId, local: true, addr, targetPort: targetPort(addr) };
}

function remoteTask(taskId: string, nodeId: string, via: string, addr: string): TableBackend {
  return { taskId, nodeId, local: false, via, targetPort: targetPort(addr) };
}

function table(port: number, backends: TableBackend[]): MeshTable {
  return { ports: [{ port, serviceId: `svc-${port}`, serviceName: `web-${port}`, proxyProtocol: false, backends }] };
}

/** A third node (its own forwarding listener) that runs one task of `port`. */
async function extraNode(
  transport: Transport,
  bindHost: string,
  material: MeshTls | undefined,
  port: number,
  taskId: string,
  addr: string,
): Promise<Mesh> {
  const m = new Mesh({ bindHost, logger: quietLogger, forwardHeaderTimeoutMs: 500, forwardTransport: transport, ...(material ? { tls: material } : {}) });
  await m.start();
  await m.update(table(port, [localTask(taskId, bindHost, addr)]));
  return m;
}

async function tlsCluster(
  transport: Transport,
  verify: { a?: MeshTls['verifyPeer']; b?: MeshTls['verifyPeer'] } = {},
  logB?: Logger,
): Promise<Cluster> {
  return makeCluster(
    { forwardTransport: transport },
    { a: { tls: ca.tls(certA, verify.a) }, b: { tls: ca.tls(certB, verify.b), ...(logB ? { logger: logB } : {}) } },
  );
}

async function withBackends(fn: (keep: (b: Backend) => Backend, closeLater: (m: { close(): Promise<void> }) => void) => Promise<void>): Promise<void> {
  const backends: Backend[] = [];
  const closers: { close(): Promise<void> }[] = [];
  try {
    await fn(
      (b) => (backends.push(b), b),
      (m) => closers.push(m),
    );
  } finally {
    await Promise.all(closers.map((m) => m.close()));
    await Promise.all(backends.map((b) => b.close()));
  }
}

/** Everything a raw socket receives until it closes (or 3 s). */
function rawExchange(host: string, port: number, send: Buffer | string): Promise<Buffer> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const chunks: Buffer[] = [];
    s.on('connect', () => s.write(send));
    s.on('data', (c: Buffer) => chunks.push(c));
    s.on('error', () => {});
    s.on('close', () => resolve(Buffer.concat(chunks)));
    s.setTimeout(3000, () => s.destroy());
  });
}

/** A certificate's subject CN (the node id). */
function cn(cert: tls.PeerCertificate): string | undefined {
  const v = cert.subject?.CN;
  return Array.isArray(v) ? v.join(',') : v;
}

function fingerprint(pem: string): string {
  return new X509Certificate(pem).fingerprint256;
}

for (const transport of TRANSPORTS) {
  describe(`mesh: mutual TLS between nodes (${transport})`, () => {
    test('two TLS meshes forward to a remote replica; bytes flow both ways; the listener speaks TLS', async () => {
      const c = await tlsCluster(transport);
      await withBackends(async (keep, closeLater) => {
        closeLater(c);
        const echo = keep(await tcpBackend('echo', 'echo', BACKEND_HOST));
        const half = keep(await tcpBackend('half', 'halfclose', BACKEND_HOST));
        const sink = keep(await tcpBackend('sink', 'sinkhash', BACKEND_HOST2));
        const [p1, p2, p3] = [await freePort(), await freePort(), await freePort()];
        await c.apply([
          { port: p1, tasks: [{ taskId: 'echo1', node: 'b', addr: echo.addr }] },
          { port: p2, tasks: [{ taskId: 'half1', node: 'b', addr: half.addr }] },
          { port: p3, tasks: [{ taskId: 'sink1', node: 'b', addr: sink.addr }] },
        ]);
        const conn = await openEcho(HOST_A, p1);
        for (let i = 0; i < 5; i++) assert.equal(await conn.ping(`ping ${i} `), `ping ${i} `);
        conn.s.destroy();
        // Half-close across the TLS hop: the client ends its side and still gets the answer.
        assert.equal((await exchange(HOST_A, p2, 'x'.repeat(1000))).toString(), 'half got 1000 bytes');
        const big = randomBytes(8 * 1024 * 1024);
        assert.equal((await exchange(HOST_A, p3, big)).toString(), sha256(big));

        const st = c.a.stats().forwarder;
        // h2: one session (one handshake) carried all three.
        assert.equal(st.tlsConnects, transport === 'h2' ? 1 : 3);
        assert.equal(c.b.stats().forwarder.totalConnections, 3);
        assert.equal(c.b.stats().forwarder.rejected, 0);

        // The forwarding port is TLS, with b's certificate.
        const [host, port] = [HOST_B, c.b.forwardPort];
        const serverCn = await new Promise<string | undefined>((resolve, reject) => {
          const s = tls.connect({ host, port, ca: ca.ca, cert: certA.cert, key: certA.key, servername: 'shoal-node' }, () => {
            resolve(cn(s.getPeerCertificate()));
            s.destroy();
          });
          s.on('error', reject);
        });
        assert.equal(serverCn, 'node-b');
      });
    });

    if (transport === 'tcp') {
      test('later forwarded connections resume the TLS session; verifyPeer still sees every one', async () => {
        const seenByA: (string | undefined)[] = [];
        const seenByB: (string | undefined)[] = [];
        const c = await tlsCluster(transport, {
          a: (peer) => (seenByA.push(cn(peer)), null),
          b: (peer) => (seenByB.push(cn(peer)), null),
        });
        await withBackends(async (keep, closeLater) => {
          closeLater(c);
          const web = keep(await httpBackend('web', BACKEND_HOST));
          const port = await freePort();
          await c.apply([{ port, tasks: [{ taskId: 'w1', node: 'b', addr: web.addr }] }]);
          assert.deepEqual(await serialGet(20, HOST_A, port), Array(20).fill('web'));
          const st = c.a.stats().forwarder;
          assert.equal(st.tlsConnects, 20);
          assert.ok(st.tlsResumed >= 18, `resumed ${st.tlsResumed} of 20`);
          assert.deepEqual(seenByB, Array(20).fill('node-a'));
          assert.deepEqual(seenByA, Array(20).fill('node-b'));
        });
      });
    } else {
      test('one TLS session carries every forwarded connection; verifyPeer sees every stream; a new session resumes TLS', async () => {
        const seenByA: (string | undefined)[] = [];
        const seenByB: (string | undefined)[] = [];
        const c = await tlsCluster(transport, {
          a: (peer) => (seenByA.push(cn(peer)), null),
          b: (peer) => (seenByB.push(cn(peer)), null),
        });
        await withBackends(async (keep, closeLater) => {
          closeLater(c);
          const web = keep(await httpBackend('web', BACKEND_HOST));
          // a reaches b through a relay, so the test can cut the session's connection.
          const relay = await tcpRelay(HOST_C, c.b.forwardAddress);
          closeLater(relay);
          const port = await freePort();
          await c.b.update(table(port, [localTask('w1', 'b', web.addr)]));
          await c.a.update(table(port, [remoteTask('w1', 'b', relay.addr, web.addr)]));
          assert.deepEqual(await serialGet(20, HOST_A, port), Array(20).fill('web'));
          let st = c.a.stats().forwarder;
          assert.deepEqual([st.tlsConnects, st.h2SessionsOpened, st.h2SessionsOut, relay.connections], [1, 1, 1, 1]);
          assert.equal(c.b.stats().forwarder.h2SessionsIn, 1);
          assert.equal(c.b.stats().forwarder.totalConnections, 20);
          // Once when the session started (handshake), then once per stream, on both sides.
          assert.deepEqual(seenByB, Array(21).fill('node-a'));
          assert.deepEqual(seenByA, Array(21).fill('node-b'));

          relay.cutAll();
          await waitFor(() => c.a.stats().forwarder.h2SessionsOut === 0, 2000, 'the session to close');
          assert.equal(await get(HOST_A, port), 'web');
          st = c.a.stats().forwarder;
          assert.deepEqual([st.tlsConnects, st.tlsResumed, st.h2SessionsOpened, relay.connections], [2, 1, 2, 2]);
          assert.deepEqual(seenByB, Array(23).fill('node-a'));
          assert.deepEqual(seenByA, Array(23).fill('node-b'));
        });
      });
    }

    test('a plain-TCP client gets nothing through a TLS forwarding port', async () => {
      const c = await tlsCluster(transport);
      await withBackends(async (keep, closeLater) => {
        closeLater(c);
        const echo = keep(await tcpBackend('echo', 'echo', BACKEND_HOST));
        const port = await freePort(ALL_HOSTS);
        await c.apply([{ port, tasks: [{ taskId: 'echo1', node: 'b', addr: echo.addr }] }]);
        // A well-formed header for a task b does run, in clear.
        const header = encodeForwardHeader({ taskId: 'echo1', targetPort: echo.port, proxyProtocol: false });
        const got = await rawExchange(HOST_B, c.b.forwardPort, `${header}hello`);
        assert.notEqual(got[0], FORWARD_ACK);
        assert.ok(!got.includes('hello'), got.toString('hex'));
        // A node without TLS forwarding to it: its client is reset (no other replica).
        const plain = await extraNode(transport, HOST_C, undefined, port, 'unused', `${BACKEND_HOST}:1`);
        closeLater(plain);
        await plain.update(table(port, [remoteTask('echo1', 'b', c.b.forwardAddress, echo.addr)]));
        assert.equal((await connectOutcome(HOST_C, port)).outcome, 'reset');
        assert.equal(echo.connections, 0);
        assert.equal(c.b.stats().forwarder.totalConnections, 0);
        assert.ok(c.b.stats().forwarder.rejected >= 2, JSON.stringify(c.b.stats().forwarder));
        // The real thing still works.
        const conn = await openEcho(HOST_A, port);
        assert.equal(await conn.ping('ok'), 'ok');
        conn.s.destroy();
      });
    });

    test('a node whose certificate comes from another CA is refused', async () => {
      const { logger, entries } = recordingLogger();
      const c = await tlsCluster(transport, {}, logger);
      await withBackends(async (keep, closeLater) => {
        closeLater(c);
        const echo = keep(await tcpBackend('echo', 'echo', BACKEND_HOST));
        const port = await freePort(ALL_HOSTS);
        await c.apply([{ port, tasks: [{ taskId: 'echo1', node: 'b', addr: echo.addr }] }]);
        // It trusts the cluster's CA (so it accepts b), but its own certificate is not from it.
        const evilCert = await otherCa.issue('node-evil');
        const evil = await extraNode(transport, HOST_C, { ca: ca.ca, cert: evilCert.cert, key: evilCert.key }, port, 'unused', `${BACKEND_HOST}:1`);
        closeLater(evil);
        await evil.update(table(port, [remoteTask('echo1', 'b', c.b.forwardAddress, echo.addr)]));
        assert.equal((await connectOutcome(HOST_C, port)).outcome, 'reset');
        // The same with a raw TLS client that sends a header right after its handshake.
        const got = await new Promise<Buffer>((resolve) => {
          const s = tls.connect({ host: HOST_B, port: c.b.forwardPort, ca: ca.ca, cert: evilCert.cert, key: evilCert.key, servername: 'shoal-node' });
          const chunks: Buffer[] = [];
          s.on('secureConnect', () => s.write(`${encodeForwardHeader({ taskId: 'echo1', targetPort: echo.port, proxyProtocol: false })}hello`));
          s.on('data', (d: Buffer) => chunks.push(d));
          s.on('error', () => {});
          s.on('close', () => resolve(Buffer.concat(chunks)));
        });
        assert.equal(got.length, 0);
        assert.equal(echo.connections, 0);
        assert.equal(c.b.stats().forwarder.totalConnections, 0);
        assert.equal(c.b.stats().forwarder.rejected, 2);
        const warns = entries.filter((e) => e.level === 'warn' && e.msg === 'mesh: forwarding peer certificate refused');
        assert.equal(warns.length, 2);
        assert.match(String(warns[0]!.obj.reason), /UNABLE_TO_GET_ISSUER_CERT|UNABLE_TO_VERIFY|SELF_SIGNED/);
      });
    });

    test('an expired node certificate is refused', async () => {
      const { logger, entries } = recordingLogger();
      const c = await tlsCluster(transport, {}, logger);
      await withBackends(async (keep, closeLater) => {
        closeLater(c);
        const echo = keep(await tcpBackend('echo', 'echo', BACKEND_HOST));
        const port = await freePort(ALL_HOSTS);
        await c.apply([{ port, tasks: [{ taskId: 'echo1', node: 'b', addr: echo.addr }] }]);
        const old = await ca.issue('node-old', { expired: true });
        assert.ok(new Date(new X509Certificate(old.cert).validTo).getTime() < Date.now());
        const stale = await extraNode(transport, HOST_C, ca.tls(old), port, 'unused', `${BACKEND_HOST}:1`);
        closeLater(stale);
        await stale.update(table(port, [remoteTask('echo1', 'b', c.b.forwardAddress, echo.addr)]));
        assert.equal((await connectOutcome(HOST_C, port)).outcome, 'reset');
        assert.equal(echo.connections, 0);
        assert.equal(c.b.stats().forwarder.totalConnections, 0);
        const warn = entries.find((e) => e.level === 'warn' && e.msg === 'mesh: forwarding peer certificate refused');
        assert.equal(warn?.obj.reason, 'CERT_HAS_EXPIRED');
        // A current certificate of the same CA on the same address is served.
        await stale.close();
        const fresh = await extraNode(transport, HOST_C, ca.tls(await ca.issue('node-new')), port, 'unused', `${BACKEND_HOST}:1`);
        closeLater(fresh);
        await fresh.update(table(port, [remoteTask('echo1', 'b', c.b.forwardAddress, echo.addr)]));
        const conn = await openEcho(HOST_C, port);
        assert.equal(await conn.ping('fresh'), 'fresh');
        conn.s.destroy();
      });
    });

    if (transport === 'tcp') {
      test('verifyPeer refusing a peer: on either side, fresh or resumed session', async () => {
        const { logger, entries } = recordingLogger();
        let bRefusesA = false;
        let aRefusesB = false;
        const c = await tlsCluster(transport, 
          {
            a: (peer) => (aRefusesB && cn(peer) === 'node-b' ? 'node removed from the cluster' : null),
            b: (peer) => (bRefusesA && cn(peer) === 'node-a' ? 'node removed from the cluster' : null),
          },
          logger,
        );
        await withBackends(async (keep, closeLater) => {
          closeLater(c);
          const web = keep(await httpBackend('web', BACKEND_HOST));
          const port = await freePort();
          await c.apply([{ port, tasks: [{ taskId: 'w1', node: 'b', addr: web.addr }] }]);
          const fails = async (): Promise<void> => {
            await assert.rejects(get(HOST_A, port), /ECONNRESET|socket hang up/);
          };
          assert.deepEqual(await serialGet(3, HOST_A, port), ['web', 'web', 'web']);

          // b refuses a: a's next connection resumes its session, and is refused all the same.
          bRefusesA = true;
          let resumed = c.a.stats().forwarder.tlsResumed;
          await fails();
          assert.equal(c.a.stats().forwarder.tlsResumed, resumed + 1);
          const warn = entries.find((e) => e.level === 'warn' && e.msg === 'mesh: forwarding peer refused');
          assert.deepEqual({ peer: warn?.obj.peer, reason: warn?.obj.reason }, { peer: 'node-a', reason: 'node removed from the cluster' });
          await fails(); // a full handshake this time (the refused session was dropped)
          assert.equal(c.a.stats().forwarder.tlsResumed, resumed + 1);
          assert.equal(web.connections, 3);

          // a refuses b, on a resumed session and then on a full handshake.
          bRefusesA = false;
          assert.deepEqual(await serialGet(2, HOST_A, port), ['web', 'web']);
          aRefusesB = true;
          resumed = c.a.stats().forwarder.tlsResumed;
          const fwdTotal = c.b.stats().forwarder.totalConnections;
          await fails();
          assert.equal(c.a.stats().forwarder.tlsResumed, resumed + 1);
          await fails();
          assert.equal(c.a.stats().forwarder.tlsResumed, resumed + 1);
          assert.equal(c.b.stats().forwarder.totalConnections, fwdTotal, 'b never got a header');
          assert.equal(web.connections, 5);
          aRefusesB = false;
          assert.equal(await get(HOST_A, port), 'web');
        });
      });
    } else {
      test('verifyPeer refusing a peer: on either side, on an open session and on a new one', async () => {
        const { logger, entries } = recordingLogger();
        let bRefusesA = false;
        let aRefusesB = false;
        const c = await tlsCluster(
          transport,
          {
            a: (peer) => (aRefusesB && cn(peer) === 'node-b' ? 'node removed from the cluster' : null),
            b: (peer) => (bRefusesA && cn(peer) === 'node-a' ? 'node removed from the cluster' : null),
          },
          logger,
        );
        await withBackends(async (keep, closeLater) => {
          closeLater(c);
          const web = keep(await httpBackend('web', BACKEND_HOST));
          const port = await freePort();
          await c.apply([{ port, tasks: [{ taskId: 'w1', node: 'b', addr: web.addr }] }]);
          const fails = async (): Promise<void> => {
            await assert.rejects(get(HOST_A, port), /ECONNRESET|socket hang up/);
          };
          assert.deepEqual(await serialGet(3, HOST_A, port), ['web', 'web', 'web']);

          // b refuses a: the next stream on the open session (403, and b closes the session)...
          bRefusesA = true;
          await fails();
          const warn = entries.find((e) => e.level === 'warn' && e.msg === 'mesh: forwarding peer refused');
          assert.deepEqual({ peer: warn?.obj.peer, reason: warn?.obj.reason }, { peer: 'node-a', reason: 'node removed from the cluster' });
          // ...and a new session, at its start.
          await fails();
          assert.equal(c.a.stats().forwarder.h2SessionsOpened, 1);
          assert.equal(web.connections, 3);

          bRefusesA = false;
          assert.deepEqual(await serialGet(2, HOST_A, port), ['web', 'web']);
          assert.equal(c.a.stats().forwarder.h2SessionsOpened, 2);
          // a refuses b: checked before every stream on the open session, then in a new session's handshake.
          aRefusesB = true;
          const fwdTotal = c.b.stats().forwarder.totalConnections;
          await fails();
          await fails();
          assert.equal(c.a.stats().forwarder.h2SessionsOpened, 2);
          assert.equal(c.b.stats().forwarder.totalConnections, fwdTotal, 'b never got a stream');
          assert.equal(web.connections, 5);
          aRefusesB = false;
          assert.equal(await get(HOST_A, port), 'web');
        });
      });
    }

    if (transport === 'h2') {
      test('an HTTP/2 client without a valid certificate cannot open a session', async () => {
        const { logger, entries } = recordingLogger();
        const c = await tlsCluster(transport, {}, logger);
        await withBackends(async (keep, closeLater) => {
          closeLater(c);
          const echo = keep(await tcpBackend('echo', 'echo', BACKEND_HOST));
          const port = await freePort();
          await c.apply([{ port, tasks: [{ taskId: 'echo1', node: 'b', addr: echo.addr }] }]);
          const evil = await otherCa.issue('node-evil');
          /** A CONNECT for b's task on a session opened with `opts`: its status, or how the session ended. */
          const attempt = (url: string, opts: http2.SecureClientSessionOptions) =>
            new Promise<string>((resolve) => {
              const s = http2.connect(url, opts);
              let outcome = '';
              const timer = setTimeout(() => s.destroy(), 3000);
              // A session failing before it connected does not always emit 'close': its stream does.
              const end = () => {
                clearTimeout(timer);
                s.destroy();
                resolve(outcome || 'closed');
              };
              s.on('error', (err: NodeJS.ErrnoException) => (outcome ||= `session error ${err.code}`));
              s.on('close', end);
              const st = s.request({ ':method': 'CONNECT', ':authority': `echo1:${echo.port}` }, { endStream: false });
              st.on('error', (err: NodeJS.ErrnoException) => (outcome ||= `stream error ${err.code}`));
              st.on('response', (h) => {
                outcome = `status ${h[':status']}`;
                end();
              });
              st.on('close', end);
            });
          const url = `https://${HOST_B}:${c.b.forwardPort}`;
          const base = { ca: ca.ca, servername: 'shoal-node' };
          const outcomes = [
            await attempt(url, base), // no client certificate
            await attempt(url, { ...base, cert: evil.cert, key: evil.key }), // another CA's
            await attempt(`http://${HOST_B}:${c.b.forwardPort}`, {}), // h2c on the TLS port
          ];
          for (const o of outcomes) assert.doesNotMatch(o, /^status/, JSON.stringify(outcomes));
          assert.equal(echo.connections, 0);
          assert.equal(c.b.stats().forwarder.h2SessionsIn, 0);
          assert.equal(c.b.stats().forwarder.rejected, 3);
          assert.equal(entries.filter((e) => e.msg === 'mesh: forwarding peer certificate refused').length, 1);
          // A node's certificate gets through.
          assert.equal(await attempt(url, { ...base, cert: certA.cert, key: certA.key }), 'status 200');
        });
      });

      test('an h2 node forwards over TLS to a node that only speaks the line protocol (no ALPN)', async () => {
        const c = await tlsCluster(transport);
        await withBackends(async (keep, closeLater) => {
          closeLater(c);
          const echo = keep(await tcpBackend('echo', 'echo', BACKEND_HOST));
          const oldCert = await ca.issue('node-old');
          const old = await legacyForwarder(HOST_C, { old1: echo.addr }, {
            ca: ca.ca, cert: oldCert.cert, key: oldCert.key, requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.3',
          });
          closeLater(old);
          const port = await freePort(ALL_HOSTS);
          await c.a.update(table(port, [remoteTask('old1', 'old', old.addr, echo.addr)]));
          for (let i = 0; i < 3; i++) {
            const x = await openEcho(HOST_A, port);
            assert.equal(await x.ping(`hello ${i}`), `hello ${i}`);
            x.s.destroy();
          }
          assert.deepEqual([old.served, old.refused], [3, 0]);
          assert.equal(c.a.stats().ports[0]!.failedConnects, 0);
          assert.equal(c.a.stats().forwarder.h2SessionsOpened, 0);
        });
      });
    }

    test('a forwarder whose TLS connect fails falls back to another replica', async () => {
      const c = await tlsCluster(transport);
      await withBackends(async (keep, closeLater) => {
        closeLater(c);
        const good = keep(await httpBackend('good', BACKEND_HOST));
        const onC = keep(await httpBackend('on-c', BACKEND_HOST2));
        const onD = keep(await httpBackend('on-d', BACKEND_HOST3));
        const port = await freePort(ALL_HOSTS);
        // c: another cluster's node (its certificate is not from a's CA); d: the right CA, but a
        // certificate without the node name (not a node's certificate).
        const cCert = await otherCa.issue('node-c');
        const nodeC = await extraNode(transport, HOST_C, { ca: ca.ca, cert: cCert.cert, key: cCert.key }, port, 'tc', onC.addr);
        closeLater(nodeC);
        const dCert = await ca.issue('node-d', { san: 'DNS:not-a-node' });
        const nodeD = await extraNode(transport, HOST_D, ca.tls(dCert), port, 'td', onD.addr);
        closeLater(nodeD);
        await c.b.update(table(port, [localTask('tb', 'b', good.addr)]));
        await c.a.update(
          table(port, [
            remoteTask('tc', 'c', nodeC.forwardAddress, onC.addr),
            remoteTask('td', 'd', nodeD.forwardAddress, onD.addr),
            remoteTask('tb', 'b', c.b.forwardAddress, good.addr),
          ]),
        );
        assert.deepEqual(await serialGet(10, HOST_A, port), Array(10).fill('good'));
        const st = c.a.stats().ports[0]!;
        const byTask = Object.fromEntries(st.backendStats.map((b) => [b.taskId, b]));
        assert.ok(byTask.tc!.failed >= 1 && byTask.tc!.total === 0, JSON.stringify(byTask.tc));
        assert.ok(byTask.td!.failed >= 1 && byTask.td!.total === 0, JSON.stringify(byTask.td));
        assert.equal(byTask.tb!.total, 10);
        assert.equal(st.droppedConnections, 0);
        assert.equal(onC.connections + onD.connections, 0);
        assert.equal(nodeC.stats().forwarder.totalConnections + nodeD.stats().forwarder.totalConnections, 0);
      });
    });

    test('setTls: new connections use the new certificates; an open connection keeps flowing', async () => {
      const lastSeen = { a: '', b: '' };
      const verifyA: MeshTls['verifyPeer'] = (peer) => ((lastSeen.a = peer.fingerprint256), null);
      const verifyB: MeshTls['verifyPeer'] = (peer) => ((lastSeen.b = peer.fingerprint256), null);
      const c = await tlsCluster(transport, { a: verifyA, b: verifyB });
      await withBackends(async (keep, closeLater) => {
        closeLater(c);
        const echo = keep(await tcpBackend('echo', 'echo', BACKEND_HOST));
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 'echo1', node: 'b', addr: echo.addr }] }]);
        const old = await openEcho(HOST_A, port);
        assert.equal(await old.ping('before'), 'before');
        assert.equal(lastSeen.b, fingerprint(certA.cert));
        assert.equal(lastSeen.a, fingerprint(certB.cert));

        const certA2 = await ca.issue('node-a');
        const certB2 = await ca.issue('node-b');
        // a first, alone: b would resume a's session made with the old certificate if a offered it.
        c.a.setTls(ca.tls(certA2, verifyA));
        assert.equal(await old.ping('during'), 'during');
        const resumed = c.a.stats().forwarder.tlsResumed;
        const renewedA = await openEcho(HOST_A, port);
        assert.equal(await renewedA.ping('after a'), 'after a');
        assert.equal(c.a.stats().forwarder.tlsResumed, resumed, 'a full handshake after setTls');
        assert.equal(lastSeen.b, fingerprint(certA2.cert), "b saw a's new certificate");
        assert.equal(lastSeen.a, fingerprint(certB.cert));
        // Then b (its listener).
        c.b.setTls(ca.tls(certB2, verifyB));
        const renewed = await openEcho(HOST_A, port);
        assert.equal(await renewed.ping('after b'), 'after b');
        assert.equal(lastSeen.a, fingerprint(certB2.cert), "a saw b's new certificate");
        assert.equal(lastSeen.b, fingerprint(certA2.cert));
        assert.equal(await old.ping('still'), 'still');
        assert.equal(await renewedA.ping('still'), 'still');

        // Invalid material (a key that is not the certificate's) is refused and changes nothing.
        assert.throws(() => c.a.setTls({ ca: ca.ca, cert: certA2.cert, key: certB2.key }));
        const again = await openEcho(HOST_A, port);
        assert.equal(await again.ping('again'), 'again');
        assert.equal(lastSeen.b, fingerprint(certA2.cert));
        for (const s of [old.s, renewedA.s, renewed.s, again.s]) s.destroy();

        const plain = new Mesh({ bindHost: HOST_C, logger: quietLogger });
        closeLater(plain);
        assert.throws(() => plain.setTls(ca.tls(certA2)), /without tls/);
      });
    });
  });
}
