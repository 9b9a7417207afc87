// The agent's feeds over the dispatcher's paged diffs: the runner and the mesh get whole views
// only, never half a listing, and a page that resets the view replaces what was there.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { Task } from '@shoal/types';
import { AssignmentsFeed, MeshViewFeed, type AssignmentsPage, type MeshPage } from '../src/dispatcher-feeds.js';

const task = (id: string, desiredState = 'running') => ({ id, desiredState }) as unknown as Task;

describe('AssignmentsFeed', () => {
  test('reads every page before answering; applies removals and resets', async () => {
    const pages: AssignmentsPage[] = [
      { token: '5/b', reset: true, more: true, tasks: [task('a'), task('b')], removed: [] },
      { token: '7', reset: false, more: false, tasks: [task('c')], removed: ['a'] },
      { token: '9', reset: false, more: false, tasks: [task('b', 'shutdown')], removed: [] },
      { token: '12', reset: true, more: false, tasks: [task('z')], removed: [] },
    ];
    const asked: [string, number][] = [];
    const feed = new AssignmentsFeed(async (known, waitMs) => {
      asked.push([known, waitMs]);
      return pages.shift()!;
    });
    const first = await feed.next('', 10_000);
    assert.deepEqual(first.tasks.map((t) => t.id).sort(), ['b', 'c']);
    assert.equal(first.token, '7');
    // The first call answers at once; the next page is asked for at once, from the page's cursor.
    assert.deepEqual(asked, [['', 0], ['5/b', 0]]);
    const second = await feed.next(first.token, 10_000);
    assert.deepEqual(asked[2], ['7', 10_000]);
    assert.deepEqual(second.tasks.map((t) => [t.id, t.desiredState]).sort(), [['b', 'shutdown'], ['c', 'running']]);
    const third = await feed.next(second.token, 10_000);
    assert.deepEqual(third.tasks.map((t) => t.id), ['z']);
  });
});

describe('AssignmentsFeed: registry credentials', () => {
  test("kept by task id beside the tasks (never in them), gone with a task's removal, a reset, or a version of it without them", async () => {
    const auth = (u: string) => JSON.stringify({ username: u, password: `pw-${u}` });
    const pages: AssignmentsPage[] = [
      { token: '1', reset: true, more: false, tasks: [task('a'), task('b'), task('c')], removed: [], registryAuths: { a: auth('a'), b: auth('b'), c: auth('c') } },
      { token: '2', reset: false, more: false, tasks: [task('b', 'shutdown')], removed: ['a'], registryAuths: {} },
      { token: '3', reset: true, more: false, tasks: [task('d')], removed: [], registryAuths: { d: auth('d') } },
    ];
    const feed = new AssignmentsFeed(async () => pages.shift()!);
    const first = await feed.next('', 0);
    assert.deepEqual([...first.registryAuths.keys()].sort(), ['a', 'b', 'c']);
    assert.ok(first.tasks.every((t) => !JSON.stringify(t).includes('pw-')));
    const second = await feed.next(first.token, 0);
    assert.deepEqual([...second.registryAuths.entries()], [['c', auth('c')]]);
    const third = await feed.next(second.token, 0);
    assert.deepEqual([...third.registryAuths.keys()], ['d']);
  });
});

describe('AssignmentsFeed: secrets and configs', () => {
  test('kept in memory while a task held names them, forgotten with the last such task or a reset', async () => {
    const using = (id: string, secrets: string[], configs: string[] = []) =>
      ({ id, desiredState: 'running', spec: { secrets: secrets.map((secretId) => ({ secretId })), configs: configs.map((configId) => ({ configId })) } }) as unknown as Task;
    const data = (s: string) => Buffer.from(s);
    const pages: AssignmentsPage[] = [
      { token: '1', reset: true, more: false, tasks: [using('a', ['s1'], ['c1']), using('b', ['s1', 's2'])], removed: [], secrets: [{ id: 's1', data: data('one') }, { id: 's2', data: data('two') }], configs: [{ id: 'c1', data: data('conf') }] },
      { token: '2', reset: false, more: false, tasks: [], removed: ['b'] },
      { token: '3', reset: true, more: false, tasks: [using('c', [])], removed: [] },
    ];
    const feed = new AssignmentsFeed(async () => pages.shift()!);
    const first = await feed.next('', 0);
    assert.deepEqual([...first.files.keys()].sort(), ['config/c1', 'secret/s1', 'secret/s2']);
    assert.equal(Buffer.from(first.files.get('secret/s2')!).toString(), 'two');
    const second = await feed.next(first.token, 0);
    assert.deepEqual([...second.files.keys()].sort(), ['config/c1', 'secret/s1']);
    const third = await feed.next(second.token, 0);
    assert.deepEqual([...third.files.keys()], []);
  });
});

describe('MeshViewFeed', () => {
  test('rebuilds ports with their service\'s backends and the removed nodes', async () => {
    const port = (p: number, serviceId: string) => ({ port: p, protocol: 'tcp', targetPort: 80, proxyProtocol: false, serviceId, serviceName: serviceId });
    const backend = (taskId: string, serviceId: string) => ({ taskId, nodeId: 'n1', containerId: `c-${taskId}`, via: 'n1:7946', serviceId });
    const pages: MeshPage[] = [
      { token: '3/b:t1', reset: true, more: true, ports: [port(8080, 'web')], backends: [backend('t1', 'web')], removedNodes: [], deleted: [] },
      { token: '4', reset: false, more: false, ports: [port(9090, 'api')], backends: [backend('t2', 'web'), backend('t3', 'api')], removedNodes: ['gone1'], deleted: [] },
      { token: '6', reset: false, more: false, ports: [], backends: [], removedNodes: [], deleted: ['b:t1', 'p:9090', 'r:gone1'] },
    ];
    const feed = new MeshViewFeed(async () => pages.shift()!);
    const v = await feed.next('', 0);
    assert.deepEqual(
      v.ports.map((p) => [p.port, p.backends.map((b) => b.taskId)]),
      [[8080, ['t1', 't2']], [9090, ['t3']]],
    );
    assert.deepEqual(v.removedNodes, ['gone1']);
    assert.equal(v.token, '4');
    const w = await feed.next(v.token, 1_000);
    assert.deepEqual(w.ports.map((p) => [p.port, p.backends.map((b) => b.taskId)]), [[8080, ['t2']]]);
    assert.deepEqual(w.removedNodes, []);
  });
});
