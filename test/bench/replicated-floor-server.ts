// The floor under any replicated control API, for bench:control: the least work a write must do
// on this machine before it can be answered, with none of Shoal's logic (no Raft state, no
// validation, no store, no apply). A leader process serves the Control service as the no-op
// server does (same TLS), but answers a call only once its request, serialized, is in a synced
// LevelDB batch on its own disk and on a majority of followers. Group commit, the cheapest way
// per call: one flush at a time, and the calls that arrive meanwhile go together in the next, to
// each follower over one mutual-TLS gRPC call, written there in one synced batch and acknowledged.
//
//   node replicated-floor-server.js DATADIR follower
//   node replicated-floor-server.js DATADIR leader [FOLLOWER_ADDR ...]
// Prints its port on stdout; DATADIR is a manager's (its certificate; LevelDB in a temp dir).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { Level } from 'level';
import { getServiceDefinition } from '@shoal/api';
import { NodeIdentity } from '@shoal/pki';

const [dataDir, role, ...followerAddrs] = process.argv.slice(2);
if (!dataDir || (role !== 'leader' && role !== 'follower')) throw new Error('usage: replicated-floor-server DATADIR leader|follower [FOLLOWER_ADDR ...]');
const identity = NodeIdentity.load(dataDir);
const dbDir = mkdtempSync(join(tmpdir(), 'shoal-floor-'));
const db = new Level<Buffer, Buffer>(dbDir, { keyEncoding: 'buffer', valueEncoding: 'buffer' });
await db.open();
let seq = 0;

/** One synced batch holding every entry, keyed in order as a log would be. */
async function persist(entries: readonly Buffer[]): Promise<void> {
  const b = db.batch();
  for (const e of entries) {
    const key = Buffer.alloc(8);
    key.writeBigUInt64BE(BigInt(++seq));
    b.put(key, e);
  }
  await b.write({ sync: true });
}

// Entries travel length-prefixed in one buffer: the framing costs next to nothing, so the floor
// measures the transport and the disk.
function frame(entries: readonly Buffer[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(e.length);
    parts.push(len, e);
  }
  return Buffer.concat(parts);
}
function unframe(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let off = 0; off < buf.length; ) {
    const len = buf.readUInt32BE(off);
    out.push(buf.subarray(off + 4, off + 4 + len));
    off += 4 + len;
  }
  return out;
}

const raw = (b: Buffer) => b;
const REPLICATE: grpc.ServiceDefinition = {
  Replicate: {
    path: '/shoal.floor.Floor/Replicate',
    requestStream: false,
    responseStream: false,
    requestSerialize: raw,
    requestDeserialize: raw,
    responseSerialize: raw,
    responseDeserialize: raw,
  },
};

const server = new grpc.Server();
if (role === 'follower') {
  server.addService(REPLICATE, {
    Replicate: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
      persist(unframe(call.request)).then(
        () => cb(null, Buffer.alloc(0)),
        (err: Error) => cb(err),
      );
    },
  });
} else {
  const Client = grpc.makeGenericClientConstructor(REPLICATE, 'Floor');
  const sec = identity.managerChannel();
  const followers = followerAddrs.map((a) => new Client(a, sec.credentials, sec.options));
  // A majority of the cluster, counting the leader itself.
  const acksNeeded = Math.floor((followers.length + 1) / 2);
  let pending: { entry: Buffer; cb: grpc.sendUnaryData<unknown> }[] = [];
  let scheduled = false;
  let flushing = false;
  const flush = () => {
    scheduled = false;
    if (flushing || pending.length === 0) return;
    flushing = true;
    const batch = pending;
    pending = [];
    const entries = batch.map((p) => p.entry);
    const framed = frame(entries);
    const replicated = new Promise<void>((resolve, reject) => {
      let acks = 0;
      let fails = 0;
      if (acksNeeded === 0) return resolve();
      for (const f of followers) {
        (f as any).Replicate(framed, { deadline: Date.now() + 10_000 }, (err: Error | null) => {
          if (err) {
            if (++fails > followers.length - acksNeeded) reject(err);
          } else if (++acks === acksNeeded) resolve();
        });
      }
    });
    Promise.all([persist(entries), replicated])
      .then(
        () => {
          for (const p of batch) p.cb(null, {});
        },
        (err: Error) => {
          for (const p of batch) p.cb(err);
        },
      )
      .finally(() => {
        flushing = false;
        flush();
      });
  };
  const def = getServiceDefinition('shoal.control.Control');
  const impl: grpc.UntypedServiceImplementation = {};
  for (const name of Object.keys(def)) {
    impl[name] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      pending.push({ entry: Buffer.from(JSON.stringify(call.request)), cb });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    };
  }
  server.addService(def, impl);
}
server.bindAsync('127.0.0.1:0', identity.serverCredentials(), (err, port) => {
  if (err) throw err;
  process.stdout.write(`${port}\n`);
});
process.on('SIGTERM', () => {
  rmSync(dbDir, { recursive: true, force: true });
  process.exit(0);
});
