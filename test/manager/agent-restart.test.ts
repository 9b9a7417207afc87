// An agent restart on real containers: a worker stopped gracefully (SIGTERM) and started again
// with `shoald run` re-adopts its running containers by label (same containers, no twins), stays
// ready the whole time (its goodbye tells the dispatcher not to read the dropped long poll as a
// crash), removes the containers of tasks it no longer has to run, and never touches a container
// that is not labelled with its own node id. A killed worker (SIGKILL: no goodbye) is still
// marked down at once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { TestCluster, type Daemon, eventually, removeContainersOf } from '../helpers/shoald.js';

const IMAGE = 'shoal/busybox:latest';
/**
 * The cluster's heartbeat period. A dropped long poll without a goodbye marks a node down after
 * one period (checked every half period); a silent node that said goodbye, after three. The
 * restarts below pause PAUSE_MS (1.5 periods) before `shoald run`: without the goodbye, that
 * alone is enough for the dispatcher to mark the node down; with it, the restarted daemon has
 * another 1.5 periods (4.5 s) to open its new session, plenty even on a loaded machine.
 */
const HEARTBEAT_MS = 3_000;
const PAUSE_MS = 4_500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' }).trim();
}

interface Container {
  id: string;
  task: string;
  state: string;
}

/** Containers (running or not) of a service on a node, by their labels. */
function containersOf(nodeId: string, service: string): Container[] {
  const out = docker('ps', '-a', '--no-trunc', '--filter', `label=shoal.node.id=${nodeId}`, '--filter', `label=shoal.service.name=${service}`,
    '--format', '{{.ID}} {{.Label "shoal.task.id"}} {{.State}}');
  return out ? out.split('\n').map((l) => { const [id, task, state] = l.split(' '); return { id, task, state }; }) : [];
}

const runningOf = (nodeId: string, service: string) => containersOf(nodeId, service).filter((c) => c.state === 'running');

function containerState(id: string): string {
  return docker('inspect', '--format', '{{.State.Status}}', id);
}

interface TaskView {
  task: { id: string; slot: number; nodeId: string; desiredState: string; status: { state: string; err: string; containerId: string } };
  nodeHostname: string;
}

interface NodeView {
  node: { id: string; description: { hostname: string }; status: { state: string; message: string } };
}

