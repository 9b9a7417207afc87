// The dispatcher's assignment protocol, spoken over gRPC to a real manager by this test in the
// role of a node's agent (the container runner that normally speaks it lands with the agent).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { callUnary } from '@shoal/manager';
import { AssignmentsFeed, type AssignmentsPage } from '@shoal/agent';
import { type TlsMaterial, fetchPinnedCA, managerChannel, newKeyAndCsr, parseJoinToken } from '@shoal/pki';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';

interface Task {
  id: string;
  slot: number;
  nodeId: string;
  desiredState: string;
  status: { state: string; err: string; exitCode: number };
}

describe('dispatcher: assignments and task status', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let nodeId = '';
  let sessionId = '';
  let beat: NodeJS.Timeout;
  let tls: TlsMaterial;
  const d = <T>(method: string, req: object, timeoutMs = 10_000) =>
    callUnary<T>('shoal.dispatcher.Dispatcher', m1.addr, method, { nodeId, sessionId, ...req }, timeoutMs, managerChannel(tls));

  /** Joins as a node's agent would: the CA pinned by the token, a CSR, a certificate back. */
  async function joinAsAgent(hostname: string): Promise<{ nodeId: string; tls: TlsMaterial }> {
    const { token } = await m1.call<{ token: string }>('GetJoinToken', { role: 'worker' });
    const caPem = await fetchPinnedCA(m1.addr, parseJoinToken(token).fingerprint);
    const { keyPem, csrPem } = await newKeyAndCsr();
    const r = await callUnary<{ nodeId: string; cert: string }>(
      'shoal.ca.CA',
      m1.addr,
      'Join',
      { token, hostname, addr: '127.0.0.9:1', csr: csrPem },
      10_000,
      managerChannel({ caPem }),
    );
    return { nodeId: r.nodeId, tls: { caPem, certPem: r.cert, keyPem } };
  }
  const report = (taskId: string, state: string, extra: object = {}) =>
    d<{ rejected: string[] }>('UpdateTaskStatus', { updates: [{ taskId, status: { state, timestamp: Date.now(), ...extra } }] });

  before(async () => {
    [m1] = await c.managers(1);
    ({ nodeId, tls } = await joinAsAgent('agent-under-test'));
    const s = await callUnary<{ sessionId: string }>(
      'shoal.dispatcher.Dispatcher',
      m1.addr,
      'Session',
      { nodeId, info: { hostname: 'agent-under-test' } },
      10_000,
      managerChannel(tls),
    );
    sessionId = s.sessionId;
    // Keep the session alive, as an agent does.
    beat = setInterval(() => void d('Heartbeat', {}).catch(() => undefined), 300);
  });
  after(async () => {
    clearInterval(beat);
    await c.stop();
  });

  test('a node gets its assigned tasks, reports them running, and the service counts them', async () => {
    await m1.call('CreateService', { spec: { name: 'pinned', image: 'shoal/busybox:latest', replicas: 2, constraints: [`node.id==${nodeId}`] } });
    const a = await eventually('two assignments', async () => {
      const r = await d<{ token: string; tasks: Task[] }>('Assignments', { known: '', waitMs: 0 });
      return r.tasks.length === 2 ? r : undefined;
    });
    for (const t of a.tasks) {
      assert.equal(t.nodeId, nodeId);
      for (const st of ['accepted', 'preparing', 'starting', 'running']) {
        assert.deepEqual((await report(t.id, st)).rejected, []);
      }
    }
    const svc = await m1.call<{ running: number; desired: number }>('GetService', { service: 'pinned' });
    assert.deepEqual([svc.running, svc.desired], [2, 2]);
  });

  test('long poll: a change comes back at once, not at the end of the wait', async () => {
    const a = await d<{ token: string; tasks: Task[] }>('Assignments', { known: '', waitMs: 0 });
    const t0 = Date.now();
    const poll = d<{ token: string; tasks: Task[] }>('Assignments', { known: a.token, waitMs: 10_000 }, 15_000);
    await new Promise((r) => setTimeout(r, 200));
    await m1.call('ScaleService', { service: 'pinned', replicas: 3 });
    const b = await poll;
    assert.ok(Date.now() - t0 < 5_000, 'answered before the wait ran out');
    assert.notEqual(b.token, a.token);
  });

  test('bad reports are refused one by one; nothing else changes', async () => {
    const a = await d<{ tasks: Task[] }>('Assignments', { known: '', waitMs: 0 });
    const running = a.tasks.find((t) => t.status.state === 'running')!;
    const r = await d<{ rejected: string[] }>('UpdateTaskStatus', {
      updates: [
        { taskId: running.id, status: { state: 'starting' } },
        { taskId: 'nosuchtask0000000000000000', status: { state: 'running' } },
        { taskId: running.id, status: { state: 'bogus' } },
      ],
    });
    assert.equal(r.rejected.length, 3);
    assert.match(r.rejected.join('\n'), /cannot go back/);
    assert.match(r.rejected.join('\n'), /no such task/);
    const again = await d<{ tasks: Task[] }>('Assignments', { known: '', waitMs: 0 });
    assert.equal(again.tasks.find((t) => t.id === running.id)!.status.state, 'running');
  });

  test('a report in the same state with a new message (a pull\'s progress) is stored, and keeps the time the state began', async () => {
    await m1.call('CreateService', { spec: { name: 'pulling', image: 'shoal/busybox:latest', replicas: 1, constraints: [`node.id==${nodeId}`] } });
    const task = await eventually('its assignment', async () => {
      const r = await d<{ tasks: (Task & { serviceName: string })[] }>('Assignments', { known: '', waitMs: 0 });
      return r.tasks.find((t) => t.serviceName === 'pulling');
    });
    const status = async () => {
      const r = await d<{ tasks: (Task & { status: { message: string; timestamp: number | string } })[] }>('Assignments', { known: '', waitMs: 0 });
      const st = r.tasks.find((t) => t.id === task.id)!.status;
      return { state: st.state, message: st.message, at: Number(st.timestamp) };
    };
    assert.deepEqual((await report(task.id, 'accepted')).rejected, []);
    assert.deepEqual((await report(task.id, 'preparing', { message: 'preparing' })).rejected, []);
    const began = await status();
    assert.equal(began.state, 'preparing');
    await eventually('the clock to move on', async () => Date.now() > began.at + 1 || undefined);
    assert.deepEqual((await report(task.id, 'preparing', { message: 'pulling reg/app:1: 1 of 2 layers' })).rejected, []);
    assert.deepEqual(await status(), { state: 'preparing', message: 'pulling reg/app:1: 1 of 2 layers', at: began.at });
    assert.deepEqual((await report(task.id, 'starting')).rejected, []);
    assert.ok((await status()).at > began.at, 'a new state: a new time');
    await m1.call('RemoveService', { service: 'pulling' });
  });

  test("another node, with its own certificate and session, cannot touch this node's tasks", async () => {
    const a = await d<{ tasks: Task[] }>('Assignments', { known: '', waitMs: 0 });
    const running = a.tasks.find((t) => t.status.state === 'running')!;
    const other = await joinAsAgent('other-agent');
    const sec = managerChannel(other.tls);
    const call = <T>(method: string, req: object) => callUnary<T>('shoal.dispatcher.Dispatcher', m1.addr, method, req, 10_000, sec);
    const s = await call<{ sessionId: string }>('Session', { nodeId: other.nodeId, info: { hostname: 'other-agent' } });
    // Acting in its own name: the task is not its to report.
    const r = await call<{ rejected: string[] }>('UpdateTaskStatus', {
      nodeId: other.nodeId,
      sessionId: s.sessionId,
      updates: [{ taskId: running.id, status: { state: 'failed', err: 'forged' } }],
    });
    assert.match(r.rejected.join('\n'), /not assigned to this node/);
    // Acting in the first node's name: refused before anything is read.
    await assert.rejects(
      call('UpdateTaskStatus', { nodeId, sessionId, updates: [{ taskId: running.id, status: { state: 'failed' } }] }),
      /may act only for itself/,
    );
    await assert.rejects(call('Assignments', { nodeId, sessionId, known: '', waitMs: 0 }), /may act only for itself/);
    const again = await d<{ tasks: Task[] }>('Assignments', { known: '', waitMs: 0 });
    assert.equal(again.tasks.find((t) => t.id === running.id)!.status.state, 'running');
  });

  test('a task that fails is replaced in its slot (restart policy any)', async () => {
    const a = await d<{ tasks: Task[] }>('Assignments', { known: '', waitMs: 0 });
    const victim = a.tasks.find((t) => t.status.state === 'running')!;
    await report(victim.id, 'failed', { err: 'task: non-zero exit (1)', exitCode: 1 });
    const replaced = await eventually('a replacement in the same slot', async () => {
      const r = await d<{ tasks: Task[] }>('Assignments', { known: '', waitMs: 0 });
      return r.tasks.find((t) => t.slot === victim.slot && t.id !== victim.id && t.desiredState === 'running');
    });
    assert.equal(replaced.status.state, 'assigned');
    const ps = await m1.call<{ tasks: { task: Task }[] }>('ListTasks', { service: 'pinned' });
    const old = ps.tasks.find((t) => t.task.id === victim.id)!.task;
    assert.equal(old.desiredState, 'shutdown');
    assert.equal(old.status.err, 'task: non-zero exit (1)');
  });

  test('more assignments than a gRPC message holds: they come in pages, and add up', async () => {
    // 3,000 tasks of ~2.5 KB (a 2 KB env each): ~7 MB in all, where one answer may carry 4 MiB.
    const env = [`PAD=${'x'.repeat(2_000)}`];
    await m1.call('CreateService', { spec: { name: 'many', image: 'shoal/busybox:latest', env, replicas: 3_000, constraints: [`node.id==${nodeId}`] } }, 60_000);
    let pages = 0;
    // As the agent reads them (the plain client, 4 MiB at most per answer).
    const feed = new AssignmentsFeed((known, waitMs) => {
      pages++;
      return d<AssignmentsPage>('Assignments', { known, waitMs }, waitMs + 30_000);
    });
    const all = await eventually(
      '3,000 assignments',
      async () => {
        const r = await feed.next('', 0);
        return r.tasks.filter((t) => t.serviceName === 'many').length === 3_000 ? r : undefined;
      },
      180_000,
    );
    assert.ok(pages > 1, 'paged');
    assert.equal(new Set(all.tasks.map((t) => t.id)).size, all.tasks.length);
    assert.ok(all.tasks.every((t) => t.nodeId === nodeId));
    await m1.call('RemoveService', { service: 'many' }, 60_000);
  });

  test("registry credentials: opened only in the assignments of the node that runs the service's task, beside it, never in it", async () => {
    const login = (u: string) => JSON.stringify({ username: u, password: `secret-of-${u}`, serveraddress: 'reg.example:5000' });
    await m1.call('CreateService', { spec: { name: 'authhere', image: 'reg.example:5000/a', replicas: 1, constraints: [`node.id==${nodeId}`] }, registryAuth: login('here') });
    // The manager's own node runs this one: its credentials must never reach the agent under test.
    await m1.call('CreateService', { spec: { name: 'authelsewhere', image: 'reg.example:5000/b', replicas: 1, constraints: [`node.id!=${nodeId}`] }, registryAuth: login('elsewhere') });
    // Every page of the node's assignments (an earlier test's tasks may still fill the first).
    const allPages = async () => {
      const pages: AssignmentsPage[] = [];
      let known = '';
      do {
        const p = await d<AssignmentsPage>('Assignments', { known, waitMs: 0 });
        pages.push(p);
        known = p.token;
      } while (pages.at(-1)!.more);
      return pages;
    };
    const pages = await eventually('the task of authhere, with its credentials', async () => {
      const ps = await allPages();
      const t = ps.flatMap((p) => p.tasks).find((x) => x.serviceName === 'authhere');
      return t && ps.some((p) => p.registryAuths?.[t.id]) ? ps : undefined;
    });
    const t = pages.flatMap((p) => p.tasks).find((x) => x.serviceName === 'authhere')!;
    const auths = Object.assign({}, ...pages.map((p) => p.registryAuths ?? {})) as Record<string, string>;
    const a = { pages, t };
    assert.deepEqual(JSON.parse(auths[t.id]!), JSON.parse(login('here')));
    assert.deepEqual(Object.keys(auths), [t.id]);
    const text = JSON.stringify(a);
    assert.equal(text.split('secret-of-here').length - 1, 1, 'once: in registryAuths, not in the task');
    assert.ok(!text.includes('secret-of-elsewhere'));
    // Nor in what the control API answers.
    const listed = JSON.stringify([await m1.call('ListServices'), await m1.call('ListTasks', {}), await m1.call('GetService', { service: 'authhere' })]);
    assert.ok(!listed.includes('secret-of-') && !listed.includes('registryAuth"'), listed.slice(0, 200));
    await m1.call('RemoveService', { service: 'authhere' });
    await m1.call('RemoveService', { service: 'authelsewhere' });
  });
});
