// `shoal lab` as a user drives it (packages/cli/bin/shoal.js): a lab of one manager and one worker
// (each a container of shoal/lab-node with its own engine, scripts/build-lab-image.sh, called
// here) and its registry, used from the host over TCP with what `lab env` prints, an image of the
// host's loaded into the registry and pulled from it by the worker, the registry and a worker
// powered off and on, and removed without a trace. Needs root and a Docker engine; without them the suite fails, it does
// not skip. The lab has a name of its own and its certificates a state directory of their own.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { existsSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CLI } from '../helpers/cli.js';
import { ROOT, eventually } from '../helpers/shoald.js';
import { LAB_IMAGE, TestLab, lines, ok } from '../helpers/lab.js';

const WORKLOAD = 'shoal/busybox:latest';
const t = new TestLab('clitest');
const LAB = t.name;
const STATE = t.state;
// The sleep of the test's tasks: a number no other process on the host sleeps for (pgrep finds it).
const SLEEP = String(100_000 + randomInt(800_000));
const LABEL = t.filter;

const sh = (cmd: string, args: string[], timeoutMs?: number, input?: string) => t.sh(cmd, args, timeoutMs, input);
const shoal = (...args: string[]) => sh(process.execPath, [CLI, ...args], 300_000);
const lab = (sub: string, ...args: string[]) => t.lab(sub, ...args);
/** `shoal ARGS` from the host, as after `eval "$(shoal lab env)"` in a shell. */
const fromHost = (...args: string[]) => t.shoal(...args);
const docker = (...args: string[]) => t.docker(...args);
/** The host's processes of the test's tasks (the host sees every PID namespace). */
const taskProcesses = () => lines(sh('pgrep', ['-f', `^sleep ${SLEEP}$`]).stdout);
/** The address of the lab's registry on the lab network, as `lab ls` lists it. */
const registryAddr = () => (JSON.parse(ok(lab('ls', '--format', 'json'))) as { name: string; addr: string }[]).find((n) => n.name === 'registry')!.addr;
/** The repositories of the host's engine whose name starts with `prefix`. */
const hostRepos = (prefix: string) => lines(docker('image', 'ls', '--format', '{{.Repository}}:{{.Tag}}')).filter((r) => r.startsWith(prefix));
const nodeStatus = (name: string) => {
  const r = fromHost('node', 'ls', '--format', 'json');
  if (r.code !== 0) return undefined;
  return (JSON.parse(r.stdout) as { hostname: string; status: string }[]).find((n) => n.hostname === name)?.status;
};

