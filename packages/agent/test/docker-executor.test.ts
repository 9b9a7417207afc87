// DockerExecutor against the REAL Docker engine, with the offline test image shoal/busybox:latest.
// Needs `bash scripts/test-env.sh` (as root) first: it starts dockerd and builds the image.
// Every container is created under node ids unique to this run and removed by label in after().

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile as execFileCb } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { ShoalError } from '@shoal/api';
import type { PortConfig, ServiceSpec, Task } from '@shoal/types';
import { assignedTask, taskSpec } from './fixtures.js';
import {
  DockerExecutor,
  LABELS,
  executorErrorReason,
  type ContainerEvent,
  type ExecutorErrorReason,
} from '../src/index.js';

const execFile = promisify(execFileCb);
const IMAGE = 'shoal/busybox:latest';
const RUN = `t${randomBytes(4).toString('hex')}`;
const NODE_A = `${RUN}-node-a`;
const NODE_B = `${RUN}-node-b`;
const NODES = [NODE_A, NODE_B];
/** Containers made behind the executors' backs (no shoal label), removed by name in after(). */
const strays: string[] = [];
const PUBLISH_IP = '127.0.0.3';

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await execFile('docker', args, { timeout: 30_000 });
  return stdout.trim();
}

let seq = 0;
function mkTask(nodeId: string, over: Partial<ServiceSpec> = {}, slot = 1): Task {
  return assignedTask({ id: `${RUN}x${++seq}`, nodeId, spec: taskSpec(IMAGE, over), serviceId: `svc-${RUN}`, serviceName: `web${RUN}`, slot });
}

/** A TCP port free on `host` right now. */
function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, host, () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

async function rejectsWith(p: Promise<unknown>, reason: ExecutorErrorReason, msg: RegExp): Promise<ShoalError> {
  try {
    await p;
  } catch (err) {
    assert.ok(ShoalError.is(err), `expected a ShoalError, got ${String(err)}`);
    assert.equal(executorErrorReason(err), reason, `reason of: ${err.message}`);
    assert.match(err.message, msg);
    return err;
  }
  assert.fail(`expected a rejection with reason ${reason}`);
}

async function waitFor<T>(what: string, fn: () => T | undefined, ms = 5000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function httpGet(url: string): Promise<{ status: number; body: string }> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
  return { status: res.status, body: await res.text() };
}

