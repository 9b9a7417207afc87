// SCENARIO.md on real hosts (step 9): the walkthrough on a lab of one manager and two workers,
// each a container with its own Docker engine (test/helpers/lab.ts), driven through the CLI from
// the host as a user would. Step 7 is a power cut (`lab stop worker1`): its containers die with it.
// Needs root and a Docker engine; without them the suite fails, it does not skip.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { eventually } from '../helpers/shoald.js';
import { TestLab, lines, ok } from '../helpers/lab.js';

const NODES = ['manager1', 'worker1', 'worker2'];
// httpd's realm: a word no other process on the host has in its command line (pgrep finds the
// replicas' processes from the host, which sees every PID namespace).
const REALM = `w${100_000 + randomInt(800_000)}`;

describe('the walkthrough on a lab of real hosts', { timeout: 1_200_000 }, () => {
  const lab = new TestLab('walk');
  let image = '';

  const ps = () => lab.ps('web-fe') ?? [];
  const running = () => ps().filter((t) => t.desiredState === 'running' && t.currentState === 'running');
  /** The replicas' processes on the whole machine. */
  const processes = () => lines(lab.sh('pgrep', ['-f', `^httpd -f -p 8080 -r ${REALM}$`]).stdout);
  /** Each node's running web-fe containers, as its own engine lists them. */
  const perNode = () => Object.fromEntries(NODES.map((n) => [n, lab.containers(n, 'web-fe')]));

  before(() => {
    lab.up(1, 2);
    image = lab.loadImage('shoal/busybox:latest');
  });
  after(() => lab.down());

  test('1-3. web-fe with 5 replicas: listed 5/5, its tasks on every node', async () => {
    ok(lab.shoal('service', 'create', '-d', '--name', 'web-fe', '--replicas', '5', '-p', '8080:8080', '--stop-grace-period', '1s',
      image, 'httpd', '-f', '-p', '8080', '-r', REALM));
    await eventually('5 running tasks', async () => (running().length === 5 ? true : undefined), 120_000);
    assert.match(ok(lab.shoal('service', 'ls')), /web-fe\s+replicated\s+5\/5\s/);
    const where = new Set(running().map((t) => t.node));
    assert.deepEqual([...where].sort(), NODES, 'every node runs a replica');
    // Each node's own engine runs exactly the replicas the manager says it does.
    const counts = perNode();
    for (const n of NODES) assert.equal(counts[n].length, running().filter((t) => t.node === n).length, n);
    assert.equal(processes().length, 5);
  });

  test('2. port 8080 answers on every host, whichever runs the replicas (the routing mesh)', async () => {
    for (const n of NODES) {
      const addr = lab.addr(n);
      const status = await eventually(`an HTTP answer on ${n} (${addr}:8080)`, async () => {
        const res = await fetch(`http://${addr}:8080/`, { signal: AbortSignal.timeout(3_000) }).catch(() => undefined);
        return res?.status;
      }, 60_000);
      assert.ok(status >= 200 && status < 500, `${n} answered ${status}`);
    }
  });

  test('4. scaled to 10', async () => {
    ok(lab.shoal('service', 'scale', '-d', 'web-fe=10'));
    await eventually('10 running', async () => (running().length === 10 && processes().length === 10 ? true : undefined), 120_000);
  });

  test('5-6. a container stopped by hand on worker1 is replaced; started again, it is removed', async () => {
    const victim = lab.containers('worker1', 'web-fe')[0];
    assert.ok(victim, 'worker1 runs a replica');
    const taskId = lab.exec('worker1', 'docker', 'inspect', '-f', '{{index .Config.Labels "shoal.task.id"}}', victim).trim();
    lab.exec('worker1', 'docker', 'stop', '-t', '1', victim);
    await eventually('listed as shut down, and 10 running again', async () => {
      const old = ps().find((t) => t.id === taskId);
      return old?.desiredState === 'shutdown' && running().length === 10 ? true : undefined;
    }, 60_000);
    lab.exec('worker1', 'docker', 'start', victim);
    await eventually('the revived container removed, still 10 replicas', async () => {
      const gone = lab.exec('worker1', 'docker', 'ps', '-aq', '--filter', `id=${victim}`).trim() === '';
      return gone && processes().length === 10 && running().length === 10 ? true : undefined;
    }, 60_000);
  });

  test('7. worker1 powered off: its containers die with it, it is Down, 10 run on the others', async () => {
    const hadThere = running().filter((t) => t.node === 'worker1').length;
    assert.ok(hadThere > 0, 'worker1 runs replicas before the power cut');
    assert.equal(ok(lab.lab('stop', 'worker1')).trim(), 'worker1');
    // Really gone: the host has only the other nodes' replicas now.
    assert.equal(processes().length, 10 - hadThere);
    await eventually('worker1 Down and 10 running on manager1 and worker2', async () => {
      const rt = running();
      return lab.nodeStatus()?.['worker1'] === 'down' && rt.length === 10 && rt.every((t) => t.node !== 'worker1') && processes().length === 10
        ? true : undefined;
    }, 120_000);
  });

  test('8. worker1 booted: Ready, nothing moved back, no stale container left in it', async () => {
    ok(lab.lab('start', 'worker1'));
    await eventually('worker1 Ready', async () => (lab.nodeStatus()?.['worker1'] === 'ready' ? true : undefined), 120_000);
    // The containers of before the power cut come back with the node's engine, stopped: the
    // node's agent removes them (their tasks were replaced elsewhere).
    await eventually('no web-fe container on worker1, running or not', async () => (lab.containers('worker1', 'web-fe', true).length === 0 ? true : undefined), 60_000);
    const rt = running();
    assert.equal(rt.length, 10);
    assert.ok(rt.every((t) => t.node !== 'worker1'), 'a task moved back to worker1');
    assert.equal(processes().length, 10);
  });

  test('service rm: no container left on any host', async () => {
    ok(lab.shoal('service', 'rm', 'web-fe'));
    await eventually('no web-fe container anywhere', async () => (NODES.every((n) => lab.containers(n, 'web-fe', true).length === 0) && processes().length === 0 ? true : undefined), 120_000);
  });
});
