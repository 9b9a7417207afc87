// bench:scale's heartbeat floor, the client side: COUNT nodes' worth of heartbeats, each node on
// its own mutual-TLS connection (as every hollow or real node has its own), each calling
// Dispatcher.Heartbeat once per period from a random phase, against a no-op server
// (noop-control-server.ts). What that server's process spends is the least any Node gRPC
// dispatcher could spend on the same heartbeats on this machine.
//   node heartbeat-floor-clients.js ADDR COUNT PERIOD_MS ADMIN_DIR
// Sends "ready" over IPC once every connection has answered once.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { getClientConstructor } from '@shoal/api';
import { managerChannel } from '@shoal/pki';

const [addr, countS, periodS, adminDir] = process.argv.slice(2);
const count = Number(countS);
const periodMs = Number(periodS);
const pem = (n: string) => readFileSync(join(adminDir!, n), 'utf8');
const sec = managerChannel({ caPem: pem('ca.pem'), certPem: pem('cert.pem'), keyPem: pem('key.pem') });
const Ctor = getClientConstructor('shoal.dispatcher.Dispatcher');
// A local subchannel pool: without it grpc-js would share one connection among channels with the
// same target and options, and the floor would measure one connection, not COUNT.
const opts = { ...sec.options, 'grpc.use_local_subchannel_pool': 1 };
const stubs = Array.from({ length: count }, () => new Ctor(addr!, sec.credentials, opts) as any);
const beat = (stub: any) =>
  new Promise<void>((resolve) => stub.Heartbeat({ nodeId: 'n', sessionId: 's' }, { deadline: Date.now() + periodMs }, () => resolve()));
let answered = 0;
for (const stub of stubs) {
  setTimeout(function loop() {
    void beat(stub).then(() => {
      if (++answered === count) process.send?.('ready');
      setTimeout(loop, periodMs);
    });
  }, Math.random() * periodMs);
}
process.on('disconnect', () => process.exit(0));
