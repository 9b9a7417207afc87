// A `shoal lab` node as a real host: a container of shoal/lab-node (scripts/build-lab-image.sh,
// called here; quick when nothing changed, ~2-4 min the first time: debootstrap) running its own
// Docker engine and its own shoald. Needs root and a Docker engine (scripts/test-env.sh); without
// them the suite fails, it does not skip. Everything it makes (containers, network, volumes) is
// removed at the end.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { ROOT, eventually } from '../helpers/shoald.js';

const LAB_IMAGE = process.env.LAB_IMAGE ?? 'shoal/lab-node:dev';
const WORKLOAD = 'shoal/busybox:latest';
const RUN = randomBytes(3).toString('hex');
const NET = `shoal-labtest-${RUN}`;
const NODE = `labtest-${RUN}-n1`;
const NODE2 = `labtest-${RUN}-n2`;
const VOLUME = `${NODE}-docker`;
const DATA = `${NODE}-shoal`;

/** What a lab node needs to run an engine inside (`--privileged` fails here: no CAP_SYS_RESOURCE). */
const NESTED_ENGINE_FLAGS = [
  '--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE',
  '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined', '--security-opt', 'systempaths=unconfined',
  '--device-cgroup-rule', 'a *:* rwm', '-v', '/sys/fs/cgroup:/sys/fs/cgroup:rw',
];

function run(cmd: string, args: string[], opts: { input?: Buffer; timeoutMs?: number } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input: opts.input, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}: ${`${r.stdout}${r.stderr}`.trim().split('\n').slice(-20).join('\n')}`);
  return r.stdout.trim();
}
const docker = (...args: string[]) => run('docker', args);
/** A command inside the lab node (its own engine answers `docker` there). */
const onNode = (...args: string[]) => docker('exec', NODE, ...args);
const lines = (s: string) => s.split('\n').filter(Boolean);

describe('a lab node: its own Docker engine and shoald', { timeout: 900_000 }, () => {

  before(() => {
    run('bash', [`${ROOT}/scripts/build-lab-image.sh`], { timeoutMs: 840_000 });
    docker('network', 'create', NET);
    // A first boot with SHOAL_BOOTSTRAP=init: the node makes a cluster of its own.
    docker('run', '-d', '--name', NODE, '--hostname', 'n1', '--network', NET, '--network-alias', 'n1', ...NESTED_ENGINE_FLAGS,
      '-v', `${VOLUME}:/var/lib/docker`, '-v', `${DATA}:/var/lib/shoal`, '-e', 'SHOAL_BOOTSTRAP=init', LAB_IMAGE);
  });

  after(() => {
    spawnSync('docker', ['rm', '-f', '-v', NODE, NODE2], { stdio: 'ignore' });
    spawnSync('docker', ['volume', 'rm', VOLUME, DATA], { stdio: 'ignore' });
    spawnSync('docker', ['network', 'rm', NET], { stdio: 'ignore' });
  });

  test('the node has an engine of its own, Node 20 and the built Shoal', async () => {
    const inner = await eventually('the node\'s engine', async () => onNode('docker', 'info', '--format', '{{.ID}}'), 60_000);
    assert.notEqual(inner, docker('info', '--format', '{{.ID}}'), 'the node must not use the host\'s engine');
    assert.match(onNode('node', '--version'), /^v20\./);
    assert.equal(onNode('shoald', '--version'), onNode('shoal', '--version'));
    // The node starts with no image: it gets them as a host would (here: loaded; a registry later).
    assert.deepEqual(lines(onNode('docker', 'images', '-q')), []);
    run('sh', ['-c', `docker save ${WORKLOAD} | docker exec -i ${NODE} docker load -q`]);
    assert.equal(onNode('docker', 'run', '--rm', WORKLOAD, 'echo', 'inside'), 'inside');
  });

  test('shoald on the node runs tasks on the node\'s engine; powering the node off takes them with it; powered on, it boots again', async () => {
    await eventually('the node ready', async () => /Ready/.test(onNode('shoal', 'node', 'ls')), 90_000);
    const running = () => lines(onNode('docker', 'ps', '-q', '--no-trunc', '--filter', 'label=shoal.service.name=sleeper'));
    onNode('shoal', 'service', 'create', '-d', '--name', 'sleeper', '--replicas', '2', '--stop-grace-period', '1s', WORKLOAD, 'sleep', '3600');
    const before = await eventually('2 tasks running on the node', async () => (running().length === 2 ? running() : undefined), 60_000);
    // The host's engine has none of them: they run inside the node.
    assert.deepEqual(lines(docker('ps', '-q', '--filter', 'label=shoal.service.name=sleeper')), []);

    docker('kill', NODE);
    docker('start', NODE);
    // The host boots: its engine, then its shoald (`run`: the data directory holds the node).
    await eventually('the node ready again', async () => /Ready/.test(onNode('shoal', 'node', 'ls')), 90_000);
    // The containers of before the power cut died with it (none came back running) ...
    const after = await eventually('2 tasks running again', async () => (running().length === 2 ? running() : undefined), 90_000);
    for (const id of before) assert.ok(!after.includes(id), `container ${id.slice(0, 12)} survived the power cut`);
    // ... and the service is whole again, on new containers.
    assert.match(onNode('shoal', 'service', 'ls'), /sleeper\s+replicated\s+2\/2/);
  });

  test('a second host joins through the first with a token, over the lab network, and runs tasks on its own engine', async () => {
    const token = onNode('shoal', 'swarm', 'join-token', '-q', 'worker');
    docker('run', '-d', '--name', NODE2, '--hostname', 'n2', '--network', NET, '--network-alias', 'n2', ...NESTED_ENGINE_FLAGS,
      '-e', 'SHOAL_BOOTSTRAP=worker', '-e', 'SHOAL_JOIN_ADDR=n1:4242', '-e', `SHOAL_JOIN_TOKEN=${token}`, LAB_IMAGE);
    await eventually('n2 ready in n1\'s cluster', async () => /n2\s+Ready/.test(onNode('shoal', 'node', 'ls')), 90_000);
    run('sh', ['-c', `docker save ${WORKLOAD} | docker exec -i ${NODE2} docker load -q`]);
    onNode('shoal', 'service', 'update', '-d', '--constraint-add', 'node.hostname==n2', 'sleeper');
    await eventually('the tasks on n2\'s engine', async () =>
      lines(docker('exec', NODE2, 'docker', 'ps', '-q', '--filter', 'label=shoal.service.name=sleeper')).length === 2 &&
      lines(onNode('docker', 'ps', '-q', '--filter', 'label=shoal.service.name=sleeper')).length === 0, 120_000);
  });
});
