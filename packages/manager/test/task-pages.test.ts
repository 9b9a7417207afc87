// ListTasks' pages (task-pages.ts): every task exactly once across the pages, in the listing's
// order, even when tasks come and go between two pages; a page stays near its byte budget.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ShoalError } from '@shoal/api';
import type { Task } from '@shoal/store';
import { DEFAULT_TASK_PAGE, TASK_PAGE_BYTES, compareTasks, taskPage } from '../src/controlapi/task-pages.js';
import { T0, mkSpec } from './fixtures.js';

function task(id: string, serviceName: string, slot: number, createdAt = T0, spec = mkSpec({ name: serviceName })): Task {
  return {
    id,
    version: 1,
    createdAt,
    updatedAt: createdAt,
    serviceId: `svc-${serviceName}`,
    serviceName,
    slot,
    nodeId: '',
    desiredState: 'running',
    status: { state: 'pending', timestamp: createdAt, message: '', err: '', containerId: '', exitCode: 0 },
    spec,
    specVersion: 1, networks: [], jobIteration: 0,
  };
}

/** Every page of `tasks()` (re-read before each page, as the store is), with `between` run between pages. */
function allPages(tasks: () => Task[], between: (page: number) => void = () => {}): Task[][] {
  const pages: Task[][] = [];
  let token = '';
  do {
    const p = taskPage(tasks(), 0, token);
    pages.push(p.tasks);
    token = p.nextPageToken;
    between(pages.length);
  } while (token);
  return pages;
}

describe('ListTasks pages', () => {
  test('2,500 tasks come in pages of the default size, each once, in order', () => {
    const all: Task[] = [];
    for (let i = 1; i <= 1500; i++) all.push(task(`a${i}`, 'api', i));
    for (let i = 1; i <= 1000; i++) all.push(task(`w${i}`, 'web', i), ...(i % 10 === 0 ? [task(`w${i}-old`, 'web', i, T0 - 1000)] : []));
    const shuffled = [...all].sort(() => Math.random() - 0.5);
    const pages = allPages(() => shuffled);
    assert.deepEqual(pages.map((p) => p.length), [DEFAULT_TASK_PAGE, DEFAULT_TASK_PAGE, all.length - 2 * DEFAULT_TASK_PAGE]);
    assert.deepEqual(pages.flat().map((t) => t.id), [...all].sort(compareTasks).map((t) => t.id));
    // A slot's newest task comes first.
    const flat = pages.flat().map((t) => t.id);
    assert.ok(flat.indexOf('w10') === flat.indexOf('w10-old') - 1);
  });

  test('tasks that come and go between pages: the ones there throughout are listed once each', () => {
    let tasks = Array.from({ length: 3000 }, (_, i) => task(`t${i}`, 'web', i + 1));
    const steady = new Set(tasks.filter((t) => t.slot % 7 !== 0).map((t) => t.id));
    const pages = allPages(
      () => tasks,
      (n) => {
        // Between pages: slots that are multiples of 7 get a new task and lose the old one.
        tasks = tasks.map((t) => (t.slot % 7 === 0 ? task(`${t.id}-${n}`, 'web', t.slot, T0 + n) : t));
      },
    );
    const seen = pages.flat().map((t) => t.id);
    assert.equal(seen.length, new Set(seen).size, 'no task twice');
    for (const id of steady) assert.ok(seen.includes(id), `${id} missing`);
  });

  test('a page stops near its byte budget, and holds one task at least however large', () => {
    const big = mkSpec({ name: 'big', env: Array.from({ length: 3 }, (_, i) => `E${i}=${'x'.repeat(60_000)}`) });
    const tasks = Array.from({ length: 40 }, (_, i) => task(`b${i}`, 'big', i + 1, T0, big));
    const per = Buffer.byteLength(JSON.stringify(tasks[0]));
    const pages = allPages(() => tasks);
    assert.equal(pages[0]!.length, Math.floor(TASK_PAGE_BYTES / per));
    assert.equal(pages.flat().length, 40);
    const huge = mkSpec({ name: 'huge', env: Array.from({ length: 20 }, (_, i) => `E${i}=${'x'.repeat(60_000)}`) });
    const p = taskPage([task('h1', 'huge', 1, T0, huge), task('h2', 'huge', 2, T0, huge)], 0, '');
    assert.equal(p.tasks.length, 1);
    assert.notEqual(p.nextPageToken, '');
  });

  test('page_size is honoured up to its maximum; a made-up token is refused', () => {
    const tasks = Array.from({ length: 30 }, (_, i) => task(`t${i}`, 'web', i + 1));
    assert.equal(taskPage(tasks, 7, '').tasks.length, 7);
    assert.throws(() => taskPage(tasks, 0, 'not-a-token'), (err: unknown) => ShoalError.is(err, 'INVALID_ARGUMENT'));
  });
});
