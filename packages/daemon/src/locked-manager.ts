// A manager whose kek.json is wrapped (autolock) starts locked: no Raft, no store, no manager
// component, no TCP port. It serves its local sockets (DATA_DIR/control.sock and the machine's
// well-known one) with UnlockManager alone; every other call answers that the manager is locked.
// The right key opens kek.json, and the manager starts on those same sockets before the call
// answers, so `shoal swarm unlock` returns once the manager serves.

import * as grpc from '@grpc/grpc-js';
import { join } from 'node:path';
import { type Logger, ShoalError, getServiceDefinition } from '@shoal/api';
import { bindUnixSocket, serveLocalSocket } from '@shoal/manager';
import { INVALID_UNLOCK_KEY, type KeyEncryptionKey, MANAGER_LOCKED, UnlockKey, unlockKek } from '@shoal/pki';

export interface LockedManager {
  /** Stops serving (the daemon stops while still locked). */
  stop(): void;
}

/**
 * Serves the locked manager's sockets. `start` is called with the opened key once an unlock
 * succeeds: the sockets are free by then, and it starts the manager on them.
 */
export async function serveLocked(
  dataDir: string,
  localSocket: string | undefined,
  log: Logger,
  start: (kek: KeyEncryptionKey) => Promise<void>,
): Promise<LockedManager> {
  const server = new grpc.Server();
  const def = getServiceDefinition('shoal.control.Control');
  const impl: grpc.UntypedServiceImplementation = {};
  let unlocking = false;
  let stopped = false;
  const ports: string[] = [];
  const bindAll = async () => {
    const control = join(dataDir, 'control.sock');
    await bindUnixSocket(server, control);
    ports.push(`unix://${control}`);
    const held = localSocket ? await serveLocalSocket(server, localSocket, log) : undefined;
    if (held) ports.push(`unix://${held}`);
  };
  const unbindAll = () => {
    for (const p of ports.splice(0)) server.unbind(p);
  };
  const unlock = async (text: string): Promise<void> => {
    if (unlocking) throw new ShoalError('FAILED_PRECONDITION', 'this manager is being unlocked already');
    const kek = unlockKek(dataDir, UnlockKey.parse(text));
    unlocking = true;
    try {
      // The manager binds the same paths: this server lets go of them (the call in flight goes on).
      unbindAll();
      await start(kek);
    } catch (err) {
      log.error({ err: (err as Error).message }, 'the manager did not start after its unlock: it stays locked');
      if (!stopped) await bindAll();
      unlocking = false;
      // The operator sees why (a bare Error would reach the client as "internal error").
      throw err instanceof ShoalError ? err : new ShoalError('INTERNAL', `the manager did not start: ${(err as Error).message}`);
    }
  };
  for (const m of Object.keys(def)) {
    if (def[m]!.responseStream) {
      // A stream (Events, SubscribeServiceLogs) gets its status as an 'error' event: there is no callback.
      impl[m] = (call: grpc.ServerWritableStream<unknown, unknown>) => call.emit('error', new ShoalError('FAILED_PRECONDITION', MANAGER_LOCKED).toGrpcStatus());
      continue;
    }
    impl[m] = (call: grpc.ServerUnaryCall<{ unlockKey?: string }, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (m !== 'UnlockManager') {
        cb(new ShoalError('FAILED_PRECONDITION', MANAGER_LOCKED).toGrpcStatus());
        return;
      }
      unlock(call.request.unlockKey ?? '').then(
        () => {
          cb(null, {});
          // The answer first, then the server (its listeners are gone already).
          setImmediate(() => server.tryShutdown(() => undefined));
        },
        (err: unknown) => {
          if (ShoalError.from(err).message === INVALID_UNLOCK_KEY) log.warn({}, 'an unlock was tried with a wrong key');
          cb(ShoalError.from(err).toGrpcStatus());
        },
      );
    };
  }
  server.addService(def, impl);
  await bindAll();
  log.warn({}, MANAGER_LOCKED);
  return {
    stop: () => {
      stopped = true;
      unbindAll();
      server.forceShutdown();
    },
  };
}
