// Fleet states sum node by node and process by process (sessions by manager, counts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addFleetState, emptyFleetState } from '../src/fleet.js';

test('fleet states add up', () => {
  const one = { nodes: 1, sessions: { 'm1:1': 1 }, created: 2, started: 2, stopped: 1, removed: 1, containers: 1, running: 1 };
  const other = { nodes: 2, sessions: { 'm1:1': 1, '': 1 }, created: 3, started: 3, stopped: 0, removed: 0, containers: 3, running: 2 };
  const sum = addFleetState(addFleetState(emptyFleetState(), one), other);
  assert.deepEqual(sum, { nodes: 3, sessions: { 'm1:1': 2, '': 1 }, created: 5, started: 5, stopped: 1, removed: 1, containers: 4, running: 3 });
  assert.deepEqual(one.sessions, { 'm1:1': 1 }, 'the parts are left as they were');
});
