// Prometheus metrics of real shoald managers (--metrics-addr): the leader's scrape moves as a
// service is created (Raft's applied index, proposals counted, the services gauge, placements,
// the task started somewhere); on an address that is not a loopback one, HTTPS answers only an
// admin certificate of the cluster; a garbage address is a one-line error at start.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import http from 'node:http';
import https from 'node:https';
import { NodeIdentity, certPaths } from '@shoal/pki';
import { freePort } from '@shoal/raft/testing';
import { type Daemon, TestCluster, eventually, leaderOf } from '../helpers/shoald.js';

const IMAGE = 'shoal/busybox:latest';

function get(url: string, opts: https.RequestOptions = {}): Promise<{ status: number; body: string }> {
  const mod = url.startsWith('https:') ? https : http;
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { ...opts, timeout: 10_000 }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode!, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
  });
}

/** The value of the sample `series` (name with its labels, as printed) in a scrape; undefined if absent. */
function sample(text: string, series: string): number | undefined {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return undefined;
}

describe('metrics: --metrics-addr on real managers', () => {
  const c = new TestCluster();
  /** Each manager's metrics URL (loopback ones plain HTTP). */
  const urls = new Map<Daemon, string>();
  let tlsManager: Daemon;
  let tlsPort = 0;

  before(async () => {
    const p1 = await freePort();
    const m1 = await c.init('m1', ['--metrics-addr', `127.0.0.1:${p1}`]);
    urls.set(m1, `http://127.0.0.1:${p1}/metrics`);
    const p2 = await freePort();
    const m2 = await c.join('m2', m1, 'manager', '127.0.0.1', {}, ['--metrics-addr', `127.0.0.1:${p2}`]);
    await m2.ready();
    urls.set(m2, `http://127.0.0.1:${p2}/metrics`);
    // All interfaces: not a loopback address, so HTTPS for admins (the test reaches it over loopback).
    tlsPort = await freePort();
    tlsManager = await c.join('m3', m1, 'manager', '127.0.0.1', {}, ['--metrics-addr', `0.0.0.0:${tlsPort}`]);
    await tlsManager.ready();
    await eventually('3 voters', async () => {
      const st = await m1.call<{ members: { raftRole: string }[] }>('ClusterStatus');
      return st.members.length === 3 && st.members.every((m) => m.raftRole !== 'learner') ? true : undefined;
    });
  });
  after(() => c.stop());

  /** TLS options with the admin certificate `shoald init` wrote into m1's data directory. */
  function adminTls(): https.RequestOptions {
    const dir = certPaths(c.daemons[0]!.dataDir).adminDir;
    const f = (n: string) => readFileSync(join(dir, n), 'utf8');
    return { ca: f('ca.pem'), cert: f('cert.pem'), key: f('key.pem'), servername: 'shoal-node', agent: false };
  }

  /** A manager's metrics (m3's over HTTPS with the admin certificate). */
  async function scrape(d: Daemon): Promise<string> {
    const r = d === tlsManager ? await get(`https://127.0.0.1:${tlsPort}/metrics`, adminTls()) : await get(urls.get(d)!);
    assert.equal(r.status, 200);
    return r.body;
  }

  test("the leader's scrape moves as a service is created", async () => {
    const leader = await leaderOf(c);
    // Every manager's agent opens its session with the leader's dispatcher (soon after its start).
    const first = await eventually('three sessions', async () => {
      const body = await scrape(leader);
      return sample(body, 'shoal_dispatcher_sessions') === 3 ? body : undefined;
    });
    assert.equal(sample(first, 'shoal_raft_is_leader'), 1);
    assert.equal(sample(first, 'shoal_store_objects{kind="service"}'), 0);
    const applied0 = sample(first, 'shoal_raft_applied_index')!;
    const proposals0 = sample(first, 'shoal_raft_proposal_duration_seconds_count')!;
    assert.ok(applied0 > 0 && sample(first, 'shoal_raft_term')! > 0);

    await leader.call('CreateService', { spec: { name: 'metrics-web', image: IMAGE, args: ['sleep', '3600'], stopGracePeriodMs: 1_000, replicas: 1 } });
    const afterCreate = await eventually('the task running, as the leader counts it', async () => {
      const body = await scrape(leader);
      return sample(body, 'shoal_tasks{state="running"}') === 1 ? body : undefined;
    }, 60_000);
    assert.equal(sample(afterCreate, 'shoal_store_objects{kind="service"}'), 1);
    assert.equal(sample(afterCreate, 'shoal_store_objects{kind="task"}'), 1);
    assert.ok(sample(afterCreate, 'shoal_raft_applied_index')! > applied0, 'the applied index rose');
    assert.ok(sample(afterCreate, 'shoal_raft_proposal_duration_seconds_count')! > proposals0, 'proposals counted');
    assert.equal(sample(afterCreate, 'shoal_scheduler_placement_latency_seconds_count'), 1, 'one placement timed');
    assert.ok(sample(afterCreate, 'shoal_dispatcher_assignments_sent_total')! >= 1);
    // The node that runs the task counted its start and its calls to Docker (one of the three).
    const scrapes = await Promise.all(c.daemons.filter((d) => d.running).map(scrape));
    const total = (series: string) => scrapes.reduce((n, body) => n + (sample(body, series) ?? 0), 0);
    assert.equal(total('shoal_agent_task_starts_total'), 1);
    assert.equal(total('shoal_agent_docker_call_duration_seconds_count{operation="create"}'), 1);
    assert.equal(total('shoal_raft_is_leader'), 1, 'one leader among the three');
  });

  test('on a non-loopback address: HTTPS that answers only the admin certificate', async () => {
    const url = `https://127.0.0.1:${tlsPort}/metrics`;
    const admin = adminTls();
    assert.match(await scrape(tlsManager), /^shoal_raft_term \d+$/m);
    // No client certificate: the TLS handshake refuses it.
    await assert.rejects(get(url, { ca: admin.ca, servername: 'shoal-node', agent: false }));
    // A node's certificate of the same cluster (m3's own): TLS lets it through, the endpoint does not.
    const node = NodeIdentity.load(tlsManager.dataDir).material;
    const denied = await get(url, { ca: admin.ca, cert: node.certPem, key: node.keyPem, servername: 'shoal-node', agent: false });
    assert.equal(denied.status, 403);
    assert.match(denied.body, /admin certificate/);
    // Plain HTTP gets nothing there.
    await assert.rejects(get(`http://127.0.0.1:${tlsPort}/metrics`));
  });

  test("a worker's metrics: its agent's, no Raft sample; once promoted, its manager's too", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}/metrics`;
    const leader = await leaderOf(c);
    const w = await c.join('w1', leader, 'worker', '127.0.0.1', {}, ['--metrics-addr', `127.0.0.1:${port}`]);
    const asWorker = await eventually('the worker serving its metrics', async () => {
      const r = await get(url).catch(() => undefined);
      // Its agent at work: Docker pinged, the managers' network view received.
      const working =
        r &&
        /^shoal_node_info\{.*role="worker"\} 1$/m.test(r.body) &&
        (sample(r.body, 'shoal_agent_docker_call_duration_seconds_count{operation="ping"}') ?? 0) >= 1 &&
        (sample(r.body, 'shoal_overlay_view_updates_total') ?? 0) >= 1;
      return working ? r.body : undefined;
    }, 30_000);
    assert.match(asWorker, /^# TYPE shoal_raft_term gauge$/m);
    assert.equal(sample(asWorker, 'shoal_raft_term'), undefined, 'no Raft member runs on a worker');

    await leader.call('PromoteNode', { node: 'w1' });
    // Its Raft member and its store (once caught up with the log: the service of the first test).
    const asManager = await eventually('the promoted node reporting its manager', async () => {
      const body = (await get(url)).body;
      return /role="manager"/.test(body) && sample(body, 'shoal_store_objects{kind="service"}') === 1 ? body : undefined;
    }, 60_000);
    assert.ok(sample(asManager, 'shoal_raft_term')! > 0);
    assert.ok(sample(asManager, 'shoal_raft_applied_index')! > 0);
    assert.ok(w.running);
  });

  test('--metrics-addr garbage: a one-line error, exit 1, nothing started', async () => {
    const d = await c.newDaemon('bad');
    d.start(['init', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--metrics-addr', 'garbage']);
    assert.equal(await d.exited(), 1);
    assert.equal(d.stderr, 'shoald: --metrics-addr must be HOST:PORT (port 1-65535), not "garbage"\n');
  });
});
