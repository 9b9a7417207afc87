import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  ERROR_CODE_KEY,
  RAFT_SERVICE,
  RaftMethod,
  SHOAL_ERROR_CODES,
  ShoalError,
  getClientConstructor,
  getMethodDefinition,
  getServiceDefinition,
  packageDefinition,
  protoDir,
  type ServiceName,
} from '../src/index.js';

describe('proto loading', () => {
  test('finds the top-level proto/ directory', () => {
    const dir = protoDir();
    assert.ok(fs.existsSync(path.join(dir, 'raft.proto')));
    assert.equal(path.basename(dir), 'proto');
    assert.equal(packageDefinition(), packageDefinition(), 'loaded once');
  });

  test('the Raft service and its client', () => {
    const def = getServiceDefinition(RAFT_SERVICE);
    assert.deepEqual(Object.keys(def).sort(), ['InstallSnapshot', 'Propose', 'ReadBarrier', 'Send', 'Status']);
    for (const [name, p] of Object.entries(RaftMethod)) assert.equal(def[name]!.path, p);
    assert.equal(def.Send!.requestStream, true);
    assert.equal(def.Send!.responseStream, false);
    const Client = getClientConstructor(RAFT_SERVICE);
    assert.equal(typeof Client, 'function');
    assert.equal(getMethodDefinition(RAFT_SERVICE, 'Propose').path, RaftMethod.Propose);
    assert.throws(() => getServiceDefinition('shoal.raft.Nope' as ServiceName), (e: unknown) => ShoalError.is(e, 'NOT_FOUND'));
    assert.throws(() => getServiceDefinition('shoal.raft.RaftMessage' as ServiceName), (e: unknown) => ShoalError.is(e, 'NOT_FOUND'));
  });

  test('loader options: snake_case, longs as numbers, defaults', () => {
    const m = getMethodDefinition(RAFT_SERVICE, 'Propose');
    const back = m.requestDeserialize(m.requestSerialize({ client_id: 'c1', seq: 2 ** 40, payload: Buffer.from('p') })) as Record<string, unknown>;
    assert.deepEqual(back, { client_id: 'c1', seq: 2 ** 40, payload: Buffer.from('p'), acked_below: 0 });
  });
});

describe('ShoalError', () => {
  test('every code survives toGrpcStatus / fromGrpcError', () => {
    for (const code of SHOAL_ERROR_CODES) {
      const st = new ShoalError(code, `msg ${code} ✓`, { details: { leader: 'n2', note: 'héllo' } }).toGrpcStatus();
      const back = ShoalError.fromGrpcError({ ...st, message: `${st.code} X: ${st.details}` });
      assert.equal(back.code, code);
      assert.equal(back.message, `msg ${code} ✓`);
      assert.deepEqual(back.details, { leader: 'n2', note: 'héllo' });
      assert.equal(back.grpcCode, st.code);
    }
  });

  test('gRPC errors without Shoal metadata map by status code', () => {
    const plain = (code: grpc.status) => ShoalError.fromGrpcError({ code, details: 'x', metadata: new grpc.Metadata() });
    assert.equal(plain(grpc.status.DEADLINE_EXCEEDED).code, 'UNAVAILABLE');
    assert.equal(plain(grpc.status.UNAVAILABLE).code, 'UNAVAILABLE');
    assert.equal(plain(grpc.status.DATA_LOSS).code, 'CORRUPT_DATA');
    assert.equal(plain(grpc.status.UNKNOWN).code, 'INTERNAL');
    assert.equal(ShoalError.fromGrpcError(new Error('boom')).code, 'INTERNAL');
    const md = new grpc.Metadata();
    md.set(ERROR_CODE_KEY, 'NOT_A_CODE');
    assert.equal(ShoalError.fromGrpcError({ code: grpc.status.NOT_FOUND, details: 'x', metadata: md }).code, 'NOT_FOUND');
  });

  test('from() keeps ShoalErrors and hides other errors as INTERNAL', () => {
    const e = new ShoalError('NOT_FOUND', 'nope');
    assert.equal(ShoalError.from(e), e);
    const wrapped = ShoalError.from(new Error('secret internals'));
    assert.equal(wrapped.code, 'INTERNAL');
    assert.equal(wrapped.message, 'internal error');
    assert.ok(ShoalError.is(wrapped, 'INTERNAL'));
    assert.ok(!ShoalError.is(wrapped, 'NOT_FOUND'));
  });

  test('a ShoalError crosses a real gRPC call', async () => {
    const server = new grpc.Server();
    server.addService(getServiceDefinition(RAFT_SERVICE), {
      Status: (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
        cb(new ShoalError('NOT_LEADER', 'not the leader', { details: { leader: 'n3' } }).toGrpcStatus()),
    });
    const port = await new Promise<number>((res, rej) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
    );
    const Client = getClientConstructor(RAFT_SERVICE);
    const client = new Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    try {
      const err = await new Promise<unknown>((resolve) =>
        (client as unknown as { Status: (req: object, cb: (e: unknown) => void) => void }).Status({}, (e) => resolve(e)),
      );
      const se = ShoalError.fromGrpcError(err);
      assert.equal(se.code, 'NOT_LEADER');
      assert.equal(se.message, 'not the leader');
      assert.deepEqual(se.details, { leader: 'n3' });
      assert.equal(se.grpcCode, grpc.status.UNAVAILABLE);
    } finally {
      client.close();
      server.forceShutdown();
    }
  });
});
