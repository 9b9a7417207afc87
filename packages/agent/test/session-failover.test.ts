// AgentSession through a leader change at scale (gRPC on loopback; TLS where a handshake is held):
// a manager whose connection is still being made is asked again, a few times, before the next one;
// the task runner's calls between sessions wait for the next session; a broken call has the
// session beat at once rather than at the next period; a heartbeat's deadline is its period.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { NOOP_LOGGER, ShoalError, type ChannelSecurity, type Logger } from '@shoal/api';
import { RETRY_AFTER_DETAIL } from '@shoal/types';
import { AgentSession } from '../src/index.js';
import { heartbeatDeadlineMs } from '../src/agent-session.js';
import { FakeDispatcher, HeldRelay, clusterTls, until } from './dispatchers.js';

/** A logger that keeps the managers of the session's failed tries, in order. */
function triesLogger(): Logger & { failed: string[] } {
  const failed: string[] = [];
  const debug = (obj: object, msg?: string) => {
    if (msg === 'no dispatcher session; trying another manager') failed.push((obj as { manager: string }).manager);
  };
  return { ...NOOP_LOGGER, debug, failed };
}

describe('AgentSession through a leader change', () => {
  let tls: { server: grpc.ServerCredentials; worker: ChannelSecurity };
  const dispatchers: FakeDispatcher[] = [];
  const relays: HeldRelay[] = [];
  before(async () => {
    tls = await clusterTls();
  });
  after(() => {
    for (const r of relays) r.close();
    for (const d of dispatchers) d.server.forceShutdown();
  });
  const dispatcher = async (secure = false) => {
    const d = await new FakeDispatcher().start(secure ? tls.server : undefined);
    dispatchers.push(d);
    return d;
  };
  const relayTo = async (d: FakeDispatcher) => {
    const r = await new HeldRelay(d.addr).start();
    relays.push(r);
    return r;
  };

  test('a manager still connecting at the deadline is asked again, on the same connection, three times at most', async () => {
    const slow = await dispatcher(true);
    const relay = await relayTo(slow); // holds every handshake: never connects
    const other = await dispatcher(true);
    const logger = triesLogger();
    const s = new AgentSession({ nodeId: 'n', hostname: 'n', addr: '', managers: [relay.addr, other.addr], security: tls.worker, logger, sessionCallMs: 300, random: () => 0.5 });
    s.start();
    try {
      await until('a session', () => s.current !== '');
      assert.equal(s.current, other.addr, 'it moved on in the end');
      assert.deepEqual(logger.failed, [relay.addr, relay.addr, relay.addr, relay.addr], 'the first try and three more');
      assert.equal(relay.connections, 1, 'all on the one connection being made');
    } finally {
      await s.stop();
    }
  });

  test('a leader slow to complete handshakes gets the session once its handshake is through; the next manager is not asked', async () => {
    const leader = await dispatcher(true);
    const relay = await relayTo(leader);
    const follower = await dispatcher(true);
    follower.leaderAddr = relay.addr;
    const logger = triesLogger();
    const s = new AgentSession({ nodeId: 'n', hostname: 'n', addr: '', managers: [relay.addr, follower.addr], security: tls.worker, logger, sessionCallMs: 300, random: () => 0.5 });
    s.start();
    try {
      await until('a try at the leader', () => logger.failed.length >= 1);
      relay.release();
      await until('a session', () => s.current !== '');
      assert.equal(s.current, relay.addr);
      assert.equal(follower.count('Session'), 0, 'the follower was never asked');
      assert.equal(relay.connections, 1, 'one handshake with the leader');
    } finally {
      await s.stop();
    }
  });

  test('the task runner\'s calls between sessions wait for the next session', async () => {
    const d = await dispatcher();
    d.period = 1_000;
    const s = new AgentSession({ nodeId: 'n', hostname: 'n', addr: '', managers: [d.addr], logger: NOOP_LOGGER, random: () => 0.5 });
    /** Beats of `sessionId` the dispatcher had when the report came (the first comes half a period in). */
    const beatsBefore = (report: number, sessionId: string) => {
      const at = d.of('UpdateTaskStatus')[report]!.at;
      return d.of('Heartbeat').filter((c) => c.req.sessionId === sessionId && c.at < at).length;
    };
    // Before the first session.
    const early = s.link().report([]);
    s.start();
    try {
      assert.deepEqual(await early, { rejected: [] });
      assert.equal(d.of('UpdateTaskStatus')[0]!.req.sessionId, 's1');
      assert.equal(beatsBefore(0, 's1'), 0, 'sent as the session opened, not at the end of its wait');
      // Between two: the session is lost, and the dispatcher asks for a while before the next.
      d.refuse.push({ method: 'Session', err: new ShoalError('UNAVAILABLE', 'the dispatcher is opening 64 sessions already', { details: { [RETRY_AFTER_DETAIL]: '1000' } }) });
      d.forget = true;
      await until('the session lost', () => s.current === '');
      d.forget = false;
      assert.deepEqual(await s.link().report([]), { rejected: [] });
      assert.equal(d.of('UpdateTaskStatus')[1]!.req.sessionId, 's2', 'sent in the next session');
      assert.equal(beatsBefore(1, 's2'), 0, 'sent as the next session opened');
      assert.equal(d.count('Session'), 3, 'opened, refused once, opened again');
    } finally {
      await s.stop();
    }
  });

  test('a call the manager breaks (UNAVAILABLE) has the session beat at once, not a period later', async () => {
    const d = await dispatcher();
    d.period = 120_000;
    // The first beat near the end of the first period: two minutes away.
    const s = new AgentSession({ nodeId: 'n', hostname: 'n', addr: '', managers: [d.addr], logger: NOOP_LOGGER, random: () => 0.99 });
    s.start();
    try {
      await until('a session', () => s.current !== '');
      assert.equal(d.count('Heartbeat'), 0);
      d.refuse.push({ method: 'UpdateTaskStatus', err: new ShoalError('UNAVAILABLE', 'connection reset') });
      await assert.rejects(s.link().report([]), /connection reset/);
      await until('a heartbeat', () => d.count('Heartbeat') >= 1);
      assert.equal(d.count('Session'), 1, 'the session kept: the beat found it alive');
    } finally {
      await s.stop();
    }
  });

  test('a busy manager\'s refusal with a retry hint does not hurry the beat', async () => {
    const d = await dispatcher();
    d.period = 120_000;
    const s = new AgentSession({ nodeId: 'n', hostname: 'n', addr: '', managers: [d.addr], logger: NOOP_LOGGER, random: () => 0.99 });
    s.start();
    try {
      await until('a session', () => s.current !== '');
      d.refuse.push({ method: 'UpdateTaskStatus', err: new ShoalError('UNAVAILABLE', 'busy', { details: { [RETRY_AFTER_DETAIL]: '100' } }) });
      await assert.rejects(s.link().report([]), /busy/);
      // Another call after it: had the first woken the loop, its beat would come before this answer.
      await s.link().report([]);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(d.count('Heartbeat'), 0);
    } finally {
      await s.stop();
    }
  });

  test('a heartbeat\'s deadline is its period, a second at least', () => {
    assert.equal(heartbeatDeadlineMs(200), 1_000);
    assert.equal(heartbeatDeadlineMs(5_000), 5_000);
    assert.equal(heartbeatDeadlineMs(30_000), 30_000);
  });

  test('a beat answered late, within the period, keeps the session', async () => {
    const d = await dispatcher();
    d.period = 8_000;
    const s = new AgentSession({ nodeId: 'n', hostname: 'n', addr: '', managers: [d.addr], logger: NOOP_LOGGER, random: () => 0 });
    d.hold.add('Heartbeat');
    s.start();
    try {
      await until('a beat', () => d.count('Heartbeat') === 1);
      // Longer than the deadline of old (2 s at most), well within the period; a beat given up
      // would have the session opened again at once (random 0: no spread).
      await new Promise((r) => setTimeout(r, 3_000));
      d.release();
      assert.equal(d.count('Session'), 1, 'one session throughout');
      assert.equal(s.current, d.addr);
    } finally {
      await s.stop();
    }
  });
});
