// The membership reconciler's decisions: the store's managers + the Raft configuration + the
// leader's progress → the changes to make, in order; and which pending joins are forgotten.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CATCH_UP_LAG, type PlanInput, expiredJoins, planMembership, removalKeepsQuorum } from '../src/membership-plan.js';

const m = (id: string) => ({ id, addr: `${id}:2377` });
const up = (match: number) => ({ match, recentActive: true });
const silent = (match: number) => ({ match, recentActive: false });

function input(over: Partial<PlanInput>): PlanInput {
  return { self: 'a', commit: 100, managers: [m('a')], conf: { voters: [m('a')], learners: [] }, progress: { a: up(100) }, ...over };
}

describe('planMembership', () => {
  test('in step: nothing to do', () => {
    const p = planMembership(input({ managers: [m('a'), m('b'), m('c')], conf: { voters: [m('a'), m('b'), m('c')], learners: [] }, progress: { a: up(100), b: up(100), c: silent(90) } }));
    assert.deepEqual(p, { actions: [], waiting: [] });
  });

  test('two managers written at once: both added as learners, one change at a time in order', () => {
    const p = planMembership(input({ managers: [m('a'), m('b'), m('c')] }));
    assert.deepEqual(p.actions, [
      { kind: 'add-learner', id: 'b', addr: 'b:2377' },
      { kind: 'add-learner', id: 'c', addr: 'c:2377' },
    ]);
  });

  test('a caught-up learner is promoted (whoever leads: only the configuration and progress count)', () => {
    const p = planMembership(input({ managers: [m('a'), m('b'), m('c')], conf: { voters: [m('a')], learners: [m('b'), m('c')] }, progress: { a: up(100), b: up(100 - CATCH_UP_LAG), c: up(40) } }));
    assert.deepEqual(p.actions, [{ kind: 'promote', id: 'b' }]);
    assert.deepEqual(p.waiting, [{ id: 'c', why: 'learner catching up (at 40 of 100)' }]);
  });

  test('a learner not heard from, or with nothing known yet (a new leader), is not promoted', () => {
    for (const progress of [{ a: up(100), b: silent(100) }, { a: up(100) }, { a: up(100), b: up(0) }]) {
      const p = planMembership(input({ managers: [m('a'), m('b')], conf: { voters: [m('a')], learners: [m('b')] }, progress }));
      assert.deepEqual(p.actions, []);
      assert.equal(p.waiting.length, 1);
    }
  });

  test('promotion comes before adding another learner, and dropping stale learners before both', () => {
    const p = planMembership(input({ managers: [m('a'), m('b'), m('c')], conf: { voters: [m('a')], learners: [m('b'), m('ghost')] }, progress: { a: up(100), b: up(100) } }));
    assert.deepEqual(p.actions.map((x) => `${x.kind}:${'id' in x ? x.id : x.to}`), ['remove:ghost', 'promote:b', 'add-learner:c']);
  });

  test('a demoted voter is removed when the rest keep a reachable majority', () => {
    const p = planMembership(input({ managers: [m('a'), m('b')], conf: { voters: [m('a'), m('b'), m('c')], learners: [] }, progress: { a: up(100), b: up(100), c: up(100) } }));
    assert.deepEqual(p.actions, [{ kind: 'remove', id: 'c', voter: true }]);
  });

  test('a removal that would leave no reachable majority waits', () => {
    // a, b, c voters; b down; demoting c (up) would leave a and b with only a reachable.
    const p = planMembership(input({ managers: [m('a'), m('b')], conf: { voters: [m('a'), m('b'), m('c')], learners: [] }, progress: { a: up(100), b: silent(50), c: up(100) } }));
    assert.deepEqual(p.actions, []);
    assert.match(p.waiting[0].why, /leave 1 reachable of 2 managers, below the quorum of 2/);
  });

  test('a dead voter that is no longer a manager is removed (the survivors are the majority)', () => {
    const p = planMembership(input({ managers: [m('a'), m('b')], conf: { voters: [m('a'), m('b'), m('c')], learners: [] }, progress: { a: up(100), b: up(100), c: silent(3) } }));
    assert.deepEqual(p.actions, [{ kind: 'remove', id: 'c', voter: true }]);
  });

  test('the leader demoted hands leadership to the most up-to-date reachable manager', () => {
    const p = planMembership(input({ managers: [m('b'), m('c')], conf: { voters: [m('a'), m('b'), m('c')], learners: [] }, progress: { a: up(100), b: up(90), c: up(99) } }));
    assert.deepEqual(p.actions, [{ kind: 'transfer-leadership', to: 'c' }]);
  });

  test('the leader demoted with no reachable manager to take over waits', () => {
    const p = planMembership(input({ managers: [m('b'), m('c')], conf: { voters: [m('a'), m('b'), m('c')], learners: [] }, progress: { a: up(100), b: silent(90), c: silent(99) } }));
    assert.deepEqual(p.actions, []);
    assert.equal(p.waiting[0].id, 'a');
  });

  test('never the last voter', () => {
    const p = planMembership(input({ managers: [], conf: { voters: [m('a')], learners: [] } }));
    assert.deepEqual(p.actions, []);
    assert.deepEqual(p.waiting, [{ id: 'a', why: 'cannot remove the last manager' }]);
  });

  test('a manager without an address waits for one', () => {
    const p = planMembership(input({ managers: [m('a'), { id: 'b', addr: '' }] }));
    assert.deepEqual(p.actions, []);
    assert.deepEqual(p.waiting, [{ id: 'b', why: 'the manager has no address yet' }]);
  });
});

describe('removalKeepsQuorum', () => {
  test('counts the remaining voters the leader reaches', () => {
    assert.deepEqual(removalKeepsQuorum(['a', 'b', 'c'], new Set(['a', 'b', 'c']), 'c'), { ok: true });
    assert.equal(removalKeepsQuorum(['a', 'b', 'c'], new Set(['a', 'c']), 'c').ok, false);
    assert.deepEqual(removalKeepsQuorum(['a', 'b', 'c', 'd', 'e'], new Set(['a', 'b', 'c']), 'e'), { ok: true });
    assert.equal(removalKeepsQuorum(['a', 'b', 'c', 'd', 'e'], new Set(['a', 'b', 'c']), 'c').ok, false);
    assert.deepEqual(removalKeepsQuorum(['a', 'b'], new Set(['a']), 'x'), { ok: true });
  });
});

describe('expiredJoins', () => {
  test('a join silent for the grace period expires; a sign of life restarts the wait; a completed one is dropped', () => {
    const since = new Map<string, number>();
    assert.deepEqual(expiredJoins([{ id: 'x', heardFrom: false }, { id: 'y', heardFrom: false }], since, 0, 1000), []);
    assert.deepEqual(expiredJoins([{ id: 'x', heardFrom: false }, { id: 'y', heardFrom: true }], since, 999, 1000), []);
    assert.deepEqual(expiredJoins([{ id: 'x', heardFrom: false }, { id: 'y', heardFrom: false }], since, 1000, 1000), ['x']);
    assert.deepEqual(expiredJoins([{ id: 'y', heardFrom: false }], since, 1998, 1000), []);
    assert.equal(since.has('x'), false);
    assert.deepEqual(expiredJoins([{ id: 'y', heardFrom: false }], since, 1999, 1000), ['y']);
  });
});
