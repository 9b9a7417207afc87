// UnaryClientPool (@shoal/api) as an agent uses it: TLS to a manager, on loopback. A deadline alone
// keeps the channel while it is connected or still connecting (a busy leader: a new connection
// would cost both sides another handshake); a broken connection (UNAVAILABLE), or a deadline on a
// channel that is neither, drops it so the next call starts afresh. (Here rather than in the api
// package for the cluster's certificates, which @shoal/pki makes.)

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { UnaryClientPool, type ChannelSecurity } from '@shoal/api';
import { FakeDispatcher, HeldRelay, clusterTls, until } from './dispatchers.js';

const DISPATCHER = 'shoal.dispatcher.Dispatcher';

/** The pool keeps its channels to itself: read here only to tell one channel from another. */
function channelOf(pool: UnaryClientPool, addr: string): grpc.Channel | undefined {
  const clients = (pool as unknown as { clients: Map<string, { client: grpc.Client }> }).clients;
  return clients.get(`${DISPATCHER} ${addr}`)?.client.getChannel() as grpc.Channel | undefined;
}

describe('UnaryClientPool', () => {
  let tls: { server: grpc.ServerCredentials; worker: ChannelSecurity };
  const dispatchers: FakeDispatcher[] = [];
  const relays: HeldRelay[] = [];
  const pools: UnaryClientPool[] = [];
  before(async () => {
    tls = await clusterTls();
  });
  after(() => {
    for (const p of pools) p.close();
    for (const r of relays) r.close();
    for (const d of dispatchers) d.server.forceShutdown();
  });
  const dispatcher = async () => {
    const d = await new FakeDispatcher().start(tls.server);
    dispatchers.push(d);
    return d;
  };
  const relayTo = async (d: FakeDispatcher) => {
    const r = await new HeldRelay(d.addr).start();
    relays.push(r);
    return r;
  };
  const pool = () => {
    const p = new UnaryClientPool(30_000, tls.worker);
    pools.push(p);
    return p;
  };

  test('a deadline while the connection is still being made keeps it: the next call goes over it', async () => {
    const d = await dispatcher();
    const relay = await relayTo(d);
    const p = pool();
    await assert.rejects(p.call(DISPATCHER, relay.addr, 'Heartbeat', {}, 300), /Deadline exceeded/);
    assert.equal(relay.connections, 1);
    assert.ok(p.connecting(DISPATCHER, relay.addr), 'the handshake is still under way');
    const channel = channelOf(p, relay.addr);
    relay.release();
    await p.call(DISPATCHER, relay.addr, 'Heartbeat', {}, 10_000);
    assert.equal(channelOf(p, relay.addr), channel, 'the same channel');
    assert.equal(relay.connections, 1, 'one TCP connection: no second handshake');
    assert.equal(d.count('Heartbeat'), 1, 'the call that timed out never reached the manager');
  });

  test('a deadline on a connected channel (a busy manager) keeps it', async () => {
    const d = await dispatcher();
    const p = pool();
    await p.call(DISPATCHER, d.addr, 'Heartbeat', {}, 10_000);
    d.hold.add('Session');
    await assert.rejects(p.call(DISPATCHER, d.addr, 'Session', {}, 300), /Deadline exceeded/);
    d.release();
    await p.call(DISPATCHER, d.addr, 'Heartbeat', {}, 10_000);
    const [first, late, again] = d.calls;
    assert.equal(late!.method, 'Session');
    assert.equal(again!.peer, first!.peer, 'the same connection');
  });

  test('a refused connection (UNAVAILABLE) drops the channel: the next call starts on a new one at once', async () => {
    const d = await dispatcher();
    const relay = await relayTo(d);
    relay.release();
    relay.resetNext = 1;
    const p = pool();
    await assert.rejects(p.call(DISPATCHER, relay.addr, 'Heartbeat', {}, 10_000), (err: Error & { code?: string }) => err.code === 'UNAVAILABLE' && !/Deadline/.test(err.message));
    const kept = channelOf(p, relay.addr);
    // A channel kept would fail this one too, at once: it waits out grpc-js's reconnect backoff.
    await p.call(DISPATCHER, relay.addr, 'Heartbeat', {}, 10_000);
    assert.equal(kept, undefined, 'dropped');
    assert.equal(d.count('Heartbeat'), 1);
  });

  test('a deadline on a channel neither connected nor connecting (the manager went away) drops it', async () => {
    const d = await dispatcher();
    d.hold.add('Heartbeat');
    const p = pool();
    const call = p.call(DISPATCHER, d.addr, 'Heartbeat', {}, 3_000);
    await until('the call at the manager', () => d.count('Heartbeat') === 1);
    // A graceful shutdown: the manager takes no new calls (GOAWAY) and leaves the open one unanswered.
    d.server.tryShutdown(() => undefined);
    const channel = channelOf(p, d.addr)!;
    await until('the channel idle', () => channel.getConnectivityState(false) === grpc.connectivityState.IDLE);
    await assert.rejects(call, /Deadline exceeded/);
    assert.equal(channelOf(p, d.addr), undefined, 'dropped');
  });
});
