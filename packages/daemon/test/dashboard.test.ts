// The dashboard's parts that need no manager: its logins (one-time tokens, sessions) and what it
// makes of the store's changes (the page's views; the event panel's lines, from the manager's
// event journal), from a real store fed transactions as Raft would feed it. The whole, in a browser: test/ui/dashboard.test.ts.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterStore, type Node, type Op, type Service, type StoreEvent, type Task, encodeTx } from '@shoal/store';
import { completeServiceSpec } from '@shoal/types';
import { LOGIN_TOKEN_TTL_MS, Logins, SESSION_IDLE_MS } from '../src/dashboard/logins.js';
import { EventJournal } from '@shoal/manager';
import { ShoalError } from '@shoal/api';
import { eventLine } from '../src/dashboard/event-lines.js';
import { httpStatusOf, isAction, runAction } from '../src/dashboard/actions.js';
import { viewChange, viewsOf } from '../src/dashboard/views.js';

describe('logins', () => {
  test('a token is good for one session, once', () => {
    const l = new Logins();
    const { token } = l.issue();
    const session = l.redeem(token);
    assert.ok(session);
    assert.equal(l.check(session), true);
    assert.equal(l.redeem(token), undefined, 'a token is spent by its first use');
    assert.equal(l.check(token), false, 'a token is not a session');
    assert.equal(l.redeem('made-up'), undefined);
    assert.equal(l.check(undefined), false);
  });

  test('a token expires unused; a session ends when idle, or when ended', () => {
    let now = 1_000_000;
    const l = new Logins(() => now);
    const late = l.issue();
    now += LOGIN_TOKEN_TTL_MS + 1;
    assert.equal(l.redeem(late.token), undefined, 'expired');

    const session = l.redeem(l.issue().token)!;
    now += SESSION_IDLE_MS - 1;
    assert.equal(l.check(session), true, 'a use extends the session');
    now += SESSION_IDLE_MS - 1;
    assert.equal(l.check(session), true);
    now += SESSION_IDLE_MS + 1;
    assert.equal(l.check(session), false, 'idle too long');

    const other = l.redeem(l.issue().token)!;
    l.end(other);
    assert.equal(l.check(other), false);
  });
});

const T0 = 1_700_000_000_000;

function node(id: string, hostname: string, over: Partial<Node> = {}): Node {
  return {
    id,
    version: 0,
    createdAt: T0,
    updatedAt: T0,
    spec: { role: 'worker', availability: 'active', labels: {} },
    description: { hostname, platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 4e9, memoryBytes: 8 * 2 ** 30 }, engineVersion: '27.0.0' },
    status: { state: 'ready', message: '', addr: '10.0.0.1:2377', meshAddr: '', meshErrors: [], meshMode: '' },
    managerStatus: null,
    attachments: [],
    ...over,
  };
}

function service(id: string, name: string, replicas: number): Service {
  const spec = { ...completeServiceSpec({ name, image: 'nginx:alpine', env: ['SECRET=1'], replicas }), registryAuth: null };
  return { id, version: 0, createdAt: T0, updatedAt: T0, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null };
}

function task(id: string, s: Service, slot: number, nodeId: string): Task {
  return {
    id,
    version: 0,
    createdAt: T0,
    updatedAt: T0,
    serviceId: s.id,
    serviceName: s.spec.name,
    slot,
    nodeId,
    desiredState: 'running',
    status: { state: 'running', timestamp: T0, message: '', err: '', containerId: 'c1', exitCode: 0 },
    spec: s.spec,
    specVersion: 1,
    networks: [],
    jobIteration: 0,
  };
}

/** A store fed transactions one index at a time, and the events its watch saw. */
function world() {
  const store = new ClusterStore();
  const journal = new EventJournal(store, { now: () => T0 });
  const seen: StoreEvent[] = [];
  store.watch((events) => seen.push(...events));
  let index = 0;
  const tx = (...ops: Op[]) => {
    store.apply(encodeTx(ops), ++index);
  };
  const current = <T>(kind: 'node' | 'service' | 'task', id: string) => store.get(kind, id) as T;
  return { store, journal, seen, tx, current };
}

