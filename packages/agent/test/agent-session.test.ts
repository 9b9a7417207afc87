// AgentSession against fake dispatchers (gRPC on loopback): it opens a session, heartbeats,
// follows a NOT_LEADER answer to the leader it names, hands the task runner a link through the
// open session, and says goodbye (Disconnect) when stopped.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { NOOP_LOGGER, ShoalError, getServiceDefinition } from '@shoal/api';
import { AgentSession } from '../src/index.js';


interface Call {
  method: string;
  req: Record<string, unknown>;
}

/** A dispatcher that records its calls; `leaderAddr` set: it answers NOT_LEADER, naming it. */
class FakeDispatcher {
  readonly calls: Call[] = [];
  readonly server = new grpc.Server();
  addr = '';
  leaderAddr = '';
  private sessions = 0;

  async start(): Promise<this> {
    const handle = (method: string, answer: (req: Record<string, unknown>) => object) =>
      (call: grpc.ServerUnaryCall<Record<string, unknown>, unknown>, cb: grpc.sendUnaryData<unknown>) => {
        this.calls.push({ method, req: call.request });
        if (this.leaderAddr) {
          cb(new ShoalError('NOT_LEADER', 'this manager is not the leader', { details: { leaderAddr: this.leaderAddr } }).toGrpcStatus());
          return;
        }
        cb(null, answer(call.request));
      };
    this.server.addService(getServiceDefinition('shoal.dispatcher.Dispatcher'), {
      Session: handle('Session', () => ({ sessionId: `s${++this.sessions}`, heartbeatPeriodMs: 50, managers: [{ nodeId: 'm', addr: this.addr }] })),
      Heartbeat: handle('Heartbeat', () => ({ heartbeatPeriodMs: 50, managers: [{ nodeId: 'm', addr: this.addr }] })),
      Assignments: handle('Assignments', () => ({ token: 't', tasks: [] })),
      UpdateTaskStatus: handle('UpdateTaskStatus', () => ({ rejected: [] })),
      Disconnect: handle('Disconnect', () => ({})),
    });
    const port = await new Promise<number>((resolve, reject) =>
      this.server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.addr = `127.0.0.1:${port}`;
    return this;
  }

  count(method: string): number {
    return this.calls.filter((c) => c.method === method).length;
  }
}

async function until(what: string, ok: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

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
});
