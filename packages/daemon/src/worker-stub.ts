// The control socket of a worker node: every control call is refused with a clear error, as on a
// Swarm worker. (The agent that runs tasks attaches here in the workers step.)

import * as grpc from '@grpc/grpc-js';
import { bindUnixSocket } from '@shoal/manager';
import { join } from 'node:path';
import { ShoalError, getServiceDefinition } from '@shoal/api';

export async function serveNotAManager(dataDir: string): Promise<grpc.Server> {
  const server = new grpc.Server();
  const def = getServiceDefinition('shoal.control.Control');
  const impl: grpc.UntypedServiceImplementation = {};
  for (const m of Object.keys(def)) {
    impl[m] = (_call: unknown, cb: grpc.sendUnaryData<unknown>) =>
      cb(
        new ShoalError(
          'FAILED_PRECONDITION',
          'this node is not a manager: run the command on a manager (workers cannot run management commands)',
        ).toGrpcStatus(),
      );
  }
  server.addService(def, impl);
  const sock = join(dataDir, 'control.sock');
  // As a manager's: the owner's only (a promoted node's manager takes this path over).
  await bindUnixSocket(server, sock);
  return server;
}
