// The removed nodes list stays bounded: an id leaves it once every certificate its node may hold
// has expired (a lowered certificate validity does not shorten that), never before.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ClusterStore, decodeTxResult, encodeTx, normalize, type Cluster } from '@shoal/store';
import { CLOCK_MARGIN_MS, withRemovedNode } from '../src/removed-nodes.js';
import { T0 } from './fixtures.js';

const DAY = 24 * 3600_000;

function cluster(certExpiryMs: number, longestCertExpiryMs = 0): Cluster {
  return normalize('cluster', {
    id: 'c1',
    version: 0,
    createdAt: T0,
    updatedAt: T0,
    spec: { name: 'default', heartbeatPeriodMs: 5000, nodeDownAfterBeats: 3, taskHistoryLimit: 5, certExpiryMs },
    caFingerprint: 'ab'.repeat(32),
    caCert: 'cert',
    caKey: null,
    joinTokens: { worker: 'w', manager: 'm' },
    removedNodes: [],
    removedNodeExpiry: {},
    longestCertExpiryMs,
  }) as Cluster;
}

describe('removed nodes list', () => {
  test('an id stays while its certificates may be in date, and goes at the next removal after', () => {
    let c = cluster(90 * DAY);
    c = withRemovedNode(c, 'a', T0);
    c = withRemovedNode(c, 'b', T0 + 10 * DAY);
    assert.deepEqual(c.removedNodes, ['a', 'b']);
    // 90 days (and the clock margin) after a's removal: a is still listed up to then...
    c = withRemovedNode(c, 'c', T0 + 90 * DAY + CLOCK_MARGIN_MS - 1);
    assert.deepEqual(c.removedNodes, ['a', 'b', 'c']);
    // ...and dropped once it is past.
    c = withRemovedNode(c, 'd', T0 + 90 * DAY + CLOCK_MARGIN_MS);
    assert.deepEqual(c.removedNodes, ['b', 'c', 'd']);
    assert.deepEqual(Object.keys(c.removedNodeExpiry).sort(), ['b', 'c', 'd']);
  });

  test('a hundred removals a day for 100 days keep the list to what the validity period holds', () => {
    let c = cluster(10 * DAY);
    for (let day = 0; day < 100; day++) for (let i = 0; i < 100; i++) c = withRemovedNode(c, `n${day}-${i}`, T0 + day * DAY + i);
    assert.ok(c.removedNodes.length <= 12 * 100, `${c.removedNodes.length} ids listed`);
    assert.ok(c.removedNodes.includes('n99-99') && c.removedNodes.includes('n89-0'));
  });

  test('after certExpiryMs is lowered, ids are kept for the longer validity certificates were issued with', () => {
    // A year's validity lowered to a day: certificates issued last week are good for months yet.
    const c = withRemovedNode(cluster(DAY, 365 * DAY), 'a', T0);
    assert.equal(c.removedNodeExpiry['a'], T0 + 365 * DAY + CLOCK_MARGIN_MS);
    assert.deepEqual(withRemovedNode(c, 'b', T0 + 30 * DAY).removedNodes, ['a', 'b']);
  });

  test('ids listed before expiries were kept are counted from the next removal', () => {
    const old = { ...cluster(90 * DAY), removedNodes: ['x'] };
    const c = withRemovedNode(old, 'a', T0);
    assert.deepEqual(c.removedNodes, ['x', 'a']);
    assert.equal(c.removedNodeExpiry['x'], c.removedNodeExpiry['a']);
  });

  test('the store keeps the new fields, and takes a cluster object stored without them', () => {
    const store = new ClusterStore();
    const { removedNodeExpiry: _e, longestCertExpiryMs: _l, ...older } = cluster(90 * DAY);
    const r = decodeTxResult(store.apply(encodeTx([{ op: 'create', kind: 'cluster', object: older as Cluster }]), 1));
    assert.ok(r.ok);
    assert.deepEqual(store.cluster()!.removedNodeExpiry, {});
    const next = withRemovedNode(store.cluster()!, 'a', T0);
    assert.ok(decodeTxResult(store.apply(encodeTx([{ op: 'update', kind: 'cluster', object: next }]), 2)).ok);
    assert.deepEqual(store.cluster()!.removedNodeExpiry, { a: T0 + 90 * DAY + CLOCK_MARGIN_MS });
  });
});
