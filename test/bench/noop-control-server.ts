// The ceiling for bench:control: a grpc-js server with the Control service whose every method
// answers at once with an empty message, in its own process like shoald. Whatever the benchmark's
// clients reach against it is the most any Node gRPC server could give them on this machine.
// Prints its port on stdout. With a data dir as its argument, it serves TLS with that node's
// certificate, as a manager does. A second argument names another service to serve the same way
// (bench:scale's heartbeat floor serves shoal.dispatcher.Dispatcher).
import * as grpc from '@grpc/grpc-js';
import { getServiceDefinition, type ServiceName } from '@shoal/api';
import { NodeIdentity } from '@shoal/pki';

const def = getServiceDefinition((process.argv[3] ?? 'shoal.control.Control') as ServiceName);
const impl: grpc.UntypedServiceImplementation = {};
for (const name of Object.keys(def)) impl[name] = (_call: unknown, cb: grpc.sendUnaryData<unknown>) => cb(null, {});
const server = new grpc.Server();
server.addService(def, impl);
const dataDir = process.argv[2] || undefined;
const creds = dataDir ? NodeIdentity.load(dataDir).serverCredentials() : grpc.ServerCredentials.createInsecure();
server.bindAsync('127.0.0.1:0', creds, (err, port) => {
  if (err) throw err;
  process.stdout.write(`${port}\n`);
});
process.on('SIGTERM', () => process.exit(0));
