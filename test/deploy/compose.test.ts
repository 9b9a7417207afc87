// Shoal deployed as containers with the top-level docker-compose.yml: three managers and two
// workers on this machine's Docker engine, built offline by scripts/build-images.sh (called here;
// quick when nothing changed). Needs a Docker engine and a Compose tool (scripts/test-env.sh
// provides both); without them the suite fails, it does not skip.
//
// Each run uses its own Compose project (-p) and free host ports for the control API, and removes
// everything it made: the project's containers, network and volumes (`down -v`), and the task
// containers the nodes started on the host engine (labelled with their node ids).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { callUnary } from '@shoal/api';
import { type TlsMaterial, managerChannel } from '@shoal/pki';
import { freePort } from '@shoal/raft/testing';
import { ROOT, eventually, removeContainersOf } from '../helpers/shoald.js';

const IMAGE = process.env.SHOAL_IMAGE ?? 'shoal/shoal:dev';
const WORKLOAD = 'shoal/busybox:latest';
const PROJECT = `shoale2e${randomBytes(4).toString('hex')}`;
const MANAGERS = ['manager1', 'manager2', 'manager3'];
const WORKERS = ['worker1', 'worker2'];
/** The target is 3 s; this bound only catches a cluster that does not fail over at all. */
const FAILOVER_BOUND_MS = 30_000;

interface NodeView {
  node: { id: string; description: { hostname: string }; status: { state: string }; spec: { role: string } };
  leader: boolean;
}
interface Member { nodeId: string; addr: string; raftRole: string; reachable: boolean; commitIndex: number; appliedIndex: number }
interface Status { clusterId: string; leader: string; term: number; members: Member[] }
interface TaskView { task: { id: string; nodeId: string; desiredState: string; status: { state: string } } }