describe('what the page is sent', () => {
  test('views keep the tables\' fields and leave out specs and credentials', () => {
    const w = world();
    const s = service('s1', 'web', 2);
    w.tx({ op: 'create', kind: 'node', object: node('n1', 'alpha') }, { op: 'create', kind: 'service', object: s }, { op: 'create', kind: 'task', object: task('t1', s, 1, 'n1') });
    const v = viewsOf(w.store);
    assert.deepEqual(
      v.node.map((n) => [n.hostname, n.state, n.role, n.nanoCpus]),
      [['alpha', 'ready', 'worker', 4e9]],
    );
    assert.deepEqual(v.service.map((x) => [x.name, x.mode, x.replicas, x.image]), [['web', 'replicated', 2, 'nginx:alpine']]);
    assert.deepEqual(v.task.map((t) => [t.serviceName, t.slot, t.nodeId, t.state]), [['web', 1, 'n1', 'running']]);
    const text = JSON.stringify(v);
    assert.ok(!text.includes('SECRET=1'), 'no environment');
    assert.ok(!text.includes('registryAuth'), 'no credentials');

    const del = { op: 'delete', kind: 'task', id: 't1' } as Op;
    w.tx(del);
    const removed = viewChange(w.seen.at(-1)!);
    assert.deepEqual(removed, { kind: 'task', id: 't1', view: null });
  });

  test('event lines: a scale, a failing task with its error, a node going down', () => {
    const w = world();
    const s = service('s1', 'web', 2);
    w.tx({ op: 'create', kind: 'node', object: node('n1', 'alpha') }, { op: 'create', kind: 'service', object: s }, { op: 'create', kind: 'task', object: task('t1', s, 1, 'n1') });
    const cur = w.current<Service>('service', 's1');
    w.tx({ op: 'update', kind: 'service', object: { ...cur, spec: { ...cur.spec, replicas: 5 } } });
    const t = w.current<Task>('task', 't1');
    w.tx({ op: 'update', kind: 'task', object: { ...t, status: { ...t.status, state: 'failed', err: 'exit status 3', exitCode: 3 } } });
    const n = w.current<Node>('node', 'n1');
    w.tx({ op: 'update', kind: 'node', object: { ...n, status: { ...n.status, state: 'down', message: 'heartbeat failure' } } });
    w.journal.noteLeader('n1', '', 2, 'alpha');
    const hostOf = (id: string) => (w.store.get('node', id) as Node | undefined)?.description.hostname;
    const lines = w.journal.events().map((e) => eventLine(e, hostOf)).map((l) => `${l.type} ${l.action} ${l.name} ${l.detail}`.trim());
    assert.deepEqual(lines, [
      'node create alpha',
      'service create web',
      'task create web.1 running: on alpha',
      'service update web replicas 2 → 5',
      'task update web.1 state running → failed: on alpha: exit status 3',
      'node update alpha state ready → down',
      'cluster leader alpha term 2',
    ]);
  });
});

describe('actions', () => {
  test('bad input is refused before any call; only the known actions exist', async () => {
    // No socket at this path: a call that got as far as the control API would fail otherwise.
    const nowhere = '/nonexistent/control.sock';
    await assert.rejects(runAction(nowhere, 'scale', { service: 'web', replicas: -1 }), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT') && /replicas must be a whole number/.test((e as Error).message));
    await assert.rejects(runAction(nowhere, 'scale', { replicas: 2 }), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT') && /service is required/.test((e as Error).message));
    await assert.rejects(runAction(nowhere, 'availability', { node: 'n1' }), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT'));
    assert.equal(isAction('scale'), true);
    assert.equal(isAction('remove'), false);
    assert.equal(isAction('toString'), false);
    assert.equal(httpStatusOf(new ShoalError('FAILED_PRECONDITION', 'x')), 409);
    assert.equal(httpStatusOf(new ShoalError('UNAVAILABLE', 'x')), 503);
  });
});