describe('DockerExecutor (real Docker)', { timeout: 120_000 }, () => {
  let a: DockerExecutor;
  let b: DockerExecutor;

  before(async () => {
    try {
      await execFile('docker', ['info', '--format', '{{.ServerVersion}}'], { timeout: 15_000 });
    } catch (err) {
      const e = err as Error & { stderr?: string };
      const why = (e.stderr?.trim() || e.message).split('\n')[0];
      throw new Error(
        `Docker is not reachable (\`docker info\` failed: ${why}). ` +
          'These tests need a running Docker engine and the test image: run `bash scripts/test-env.sh` (as root) first.',
      );
    }
    try {
      await docker('image', 'inspect', IMAGE);
    } catch {
      throw new Error(`the test image ${IMAGE} is missing: run \`bash scripts/test-env.sh\` (as root) first.`);
    }
    a = new DockerExecutor({ nodeId: NODE_A, publishIp: PUBLISH_IP, pullStallTimeoutMs: 5000 });
    b = new DockerExecutor({ nodeId: NODE_B, publishIp: '127.0.0.4' });
  });

  after(async () => {
    await a?.close();
    await b?.close();
    const ids: string[] = [];
    for (const n of NODES) {
      const out = await docker('ps', '-aq', '--filter', `label=${LABELS.nodeId}=${n}`).catch(() => '');
      ids.push(...out.split('\n').filter(Boolean));
    }
    for (const s of strays) ids.push(s);
    if (ids.length > 0) await docker('rm', '-f', ...ids).catch(() => '');
    for (const n of NODES) {
      const left = await docker('ps', '-aq', '--filter', `label=${LABELS.nodeId}=${n}`).catch(() => '');
      assert.equal(left, '', `containers of ${n} left behind`);
    }
  });

  test('ping and info describe the engine', async () => {
    await a.ping();
    const info = await a.info();
    assert.ok(info.engineVersion.length > 0);
    assert.ok(info.apiVersion.length > 0);
    assert.ok(info.ncpu >= 1);
    assert.ok(info.memoryBytes > 0);
    assert.equal(info.os, 'linux');
  });

  test('runs an httpd task: name, labels, env, command, inspect, die on an outside kill, stop, remove', async (t) => {
    const events: Array<ContainerEvent & { at: number }> = [];
    const sub = a.events((e) => events.push({ ...e, at: Date.now() }));
    await sub.ready;

    const task = mkTask(NODE_A);
    await a.prepare(task); // a tag: pulled (offline: the pull fails and the local copy is used)
    const id = await a.create(task);
    assert.match(id, /^[0-9a-f]{64}$/);

    const raw = JSON.parse(await docker('inspect', id))[0];
    assert.equal(raw.Name, `/${task.serviceName}.1.${task.id}`);
    assert.deepEqual(
      Object.fromEntries(Object.entries(raw.Config.Labels as Record<string, string>).filter(([k]) => k.startsWith('shoal.'))),
      {
        'shoal.service.name': task.serviceName,
        'shoal.service.id': task.serviceId,
        'shoal.task.id': task.id,
        'shoal.task.slot': '1',
        'shoal.node.id': NODE_A,
      },
    );
    assert.deepEqual(raw.Config.Cmd, ['httpd', '-f', '-p', '8080']);
    assert.ok(raw.Config.Env.includes('GREETING=hello world'));
    assert.ok(raw.Config.Env.includes('A=1'));
    assert.equal(raw.HostConfig.RestartPolicy.Name, 'no');

    const created = await a.inspect(id);
    assert.equal(created.running, false);
    assert.equal(created.state, 'created');

    await a.start(id);
    const st = await a.inspect(id);
    assert.equal(st.running, true);
    assert.equal(st.state, 'running');
    assert.equal(st.name, `${task.serviceName}.1.${task.id}`);
    assert.equal(st.taskId, task.id);
    assert.ok(st.startedAt > Date.now() - 60_000 && st.startedAt <= Date.now() + 1000, `startedAt ${st.startedAt}`);
    assert.equal(st.finishedAt, 0);
    // The container serves HTTP inside (busybox wget from the same container).
    assert.equal(await docker('exec', id, 'wget', '-q', '-O', '-', 'http://127.0.0.1:8080/'), 'shoal-busybox ok');

    await waitFor('the start event', () => events.find((e) => e.containerId === id && e.action === 'start'));

    // A kill from outside (the docker CLI) is reported as 'die' with the exit code, fast.
    const t0 = Date.now();
    await docker('kill', id);
    const killed = Date.now();
    const die = await waitFor('the die event', () => events.find((e) => e.containerId === id && e.action === 'die'));
    assert.equal(die.taskId, task.id);
    assert.equal(die.exitCode, 137);
    t.diagnostic(`die event ${die.at - t0} ms after running \`docker kill\` (the CLI took ${killed - t0} ms)`);
    assert.ok(die.at - killed < 1000, `die arrived ${die.at - killed} ms after docker kill returned (${killed - t0} ms in the CLI)`);

    const dead = await a.inspect(id);
    assert.equal(dead.running, false);
    assert.equal(dead.exitCode, 137);
    assert.ok(dead.finishedAt >= dead.startedAt);

    // Stopping an exited container is fine; removing it reports destroy.
    await a.stop(id, 1000);
    await a.remove(id);
    await waitFor('the destroy event', () => events.find((e) => e.containerId === id && e.action === 'destroy'));
    await rejectsWith(a.inspect(id), 'container-not-found', /No such container/i);
    await a.remove(id); // idempotent
    await a.stop(id, 1000); // idempotent
    sub.close();
  });

  test('stop honours the grace period: SIGTERM, then SIGKILL after ceil(grace) seconds', async () => {
    const events: ContainerEvent[] = [];
    const sub = a.events((e) => events.push(e));
    await sub.ready;
    // httpd as PID 1 ignores SIGTERM: stop waits the whole grace period, then kills.
    const stubborn = await a.create(mkTask(NODE_A));
    // A shell that exits 0 on SIGTERM: stop returns at once.
    const polite = await a.create(
      mkTask(NODE_A, { command: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 0.1; done'] }, 2),
    );
    await a.start(stubborn);
    await a.start(polite);

    let t = Date.now();
    await a.stop(stubborn, 1000);
    const stubbornMs = Date.now() - t;
    assert.ok(stubbornMs >= 900 && stubbornMs < 5000, `stop took ${stubbornMs} ms`);
    const s1 = await a.inspect(stubborn);
    assert.equal(s1.running, false);
    assert.equal(s1.exitCode, 137);

    t = Date.now();
    await a.stop(polite, 10_000);
    const politeMs = Date.now() - t;
    assert.ok(politeMs < 3000, `a container that exits on SIGTERM took ${politeMs} ms to stop`);
    const s2 = await a.inspect(polite);
    assert.equal(s2.running, false);
    assert.equal(s2.exitCode, 0);

    await waitFor('stop events', () =>
      events.filter((e) => e.action === 'stop' && (e.containerId === stubborn || e.containerId === polite)).length === 2 ? true : undefined,
    );
    await a.remove(stubborn);
    await a.remove(polite);
    sub.close();
  });

  test('global tasks are named SERVICE.NODEID.TASKID; args alone become the Cmd', async () => {
    const task = mkTask(NODE_A, { mode: 'global', replicas: 0, command: [], args: ['sleep', '30'] });
    const id = await a.create(task);
    const raw = JSON.parse(await docker('inspect', id))[0];
    assert.equal(raw.Name, `/${task.serviceName}.${NODE_A}.${task.id}`);
    assert.equal(raw.Config.Labels['shoal.task.slot'], '0');
    assert.deepEqual(raw.Config.Cmd, ['sleep', '30']);
    // No command and no args: the image's own CMD.
    const plain = await a.create(mkTask(NODE_A, { command: [], args: [] }, 7));
    assert.deepEqual(JSON.parse(await docker('inspect', plain))[0].Config.Cmd, ['/bin/sh']);
    // Creating the same task again (a retry) gives the same container.
    assert.equal(await a.create(task), id);
    await a.remove(id);
    await a.remove(plain);
  });

  test('the spec\'s workdir is the process\'s working directory; none keeps the image\'s', async () => {
    const task = mkTask(NODE_A, { command: ['sleep', '30'], workdir: '/tmp' });
    const id = await a.create(task);
    await a.start(id);
    assert.equal(await docker('exec', id, 'pwd'), '/tmp');
    const plain = await a.create(mkTask(NODE_A, { command: ['sleep', '30'] }, 8));
    assert.equal(JSON.parse(await docker('inspect', plain))[0].Config.WorkingDir, '/www');
    await a.remove(id);
    await a.remove(plain);
  });

  test('each node sees and touches only its own containers', async () => {
    const ta = mkTask(NODE_A, { command: ['sleep', '60'] });
    const tb = mkTask(NODE_B, { command: ['sleep', '60'] });
    const ca = await a.create(ta);
    const cb = await b.create(tb);
    await a.start(ca);

    const ownedA = await a.listOwned();
    const ownedB = await b.listOwned();
    assert.deepEqual(ownedA.map((c) => c.id), [ca]);
    assert.deepEqual(ownedB.map((c) => c.id), [cb]);
    assert.equal(ownedA[0]!.taskId, ta.id);
    assert.equal(ownedA[0]!.serviceId, ta.serviceId);
    assert.equal(ownedA[0]!.serviceName, ta.serviceName);
    assert.equal(ownedA[0]!.slot, 1);
    assert.equal(ownedA[0]!.nodeId, NODE_A);
    assert.equal(ownedA[0]!.state, 'running');
    assert.equal(ownedA[0]!.name, `${ta.serviceName}.1.${ta.id}`);
    assert.equal(ownedB[0]!.state, 'created');

    // B refuses every operation on A's container, and A's container is untouched.
    await rejectsWith(b.stop(ca, 0), 'not-owned', new RegExp(`belongs to node ${NODE_A}`));
    await rejectsWith(b.remove(ca), 'not-owned', /refusing/);
    await rejectsWith(b.inspect(ca), 'not-owned', /refusing/);
    await rejectsWith(b.start(ca), 'not-owned', /refusing/);
    assert.equal((await a.inspect(ca)).running, true);
    // ... and it refuses to create a task assigned to another node.
    await rejectsWith(b.create(mkTask(NODE_A)), 'not-owned', /assigned to node/);

    // A container without any shoal label is nobody's.
    const strayName = `${RUN}-stray`;
    strays.push(strayName);
    const stray = await docker('create', '--name', strayName, IMAGE, 'sleep', '60');
    await rejectsWith(a.stop(stray, 0), 'not-owned', /has no shoal\.node\.id label/);
    await rejectsWith(a.remove(stray), 'not-owned', /has no shoal\.node\.id label/);
    assert.ok((await docker('ps', '-aq', '--no-trunc', '--filter', `name=${strayName}`)).includes(stray));
    assert.ok(!(await a.listOwned()).some((c) => c.id === stray));

    // Events: each node hears only of its own containers.
    const evA: ContainerEvent[] = [];
    const evB: ContainerEvent[] = [];
    const subA = a.events((e) => evA.push(e));
    const subB = b.events((e) => evB.push(e));
    await Promise.all([subA.ready, subB.ready]);
    await b.start(cb);
    await waitFor('B start event', () => evB.find((e) => e.containerId === cb && e.action === 'start'));
    await docker('start', stray);
    await docker('kill', stray);
    await a.stop(ca, 0);
    await waitFor('A die event', () => evA.find((e) => e.containerId === ca && e.action === 'die'));
    await new Promise((r) => setTimeout(r, 200));
    assert.ok(evA.every((e) => e.containerId === ca), `A saw ${JSON.stringify(evA)}`);
    assert.ok(evB.every((e) => e.containerId === cb), `B saw ${JSON.stringify(evB)}`);
    subA.close();
    subB.close();

    await a.remove(ca);
    await b.remove(cb);
    assert.deepEqual(await a.listOwned(), []);
    assert.deepEqual(await b.listOwned(), []);
  });

  test('host-mode ports are published on the node\'s IP; ingress ports are not bound', async () => {
    const port = await freePort(PUBLISH_IP);
    const ports: PortConfig[] = [
      { protocol: 'tcp', targetPort: 8080, publishedPort: port, publishMode: 'host', proxyProtocol: false },
      { protocol: 'tcp', targetPort: 8081, publishedPort: 30080, publishMode: 'ingress', proxyProtocol: false },
    ];
    const task = mkTask(NODE_A, { ports });
    const id = await a.create(task);
    await a.start(id);
    const st = await a.inspect(id);
    assert.deepEqual(st.ports, [{ protocol: 'tcp', targetPort: 8080, hostIp: PUBLISH_IP, hostPort: port }]);
    const raw = JSON.parse(await docker('inspect', id))[0];
    assert.deepEqual(Object.keys(raw.HostConfig.PortBindings), ['8080/tcp']);

    // httpd needs a moment to listen after the container starts.
    let got: { status: number; body: string } | undefined;
    const end = Date.now() + 5000;
    while (!got) {
      try {
        got = await httpGet(`http://${PUBLISH_IP}:${port}/`);
      } catch (err) {
        if (Date.now() > end) throw err;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
    assert.equal(got.status, 200);
    assert.equal(got.body.trim(), 'shoal-busybox ok');
    // The CGI answers the container's hostname (its short id): tells which replica answered.
    assert.equal((await httpGet(`http://${PUBLISH_IP}:${port}/cgi-bin/hostname`)).body.trim(), id.slice(0, 12));

    // A second task wanting the same host port fails to start, clearly.
    const clash = await a.create(mkTask(NODE_A, { ports: [ports[0]!] }, 2));
    const err = await rejectsWith(a.start(clash), 'port-conflict', new RegExp(`host port ${PUBLISH_IP.replace(/\./g, '\\.')}:${port} is already in use`));
    assert.equal(err.code, 'RESOURCE_EXHAUSTED');
    assert.equal((await a.inspect(clash)).running, false);

    // A port held by another process (not Docker) is a conflict too.
    const holder = net.createServer();
    await new Promise<void>((r) => holder.listen(0, PUBLISH_IP, r));
    const held = (holder.address() as net.AddressInfo).port;
    try {
      const c2 = await a.create(mkTask(NODE_A, { ports: [{ ...ports[0]!, publishedPort: held }] }, 3));
      await rejectsWith(a.start(c2), 'port-conflict', /is already in use/);
      await a.remove(c2);
    } finally {
      holder.close();
    }
    await a.remove(clash);
    await a.stop(id, 0);
    await a.remove(id);
  });

  test('a missing image fails clearly and fast (no registry reachable)', async () => {
    const task = mkTask(NODE_A, { image: `127.0.0.1:${await freePort('127.0.0.1')}/does-not-exist-${RUN}` });
    const t = Date.now();
    const err = await rejectsWith(
      a.prepare(task),
      'registry-unreachable',
      new RegExp(`^image 127\\.0\\.0\\.1:\\d+/does-not-exist-${RUN}:latest not found locally and cannot be pulled: registry unreachable: .+`),
    );
    assert.equal(err.code, 'UNAVAILABLE');
    assert.ok(Date.now() - t < 15_000, `prepare took ${Date.now() - t} ms`);
    // Creating without preparing says the image is missing too.
    await rejectsWith(a.create(task), 'image-not-found', /not found locally/);
  });

  test('pull failures reported inside the progress stream, and stalled pulls, fail clearly (fake engine)', async () => {
    // A stand-in engine: no image is local; one pull reports an error mid-stream, one never progresses.
    const fake = http.createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      if (req.method === 'GET' && /^\/images\/.+\/json$/.test(url.pathname)) {
        res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"No such image"}');
      } else if (req.method === 'POST' && url.pathname === '/images/create') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write('{"status":"Pulling from shoal/x","id":"latest"}\n');
        if (url.searchParams.get('fromImage') === 'shoal/broken:latest') {
          res.end('{"errorDetail":{"message":"manifest for shoal/broken:latest not found"},"error":"manifest for shoal/broken:latest not found"}\n');
        } // else: never another byte
      } else {
        res.writeHead(500).end('{"message":"unexpected"}');
      }
    });
    await new Promise<void>((r) => fake.listen(0, '127.0.0.1', r));
    const ex = new DockerExecutor({
      nodeId: NODE_A,
      dockerHost: `tcp://127.0.0.1:${(fake.address() as net.AddressInfo).port}`,
      pullStallTimeoutMs: 300,
    });
    try {
      await rejectsWith(
        ex.prepare(mkTask(NODE_A, { image: 'shoal/broken' })),
        'image-not-found',
        /^image shoal\/broken:latest not found locally and cannot be pulled: not found in the registry: manifest for shoal\/broken:latest not found$/,
      );
      const t = Date.now();
      await rejectsWith(
        ex.prepare(mkTask(NODE_A, { image: 'shoal/stuck:v1' })),
        'registry-unreachable',
        /^image shoal\/stuck:v1 not found locally and cannot be pulled: registry unreachable: the pull stalled/,
      );
      assert.ok(Date.now() - t < 3000, `a stalled pull took ${Date.now() - t} ms to give up`);
    } finally {
      await ex.close();
      fake.closeAllConnections();
      await new Promise((r) => fake.close(r));
    }
  });

  test('unreachable Docker: ping and info fail fast with a clear error', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-agent-'));
    const sock = path.join(dir, 'nope.sock');
    const down = new DockerExecutor({ nodeId: NODE_A, dockerHost: `unix://${sock}` });
    try {
      let t = Date.now();
      const err = await rejectsWith(down.ping(), 'runtime-unreachable', new RegExp(`cannot reach Docker at unix://${sock}: no such socket`));
      assert.equal(err.code, 'UNAVAILABLE');
      assert.ok(Date.now() - t < 1000, `ping took ${Date.now() - t} ms`);
      await rejectsWith(down.info(), 'runtime-unreachable', /cannot reach Docker/);
      await rejectsWith(down.listOwned(), 'runtime-unreachable', /cannot reach Docker/);
      // TCP: a closed port is refused at once.
      const port = await freePort('127.0.0.1');
      const tcp = new DockerExecutor({ nodeId: NODE_A, dockerHost: `tcp://127.0.0.1:${port}` });
      t = Date.now();
      await rejectsWith(tcp.ping(), 'runtime-unreachable', /connection refused/);
      assert.ok(Date.now() - t < 1000);
      await tcp.close();
      // A listener that never answers: ping gives up after pingTimeoutMs.
      const mute = net.createServer((s) => s.resume()); // reads the request, never answers
      await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r));
      const slow = new DockerExecutor({
        nodeId: NODE_A,
        dockerHost: `tcp://127.0.0.1:${(mute.address() as net.AddressInfo).port}`,
        pingTimeoutMs: 300,
      });
      t = Date.now();
      await rejectsWith(slow.ping(), 'runtime-unreachable', /did not answer in time/);
      assert.ok(Date.now() - t < 2000);
      await slow.close();
      await new Promise((r) => mute.close(r));
    } finally {
      await down.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('the event stream reconnects when it breaks, without losing events', async () => {
    // A unix-socket proxy in front of the engine, whose connections the test can cut.
    const dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-agent-'));
    const sock = path.join(dir, 'proxy.sock');
    const conns = new Set<net.Socket>();
    const proxy = net.createServer((client) => {
      const upstream = net.connect('/var/run/docker.sock');
      conns.add(client);
      conns.add(upstream);
      client.pipe(upstream).pipe(client);
      const drop = (): void => {
        client.destroy();
        upstream.destroy();
        conns.delete(client);
        conns.delete(upstream);
      };
      client.on('error', drop).on('close', drop);
      upstream.on('error', drop).on('close', drop);
    });
    await new Promise<void>((r) => proxy.listen(sock, r));
    const viaProxy = new DockerExecutor({ nodeId: NODE_A, dockerHost: `unix://${sock}` });
    try {
      const events: ContainerEvent[] = [];
      const errors: Error[] = [];
      const sub = viaProxy.events((e) => events.push(e), { onError: (e) => errors.push(e), reconnectDelayMs: 500 });
      await sub.ready;
      const id = await a.create(mkTask(NODE_A, { command: ['sleep', '60'] }));
      await a.start(id);
      await waitFor('start event', () => events.find((e) => e.containerId === id && e.action === 'start'));

      // Cut every connection, then kill the container while the subscription is disconnected.
      for (const c of [...conns]) c.destroy();
      await waitFor('the subscription to notice', () => (errors.length > 0 ? true : undefined));
      await docker('kill', id);
      const die = await waitFor('die event after reconnecting', () => events.find((e) => e.containerId === id && e.action === 'die'));
      assert.equal(die.exitCode, 137);
      // Replayed events are not delivered twice.
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(events.filter((e) => e.containerId === id && e.action === 'start').length, 1);
      assert.equal(events.filter((e) => e.containerId === id && e.action === 'die').length, 1);
      sub.close();
      await a.remove(id);
    } finally {
      await viaProxy.close();
      proxy.close();
      for (const c of conns) c.destroy();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