function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 120_000, maxBuffer: 64 << 20 });
  if (r.error) throw new Error(`${cmd} ${args.join(' ')}: ${r.error.message}`);
  if (r.status !== 0) {
    const out = `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n').slice(-30).join('\n');
    throw new Error(`${cmd} ${args.join(' ')} exited with ${r.status}:\n${out}`);
  }
  return r.stdout.trim();
}

const docker = (...args: string[]) => run('docker', args);
const lines = (s: string) => s.split('\n').filter(Boolean);

/** `docker-compose` (the v1 tool) if it is there, else the `docker compose` plugin. */
function composeCommand(): string[] {
  if (process.env.SHOAL_COMPOSE) return process.env.SHOAL_COMPOSE.split(' ');
  if (spawnSync('docker-compose', ['version'], { stdio: 'ignore' }).status === 0) return ['docker-compose'];
  if (spawnSync('docker', ['compose', 'version'], { stdio: 'ignore' }).status === 0) return ['docker', 'compose'];
  throw new Error('no Compose tool: neither `docker-compose` nor `docker compose` runs (scripts/test-env.sh installs Debian\'s docker-compose)');
}

describe('docker-compose deployment: three managers, two workers', { timeout: 600_000 }, () => {
  let compose: (...args: string[]) => string;
  const ports: Record<string, number> = {};
  const nodeIds = new Set<string>();
  const idOf: Record<string, string> = {};
  let torn = false;

  const addr = (svc: string) => `127.0.0.1:${ports[svc]}`;
  // The published control API wants the admin certificate `shoald init` wrote in manager1's data
  // volume: copied out as the README's quickstart does.
  let admin: TlsMaterial | undefined;
  const adminDir = mkdtempSync(join(tmpdir(), 'shoal-admin-'));
  const adminCerts = (): TlsMaterial => {
    if (admin) return admin;
    docker('cp', `${containerOf('manager1')}:/var/lib/shoal/admin/.`, adminDir);
    const f = (n: string) => readFileSync(join(adminDir, n), 'utf8');
    admin = { caPem: f('ca.pem'), certPem: f('cert.pem'), keyPem: f('key.pem') };
    return admin;
  };
  const call = <T>(svc: string, method: string, req: unknown = {}, timeoutMs = 5_000) =>
    callUnary<T>('shoal.control.Control', addr(svc), method, req, timeoutMs, managerChannel(adminCerts()));
  /** `shoal` inside a manager's container (its local control socket). */
  const shoal = (svc: string, ...args: string[]) => compose('exec', '-T', svc, 'shoal', ...args);
  const containerOf = (svc: string) => compose('ps', '-q', svc);

  async function nodes(svc: string): Promise<NodeView[]> {
    const r = await call<{ nodes: NodeView[] }>(svc, 'ListNodes');
    for (const n of r.nodes) {
      nodeIds.add(n.node.id);
      idOf[n.node.description.hostname] = n.node.id;
    }
    return r.nodes;
  }

  async function runningTasks(svc: string, service: string): Promise<TaskView[]> {
    const r = await call<{ tasks: TaskView[] }>(svc, 'ListTasks', { service });
    return r.tasks.filter((t) => t.task.desiredState === 'running' && t.task.status.state === 'running');
  }

  /** Containers of this cluster's nodes on the host engine running SERVICE's tasks. */
  function containersOf(service: string): string[] {
    return lines(docker('ps', '--filter', `label=shoal.service.name=${service}`, '--format', '{{.Label "shoal.node.id"}}')).filter((n) => nodeIds.has(n));
  }

  async function teardown(): Promise<void> {
    if (torn || !compose) return;
    torn = true;
    // Learn every node id first (the task containers carry them), if a manager still answers.
    for (const m of MANAGERS) {
      try {
        await nodes(m);
        break;
      } catch {
        // try the next manager
      }
    }
    try {
      compose('down', '-v', '--remove-orphans', '-t', '20');
    } finally {
      removeContainersOf([...nodeIds]);
    }
  }

  before(async () => {
    try {
      execFileSync('docker', ['info'], { stdio: 'ignore', timeout: 30_000 });
    } catch {
      throw new Error('no Docker engine answers `docker info`: run scripts/test-env.sh (as root) first; this suite needs real containers');
    }
    const cmd = composeCommand();
    const started = Date.now();
    run('bash', [join(ROOT, 'scripts/build-images.sh')], { timeoutMs: 20 * 60_000, env: { ...process.env, SHOAL_IMAGE: IMAGE } });
    console.log(`# images built or up to date in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    for (const m of MANAGERS) ports[m] = await freePort();
    const env = {
      ...process.env,
      SHOAL_IMAGE: IMAGE,
      SHOAL_MANAGER1_PORT: String(ports.manager1),
      SHOAL_MANAGER2_PORT: String(ports.manager2),
      SHOAL_MANAGER3_PORT: String(ports.manager3),
    };
    compose = (...args: string[]) => run(cmd[0], [...cmd.slice(1), '-p', PROJECT, '-f', join(ROOT, 'docker-compose.yml'), ...args], { env });
    compose('up', '-d');
  });

  after(async () => {
    await teardown();
    rmSync(adminDir, { recursive: true, force: true });
  });

  test('three managers are ready with one leader, and two workers', async () => {
    const started = Date.now();
    const ready = await eventually(
      'five ready nodes',
      async () => {
        const ns = await nodes('manager1');
        return ns.length === 5 && ns.every((n) => n.node.status.state === 'ready') ? ns : undefined;
      },
      120_000,
    );
    // The published control API wants the admin certificate: without one, nothing.
    await assert.rejects(
      callUnary('shoal.control.Control', addr('manager1'), 'ListNodes', {}, 5_000, managerChannel({ caPem: adminCerts().caPem })),
      /needs a certificate of this cluster/,
    );
    const byName = Object.fromEntries(ready.map((n) => [n.node.description.hostname, n]));
    assert.deepEqual(Object.keys(byName).sort(), [...MANAGERS, ...WORKERS]);
    for (const m of MANAGERS) assert.equal(byName[m].node.spec.role, 'manager', m);
    for (const w of WORKERS) assert.equal(byName[w].node.spec.role, 'worker', w);
    assert.equal(ready.filter((n) => n.leader).length, 1, 'exactly one leader');
    const st = await eventually('three voters', async () => {
      const s = await call<Status>('manager2', 'ClusterStatus');
      return s.members.length === 3 && s.members.every((m) => m.reachable && m.raftRole !== 'learner') ? s : undefined;
    }, 30_000);
    assert.equal(st.members.filter((m) => m.raftRole === 'leader').length, 1);
    assert.deepEqual(st.members.map((m) => m.addr).sort(), MANAGERS.map((m) => `${m}:4242`));
    console.log(`# cluster formed (5 nodes ready) ${((Date.now() - started) / 1000).toFixed(1)} s after compose up returned`);

    // `shoal` is in the image and finds its manager's socket by itself.
    const table = shoal('manager1', 'node', 'ls');
    for (const name of [...MANAGERS, ...WORKERS]) assert.match(table, new RegExp(`\\b${name}\\b`));
    assert.match(table, /Leader/);
    // A worker refuses management commands, as in Swarm.
    assert.throws(() => shoal('worker1', 'node', 'ls'), /not a manager/);
    // The image's HEALTHCHECK command passes on a manager and on a worker.
    compose('exec', '-T', 'manager2', 'shoal-healthcheck');
    compose('exec', '-T', 'worker2', 'shoal-healthcheck');
    // The daemon runs as the non-root user (its control socket is the user's), and it reaches
    // the Docker engine (the node is ready) through the socket's group.
    assert.equal(compose('exec', '-T', 'worker1', 'stat', '-c', '%U', '/var/lib/shoal/control.sock'), 'shoal');
  });

  test('a service created through the in-image CLI runs its replicas on the nodes', async () => {
    shoal('manager1', 'service', 'create', '-d', '--name', 'e2e-sleep', '--replicas', '5', '--stop-grace-period', '1s', WORKLOAD, 'sleep', '3600');
    await eventually('5 running tasks', async () => ((await runningTasks('manager1', 'e2e-sleep')).length === 5 ? true : undefined), 90_000);
    await eventually('5 containers on the host engine', async () => (containersOf('e2e-sleep').length === 5 ? true : undefined), 30_000);
    const ls = JSON.parse(shoal('manager1', 'service', 'ls', '--format', 'json')) as { name: string; replicas: { running: number; desired: number } }[];
    assert.deepEqual(ls.find((s) => s.name === 'e2e-sleep')?.replicas, { running: 5, desired: 5 });
  });

  let oldLeader = { svc: '', id: '', container: '' };
  let afterWrites = 0;

  test('docker stop of the leader: another manager leads; services can still be created and scaled', async () => {
    const st = await call<Status>('manager1', 'ClusterStatus');
    const leader = st.members.find((m) => m.nodeId === st.leader)!;
    const svc = leader.addr.split(':')[0];
    oldLeader = { svc, id: st.leader, container: containerOf(svc) };
    const others = MANAGERS.filter((m) => m !== svc);

    const t0 = Date.now();
    let stopReturned = 0;
    const stopping = new Promise<void>((resolve, reject) => {
      const p = spawn('docker', ['stop', oldLeader.container], { stdio: 'ignore' });
      p.on('exit', (code) => (code === 0 ? ((stopReturned = Date.now() - t0), resolve()) : reject(new Error(`docker stop exited with ${code}`))));
    });
    // A read through a surviving manager answers only once a leader serves: poll both.
    const newLeader = await eventually(
      'a new leader',
      () =>
        Promise.any(
          others.map(async (m) => {
            const ns = await call<{ nodes: NodeView[] }>(m, 'ListNodes', {}, 500);
            const l = ns.nodes.find((n) => n.leader);
            if (!l || l.node.id === oldLeader.id) throw new Error('no new leader yet');
            return l.node.description.hostname;
          }),
        ).catch(() => undefined),
      FAILOVER_BOUND_MS,
    );
    const failoverMs = Date.now() - t0;
    await stopping;
    console.log(`# failover: ${newLeader} leads ${failoverMs} ms after \`docker stop\` of ${svc} (the leader) began; docker stop returned after ${stopReturned} ms`);
    assert.ok(failoverMs < FAILOVER_BOUND_MS);
    assert.ok(others.includes(newLeader));

    // Writes through the survivors, with the CLI on the host against the published control API.
    const cli = join(ROOT, 'packages/cli/dist/src/bin.js');
    adminCerts();
    run(process.execPath, [cli, '--host', addr(others[0]), '--cert-path', adminDir, 'service', 'create', '-d', '--name', 'e2e-after', '--replicas', '2', '--stop-grace-period', '1s', WORKLOAD, 'sleep', '3600']);
    run(process.execPath, [cli, '--host', addr(others[1]), '--cert-path', adminDir, 'service', 'scale', '-d', 'e2e-sleep=7']);
    await eventually(
      '7 + 2 running tasks',
      async () => ((await runningTasks(others[0], 'e2e-sleep')).length === 7 && (await runningTasks(others[0], 'e2e-after')).length === 2 ? true : undefined),
      90_000,
    );
    const s = await call<Status>(others[0], 'ClusterStatus');
    afterWrites = s.members.find((m) => m.nodeId === s.leader)!.commitIndex;
  });

  test('docker start: the old leader rejoins as a follower and catches up', async () => {
    assert.ok(oldLeader.container, 'the failover test ran');
    const others = MANAGERS.filter((m) => m !== oldLeader.svc);
    const t0 = Date.now();
    docker('start', oldLeader.container);
    const caughtUp = await eventually(
      'the old leader caught up',
      async () => {
        const s = await call<Status>(others[0], 'ClusterStatus', {}, 3_000);
        const me = s.members.find((m) => m.nodeId === oldLeader.id);
        const leader = s.members.find((m) => m.nodeId === s.leader);
        return me && leader && me.reachable && me.raftRole === 'follower' && s.leader !== oldLeader.id &&
          me.appliedIndex >= afterWrites && me.appliedIndex >= leader.appliedIndex
          ? { me, leader }
          : undefined;
      },
      90_000,
    );
    console.log(`# rejoin: ${oldLeader.svc} follows again, applied index ${caughtUp.me.appliedIndex} (the leader: ${caughtUp.leader.appliedIndex}), ${Date.now() - t0} ms after docker start`);
    // Same node (its volume kept its identity), ready again, and it answers on its own port.
    await eventually('the old leader ready', async () => {
      const ns = await nodes(oldLeader.svc);
      const me = ns.find((n) => n.node.id === oldLeader.id);
      return ns.length === 5 && me?.node.status.state === 'ready' && !me.leader ? true : undefined;
    }, 60_000);
    // A write through the restarted manager (forwarded to the leader) is applied there too.
    shoal(oldLeader.svc, 'service', 'scale', '-d', 'e2e-after=3');
    await eventually('3 running e2e-after tasks', async () => ((await runningTasks(oldLeader.svc, 'e2e-after')).length === 3 ? true : undefined), 60_000);
  });

  test('docker-compose stop + up of a worker keeps its node id', async () => {
    const before = idOf.worker2;
    assert.ok(before);
    compose('stop', '-t', '20', 'worker2');
    compose('up', '-d', 'worker2');
    await eventually('worker2 ready again', async () => {
      const ns = await nodes('manager1');
      const w = ns.filter((n) => n.node.description.hostname === 'worker2');
      return w.length === 1 && w[0].node.id === before && w[0].node.status.state === 'ready' ? true : undefined;
    }, 60_000);
  });

  test('docker-compose down -v leaves no container, network or volume behind', async () => {
    await nodes('manager1');
    assert.equal(nodeIds.size, 5);
    await teardown();
    const label = `label=com.docker.compose.project=${PROJECT}`;
    assert.deepEqual(lines(docker('ps', '-a', '-q', '--filter', label)), [], 'containers');
    assert.deepEqual(lines(docker('network', 'ls', '-q', '--filter', label)), [], 'networks');
    assert.deepEqual(lines(docker('volume', 'ls', '-q', '--filter', label)), [], 'volumes');
    assert.deepEqual(lines(docker('network', 'ls', '--format', '{{.Name}}')).filter((n) => n.startsWith(PROJECT)), [], 'networks by name');
    assert.deepEqual(lines(docker('volume', 'ls', '--format', '{{.Name}}')).filter((n) => n.startsWith(PROJECT)), [], 'volumes by name');
    for (const id of nodeIds) {
      assert.deepEqual(lines(docker('ps', '-a', '-q', '--filter', `label=shoal.node.id=${id}`)), [], `task containers of node ${id}`);
    }
  });
});
