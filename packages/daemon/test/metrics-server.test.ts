// The metrics endpoint: plain HTTP on a loopback address; elsewhere (here: all interfaces,
// reached over loopback) HTTPS with the node's certificate, answering only an admin certificate
// of the cluster's CA; --metrics-insecure opens it; a busy address is a one-line error. Real
// certificates from a CA of the test's own.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { ShoalError } from '@shoal/api';
import { NodeIdentity, createRootCA, issueWithNewKey } from '@shoal/pki';
import { silentLogger } from '@shoal/raft';
import { Counter, Registry } from 'prom-client';
import { type MetricsEndpoint, serveMetrics } from '../src/metrics/metrics-server.js';

const DAY = 86_400_000;
const registry = new Registry();
new Counter({ name: 'shoal_test_scrapes_total', help: 'a metric of the test', registers: [registry] }).inc(3);

type Reply = { status: number; body: string; serial?: string };

function get(url: string, opts: https.RequestOptions = {}): Promise<Reply> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { ...opts, timeout: 5_000 }, (res) => {
      let body = '';
      const serial = (res.socket as TLSSocket).getPeerCertificate?.()?.serialNumber;
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body, serial }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

const open: MetricsEndpoint[] = [];
after(async () => {
  for (const e of open) await e.close();
});
async function serve(addr: string, insecure = false): Promise<MetricsEndpoint> {
  const e = await serveMetrics({ addr, registry, insecure, log: silentLogger() });
  open.push(e);
  return e;
}
/** The endpoint's URL, reached over loopback whatever it is bound to. */
const viaLoopback = (e: MetricsEndpoint) => e.url.replace(/\/\/[^/]+:/, '//127.0.0.1:');

describe('metrics endpoint', () => {
  test('on a loopback address: plain HTTP, GET /metrics only', async () => {
    const e = await serve('127.0.0.1:0');
    assert.equal(e.tls, false);
    assert.match(e.url, /^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const r = await get(e.url);
    assert.equal(r.status, 200);
    assert.match(r.body, /^shoal_test_scrapes_total 3$/m);
    assert.equal((await get(e.url.replace('/metrics', '/other'))).status, 404);
  });

  test('--metrics-insecure: plain HTTP on any address', async () => {
    const e = await serve('0.0.0.0:0', true);
    assert.equal(e.tls, false);
    assert.equal((await get(viaLoopback(e))).status, 200);
  });

  test('a busy or impossible address: one line, INVALID_ARGUMENT', async () => {
    const e = await serve('127.0.0.1:0');
    const port = new URL(e.url).port;
    await assert.rejects(serve(`127.0.0.1:${port}`), (err: unknown) => ShoalError.is(err, 'INVALID_ARGUMENT') && /^--metrics-addr 127\.0\.0\.1:\d+: cannot listen: EADDRINUSE$/.test((err as Error).message));
    await assert.rejects(serve('192.0.2.1:0'), (err: unknown) => ShoalError.is(err, 'INVALID_ARGUMENT') && !(err as Error).message.includes('\n'));
  });

  describe('elsewhere: HTTPS for admin certificates only', () => {
    let ca: Awaited<ReturnType<typeof createRootCA>>;
    let identity: NodeIdentity;
    let e: MetricsEndpoint;
    const creds: Record<string, { cert: string; key: string; ca: string }> = {};
    before(async () => {
      ca = await createRootCA('metrics-test');
      const other = await createRootCA('another');
      const node = await issueWithNewKey(ca, { nodeId: 'node1', role: 'worker', clusterId: 'c1' }, DAY);
      identity = new NodeIdentity(undefined, { caPem: ca.certPem, ...node });
      const client = async (c: typeof ca, role: 'admin' | 'worker' | 'manager', clusterId = 'c1') => {
        const m = await issueWithNewKey(c, { nodeId: `${role}-x`, role, clusterId }, DAY);
        return { cert: m.certPem, key: m.keyPem, ca: ca.certPem };
      };
      creds.admin = await client(ca, 'admin');
      creds.worker = await client(ca, 'worker');
      creds.foreignAdmin = await client(other, 'admin');
      creds.otherCluster = await client(ca, 'admin', 'c2');
      e = await serve('0.0.0.0:0');
      e.useIdentity(identity);
    });
    const tlsGet = (c?: { cert: string; key: string; ca: string }) => get(viaLoopback(e), { ca: ca.certPem, servername: 'shoal-node', ...(c ? { cert: c.cert, key: c.key } : {}) });

    test('an admin certificate of this cluster is answered', async () => {
      assert.equal(e.tls, true);
      assert.match(e.url, /^https:/);
      const r = await tlsGet(creds.admin);
      assert.equal(r.status, 200);
      assert.match(r.body, /^shoal_test_scrapes_total 3$/m);
    });

    test('no certificate, or one of another CA: the handshake fails', async () => {
      await assert.rejects(tlsGet());
      await assert.rejects(tlsGet(creds.foreignAdmin));
    });

    test("a node's certificate, or another cluster's admin: 403", async () => {
      const w = await tlsGet(creds.worker);
      assert.equal(w.status, 403);
      assert.match(w.body, /admin certificate/);
      assert.equal((await tlsGet(creds.otherCluster)).status, 403);
    });

    test("the node's renewed certificate serves the next connections", async () => {
      const before = (await tlsGet(creds.admin)).serial;
      identity.replace({ caPem: ca.certPem, ...(await issueWithNewKey(ca, { nodeId: 'node1', role: 'worker', clusterId: 'c1' }, DAY)) });
      const r = await get(viaLoopback(e), { ca: ca.certPem, servername: 'shoal-node', cert: creds.admin!.cert, key: creds.admin!.key, agent: false });
      assert.equal(r.status, 200);
      assert.notEqual(r.serial, before);
    });
  });
});
