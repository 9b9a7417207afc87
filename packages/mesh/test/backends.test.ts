// The backend pick and the table diff on their own (no sockets): least connections, ties in
// round-robin from the port's cursor, failure backoff and kernel-served local backends ranked
// last, backends already tried skipped; state kept across table updates, duplicates and invalid
// entries dropped.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { diffBackends, pickBackend, type BackendState } from '../src/backends.js';
import type { Backend } from '../src/index.js';

const NOW = 1_000_000;

function local(taskId: string, port = 80): Backend {
  return { taskId, nodeId: 'n1', local: true, addr: `10.0.0.${taskId.length}:${port}`, targetPort: port };
}

function remote(taskId: string, via = '127.0.0.2:4000'): Backend {
  return { taskId, nodeId: 'n2', local: false, via, targetPort: 80 };
}

function states(list: Backend[]): BackendState[] {
  return diffBackends([], list, () => assert.fail('unexpected invalid backend'));
}

/** The task ids picked, one pick after the other, each a new client (no tries), cursor moved as the Ingress does. */
function picks(list: BackendState[], n: number, demoteLocal = false): string[] {
  let rr = 0;
  const out: string[] = [];
  for (let k = 0; k < n; k++) {
    const i = pickBackend(list, rr, [], NOW, demoteLocal);
    rr = (i + 1) % list.length;
    out.push(list[i]!.backend.taskId);
  }
  return out;
}

describe('pickBackend', () => {
  test('ties go round-robin from the cursor', () => {
    assert.deepEqual(picks(states([local('a'), local('b'), local('c')]), 6), ['a', 'b', 'c', 'a', 'b', 'c']);
  });

  test('least connections wins over the cursor', () => {
    const list = states([local('a'), local('b'), local('c')]);
    list[0]!.active = 2;
    list[1]!.active = 1;
    assert.equal(pickBackend(list, 0, [], NOW, false), 2);
    list[2]!.active = 3;
    assert.equal(pickBackend(list, 0, [], NOW, false), 1);
  });

  test('a backend in failure backoff is picked only when no healthy one is left', () => {
    const list = states([local('a'), local('b')]);
    list[0]!.failingUntil = NOW + 1;
    list[1]!.active = 50;
    assert.equal(pickBackend(list, 0, [], NOW, false), 1);
    assert.equal(pickBackend(list, 0, [list[1]!], NOW, false), 0);
    // The backoff is over at its deadline.
    list[0]!.failingUntil = NOW;
    assert.equal(pickBackend(list, 0, [], NOW, false), 0);
  });

  test('backends already tried for this client are skipped; none left gives -1', () => {
    const list = states([local('a'), local('b')]);
    assert.equal(pickBackend(list, 0, [list[0]!], NOW, false), 1);
    assert.equal(pickBackend(list, 0, [list[0]!, list[1]!], NOW, false), -1);
    assert.equal(pickBackend([], 0, [], NOW, false), -1);
  });

  test('localInKernel: local backends come after healthy remote ones, before failing ones', () => {
    const list = states([local('a'), remote('r1'), remote('r2')]);
    assert.deepEqual(picks(list, 4, true), ['r1', 'r2', 'r1', 'r2']);
    // Without it, the local backend takes its turn.
    assert.deepEqual(picks(list, 3, false), ['a', 'r1', 'r2']);
    list[1]!.failingUntil = NOW + 1;
    list[2]!.failingUntil = NOW + 1;
    assert.equal(list[pickBackend(list, 1, [], NOW, true)]!.backend.taskId, 'a');
  });
});

describe('diffBackends', () => {
  test('a backend that stays keeps its counters and backoff; a changed one starts fresh', () => {
    const first = states([local('a'), remote('r1')]);
    first[0]!.active = 3;
    first[0]!.failingUntil = NOW;
    first[1]!.total = 7;
    const moved = remote('r1', '127.0.0.9:4000');
    const next = diffBackends(first, [local('a'), moved], () => assert.fail('unexpected invalid backend'));
    assert.equal(next[0], first[0]);
    assert.equal(next[0]!.active, 3);
    assert.equal(next[0]!.failingUntil, NOW);
    assert.notEqual(next[1], first[1]);
    assert.equal(next[1]!.total, 0);
    assert.deepEqual(next[1]!.target, { host: '127.0.0.9', port: 4000 });
  });

  test('duplicates are dropped, invalid entries reported and dropped', () => {
    const invalid: Backend[] = [];
    const bad: Backend[] = [
      { taskId: 'noaddr', nodeId: 'n1', local: true, targetPort: 80 },
      { taskId: 'x', nodeId: 'n1', local: true, addr: '10.0.0.1:80', targetPort: 0 },
      { taskId: 'y', nodeId: 'n2', local: false, targetPort: 80 },
      { taskId: 'z', nodeId: 'n2', local: false, via: 'not an address', targetPort: 80 },
    ];
    const list = diffBackends([], [local('a'), local('a'), ...bad, remote('r1')], (b) => invalid.push(b));
    assert.deepEqual(list.map((b) => b.backend.taskId), ['a', 'r1']);
    assert.deepEqual(invalid, bad);
  });
});
