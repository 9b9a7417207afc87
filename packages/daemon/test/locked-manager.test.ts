// The locked manager's sockets (autolock): every call but UnlockManager refused with the locked
// message; a wrong key refused and nothing started; a manager that fails to start after the right
// key leaves the sockets locked again (the unlock can be retried); the right key hands both
// sockets over, the answer coming once the start is done. (Real managers: test/manager/autolock.)
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { getServiceDefinition } from '@shoal/api';
import { bindUnixSocket, callUnary } from '@shoal/manager';
import { INVALID_UNLOCK_KEY, KeyEncryptionKey, MANAGER_LOCKED, UnlockKey, writeKek } from '@shoal/pki';
import { silentLogger } from '@shoal/raft';
import { serveLocked } from '../src/locked-manager.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'shoal-locked-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

const call = (sock: string, method: string, req: unknown = {}) => callUnary<unknown>('shoal.control.Control', `unix://${sock}`, method, req, 5_000);
const failsWith = (code: string, message: string) => (err: unknown) => (err as { code?: string }).code === code && (err as Error).message === message;

test('locked until the right key, then the sockets belong to what started', async () => {
  const kek = KeyEncryptionKey.generate();
  const key = UnlockKey.generate();
  writeKek(dir, kek, key);
  const control = join(dir, 'control.sock');
  const wellKnown = join(dir, 'run', 'shoal.sock');
  const starts: string[] = [];
  let failNext = true;
  let started: grpc.Server | undefined;
  const locked = await serveLocked(dir, wellKnown, silentLogger(), async (k) => {
    starts.push(k.id);
    if (failNext) {
      failNext = false;
      throw new Error('cannot listen on 127.0.0.1:1: EACCES');
    }
    // What the manager does: bind both paths afresh, with its own control service.
    const s = new grpc.Server();
    const impl: grpc.UntypedServiceImplementation = {};
    for (const m of Object.keys(getServiceDefinition('shoal.control.Control'))) impl[m] = (_c: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {});
    s.addService(getServiceDefinition('shoal.control.Control'), impl);
    await bindUnixSocket(s, control);
    await bindUnixSocket(s, wellKnown);
    started = s;
  });
  try {
    for (const sock of [control, wellKnown]) {
      await assert.rejects(call(sock, 'ListServices'), failsWith('FAILED_PRECONDITION', MANAGER_LOCKED));
      await assert.rejects(call(sock, 'GetUnlockKey'), failsWith('FAILED_PRECONDITION', MANAGER_LOCKED));
      await assert.rejects(call(sock, 'UnlockManager', { unlockKey: UnlockKey.generate().toString() }), failsWith('INVALID_ARGUMENT', INVALID_UNLOCK_KEY));
      await assert.rejects(call(sock, 'UnlockManager', { unlockKey: 'SWMKEY-1-short' }), failsWith('INVALID_ARGUMENT', INVALID_UNLOCK_KEY));
    }
    assert.deepEqual(starts, []);
    // The right key, but the start fails: its error, and locked again on both sockets.
    await assert.rejects(call(control, 'UnlockManager', { unlockKey: key.toString() }), /cannot listen on 127\.0\.0\.1:1/);
    assert.deepEqual(starts, [kek.id]);
    for (const sock of [control, wellKnown]) await assert.rejects(call(sock, 'ListServices'), failsWith('FAILED_PRECONDITION', MANAGER_LOCKED));
    // Again, through the well-known socket: the start takes both paths over.
    assert.deepEqual(await call(wellKnown, 'UnlockManager', { unlockKey: ` ${key.toString()}\n` }), {});
    assert.deepEqual(starts, [kek.id, kek.id]);
    for (const sock of [control, wellKnown]) assert.deepEqual(await call(sock, 'ListServices'), { services: [] });
  } finally {
    locked.stop();
    started?.forceShutdown();
  }
  assert.ok(!existsSync(control) && !existsSync(wellKnown), 'both sockets removed at the end');
});
