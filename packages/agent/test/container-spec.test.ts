// The container's spec fields (entrypoint, user, hostname templates, DNS, init, stop signal,
// read-only root, capabilities, sysctls, ulimits, labels, logging, tty, mounts) reaching a real
// container through DockerExecutor, and named volumes outliving their task. Needs the real
// Docker engine and the test image (`bash scripts/test-env.sh`, as root). Containers and volumes
// are made under node ids unique to this run and removed by label in after().

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile as execFileCb } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { type ServiceSpec, type Task, completeServiceSpec } from '@shoal/types';
import { assignedTask } from './fixtures.js';
import { DockerExecutor, LABELS } from '../src/index.js';

const execFile = promisify(execFileCb);
const IMAGE = 'shoal/busybox:latest';
const RUN = `c${randomBytes(4).toString('hex')}`;
const NODE = `${RUN}-node`;
const NODE_HOSTNAME = `${RUN}-host`;
const VOLUME = `${RUN}-data`;

async function docker(...args: string[]): Promise<string> {
  const { stdout } = await execFile('docker', args, { timeout: 30_000 });
  return stdout.trim();
}

/** `docker exec` that resolves to { code, out } instead of throwing on a non-zero exit. */
async function dockerExec(id: string, ...cmd: string[]): Promise<{ code: number; out: string }> {
  try {
    const { stdout, stderr } = await execFile('docker', ['exec', id, ...cmd], { timeout: 30_000 });
    return { code: 0, out: (stdout + stderr).trim() };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout ?? ''}${e.stderr ?? ''}`.trim() };
  }
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

let seq = 0;
function mkTask(input: Parameters<typeof completeServiceSpec>[0], slot = 1): Task {
  const spec: ServiceSpec = completeServiceSpec({ name: 'web', image: IMAGE, restartPolicy: { delayMs: 0 }, stopGracePeriodMs: 1000, ...input });
  return assignedTask({ id: `${RUN}x${++seq}`, nodeId: NODE, spec, serviceId: `svc-${RUN}`, serviceName: `web${RUN}`, slot });
}

describe('the container settings of a spec (real Docker)', { timeout: 120_000 }, () => {
  let ex: DockerExecutor;
  let dir = '';

  before(async () => {
    try {
      await docker('image', 'inspect', IMAGE);
    } catch (err) {
      throw new Error(`Docker or the test image ${IMAGE} is missing (run \`bash scripts/test-env.sh\` as root first): ${(err as Error).message.split('\n')[0]}`);
    }
    ex = new DockerExecutor({ nodeId: NODE, hostname: NODE_HOSTNAME });
    dir = await mkdtemp(path.join(os.tmpdir(), 'shoal-mounts-'));
    await chmod(dir, 0o755); // the container's user (1000) reads it
    await writeFile(path.join(dir, 'hello.txt'), 'from the host\n');
  });

  after(async () => {
    await ex?.close();
    const ids = (await docker('ps', '-aq', '--filter', `label=${LABELS.nodeId}=${NODE}`).catch(() => '')).split('\n').filter(Boolean);
    if (ids.length > 0) await docker('rm', '-f', ...ids).catch(() => '');
    const vols = (await docker('volume', 'ls', '-q', '--filter', `label=${LABELS.nodeId}=${NODE}`).catch(() => '')).split('\n').filter(Boolean);
    if (vols.length > 0) await docker('volume', 'rm', '-f', ...vols).catch(() => '');
    if (dir) await rm(dir, { recursive: true, force: true });
    assert.equal(await docker('ps', '-aq', '--filter', `label=${LABELS.nodeId}=${NODE}`).catch(() => ''), '', 'containers left behind');
    assert.equal(await docker('volume', 'ls', '-q', '--filter', `label=${LABELS.nodeId}=${NODE}`).catch(() => ''), '', 'volumes left behind');
  });

  async function run(task: Task): Promise<string> {
    await ex.prepare(task);
    const id = await ex.create(task);
    await ex.start(id);
    return id;
  }

  test('every field is in the container: docker inspect and the running process agree', async () => {
    const task = mkTask({
      entrypoint: ['/bin/sh', '-c'],
      command: ['exec sleep 600'],
      user: '1000:1000',
      hostname: '{{.Service.Name}}-{{.Task.Slot}}.{{.Node.Hostname}}',
      dnsConfig: { nameservers: ['192.0.2.53'], search: ['example.test'], options: ['ndots:2'] },
      init: true,
      stopSignal: 'SIGINT',
      capAdd: ['NET_ADMIN'],
      capDrop: ['CHOWN'],
      sysctls: { 'net.core.somaxconn': '1000' },
      ulimits: [{ name: 'nofile', soft: 1024, hard: 2048 }],
      containerLabels: { 'com.example.team': 'blue', [LABELS.nodeId]: 'not-this-one' },
      logDriver: { name: 'json-file', options: { 'max-size': '1m' } },
      tty: true,
      mounts: [
        { type: 'tmpfs', target: '/scratch', tmpfsOptions: { sizeBytes: 8 << 20, mode: 0o1777 } },
        { type: 'bind', source: dir, target: '/host', readOnly: true },
      ],
    });
    const id = await run(task);
    const raw = JSON.parse(await docker('inspect', id))[0];
    assert.deepEqual(raw.Config.Entrypoint, ['/bin/sh', '-c']);
    assert.deepEqual(raw.Config.Cmd, ['exec sleep 600']);
    assert.equal(raw.Config.User, '1000:1000');
    assert.equal(raw.Config.Hostname, `web${RUN}-1.${NODE_HOSTNAME}`);
    assert.equal(raw.Config.StopSignal, 'SIGINT');
    assert.equal(raw.Config.Tty, true);
    assert.equal(raw.Config.Labels['com.example.team'], 'blue');
    assert.equal(raw.Config.Labels[LABELS.nodeId], NODE, "Shoal's own labels win");
    assert.deepEqual(raw.HostConfig.Dns, ['192.0.2.53']);
    assert.deepEqual(raw.HostConfig.DnsSearch, ['example.test']);
    assert.deepEqual(raw.HostConfig.DnsOptions, ['ndots:2']);
    assert.equal(raw.HostConfig.Init, true);
    assert.deepEqual(raw.HostConfig.CapAdd, ['CAP_NET_ADMIN']);
    assert.deepEqual(raw.HostConfig.CapDrop, ['CAP_CHOWN']);
    assert.deepEqual(raw.HostConfig.Sysctls, { 'net.core.somaxconn': '1000' });
    assert.deepEqual(raw.HostConfig.Ulimits, [{ Name: 'nofile', Soft: 1024, Hard: 2048 }]);
    assert.deepEqual(raw.HostConfig.LogConfig, { Type: 'json-file', Config: { 'max-size': '1m' } });

    // And inside: the process sees them (the service's own: docker exec's processes get the hard
    // limit of nofile as their soft one).
    assert.equal((await dockerExec(id, 'hostname')).out, `web${RUN}-1.${NODE_HOSTNAME}`);
    assert.equal((await dockerExec(id, 'id', '-u')).out, '1000');
    const resolv = (await dockerExec(id, 'cat', '/etc/resolv.conf')).out;
    assert.match(resolv, /^nameserver 192\.0\.2\.53$/m);
    assert.match(resolv, /^search example\.test$/m);
    assert.match(resolv, /^options ndots:2$/m);
    assert.equal((await dockerExec(id, 'cat', '/proc/sys/net/core/somaxconn')).out, '1000');
    assert.match((await dockerExec(id, 'cat', '/proc/1/limits')).out, /^Max open files\s+1024\s+2048\s+files/m);
    // PID 1 is the init, not the service's process.
    assert.match((await dockerExec(id, 'cat', '/proc/1/cmdline')).out, /init/);
    // The tmpfs: in memory, its size and mode; the bind: the host's file, read-only.
    const mounts = (await dockerExec(id, 'cat', '/proc/mounts')).out;
    assert.match(mounts, /^tmpfs \/scratch tmpfs rw,[^ ]*size=8192k/m);
    assert.equal((await dockerExec(id, 'stat', '-c', '%a', '/scratch')).out, '1777');
    assert.equal((await dockerExec(id, 'sh', '-c', 'echo x > /scratch/f && cat /scratch/f')).out, 'x');
    assert.equal((await dockerExec(id, 'cat', '/host/hello.txt')).out, 'from the host');
    const w = await dockerExec(id, 'sh', '-c', 'echo x > /host/new');
    assert.notEqual(w.code, 0);
    assert.match(w.out, /Read-only file system/);
    await ex.stop(id, 1000);
    await ex.remove(id);
  });

  test('a read-only root filesystem refuses a write; its mounts still take them', async () => {
    const id = await run(mkTask({ command: ['sleep', '600'], readOnly: true, mounts: [{ type: 'tmpfs', target: '/work' }] }));
    const w = await dockerExec(id, 'touch', '/written');
    assert.notEqual(w.code, 0);
    assert.match(w.out, /Read-only file system/);
    assert.equal((await dockerExec(id, 'sh', '-c', 'echo ok > /work/f && cat /work/f')).out, 'ok');
    await ex.remove(id);
  });

  test('a named volume is made with its labels and outlives its task: the next task on the node finds the data', async () => {
    const mount = { type: 'volume' as const, source: VOLUME, target: '/data', volumeOptions: { labels: { 'com.example.tier': 'store' } } };
    const first = await run(mkTask({ command: ['sh', '-c', 'echo kept > /data/f && exec sleep 600'], mounts: [mount] }));
    await waitFor('the write', async () => ((await dockerExec(first, 'cat', '/data/f')).out === 'kept' ? true : undefined));
    const vol = JSON.parse(await docker('volume', 'inspect', VOLUME))[0];
    assert.equal(vol.Driver, 'local');
    assert.equal(vol.Labels['com.example.tier'], 'store');
    assert.equal(vol.Labels[LABELS.nodeId], NODE);
    assert.equal(vol.Labels[LABELS.serviceName], `web${RUN}`);
    await ex.stop(first, 1000);
    await ex.remove(first);
    assert.equal(JSON.parse(await docker('volume', 'inspect', VOLUME))[0].Name, VOLUME, 'the volume stays when its task goes');

    // The replacement (another task, same node) sees what the first one wrote.
    const second = await run(mkTask({ command: ['sleep', '600'], mounts: [mount] }, 1));
    assert.equal((await dockerExec(second, 'cat', '/data/f')).out, 'kept');
    await ex.remove(second);
  });

  test('a hostname template too long for the kernel fails the create with one line', async () => {
    const task = mkTask({ command: ['sleep', '1'], hostname: '{{.Task.Name}}-{{.Task.Name}}-{{.Task.Name}}' });
    await assert.rejects(ex.create(task), /hostname .* is longer than 63 characters/);
  });
});
