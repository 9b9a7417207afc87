// The h2 transport's link pool on its own, against real HTTP/2 (h2c) servers on loopback, no Mesh:
// one session carries many streams; the peer's stream limit sends the extra waiters elsewhere and
// opens another session; extra sessions close once idle while the first stays; an older node (the
// line protocol's `ERR bad header`) is marked legacy; an unreachable node fails its waiters and is
// forgotten; drainAll moves new streams to new sessions.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http2 from 'node:http2';
import net from 'node:net';
import { parseHostPort } from '../src/addr.js';
import { LinkPool, type H2Link } from '../src/link-pool.js';
import { plainDialer } from '../src/node-dialer.js';
import { HOST_A, deadAddr, legacyForwarder, listen, quietLogger, waitFor } from './helpers.js';

interface Peer {
  addr: string;
  /** TCP connections (sessions) it accepted, and those closed since. */
  connections: number;
  closed: number;
  close(): Promise<void>;
}

/** An h2c server announcing `maxStreams` (HTTP/2's unlimited when undefined). */
async function h2Peer(maxStreams?: number): Promise<Peer> {
  const server = http2.createServer(maxStreams === undefined ? {} : { settings: { maxConcurrentStreams: maxStreams } });
  const socks = new Set<net.Socket>();
  const port = await listen(server as unknown as net.Server, HOST_A);
  const peer: Peer = {
    addr: `${HOST_A}:${port}`,
    connections: 0,
    closed: 0,
    async close() {
      for (const s of socks) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on('connection', (s: net.Socket) => {
    peer.connections++;
    socks.add(s);
    s.once('close', () => {
      peer.closed++;
      socks.delete(s);
    });
  });
  return peer;
}

function pool(maxStreams = 100): LinkPool {
  return new LinkPool({ dial: plainDialer(30_000), maxStreams, setupTimeoutMs: 5000, pingTimeoutMs: 1000, log: quietLogger });
}

interface Outcome {
  link: H2Link | null;
  err?: Error;
  how?: 'legacy' | 'retry';
}

/** A stream slot on a session to `addr`, and how its wait for the session ended. */
function reserve(p: LinkPool, addr: string): { link: H2Link; outcome: Promise<Outcome> } {
  const link = p.reserve(addr, parseHostPort(addr)!);
  const outcome = link.ready
    ? Promise.resolve<Outcome>({ link })
    : new Promise<Outcome>((resolve) => link.waiters.add((l, err, how) => resolve({ link: l, err, how })));
  return { link, outcome };
}

describe('LinkPool', () => {
  test('one session carries many streams to a peer', async () => {
    const peer = await h2Peer();
    const p = pool();
    try {
      const slots = Array.from({ length: 5 }, () => reserve(p, peer.addr));
      for (const s of slots) assert.equal(s.link, slots[0]!.link);
      for (const s of slots) assert.equal((await s.outcome).link, slots[0]!.link);
      assert.equal(peer.connections, 1);
      assert.deepEqual(p.stats(), { h2SessionsOut: 1, h2SessionsOpened: 1 });
      // Once ready, new streams go to the same session at once.
      assert.equal(reserve(p, peer.addr).link, slots[0]!.link);
      assert.equal(peer.connections, 1);
    } finally {
      p.close();
      await peer.close();
    }
  });

  test("the peer's stream limit: waiters beyond it are sent to retry, the next stream opens another session", async () => {
    const peer = await h2Peer(2);
    const p = pool();
    try {
      const slots = Array.from({ length: 3 }, () => reserve(p, peer.addr));
      const outcomes = await Promise.all(slots.map((s) => s.outcome));
      assert.deepEqual(outcomes.map((o) => (o.link ? 'ready' : o.how)), ['ready', 'ready', 'retry']);
      const first = slots[0]!.link;
      assert.equal(first.maxStreams, 2);
      // The refused waiter gives its slot back (as the forward client does), then asks again.
      p.release(first);
      const again = reserve(p, peer.addr);
      assert.notEqual(again.link, first);
      assert.equal((await again.outcome).link, again.link);
      assert.equal(peer.connections, 2);
    } finally {
      p.close();
      await peer.close();
    }
  });

  test('an extra session closes once idle; the first one stays', async () => {
    const peer = await h2Peer();
    const p = pool(1);
    try {
      const a = reserve(p, peer.addr);
      const b = reserve(p, peer.addr);
      assert.notEqual(a.link, b.link);
      await Promise.all([a.outcome, b.outcome]);
      assert.deepEqual(p.stats(), { h2SessionsOut: 2, h2SessionsOpened: 2 });
      p.release(b.link);
      await waitFor(() => b.link.closed && peer.closed === 1, 5000, 'the extra session closed');
      p.release(a.link);
      assert.equal(a.link.draining, false);
      assert.deepEqual(p.stats(), { h2SessionsOut: 1, h2SessionsOpened: 2 });
      // The first one takes the next stream.
      assert.equal(reserve(p, peer.addr).link, a.link);
    } finally {
      p.close();
      await peer.close();
    }
  });

  test('a peer that answers the preface with the line protocol is marked legacy', async () => {
    const legacy = await legacyForwarder(HOST_A, {});
    const p = pool();
    try {
      assert.equal(p.isLegacy(legacy.addr), false);
      const outcome = await reserve(p, legacy.addr).outcome;
      assert.equal(outcome.link, null);
      assert.equal(outcome.how, 'legacy');
      assert.equal(p.isLegacy(legacy.addr), true);
      assert.equal(legacy.refused, 1);
      assert.deepEqual(p.stats(), { h2SessionsOut: 0, h2SessionsOpened: 0 });
    } finally {
      p.close();
      await legacy.close();
    }
  });

  test('an unreachable peer fails its waiters and its session is forgotten', async () => {
    const dead = await deadAddr(HOST_A);
    const p = pool();
    try {
      const first = reserve(p, dead);
      const second = reserve(p, dead);
      assert.equal(first.link, second.link);
      for (const o of await Promise.all([first.outcome, second.outcome])) {
        assert.equal(o.link, null);
        assert.equal(o.how, undefined);
        assert.equal((o.err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
      }
      assert.equal(first.link.closed, true);
      assert.equal(p.isLegacy(dead), false);
      assert.notEqual(reserve(p, dead).link, first.link);
    } finally {
      p.close();
    }
  });

  test('drainAll: open sessions close, new streams go to a new session', async () => {
    const peer = await h2Peer();
    const p = pool();
    try {
      const a = reserve(p, peer.addr);
      await a.outcome;
      p.release(a.link);
      p.drainAll();
      await waitFor(() => a.link.closed && peer.closed === 1, 5000, 'the drained session closed');
      const b = reserve(p, peer.addr);
      assert.notEqual(b.link, a.link);
      assert.equal((await b.outcome).link, b.link);
      assert.deepEqual(p.stats(), { h2SessionsOut: 1, h2SessionsOpened: 2 });
    } finally {
      p.close();
      await peer.close();
    }
  });
});
