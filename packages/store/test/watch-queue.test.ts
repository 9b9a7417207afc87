// changes() holds a bounded queue: a consumer that falls too far behind is dropped with a clear
// error (and its queue freed) instead of the manager's memory growing with the backlog, and a
// consumer that re-reads the state and watches again ends up with the right view.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ShoalError } from '@shoal/api';
import { ClusterStore, WATCH_QUEUE_LIMIT, isWatchFellBehind, type StoreEvent } from '../src/index.js';
import { Log, create, del, mkNode } from './fixtures.js';

/** A view of the node ids kept by a consumer that resyncs (list, then watch) whenever it is dropped. */
class NodeView {
  readonly ids = new Set<string>();
  resyncs = 0;
  dropped: ShoalError[] = [];
  private it: AsyncIterableIterator<StoreEvent> | undefined;

  constructor(
    private readonly store: ClusterStore,
    private readonly maxQueued: number,
  ) {}

  private resync(): void {
    // Watch first, then list: an event that lands in between is applied twice, which a set allows.
    this.it = this.store.changes({ kinds: ['node'] }, { maxQueued: this.maxQueued });
    this.ids.clear();
    for (const n of this.store.list('node')) this.ids.add(n.id);
    this.resyncs++;
  }

  /** Takes up to `n` events (a slow consumer takes a few now and then). */
  async step(n: number): Promise<void> {
    if (!this.it) this.resync();
    for (let i = 0; i < n; i++) {
      let r: IteratorResult<StoreEvent>;
      try {
        r = await this.it!.next();
      } catch (err) {
        if (!isWatchFellBehind(err)) throw err;
        this.dropped.push(err as ShoalError);
        this.resync();
        continue;
      }
      if (r.done) return;
      const e = r.value;
      if (e.action === 'restore') {
        this.resync();
        continue;
      }
      if (e.action === 'delete') this.ids.delete(e.object.id);
      else this.ids.add(e.object.id);
    }
  }

  close(): void {
    void this.it?.return?.();
  }
}

describe('bounded watch queues', () => {
  test('the default limit is a constant the docs can name', () => {
    assert.ok(WATCH_QUEUE_LIMIT >= 10_000);
  });

  test('a watcher that falls behind is dropped with RESOURCE_EXHAUSTED, keeps no queue, and others are untouched', async () => {
    const log = new Log();
    const slow = log.store.changes({}, { maxQueued: 100 });
    const fast = log.store.changes({}, { maxQueued: 100 });
    const seenFast: string[] = [];
    for (let i = 0; i < 150; i++) {
      log.ok(create('node', mkNode(`n${i}`)));
      const r = await fast.next();
      if (!r.done && r.value.action !== 'restore') seenFast.push(r.value.object.id);
    }
    await assert.rejects(slow.next(), (err: unknown) => {
      assert.ok(isWatchFellBehind(err));
      assert.equal((err as ShoalError).code, 'RESOURCE_EXHAUSTED');
      assert.match((err as Error).message, /^watch fell behind by 101 events \(at most 100 wait for a watcher\)/);
      assert.match((err as Error).message, /re-read the state and watch again/);
      return true;
    });
    // Dropped for good: the next call ends the loop, and later transactions reach it no more.
    log.ok(create('node', mkNode('late')));
    assert.deepEqual(await slow.next(), { value: undefined, done: true });
    assert.equal(seenFast.length, 150);
    const r = await fast.next();
    assert.equal(!r.done && r.value.action !== 'restore' && r.value.object.id, 'late');
    await fast.return!();
  });

  test('a transaction bigger than the whole queue drops even an idle watcher (one error, at once)', async () => {
    const log = new Log();
    const it = log.store.changes({ kinds: ['node'] }, { maxQueued: 10 });
    log.ok(...Array.from({ length: 11 }, (_, i) => create('node', mkNode(`n${i}`))));
    await assert.rejects(it.next(), (err: unknown) => isWatchFellBehind(err) && /behind by 11 events/.test((err as Error).message));
  });

  test('events a filter leaves out do not count against the queue', async () => {
    const log = new Log();
    const it = log.store.changes({ kinds: ['service'] }, { maxQueued: 5 });
    for (let i = 0; i < 50; i++) log.ok(create('node', mkNode(`n${i}`)));
    const next = it.next();
    await it.return!();
    assert.deepEqual(await next, { value: undefined, done: true });
  });

  test('watchStats counts the watches and the events waiting in their queues (metrics)', async () => {
    const log = new Log();
    const before = log.store.watchStats();
    const a = log.store.changes({ kinds: ['node'] });
    const b = log.store.changes({ kinds: ['node'] });
    const unwatch = log.store.watch(() => undefined);
    assert.deepEqual(log.store.watchStats(), { watchers: before.watchers + 3, queued: 0, deepestQueue: 0 });
    for (let i = 0; i < 5; i++) log.ok(create('node', mkNode(`n${i}`)));
    await b.next();
    await b.next();
    assert.deepEqual(log.store.watchStats(), { watchers: before.watchers + 3, queued: 5 + 3, deepestQueue: 5 });
    // Ended and dropped watches count no more.
    await a.return!();
    unwatch();
    assert.deepEqual(log.store.watchStats(), { watchers: before.watchers + 1, queued: 3, deepestQueue: 3 });
    await b.return!();
    assert.deepEqual(log.store.watchStats(), before);
  });

  test('maxQueued must be a positive integer', () => {
    const store = new ClusterStore();
    assert.throws(() => store.changes({}, { maxQueued: 0 }), (err: unknown) => ShoalError.is(err, 'INVALID_ARGUMENT'));
  });

  test('a slow consumer is dropped, re-reads and re-watches, and ends with the same view as the store', async () => {
    const log = new Log();
    const view = new NodeView(log.store, 50);
    await view.step(0);
    const turn = () => new Promise<void>((r) => setImmediate(r));
    // The consumer takes one event per event-loop turn ...
    const consumer = (async () => {
      while (!view.ids.has('end')) {
        await view.step(1);
        await turn();
      }
    })();
    // ... while 2,000 transactions of creates and deletes come twenty per turn.
    for (let i = 0; i < 2000; i++) {
      if (i % 3 === 2) log.ok(del('node', `n${i - 1}`));
      else log.ok(create('node', mkNode(`n${i}`)));
      if (i % 20 === 0) await turn();
    }
    // Then the writes stop and it catches up, up to a last marker.
    log.ok(create('node', mkNode('end')));
    await consumer;
    assert.ok(view.dropped.length > 0, 'the slow consumer was dropped at least once');
    assert.equal(view.resyncs, view.dropped.length + 1);
    assert.deepEqual([...view.ids].sort(), log.store.list('node').map((n) => n.id).sort());
    view.close();
  });
});
