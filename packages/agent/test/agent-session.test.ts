// AgentSession against fake dispatchers (gRPC on loopback): it opens a session, heartbeats,
// follows a NOT_LEADER answer to the leader it names, hands the task runner a link through the
// open session, and says goodbye (Disconnect) when stopped. Its timing at scale: the first beat at
// a random point of the period, a random wait before opening a session again after losing one,
// a manager's retry hint obeyed. (Waits are checked as lower bounds only: a timer never fires early.)

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { NOOP_LOGGER, ShoalError } from '@shoal/api';
import { RETRY_AFTER_DETAIL } from '@shoal/types';
import { AgentSession } from '../src/index.js';
import { retryDelayMs } from '../src/agent-session.js';
import { FakeDispatcher, until } from './dispatchers.js';

describe('AgentSession', () => {
  const servers: FakeDispatcher[] = [];
  after(() => {
    for (const s of servers) s.server.forceShutdown();
  });
  const dispatcher = async () => {
    const d = await new FakeDispatcher().start();
    servers.push(d);
    return d;
  };

  test('opens a session, heartbeats, and says goodbye with its session id when stopped', async () => {
    const d = await dispatcher();
    let healthAsked = 0;
    const s = new AgentSession({
      nodeId: 'node1',
      hostname: 'h1',
      addr: '127.0.0.9:1',
      managers: [d.addr],
      logger: NOOP_LOGGER,
      health: () => {
        healthAsked++;
        return { error: '', engineVersion: '27.0' };
      },
    });
    await assert.rejects(s.link().report([]), /no dispatcher session yet/);
    s.start();
    await until('two heartbeats', () => d.count('Heartbeat') >= 2);
    const open = d.calls.find((c) => c.method === 'Session')!;
    assert.equal(open.req.nodeId, 'node1');
    assert.equal((open.req.info as { hostname: string; engineVersion: string; addr: string }).hostname, 'h1');
    assert.equal((open.req.info as { engineVersion: string }).engineVersion, '27.0');
    assert.equal((open.req.info as { addr: string }).addr, '127.0.0.9:1');
    assert.ok(healthAsked >= 2, 'health is asked before the session and each heartbeat');
    assert.equal(s.current, d.addr);
    // The runner's link goes through the open session.
    assert.deepEqual(await s.link().report([]), { rejected: [] });
    assert.equal(d.calls.at(-1)!.req.sessionId, 's1');

    await s.stop('shoald stopping');
    const bye = d.calls.filter((c) => c.method === 'Disconnect');
    assert.equal(bye.length, 1);
    assert.deepEqual([bye[0].req.nodeId, bye[0].req.sessionId, bye[0].req.reason], ['node1', 's1', 'shoald stopping']);
    assert.equal(d.calls.at(-1)!.method, 'Disconnect', 'nothing after the goodbye');
    assert.equal(s.current, '');
    await assert.rejects(s.link().report([]), /no dispatcher session yet/);
  });

  test('a follower\'s NOT_LEADER answer sends it straight to the leader it names; learns the managers', async () => {
    const leader = await dispatcher();
    const follower = await dispatcher();
    follower.leaderAddr = leader.addr;
    const learned: string[][] = [];
    const s = new AgentSession({ nodeId: 'node2', hostname: 'h2', addr: '', managers: [follower.addr], logger: NOOP_LOGGER, onManagers: (a) => learned.push(a) });
    s.start();
    await until('a heartbeat at the leader', () => leader.count('Heartbeat') >= 1);
    assert.equal(follower.count('Session'), 1);
    assert.equal(s.current, leader.addr);
    assert.deepEqual(learned.at(-1), [leader.addr]);
    await s.stop();
    assert.equal(leader.count('Disconnect'), 1);
    assert.equal(follower.count('Disconnect'), 0);
  });

  test('stopped with no open session: no goodbye, stop returns', async () => {
    const d = await dispatcher();
    d.leaderAddr = '127.0.0.1:1'; // nobody there: the session never opens
    const s = new AgentSession({ nodeId: 'node3', hostname: 'h3', addr: '', managers: [d.addr], logger: NOOP_LOGGER });
    s.start();
    await until('a few attempts', () => d.count('Session') >= 2);
    await s.stop();
    assert.equal(d.count('Disconnect'), 0);
  });

  test('the first heartbeat of a session comes at a random point of the period', async () => {
    const d = await dispatcher();
    d.period = 1_000;
    const early = new AgentSession({ nodeId: 'early', hostname: 'e', addr: '', managers: [d.addr], logger: NOOP_LOGGER, random: () => 0.05 });
    const late = new AgentSession({ nodeId: 'late', hostname: 'l', addr: '', managers: [d.addr], logger: NOOP_LOGGER, random: () => 0.7 });
    early.start();
    late.start();
    try {
      await until('a heartbeat from each', () => d.of('Heartbeat', 'early').length >= 1 && d.of('Heartbeat', 'late').length >= 1);
      const first = (id: string) => d.of('Heartbeat', id)[0]!.at - d.of('Session', id)[0]!.at;
      assert.ok(first('late') >= 650, `the late node beat ${first('late').toFixed(0)} ms after its session opened`);
      assert.ok(d.of('Heartbeat', 'early')[0]!.at < d.of('Heartbeat', 'late')[0]!.at, 'the early node beat first');
      // Then at the period the dispatcher answers.
      await until('a second beat', () => d.of('Heartbeat', 'early').length >= 2);
      const [b1, b2] = d.of('Heartbeat', 'early');
      assert.ok(b2!.at - b1!.at >= 950, 'the next beat a period later');
    } finally {
      await early.stop();
      await late.stop();
    }
  });

  test('a lost session: a random part of the reconnect spread passes before the next Session', async () => {
    const d = await dispatcher();
    d.period = 200;
    const s = new AgentSession({ nodeId: 'n', hostname: 'n', addr: '', managers: [d.addr], logger: NOOP_LOGGER, random: () => 0.9 });
    s.start();
    try {
      await until('a heartbeat', () => d.count('Heartbeat') >= 1);
      d.forget = true;
      await until('the session lost and opened again', () => d.count('Session') >= 2);
      const again = d.of('Session')[1]!;
      const failed = d.of('Heartbeat').filter((c) => c.at < again.at).at(-1)!;
      // reconnectSpreadMs(200) = 200: 0.9 of it.
      assert.ok(again.at - failed.at >= 170, `opened again ${(again.at - failed.at).toFixed(0)} ms after the session was lost`);
    } finally {
      d.forget = false;
      await s.stop();
    }
  });

  test('a busy dispatcher\'s retry hint is obeyed, at the same manager', async () => {
    const busy = await dispatcher();
    const other = await dispatcher();
    busy.refuse.push({ method: 'Session', err: new ShoalError('UNAVAILABLE', 'the dispatcher is opening 64 sessions already', { details: { [RETRY_AFTER_DETAIL]: '600' } }) });
    const s = new AgentSession({ nodeId: 'n', hostname: 'n', addr: '', managers: [busy.addr, other.addr], logger: NOOP_LOGGER });
    s.start();
    try {
      await until('a session', () => s.current !== '');
      assert.equal(s.current, busy.addr, 'back at the busy manager');
      assert.equal(other.count('Session'), 0);
      const [refused, opened] = busy.of('Session');
      assert.ok(opened!.at - refused!.at >= 580, `retried after ${(opened!.at - refused!.at).toFixed(0)} ms`);
      // The manager answered: its connection is kept (no TLS handshake per refusal).
      assert.equal(opened!.peer, refused!.peer, 'the same connection');
    } finally {
      await s.stop();
    }
  });

  test('no leader elected yet: the hint is obeyed, then the next manager is asked', async () => {
    const follower = await dispatcher();
    const leader = await dispatcher();
    follower.refuse.push({ method: 'Session', err: new ShoalError('NOT_LEADER', 'this manager is not the leader', { details: { leaderAddr: '', [RETRY_AFTER_DETAIL]: '400' } }) });
    const s = new AgentSession({ nodeId: 'n', hostname: 'n', addr: '', managers: [follower.addr, leader.addr], logger: NOOP_LOGGER });
    s.start();
    try {
      await until('a session', () => s.current !== '');
      assert.equal(s.current, leader.addr);
      assert.ok(leader.of('Session')[0]!.at - follower.of('Session')[0]!.at >= 380, 'waited as told');
    } finally {
      await s.stop();
    }
  });

  test('retries are jittered around a base that grows only once every manager was tried three times', () => {
    const at = (r: number) => (failures: number) => retryDelayMs(failures, 3, () => r);
    assert.deepEqual([1, 5, 9].map(at(0.5)), [100, 100, 100]);
    assert.deepEqual([1, 9].map(at(0)), [50, 50]);
    assert.equal(at(0.999)(1), 150);
    assert.equal(at(0.5)(10), 1_000);
    assert.equal(at(0.5)(50), 2_000);
  });
});
