// The client session table: bounded, and never applies a command twice. A retry whose answer the
// table dropped (too many results kept for one client, or the whole session evicted) is answered
// "stale", and the command does not run again.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { SessionTable, sessionClientId, sessionSince, type Envelope } from '../src/session.js';

const enc = new TextEncoder();

function env(clientId: string, seq: number, ackedBelow = 1): Envelope {
  return { clientId, seq, ackedBelow, payload: enc.encode(`${clientId}/${seq}`) };
}

/** Applies `e` at `index`, counting how often the command really ran. */
function applier(t: SessionTable, runs: Map<string, number>) {
  return (index: number, e: Envelope) =>
    t.apply(index, e, (p) => {
      const k = new TextDecoder().decode(p);
      runs.set(k, (runs.get(k) ?? 0) + 1);
      return p;
    });
}

describe('session table', () => {
  test('a retry of a seq whose result was dropped (results per client bounded) is stale, not run again', () => {
    const t = new SessionTable({ maxClients: 100, maxResultsPerClient: 2 });
    const runs = new Map<string, number>();
    const apply = applier(t, runs);
    const a = sessionClientId('a', 0);
    // A pipelining client that has no answer yet for seq 1 (ackedBelow stays 1).
    assert.equal(apply(1, env(a, 1)).kind, 'applied');
    assert.equal(apply(2, env(a, 2)).kind, 'applied');
    assert.equal(apply(3, env(a, 3)).kind, 'applied'); // seq 1's result is dropped here
    assert.equal(apply(4, env(a, 2)).kind, 'duplicate');
    assert.equal(apply(5, env(a, 1)).kind, 'stale');
    assert.equal(runs.get(`${a}/1`), 1);
  });

  test('a retry from a client whose whole session was evicted is stale, not run again', () => {
    const t = new SessionTable({ maxClients: 2, maxResultsPerClient: 10 });
    const runs = new Map<string, number>();
    const apply = applier(t, runs);
    const a = sessionClientId('a', 0);
    assert.equal(apply(1, env(a, 1)).kind, 'applied');
    assert.equal(apply(2, env(sessionClientId('b', 1), 1)).kind, 'applied');
    assert.equal(apply(3, env(sessionClientId('c', 2), 1)).kind, 'applied'); // evicts a, the least recently active
    assert.equal(t.size(), 2);
    assert.equal(apply(4, env(a, 1)).kind, 'stale');
    assert.equal(apply(5, env(a, 2, 2)).kind, 'stale');
    assert.equal(runs.get(`${a}/1`), 1);
    assert.equal(runs.get(`${a}/2`), undefined);
    // A client whose session began after that eviction is new: it is served.
    const d = sessionClientId('d', 4);
    assert.equal(apply(6, env(d, 1)).kind, 'applied');
    assert.equal(runs.get(`${d}/1`), 1);
  });

  test('what makes a retry stale survives a snapshot', () => {
    const t = new SessionTable({ maxClients: 1, maxResultsPerClient: 1 });
    const noop = (p: Uint8Array) => p;
    const a = sessionClientId('a', 0);
    const b = sessionClientId('b', 0);
    t.apply(1, env(a, 1), noop);
    t.apply(2, env(b, 1), noop); // evicts a
    t.apply(3, env(b, 2), noop); // drops b's seq 1
    const r = SessionTable.fromJSON(JSON.parse(JSON.stringify(t.toJSON())), { maxClients: 1, maxResultsPerClient: 1 });
    assert.equal(r.apply(4, env(a, 1), noop).kind, 'stale');
    assert.equal(r.apply(5, env(b, 1), noop).kind, 'stale');
    assert.equal(r.apply(6, env(b, 2), noop).kind, 'duplicate');
  });

  test('session ids carry the index their session began after', () => {
    assert.equal(sessionSince(sessionClientId('n1.ab12', 4711)), 4711);
    assert.equal(sessionSince('legacy-id'), 0);
  });
});
