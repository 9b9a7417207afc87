// Throughput of GrpcTransport between two nodes on 127.0.0.1 (one process).
//   node packages/raft/dist/bench/transport-bench.js [messages=50000] [entryBytes=0]

import * as grpc from '@grpc/grpc-js';
import { GrpcTransport, raftServerOptions } from '../src/transport/index.js';
import { EntryType, MessageType, emptyMessage, type Message } from '../src/core/types.js';
import { silentLogger } from '../src/logger.js';

const total = Number(process.argv[2] ?? 50_000);
const entryBytes = Number(process.argv[3] ?? 0);

async function node(id: string, onMessage: (m: Message) => void) {
  const server = new grpc.Server(raftServerOptions());
  const t = new GrpcTransport({
    id,
    server,
    logger: silentLogger(),
    handlers: {
      onMessage,
      onPropose: async () => ({ index: 0, result: Buffer.alloc(0) }),
      onReadBarrier: async () => ({ index: 0 }),
      onStatus: async () => ({ id, term: 0, leader: '', role: 'follower', commit: 0, applied: 0, last_index: 0 }),
    },
    onUnreachable: (p) => console.error('unreachable', p),
    onSnapshotStatus: () => undefined,
  });
  const port = await new Promise<number>((res, rej) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? rej(e) : res(p))),
  );
  return { t, server, addr: `127.0.0.1:${port}` };
}

let received = 0;
let done: () => void = () => undefined;
const finished = new Promise<void>((r) => (done = r));
const a = await node('a', () => undefined);
const b = await node('b', () => {
  if (++received === total) done();
});
a.t.addPeer('b', b.addr);
b.t.addPeer('a', a.addr);
const data = Buffer.alloc(entryBytes, 1);
const start = process.hrtime.bigint();
for (let i = 0; i < total; i += 100) {
  const batch: Message[] = [];
  for (let j = i; j < Math.min(total, i + 100); j++) {
    const m = emptyMessage(entryBytes > 0 ? MessageType.App : MessageType.Heartbeat, 'a', 'b', 1);
    if (entryBytes > 0) m.entries = [{ term: 1, index: j + 1, type: EntryType.Normal, data }];
    batch.push(m);
  }
  a.t.send(batch);
  await new Promise((r) => setImmediate(r));
}
await finished;
const s = Number(process.hrtime.bigint() - start) / 1e9;
console.log(`${total} messages (${entryBytes ? `App with one ${entryBytes} B entry` : 'Heartbeat'}) in ${s.toFixed(2)} s: ${(total / s).toFixed(0)} msg/s`);
a.t.close();
b.t.close();
a.server.forceShutdown();
b.server.forceShutdown();
