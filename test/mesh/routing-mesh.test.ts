// The routing mesh on real containers (issue 6, SCENARIO step 2): three nodes on 127.0.0.1-3
// sharing this machine's Docker engine; a busybox httpd service with 2 replicas publishing a port
// in ingress mode answers on every node's address, spreads over both replicas, survives a killed
// replica without a failed request, refuses at once with no replica, and closes when removed.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as net from 'node:net';
import { probe } from '../helpers/net.js';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';

const IMAGE = 'shoal/busybox:latest';
const HOSTS: Record<string, string> = { m1: '127.0.0.1', w1: '127.0.0.2', w2: '127.0.0.3' };
const PORT = 28080;

interface TaskView {
  task: { id: string; nodeId: string; desiredState: string; status: { state: string; containerId: string } };
  nodeHostname: string;
}

/** The body of GET http://host:port/ (throws if nothing answers in time). */
async function get(host: string, port = PORT): Promise<string> {
  const res = await fetch(`http://${host}:${port}/`, { signal: AbortSignal.timeout(3_000) });
  return (await res.text()).trim();
}

describe('routing mesh', () => {
  const c = new TestCluster();
  let m1: Daemon;

  const tasks = async (service: string) => (await m1.call<{ tasks: TaskView[] }>('ListTasks', { service })).tasks;
  const running = async (service: string) =>
    (await tasks(service)).filter((t) => t.task.desiredState === 'running' && t.task.status.state === 'running');

  before(async () => {
    execFileSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' });
    [m1] = await c.managers(1);
    await c.join('w1', m1, 'worker', HOSTS.w1);
    await c.join('w2', m1, 'worker', HOSTS.w2);
    await eventually('three ready nodes', async () => {
      const r = await m1.call<{ nodes: { node: { status: { state: string; meshAddr: string } } }[] }>('ListNodes');
      return r.nodes.length === 3 && r.nodes.every((n) => n.node.status.state === 'ready' && n.node.status.meshAddr) ? true : undefined;
    });
    // Both replicas on workers: m1 runs none, so it must forward to other nodes.
    await m1.call('CreateService', {
      spec: {
        name: 'web-fe',
        image: IMAGE,
        args: ['sh', '-c', `hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp`],
        replicas: 2,
        stopGracePeriodMs: 500,
        restartPolicy: { condition: 'any', delayMs: 0 },
        constraints: ['node.role==worker'],
        ports: [{ protocol: 'tcp', targetPort: 8080, publishedPort: PORT, publishMode: 'ingress' }],
      },
    });
    await eventually('2 replicas running', async () => ((await running('web-fe')).length === 2 ? true : undefined), 60_000);
  });
  after(() => c.stop());

  test('every node answers on the published port', async () => {
    for (const host of Object.values(HOSTS)) {
      const body = await eventually(`an answer on ${host}:${PORT}`, async () => get(host).catch(() => undefined), 20_000);
      assert.match(body, /^[0-9a-f]{12}$/, 'the body is a container hostname');
    }
  });

  test('connections through one node reach both replicas', async () => {
    for (const host of [HOSTS.m1, HOSTS.w1]) {
      const seen = new Set<string>();
      for (let i = 0; i < 40; i++) seen.add(await get(host));
      assert.equal(seen.size, 2, `both replicas answered through ${host}: ${[...seen].join(', ')}`);
    }
  });

  test('a killed replica: no request fails while its replacement starts', async () => {
    const before = await running('web-fe');
    const victim = before[0]!;
    let failures = 0;
    let requests = 0;
    let stop = false;
    /** Which containers answered (their hostnames). */
    const answered = new Set<string>();
    const load = (async () => {
      while (!stop) {
        for (const host of Object.values(HOSTS)) {
          requests++;
          await get(host).then((body) => answered.add(body), () => failures++);
        }
      }
    })();
    execFileSync('docker', ['kill', victim.task.status.containerId]);
    const replacement = await eventually('a replacement running', async () => {
      const r = await running('web-fe');
      const fresh = r.find((t) => !before.some((b) => b.task.id === t.task.id));
      return r.length === 2 && !r.some((t) => t.task.id === victim.task.id) && fresh?.task.status.containerId ? fresh : undefined;
    }, 30_000);
    // Keep loading until the mesh sends requests to the replacement too.
    await eventually('the replacement serving', async () => [...answered].some((h) => replacement.task.status.containerId.startsWith(h)), 30_000);
    stop = true;
    await load;
    assert.ok(requests > 10, `requests were made (${requests})`);
    assert.equal(failures, 0, `${failures} of ${requests} requests failed`);
  });

  test('a second service asking for the same port: a clear error, nothing stored', async () => {
    await assert.rejects(
      m1.call('CreateService', {
        spec: { name: 'other', image: IMAGE, replicas: 1, ports: [{ protocol: 'tcp', targetPort: 80, publishedPort: PORT, publishMode: 'ingress' }] },
      }),
      (err: Error) => /published port 28080\/tcp is already in use by service "web-fe"/.test(err.message),
    );
    const r = await m1.call<{ services: { service: { spec: { name: string } } }[] }>('ListServices');
    assert.deepEqual(r.services.map((s) => s.service.spec.name), ['web-fe']);
  });

  test('scale to 0: refused at once on every node; scale back: served again', async () => {
    await m1.call('ScaleService', { service: 'web-fe', replicas: 0 });
    for (const host of Object.values(HOSTS)) {
      await eventually(`${host}:${PORT} refuses`, async () => ((await probe(host, PORT)) === 'refused' ? true : undefined), 30_000);
    }
    await m1.call('ScaleService', { service: 'web-fe', replicas: 2 });
    for (const host of Object.values(HOSTS)) {
      await eventually(`${host}:${PORT} serves again`, async () => get(host).catch(() => undefined), 60_000);
    }
  });

  test('PROXY protocol v2: the task gets the client\'s address before the data', async () => {
    // nc stores what each connection sends (header included) where httpd serves it, on a second
    // published port without the option.
    await m1.call('CreateService', {
      spec: {
        name: 'pp',
        image: IMAGE,
        args: ['sh', '-c', 'mkdir -p /tmp/www; (while true; do nc -l -p 9000 > /tmp/www/got.tmp; mv /tmp/www/got.tmp /tmp/www/got; done) & exec httpd -f -p 8080 -h /tmp/www'],
        replicas: 1,
        stopGracePeriodMs: 500,
        constraints: ['node.role==worker'],
        ports: [
          { protocol: 'tcp', targetPort: 9000, publishedPort: PORT + 1, publishMode: 'ingress', proxyProtocol: true },
          { protocol: 'tcp', targetPort: 8080, publishedPort: PORT + 2, publishMode: 'ingress' },
        ],
      },
    });
    await eventually('pp running', async () => ((await running('pp')).length === 1 ? true : undefined), 60_000);
    // Through m1, which runs no replica: the client address crosses the forwarding hop.
    await eventually('a connection through the mesh', async () => {
      const ok = await new Promise<boolean>((resolve) => {
        const s = net.connect({ host: HOSTS.m1, port: PORT + 1, localAddress: '127.0.0.9' }, () => s.end('hello mesh\n'));
        s.on('error', () => resolve(false));
        s.on('close', () => resolve(true));
      });
      if (!ok) return undefined;
      const res = await fetch(`http://${HOSTS.m1}:${PORT + 2}/got`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
      if (!res || res.status !== 200) return undefined;
      const got = Buffer.from(await res.arrayBuffer());
      return got.includes('hello mesh') ? got : undefined;
    }, 30_000).then((got) => {
      const sig = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);
      assert.deepEqual(got.subarray(0, 12), sig, 'a PROXY v2 signature first');
      assert.equal(got[12], 0x21, 'version 2, PROXY command');
      assert.equal(got[13], 0x11, 'TCP over IPv4');
      assert.deepEqual([...got.subarray(16, 20)], [127, 0, 0, 9], 'the real client address');
      assert.equal(got.subarray(28).toString(), 'hello mesh\n', 'then the data');
    });
    await m1.call('RemoveService', { service: 'pp' });
  });

  test('a node that cannot bind a published port says so; the others serve', async () => {
    const holder = net.createServer((sock) => sock.end('not the mesh\n'));
    await new Promise<void>((r) => holder.listen(PORT + 3, HOSTS.w1, r));
    try {
      await m1.call('CreateService', {
        spec: {
          name: 'blocked',
          image: IMAGE,
          args: ['sh', '-c', 'hostname > /tmp/index.html; exec httpd -f -p 8080 -h /tmp'],
          replicas: 1,
          stopGracePeriodMs: 500,
          ports: [{ protocol: 'tcp', targetPort: 8080, publishedPort: PORT + 3, publishMode: 'ingress' }],
        },
      });
      const err = await eventually('w1 reports the port it cannot serve', async () => {
        const r = (await m1.call<{ node: { node: { status: { meshErrors: string[] } } } }>('GetNode', { node: 'w1' })).node;
        return r.node.status.meshErrors.find((e) => e.startsWith(`${PORT + 3}/tcp`));
      }, 30_000);
      assert.match(err, /EADDRINUSE|in use/);
      for (const host of [HOSTS.m1, HOSTS.w2]) {
        await eventually(`${host} serves`, async () => get(host, PORT + 3).catch(() => undefined), 60_000);
      }
    } finally {
      holder.close();
    }
    // Freed: w1 binds it and the error goes.
    await eventually('w1 serves once the port is free', async () => {
      const r = (await m1.call<{ node: { node: { status: { meshErrors: string[] } } } }>('GetNode', { node: 'w1' })).node;
      if (r.node.status.meshErrors.length > 0) return undefined;
      return get(HOSTS.w1, PORT + 3).catch(() => undefined);
    }, 30_000);
    await m1.call('RemoveService', { service: 'blocked' });
  });

  test('service rm: the port is closed on every node', async () => {
    await m1.call('RemoveService', { service: 'web-fe' });
    for (const host of Object.values(HOSTS)) {
      await eventually(`${host}:${PORT} closed`, async () => ((await probe(host, PORT)) === 'refused' ? true : undefined), 30_000);
    }
  });
});

