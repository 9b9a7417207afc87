import { test, describe, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import { RAFT_SERVICE, RaftMethod, ShoalError, getServiceDefinition, type SnapshotChunkPb } from '@shoal/api';
import { GrpcTransport, raftServerOptions, type GrpcTransportOptions } from '../src/transport/index.js';
import { messageToPb } from '../src/transport/codec.js';
import { EntryType, MessageType, emptyMessage, type Entry, type Message } from '../src/core/types.js';
import { silentLogger } from '../src/logger.js';

interface Node {
  id: string;
  addr: string;
  port: number;
  server: grpc.Server;
  t: GrpcTransport;
  got: Message[];
  unreachable: string[];
  snapStatus: [string, boolean][];
}

const nodes: Node[] = [];

function bind(server: grpc.Server, addr = '127.0.0.1:0'): Promise<number> {
  return new Promise((res, rej) =>
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
}

async function node(
  id: string,
  opts: Partial<GrpcTransportOptions> & { serverOptions?: grpc.ServerOptions; port?: number } = {},
): Promise<Node> {
  const server = new grpc.Server(opts.serverOptions ?? raftServerOptions(opts.maxMessageBytes));
  const n = { id, server, got: [], unreachable: [], snapStatus: [] } as unknown as Node;
  n.t = new GrpcTransport({
    id,
    server,
    logger: silentLogger(),
    backoff: { initialMs: 50, maxMs: 200 },
    handlers: {
      onMessage: (m) => n.got.push(m),
      onPropose: async (req) => {
        if (req.client_id === 'fail') throw new ShoalError('NOT_LEADER', 'not me', { details: { leader: 'x' } });
        if (req.client_id === 'slow') await new Promise((r) => setTimeout(r, 500));
        if (req.client_id === 'bug') throw new Error('secret');
        return { index: req.seq * 10, result: Buffer.from(`ok:${Buffer.from(req.payload).toString()}`) };
      },
      onReadBarrier: async (req) => ({ index: req.from.length }),
      onStatus: async () => ({ id, term: 3, leader: 'a', role: 'follower', commit: 5, applied: 4, last_index: 6, recent_active: ['a', 'c'] }),
    },
    onUnreachable: (p) => n.unreachable.push(p),
    onSnapshotStatus: (p, ok) => n.snapStatus.push([p, ok]),
    ...opts,
  });
  n.port = await bind(server, `127.0.0.1:${opts.port ?? 0}`);
  n.addr = `127.0.0.1:${n.port}`;
  nodes.push(n);
  return n;
}

function connect(...ns: Node[]) {
  for (const a of ns) for (const b of ns) if (a !== b) a.t.addPeer(b.id, b.addr);
}

async function waitFor(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

function app(from: string, to: string, index: number, entries: Entry[] = []): Message {
  return { ...emptyMessage(MessageType.App, from, to, 1), index, logTerm: 1, entries, commit: index };
}

function stop(n: Node) {
  n.t.close();
  n.server.forceShutdown();
}

afterEach(() => {
  for (const n of nodes.splice(0)) stop(n);
});

describe('GrpcTransport', () => {
  test('two nodes exchange messages in order', async () => {
    const a = await node('a');
    const b = await node('b');
    connect(a, b);
    const N = 2000;
    for (let i = 1; i <= N; i += 100) {
      const batch: Message[] = [];
      for (let j = i; j < i + 100; j++) {
        batch.push(app('a', 'b', j, [{ term: 1, index: j + 1, type: EntryType.Normal, data: Buffer.from(`e${j}`) }]));
      }
      a.t.send(batch);
    }
    b.t.send([{ ...emptyMessage(MessageType.HeartbeatResp, 'b', 'a', 1), context: Buffer.from('ctx') }]);
    await waitFor(() => b.got.length === N && a.got.length === 1, 'all messages');
    assert.deepEqual(
      b.got.map((m) => m.index),
      Array.from({ length: N }, (_, i) => i + 1),
    );
    assert.equal(Buffer.from(b.got[41]!.entries[0]!.data).toString(), 'e42');
    assert.equal(b.got[0]!.from, 'a');
    assert.equal(a.got[0]!.type, MessageType.HeartbeatResp);
    assert.equal(Buffer.from(a.got[0]!.context).toString(), 'ctx');
    assert.deepEqual(a.unreachable, []);
  });

  test('a multi-MiB snapshot streams in chunks and arrives intact', async () => {
    const a = await node('a');
    // b's server keeps gRPC's default 4 MiB receive limit: a 6 MiB snapshot only gets through in chunks.
    const b = await node('b', { serverOptions: {} });
    connect(a, b);
    const data = randomBytes(6 * 1024 * 1024 + 123);
    const conf = { voters: [{ id: 'a', addr: a.addr }, { id: 'b', addr: b.addr }], learners: [] };
    a.t.send([{ ...emptyMessage(MessageType.Snap, 'a', 'b', 4), snapshot: { meta: { index: 500, term: 4, conf }, data } }]);
    await waitFor(() => a.snapStatus.length === 1, 'snapshot status');
    assert.deepEqual(a.snapStatus, [['b', true]]);
    assert.equal(b.got.length, 1);
    const m = b.got[0]!;
    assert.equal(m.type, MessageType.Snap);
    assert.deepEqual(m.snapshot!.meta, { index: 500, term: 4, conf });
    assert.ok(Buffer.from(m.snapshot!.data).equals(data));
  });

  test('a damaged snapshot stream is refused, not delivered', async () => {
    const b = await node('b');
    b.t.addPeer('a', '127.0.0.1:1');
    const def = getServiceDefinition(RAFT_SERVICE).InstallSnapshot!;
    const client = new grpc.Client(b.addr, grpc.credentials.createInsecure());
    const conf = { voters: [{ id: 'a', addr: 'x' }], learners: [] };
    const header = messageToPb({ ...emptyMessage(MessageType.Snap, 'a', 'b', 2), snapshot: { meta: { index: 9, term: 2, conf }, data: Buffer.alloc(0) } });
    const data = Buffer.from('0123456789');
    const sendChunks = (chunks: SnapshotChunkPb[]) =>
      new Promise<ShoalError | null>((resolve) => {
        const call = client.makeClientStreamRequest(
          RaftMethod.InstallSnapshot,
          def.requestSerialize as (c: SnapshotChunkPb) => Buffer,
          def.responseDeserialize as (b: Buffer) => unknown,
          (err) => resolve(err ? ShoalError.fromGrpcError(err) : null),
        );
        for (const c of chunks) call.write(c);
        call.end();
      });
    const first = (over: Partial<SnapshotChunkPb> = {}): SnapshotChunkPb => ({ message: header, total_size: data.length, crc32: crc32(data), data: Buffer.alloc(0), ...over });
    const chunk = (d: Buffer): SnapshotChunkPb => ({ message: null, total_size: 0, crc32: 0, data: d });
    try {
      assert.equal((await sendChunks([first(), chunk(data.subarray(0, 7))]))?.code, 'CORRUPT_DATA'); // truncated
      assert.equal((await sendChunks([first({ crc32: 1 }), chunk(data)]))?.code, 'CORRUPT_DATA'); // checksum
      assert.equal((await sendChunks([first(), chunk(data), chunk(data)]))?.code, 'INVALID_ARGUMENT'); // too long
      assert.equal((await sendChunks([chunk(data)]))?.code, 'INVALID_ARGUMENT'); // no header
      assert.equal((await sendChunks([first({ message: { ...header, from: 'mallory' } }), chunk(data)]))?.code, 'INVALID_ARGUMENT');
      assert.equal(b.got.length, 0);
      assert.equal(await sendChunks([first(), chunk(data.subarray(0, 4)), chunk(data.subarray(4))]), null);
      assert.equal(b.got.length, 1);
    } finally {
      client.close();
    }
  });

  test('messages from unknown members, or invalid ones, are rejected', async () => {
    const b = await node('b');
    const c = await node('c');
    c.t.addPeer('b', b.addr); // b does not know c
    c.t.send([app('c', 'b', 1)]);
    // A raw client forging local-only / malformed / misaddressed messages from a known member.
    b.t.addPeer('a', '127.0.0.1:1');
    const def = getServiceDefinition(RAFT_SERVICE).Send!;
    const client = new grpc.Client(b.addr, grpc.credentials.createInsecure());
    try {
      await new Promise<void>((resolve, reject) => {
        const call = client.makeClientStreamRequest(
          RaftMethod.Send,
          def.requestSerialize as (m: unknown) => Buffer,
          def.responseDeserialize as (b: Buffer) => unknown,
          (err) => (err ? reject(err) : resolve()),
        );
        const ok = messageToPb(emptyMessage(MessageType.Heartbeat, 'a', 'b', 1));
        call.write({
          messages: [
            { ...ok, type: MessageType.TransferLeader },
            { ...ok, type: MessageType.Hup },
            { ...ok, type: 42 },
            { ...ok, from: '' },
            { ...ok, to: 'z' },
            { ...ok, term: 2 ** 60 },
            { ...ok, type: MessageType.Snap, snapshot: { meta: { index: 1, term: 1, conf: { voters: [], learners: [] } } } },
            { ...ok, commit: 77 }, // valid: delivered, the bad ones around it notwithstanding
            { ...ok, from: 'c' }, // unknown member
          ],
        });
        call.write({ messages: [{ ...ok, commit: 78 }] });
        call.end();
      });
    } finally {
      client.close();
    }
    await waitFor(() => b.got.some((m) => m.commit === 78), 'the valid messages delivered');
    assert.deepEqual(
      b.got.map((m) => [m.from, m.commit]),
      [
        ['a', 77],
        ['a', 78],
      ],
    );
  });

  test('peer down: onUnreachable once per failure, then recovery when it is back', async () => {
    const a = await node('a');
    let b = await node('b');
    connect(a, b);
    a.t.send([app('a', 'b', 1)]);
    await waitFor(() => b.got.length === 1, 'first message');
    const port = b.port;
    stop(b);
    nodes.splice(nodes.indexOf(b), 1);
    // Keep sending while b is down: the stream fails, a hears about it (once per failed stream).
    const sendUntil = async (cond: () => boolean, what: string) => {
      let i = 2;
      await waitFor(() => {
        a.t.send([app('a', 'b', i++)]);
        return cond();
      }, what);
    };
    await sendUntil(() => a.unreachable.length >= 1, 'onUnreachable');
    assert.ok(a.unreachable.every((p) => p === 'b'));
    await new Promise((r) => setTimeout(r, 300));
    const reports = a.unreachable.length;
    assert.ok(reports <= 6, `reported ${reports} times in ~300 ms with a 50-200 ms backoff`);
    // b comes back on the same address: a reconnects by itself on a later send.
    b = await node('b', { port });
    b.t.addPeer('a', a.addr);
    await sendUntil(() => b.got.length > 0, 'delivery after recovery');
    const after = a.unreachable.length;
    a.t.send([app('a', 'b', 1000), app('a', 'b', 1001)]);
    await waitFor(() => b.got.some((m) => m.index === 1001), 'in order after recovery');
    const idx = b.got.map((m) => m.index);
    assert.deepEqual([...idx].sort((x, y) => x - y), idx, 'in order');
    assert.equal(a.unreachable.length, after);
  });

  test('an oversized App is split into valid Apps; an unsplittable one is reported, not stalled', async () => {
    const max = 64 * 1024;
    const a = await node('a', { maxMessageBytes: max });
    const b = await node('b', { maxMessageBytes: max });
    connect(a, b);
    const entries: Entry[] = [];
    for (let i = 11; i <= 30; i++) entries.push({ term: 2, index: i, type: EntryType.Normal, data: Buffer.alloc(10_000, i) });
    a.t.send([{ ...app('a', 'b', 10, entries), logTerm: 1, commit: 25 }]);
    a.t.send([app('a', 'b', 10, [{ term: 2, index: 11, type: EntryType.Normal, data: Buffer.alloc(max) }])]);
    a.t.send([emptyMessage(MessageType.Heartbeat, 'a', 'b', 2)]);
    await waitFor(() => b.got.some((m) => m.type === MessageType.Heartbeat), 'heartbeat after the big ones');
    const apps = b.got.filter((m) => m.type === MessageType.App);
    assert.ok(apps.length >= 4, `split into ${apps.length}`);
    assert.deepEqual(apps.flatMap((m) => m.entries.map((e) => e.index)), entries.map((e) => e.index));
    let prev = { index: 10, term: 1 };
    for (const m of apps) {
      assert.deepEqual({ index: m.index, term: m.logTerm }, prev, 'each piece follows the previous one');
      const last = m.entries[m.entries.length - 1]!;
      prev = { index: last.index, term: last.term };
      assert.equal(m.commit, 25);
    }
    assert.deepEqual(a.unreachable, ['b']);
  });

  test('propose / readBarrier / status, with errors and deadlines', async () => {
    const a = await node('a');
    const b = await node('b');
    connect(a, b);
    const r = await a.t.propose('b', { client_id: 'c1', seq: 4, payload: Buffer.from('hi'), acked_below: 2 }, 2000);
    assert.equal(r.index, 40);
    assert.equal(Buffer.from(r.result).toString(), 'ok:hi');
    assert.deepEqual(await a.t.readBarrier('b', { from: 'abc' }, 2000), { index: 3 });
    assert.deepEqual(await a.t.status(b.addr), { id: 'b', term: 3, leader: 'a', role: 'follower', commit: 5, applied: 4, last_index: 6, recent_active: ['a', 'c'] });
    await assert.rejects(a.t.propose('b', { client_id: 'fail', seq: 1, payload: Buffer.alloc(0) }, 2000), (e: unknown) => {
      assert.ok(ShoalError.is(e, 'NOT_LEADER'));
      assert.equal(e.message, 'not me');
      assert.deepEqual(e.details, { leader: 'x' });
      return true;
    });
    await assert.rejects(a.t.propose('b', { client_id: 'bug', seq: 1, payload: Buffer.alloc(0) }, 2000), (e: unknown) =>
      ShoalError.is(e, 'INTERNAL') && !e.message.includes('secret'),
    );
    await assert.rejects(a.t.propose('b', { client_id: '', seq: 1, payload: Buffer.alloc(0) }, 2000), (e: unknown) =>
      ShoalError.is(e, 'INVALID_ARGUMENT'),
    );
    await assert.rejects(a.t.propose('b', { client_id: 'slow', seq: 1, payload: Buffer.alloc(0) }, 50), (e: unknown) =>
      ShoalError.is(e, 'UNAVAILABLE') && e.grpcCode === grpc.status.DEADLINE_EXCEEDED,
    );
    await assert.rejects(a.t.readBarrier('zz', { from: 'a' }, 100), (e: unknown) => ShoalError.is(e, 'UNAVAILABLE'));
    await assert.rejects(a.t.status('127.0.0.1:1', 500), (e: unknown) => ShoalError.is(e, 'UNAVAILABLE'));
  });

  test('close() ends incoming streams and refuses new calls', async () => {
    const a = await node('a');
    const b = await node('b');
    connect(a, b);
    a.t.send([app('a', 'b', 1)]);
    await waitFor(() => b.got.length === 1, 'delivery');
    b.t.close();
    await waitFor(() => a.unreachable.length === 1, 'a notices');
    // The caller's server still runs, without the Raft service.
    await assert.rejects(a.t.status(b.addr, 1000), (e: unknown) => ShoalError.is(e, 'INTERNAL') && e.grpcCode === grpc.status.UNIMPLEMENTED);
  });
});