describe('shoal lab: a lab of real hosts driven through the CLI', { timeout: 900_000 }, () => {
  before(() => {
    const r = sh('bash', [`${ROOT}/scripts/build-lab-image.sh`], 840_000);
    assert.equal(r.code, 0, r.stderr);
  });

  after(() => {
    shoal('lab', 'down', '--name', LAB);
    rmSync(STATE, { recursive: true, force: true });
  });

  test('up: every node ready, listed with its role, its address on the lab network and its state; the registry too', () => {
    const out = ok(lab('up', '--managers', '1', '--workers', '1', '--image', LAB_IMAGE));
    assert.match(out, /manager1\s+manager\s+[\d.]+:4242\s+running/);
    assert.match(out, /worker1\s+worker\s+[\d.]+:4242\s+running/);
    assert.match(out, /registry\s+registry\s+[\d.]+:5000\s+running/);
    const nodes = JSON.parse(ok(lab('ls', '--format', 'json'))) as { name: string; role: string; addr: string; state: string }[];
    assert.deepEqual(nodes.map((n) => [n.name, n.role, n.state]), [['manager1', 'manager', 'running'], ['worker1', 'worker', 'running'], ['registry', 'registry', 'running']]);
    for (const n of nodes) {
      const ip = docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', `shoal-${LAB}-${n.name}`).trim();
      assert.equal(n.addr, `${ip}:${n.name === 'registry' ? 5000 : 4242}`);
    }
    // A second up of the same lab changes nothing.
    const again = lab('up', '--image', LAB_IMAGE);
    assert.equal(again.code, 1);
    assert.match(again.stderr, new RegExp(`^Error: lab ${LAB} already exists: shoal lab down --name ${LAB} removes it`));
    assert.equal(lines(docker('ps', '-aq', '--filter', LABEL)).length, 3);
    // The registry's one disk is its labelled volume (no anonymous volume of the node image's).
    assert.equal(docker('inspect', '-f', '{{range .Mounts}}{{.Type}}:{{.Name}} {{end}}', `shoal-${LAB}-registry`).trim(), `volume:shoal-${LAB}-registry-data`);
  });

  test('env: the host reaches the managers over TCP with the admin certificate it copied out (0700)', () => {
    const env = ok(lab('env'));
    const certDir = join(STATE, 'shoal', 'labs', LAB, 'admin');
    const ip = JSON.parse(ok(lab('ls', '--format', 'json')))[0].addr as string;
    assert.equal(env.trim(), `export SHOAL_HOST=${ip} SHOAL_CERT_PATH=${certDir} SHOAL_LAB_REGISTRY=${registryAddr()}`);
    assert.equal(statSync(certDir).mode & 0o777, 0o700);
    assert.equal(statSync(join(certDir, 'key.pem')).mode & 0o777, 0o600);
    const listed = JSON.parse(ok(fromHost('node', 'ls', '--format', 'json'))) as { hostname: string; status: string }[];
    assert.deepEqual(listed.map((n) => [n.hostname, n.status]).sort(), [['manager1', 'ready'], ['worker1', 'ready']]);
  });

  test('exec: a command on a node, its output and its exit code', () => {
    // worker1's own engine: no container yet (the host's engine runs the nodes themselves).
    assert.equal(ok(lab('exec', 'worker1', '--', 'docker', 'ps', '-q')), '');
    assert.notEqual(ok(lab('exec', 'worker1', '--', 'docker', 'info', '--format', '{{.ID}}')).trim(), docker('info', '--format', '{{.ID}}').trim());
    const r = lab('exec', 'worker1', '--', 'sh', '-c', 'echo out; echo err >&2; exit 3');
    assert.deepEqual(r, { code: 3, stdout: 'out\n', stderr: 'err\n' });
    // -i: what is piped into shoal is the command's stdin, and its end the command's end of input;
    // without -i the command's stdin is empty.
    const input = `line one\n${'x'.repeat(200_000)}\nlast\n`;
    assert.equal(ok(t.labWithInput(input, 'exec', '-i', 'worker1', '--', 'wc', '-c')).trim(), String(input.length));
    assert.equal(ok(t.labWithInput(input, 'exec', 'worker1', '--', 'wc', '-c')).trim(), '0');
    // Completion offers the lab's nodes and registry where one is typed, and only there.
    const complete = (...words: string[]) => lines(ok(shoal('--get-yargs-completions', 'shoal', ...words))).filter((w) => !w.startsWith('-'));
    assert.deepEqual(complete('lab', 'exec', '--name', LAB, ''), ['manager1', 'worker1', 'registry']);
    assert.deepEqual(complete('lab', 'stop', `--name=${LAB}`, 'w'), ['worker1']);
    assert.deepEqual(complete('lab', 'start', '--name', LAB, 're'), ['registry']);
    assert.deepEqual(complete('lab', 'exec', '--name', LAB, 'worker1', ''), []);
    assert.deepEqual(complete('lab', 'stop', '--name', `${LAB}-none`, ''), []);
    const unknown = lab('exec', 'worker9', '--', 'true');
    assert.equal(unknown.code, 1);
    assert.equal(unknown.stderr, `Error: lab ${LAB} has no node worker9 (its nodes: manager1, worker1)\n`);
  });

  test('load: a host image pushed into the lab\'s registry; a service of the printed reference is pulled from it by the worker', async () => {
    // The worker's own engine has no image: whatever it runs, it pulls.
    assert.equal(ok(lab('exec', 'worker1', '--', 'docker', 'images', '-q')), '');
    const registry = registryAddr();
    const ref = ok(lab('load', WORKLOAD)).trim();
    assert.equal(ref, `${registry}/${WORKLOAD}`);
    // The push's temporary tag (the registry's port on the host's 127.0.0.1) is gone again.
    assert.deepEqual(hostRepos('127.0.0.1:'), []);
    // The reference names the registry as the host reaches it too (its lab address).
    const res = await fetch(`http://${registry}/v2/${WORKLOAD.split(':')[0]}/tags/list`);
    assert.deepEqual(await res.json(), { name: 'shoal/busybox', tags: ['latest'] });

    ok(fromHost('service', 'create', '-d', '--name', 'sleeper', '--replicas', '2', '--constraint', 'node.hostname==worker1', '--stop-grace-period', '1s', ref, 'sleep', SLEEP));
    await eventually('2 tasks running on worker1', async () => taskProcesses().length === 2, 120_000);
    assert.equal(lines(ok(lab('exec', 'worker1', '--', 'docker', 'ps', '-q', '--filter', 'label=shoal.service.name=sleeper'))).length, 2);
    // manager1's engine pinned the tag to the registry's digest (docker's resolve-image): the worker
    // pulled that digest, which docker leaves untagged, as on a Swarm worker.
    const image = (JSON.parse(ok(fromHost('service', 'inspect', '--format', 'json', 'sleeper'))) as { spec: { image: string } }).spec.image;
    const digest = /^(.*)@(sha256:[0-9a-f]{64})$/.exec(image);
    assert.equal(digest?.[1], ref, image);
    const repo = ref.slice(0, ref.lastIndexOf(':'));
    assert.deepEqual(lines(ok(lab('exec', 'worker1', '--', 'docker', 'images', '--digests', '--format', '{{.Repository}}:{{.Tag}}@{{.Digest}}'))), [`${repo}:<none>@${digest?.[2]}`]);

    // Bad input: one line each, nothing pushed.
    const unknown = lab('load', 'shoal/no-such-image:1', WORKLOAD);
    assert.deepEqual(unknown, { code: 1, stdout: '', stderr: 'Error: no image shoal/no-such-image:1 on this host\'s Docker engine (docker pull or docker build it first)\n' });
    const noLab = shoal('lab', 'load', '--name', `${LAB}-none`, WORKLOAD);
    assert.deepEqual(noLab, { code: 1, stdout: '', stderr: `Error: no lab named ${LAB}-none (shoal lab up --name ${LAB}-none makes one)\n` });
  });

  test('stop registry: loads fail in one line while it is off; start registry: its images are still there', async () => {
    assert.equal(ok(lab('stop', 'registry')).trim(), 'registry');
    assert.match(ok(lab('ls')), /registry\s+registry\s+\S+\s+stopped/);
    const off = lab('load', WORKLOAD);
    assert.deepEqual(off, { code: 1, stdout: '', stderr: `Error: the registry of lab ${LAB} is stopped: shoal lab start registry --name ${LAB} powers it on\n` });
    assert.equal(ok(lab('start', 'registry')).trim(), 'registry');
    const registry = registryAddr();
    await eventually('the registry answers again', async () => (await fetch(`http://${registry}/v2/`).catch(() => undefined))?.ok === true, 60_000);
    const res = await fetch(`http://${registry}/v2/shoal/busybox/tags/list`);
    assert.deepEqual(await res.json(), { name: 'shoal/busybox', tags: ['latest'] });
  });

  test('stop: the worker powered off, its containers die with it and it goes Down; start: Ready again', async () => {

    assert.equal(ok(lab('stop', 'worker1')).trim(), 'worker1');
    assert.deepEqual(taskProcesses(), [], 'the tasks\' processes outlived their host');
    assert.match(ok(lab('ls')), /worker1\s+worker\s+\S+\s+stopped/);
    const exec = lab('exec', 'worker1', '--', 'true');
    assert.match(exec.stderr, /^Error: worker1 is stopped: shoal lab start worker1 --name /);
    await eventually('worker1 Down in node ls', async () => nodeStatus('worker1') === 'down', 120_000);

    assert.equal(ok(lab('start', 'worker1')).trim(), 'worker1');
    assert.match(ok(lab('ls')), /worker1\s+worker\s+\S+\s+running/);
    await eventually('worker1 Ready again', async () => nodeStatus('worker1') === 'ready', 120_000);
    await eventually('the service whole again on worker1', async () => taskProcesses().length === 2, 120_000);
  });

  test('down: no container, network, volume or certificate of the lab left', () => {
    assert.equal(ok(lab('down')).trim(), `Removed lab ${LAB}: 2 nodes, its registry, 1 network, 5 volumes`);
    assert.deepEqual(lines(docker('ps', '-aq', '--filter', LABEL)), []);
    assert.deepEqual(lines(docker('network', 'ls', '-q', '--filter', LABEL)), []);
    assert.deepEqual(lines(docker('volume', 'ls', '-q', '--filter', LABEL)), []);
    assert.equal(existsSync(join(STATE, 'shoal', 'labs', LAB)), false);
    assert.deepEqual(taskProcesses(), []);
    const again = lab('ls');
    assert.equal(again.stderr, `Error: no lab named ${LAB} (shoal lab up --name ${LAB} makes one)\n`);
  });
});