describe('agent restart', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let w1: Daemon;
  let w1Id = '';
  const foreign: string[] = [];

  const tasks = async (service: string) => (await m1.call<{ tasks: TaskView[] }>('ListTasks', { service })).tasks;
  const current = async (service: string) => (await tasks(service)).filter((t) => t.task.desiredState === 'running');
  const w1State = async () => {
    const r = await m1.call<{ nodes: NodeView[] }>('ListNodes');
    return r.nodes.find((n) => n.node.id === w1Id)!.node.status.state;
  };

  /**
   * Watches w1's state (and the service's current task ids) until stopped: every state seen, and
   * whether a current task of the service ever changed.
   */
  function watch(service: string, taskIds: string[]) {
    const states = new Set<string>();
    const replaced = new Set<string>();
    let on = true;
    const loop = (async () => {
      while (on) {
        try {
          states.add(await w1State());
          for (const t of await current(service)) if (!taskIds.includes(t.task.id)) replaced.add(t.task.id);
        } catch {
          // a slow answer: try again
        }
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    return {
      states,
      replaced,
      stop: async () => {
        on = false;
        await loop;
      },
    };
  }

  /** SIGTERM, then `shoald run` on the same data dir PAUSE_MS after the process is gone. */
  async function gracefulRestart(between?: () => Promise<void>): Promise<void> {
    await w1.kill('SIGTERM');
    assert.equal(w1.exitCode, 0, `graceful stop exits 0: ${w1.stderr.trim().split('\n').pop() ?? ''}`);
    await Promise.all([between?.(), sleep(PAUSE_MS)]);
    w1.start(['run', '--data-dir', w1.dataDir]);
  }

  /**
   * Proof that the restarted agent has done its first pass over its assignments: a probe task
   * pinned to w1, created now, runs (the runner handles assignment sets one at a time).
   */
  async function probe(name: string): Promise<void> {
    await m1.call('CreateService', { spec: { name, image: IMAGE, args: ['sleep', '3600'], stopGracePeriodMs: 1_000, replicas: 1, constraints: ['node.hostname==w1'] } });
    await eventually(`${name} running on w1`, async () => {
      const ts = await current(name);
      return ts.length === 1 && ts[0].task.status.state === 'running' && runningOf(w1Id, name).length === 1 ? true : undefined;
    }, 60_000);
    await m1.call('RemoveService', { service: name });
    await eventually(`${name} gone from w1`, async () => (containersOf(w1Id, name).length === 0 ? true : undefined), 60_000);
  }

  const fastDownLogged = () => m1.stderr.split('\n').some((l) => l.includes(w1Id) && l.includes('"connectionLost":true'));

  before(async () => {
    try {
      docker('image', 'inspect', IMAGE);
    } catch {
      throw new Error(`the test image ${IMAGE} is missing: run scripts/test-env.sh (installs Docker, builds the image)`);
    }
    m1 = await c.init('m1', ['--dispatcher-heartbeat', `${HEARTBEAT_MS}ms`]);
    w1 = await c.join('w1', m1, 'worker', '127.0.0.2');
    await eventually('w1 ready', async () => {
      const r = await m1.call<{ nodes: NodeView[] }>('ListNodes');
      const n = r.nodes.find((x) => x.node.description.hostname === 'w1');
      if (!n || n.node.status.state !== 'ready' || r.nodes.length !== 2) return undefined;
      w1Id = n.node.id;
      return true;
    });
    // Containers that are not w1's: one without any Shoal label, one claiming another node
    // (with a task id no node has) — even though it names the same service.
    const tag = randomBytes(4).toString('hex');
    foreign.push(docker('run', '-d', '--name', `foreign-plain-${tag}`, IMAGE, 'sleep', '1000'));
    foreign.push(docker('run', '-d', '--name', `foreign-labelled-${tag}`, '--label', 'shoal.node.id=othernode0000000000000000x',
      '--label', 'shoal.service.name=sticky', '--label', `shoal.task.id=othertask${tag}0000000000`, '--label', 'shoal.task.slot=1', IMAGE, 'sleep', '1000'));
  });
  after(async () => {
    await c.stop();
    removeContainersOf([w1Id]);
    if (foreign.length > 0) {
      try {
        docker('rm', '-f', ...foreign);
      } catch {
        // already gone
      }
    }
  });

  test('graceful restart: the same containers keep running, no twins, the node never goes down', async () => {
    await m1.call('CreateService', {
      spec: { name: 'sticky', image: IMAGE, args: ['sleep', '3600'], stopGracePeriodMs: 1_000, replicas: 3, constraints: ['node.hostname==w1'], restartPolicy: { condition: 'any', delayMs: 0 } },
    });
    const before = await eventually('3 sticky tasks running on w1', async () => {
      const ts = await current('sticky');
      return ts.length === 3 && ts.every((t) => t.task.status.state === 'running' && t.nodeHostname === 'w1') && runningOf(w1Id, 'sticky').length === 3 ? ts : undefined;
    }, 60_000);
    const taskIds = before.map((t) => t.task.id).sort();
    const containerIds = runningOf(w1Id, 'sticky').map((x) => x.id).sort();
    assert.deepEqual(before.map((t) => t.task.status.containerId).sort(), containerIds, 'the store knows each task\'s container');

    const w = watch('sticky', taskIds);
    await gracefulRestart();
    await probe('probe1');
    await w.stop();

    assert.deepEqual([...w.states], ['ready'], 'w1 stayed ready through its restart');
    assert.deepEqual([...w.replaced], [], 'no task was replaced');
    assert.ok(!fastDownLogged(), 'the dispatcher did not take the goodbye for a crash');
    const after = await current('sticky');
    assert.deepEqual(after.map((t) => t.task.id).sort(), taskIds);
    assert.ok(after.every((t) => t.task.status.state === 'running'));
    const all = containersOf(w1Id, 'sticky');
    assert.equal(all.length, 3, `exactly 3 sticky containers on w1: ${JSON.stringify(all)}`);
    assert.deepEqual(all.filter((x) => x.state === 'running').map((x) => x.id).sort(), containerIds, 'the same containers, adopted');
    for (const id of foreign) assert.equal(containerState(id), 'running', 'a foreign container is left alone');
  });

  test('scaled down while the agent was away: the removed tasks\' containers go, the rest is adopted', async () => {
    const before = await current('sticky');
    const w = watch('sticky', before.map((t) => t.task.id));
    await gracefulRestart(async () => {
      await m1.call('ScaleService', { service: 'sticky', replicas: 1 });
    });
    const survivor = await eventually('one sticky container left on w1', async () => {
      const ts = await current('sticky');
      const cs = containersOf(w1Id, 'sticky');
      return ts.length === 1 && ts[0].task.status.state === 'running' && cs.length === 1 && cs[0].state === 'running' ? { task: ts[0], container: cs[0] } : undefined;
    }, 60_000);
    await w.stop();
    assert.deepEqual([...w.states], ['ready'], 'w1 stayed ready through its restart');
    assert.ok(before.some((t) => t.task.id === survivor.task.task.id), 'the surviving task is one of the three');
    assert.equal(survivor.container.id, survivor.task.task.status.containerId, 'and keeps its container');
    const gone = before.filter((t) => t.task.id !== survivor.task.task.id);
    for (const t of gone) {
      assert.equal(docker('ps', '-aq', '--filter', `id=${t.task.status.containerId}`), '', `the container of removed task ${t.task.id} is gone`);
    }
    for (const id of foreign) assert.equal(containerState(id), 'running', 'a foreign container is left alone');
  });

  test('an old task\'s container started by hand while the agent was away is removed after the restart', async () => {
    // Stop the survivor by hand: its task fails and the orchestrator starts a replacement on w1;
    // the old container stays (exited) as history.
    const [old] = runningOf(w1Id, 'sticky');
    docker('stop', '-t', '1', old.id);
    await eventually('a replacement running', async () => {
      const ts = await current('sticky');
      return ts.length === 1 && ts[0].task.id !== old.task && ts[0].task.status.state === 'running' ? true : undefined;
    }, 60_000);
    await w1.kill('SIGTERM');
    docker('start', old.id);
    w1.start(['run', '--data-dir', w1.dataDir]);
    try {
      await eventually('the revived container removed', async () => (docker('ps', '-aq', '--filter', `id=${old.id}`) === '' ? true : undefined), 30_000);
      assert.equal(runningOf(w1Id, 'sticky').length, 1);
    } finally {
      // Whatever the agent did, the next tests start from one sticky container.
      docker('rm', '-f', old.id);
    }
    for (const id of foreign) assert.equal(containerState(id), 'running', 'a foreign container is left alone');
  });

  test('a goodbye without a return: down after the usual heartbeat timeout, not the fast path', async () => {
    await eventually('w1 ready, one sticky task running', async () => {
      const ts = await current('sticky');
      return (await w1State()) === 'ready' && ts.length === 1 && ts[0].task.status.state === 'running' ? true : undefined;
    }, 60_000);
    await w1.kill('SIGTERM');
    await eventually('w1 down', async () => ((await w1State()) === 'down' ? true : undefined), 60_000);
    assert.ok(!fastDownLogged(), 'a node that said goodbye is judged by its heartbeats');
    const r = await m1.call<{ nodes: NodeView[] }>('ListNodes');
    assert.match(r.nodes.find((n) => n.node.id === w1Id)!.node.status.message, /heartbeat/);
    w1.start(['run', '--data-dir', w1.dataDir]);
    await eventually('w1 ready again, its task running in one container', async () => {
      const ts = await current('sticky');
      const cs = runningOf(w1Id, 'sticky');
      return (await w1State()) === 'ready' && ts.length === 1 && ts[0].task.status.state === 'running' && cs.length === 1 && cs[0].task === ts[0].task.id
        ? true
        : undefined;
    }, 60_000);
  });

  test('a killed agent (no goodbye) is marked down at once; back, it runs its tasks again', async () => {
    assert.ok(!fastDownLogged());
    await w1.kill('SIGKILL');
    await eventually('w1 down', async () => ((await w1State()) === 'down' ? true : undefined), 30_000);
    assert.ok(fastDownLogged(), 'the dropped long poll (no goodbye) took the fast path');
    // Pinned to w1, the replacement waits for it.
    await eventually('a pending replacement', async () => {
      const ts = await current('sticky');
      return ts.length === 1 && ts[0].task.status.state === 'pending' && /down/.test(ts[0].task.status.err) ? true : undefined;
    }, 30_000);
    w1.start(['run', '--data-dir', w1.dataDir]);
    await eventually('w1 ready and its one task running in one container', async () => {
      const ts = await current('sticky');
      const cs = runningOf(w1Id, 'sticky');
      return (await w1State()) === 'ready' && ts.length === 1 && ts[0].task.status.state === 'running' && cs.length === 1 && cs[0].task === ts[0].task.id
        ? true
        : undefined;
    }, 60_000);
    for (const id of foreign) assert.equal(containerState(id), 'running', 'a foreign container is left alone');
    await m1.call('RemoveService', { service: 'sticky' });
    await eventually('no sticky container left on w1', async () => (containersOf(w1Id, 'sticky').length === 0 ? true : undefined), 60_000);
  });
});
