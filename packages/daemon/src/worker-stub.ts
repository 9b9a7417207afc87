// The control socket of a worker node: every control call is refused with a clear error, as on a
// Swarm worker. Served on DATA_DIR/control.sock and, as a manager serves its control API, on the
// machine's well-known socket: a bare `shoal` on a worker says to ask a manager, not "no such socket".

import * as grpc from '@grpc/grpc-js';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { type Logger, ShoalError, getServiceDefinition } from '@shoal/api';
import { bindUnixSocket, serveLocalSocket } from '@shoal/manager';

export const NOT_A_MANAGER =
  'this node is not a manager: run the command on a manager, or point shoal at one (-H HOST:PORT or SHOAL_HOST)';

export interface WorkerStub {
  /** Stops serving, and gives up the well-known socket if it held it (a promoted node's manager takes it). */
  stop(): void;
}

export async function serveNotAManager(dataDir: string, localSocket: string | undefined, log: Logger): Promise<WorkerStub> {
  const server = new grpc.Server();
  const def = getServiceDefinition('shoal.control.Control');
  const impl: grpc.UntypedServiceImplementation = {};
  for (const m of Object.keys(def)) {
    impl[m] = (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(new ShoalError('FAILED_PRECONDITION', NOT_A_MANAGER).toGrpcStatus());
  }
  server.addService(def, impl);
  // As a manager's: the owner's only (a promoted node's manager takes this path over).
  await bindUnixSocket(server, join(dataDir, 'control.sock'));
  const held = localSocket ? await serveLocalSocket(server, localSocket, log) : undefined;
  return {
    stop: () => {
      server.forceShutdown();
      if (held) rmSync(held, { force: true });
    },
  };
}
