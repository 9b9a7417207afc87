// The Events stream over real gRPC on loopback (the manager's own serving code, addUnaryService
// with its streams): a client that stops reading is not buffered for without bound: once gRPC's
// buffers and the journal's bounded queue are full it is dropped with RESOURCE_EXHAUSTED, after
// the events it did get, in order and without a hole; a client that reads keeps up.

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { ShoalError, getOnlyClientConstructor } from '@shoal/api';
import { silentLogger } from '@shoal/raft';
import { ClusterStore, decodeTxResult, encodeTx, type Op, type Task } from '@shoal/store';
import { T0, mkNode, mkSpec } from './fixtures.js';
import { EventJournal, serveEvents } from '../src/events/index.js';
import { controlStreams } from '../src/controlapi/index.js';
import { addUnaryService } from '../src/grpc-util.js';

const spec = mkSpec();
const task = (i: number): Task => ({
  id: `task${String(i).padStart(6, '0')}`, version: 0, createdAt: T0, updatedAt: T0, serviceId: 'svc1', serviceName: 'web', slot: i, nodeId: 'n1', desiredState: 'running',
  status: { state: 'new', timestamp: T0, message: '', err: '', containerId: '', exitCode: 0 }, spec, specVersion: 1, networks: [], jobIteration: 0,
});

const cleanup: (() => void)[] = [];
after(() => {
  for (const f of cleanup) f();
});

test('a client that stops reading is dropped with RESOURCE_EXHAUSTED after a hole-free prefix; one that reads gets everything', async () => {
  const store = new ClusterStore();
  let index = 0;
  const commit = (ops: Op[]) => assert.ok(decodeTxResult(store.apply(encodeTx(ops), ++index)).ok);
  commit([
    { op: 'create', kind: 'node', object: mkNode('n1') },
    { op: 'create', kind: 'service', object: { id: 'svc1', version: 0, createdAt: T0, updatedAt: T0, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null } },
  ]);
  const journal = new EventJournal(store, { capacity: 50_000 });
  const server = new grpc.Server();
  addUnaryService(server, 'shoal.control.Control', {}, silentLogger(), undefined, controlStreams({
    events: (r, call) => serveEvents(journal, r, call, { maxQueued: 100 }),
    serviceLogs: async () => undefined,
  }));
  const port = await new Promise<number>((res, rej) => server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))));
  cleanup.push(() => server.forceShutdown());
  const Ctor = getOnlyClientConstructor('shoal.control.Control');
  const client = new Ctor(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  cleanup.push(() => client.close());
  const open = (): { got: string[]; done: Promise<grpc.ServiceError | undefined>; call: grpc.ClientReadableStream<{ version: string }> } => {
    const call = (client as unknown as { Events(r: object): grpc.ClientReadableStream<{ version: string }> }).Events({ filters: ['type=task'] });
    const got: string[] = [];
    call.on('data', (e: { version: string }) => got.push(e.version));
    const done = new Promise<grpc.ServiceError | undefined>((res) => {
      call.on('error', (err: grpc.ServiceError) => res(err));
      call.on('status', (s: grpc.StatusObject) => s.code === grpc.status.OK && res(undefined));
    });
    return { got, done, call };
  };
  const slow = open();
  const reader = open();
  // Both are subscribed once their headers came.
  await Promise.all([slow, reader].map(({ call }) => new Promise((r) => call.once('metadata', r))));
  slow.call.pause();

  // 20,000 task events of some 400 bytes each: far more than gRPC buffers for a client. The reader
  // keeps up (each transaction waits for it); the slow client does not.
  const N = 20_000;
  const caughtUp = (n: number): Promise<void> =>
    new Promise((res, rej) => {
      const deadline = Date.now() + 60_000;
      const check = (): void => {
        if (reader.got.length >= n) return res();
        if (Date.now() > deadline) return rej(new Error(`the reader got ${reader.got.length} of ${n} events`));
        setTimeout(check, 2);
      };
      check();
    });
  for (let i = 0; i < N; i += 50) {
    commit(Array.from({ length: 50 }, (_, k) => ({ op: 'create', kind: 'task', object: task(i + k + 1) }) as Op));
    await caughtUp(i + 50);
  }
  assert.equal(reader.got.length, N, 'the reader got every event');
  reader.call.cancel();

  slow.call.resume();
  const err = await slow.done;
  assert.ok(err, 'the slow client was dropped');
  const se = ShoalError.fromGrpcError(err);
  assert.equal(se.code, 'RESOURCE_EXHAUSTED');
  assert.match(se.message, /^the events stream fell behind by more than 100 events and was dropped at \d+\.\d+: resume after the last version received$/);
  assert.ok(slow.got.length < N, `only a prefix reached it (${slow.got.length})`);
  // A prefix, in order and without a hole: the reader's first versions.
  assert.deepEqual(slow.got, reader.got.slice(0, slow.got.length));
  assert.equal(journal.subscriberCount, 0, 'both subscriptions ended');
});
