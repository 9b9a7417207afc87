// One Raft member as an OS process: a gRPC server on its address, a RaftNode over LevelDB and
// the KV state machine. Driven over Node's IPC channel by the multi-process tests, the benchmarks
// and the demo cluster (scripts/raft-cluster), so all of them exercise the real thing: separate
// processes, real gRPC, LevelDB with sync writes.
//
//   node node-process.js --id n1 --addr 127.0.0.1:7001 --data-dir DIR [--bootstrap n1=addr,n2=addr,...]
//                        [--tick-ms 100] [--election-ticks 5] [--snapshot-entries 10000] [--snapshot-bytes N]

import * as grpc from '@grpc/grpc-js';
import { parseArgs } from 'node:util';
import { RaftNode } from '../node.js';
import { raftServerOptions } from '../transport/index.js';
import type { Member } from '../core/types.js';
import { KvStateMachine, encodeKv } from './kv.js';

export type NodeRequest =
  | { id: number; cmd: 'status' }
  | { id: number; cmd: 'put'; key: string; value: string; timeoutMs?: number }
  | { id: number; cmd: 'put-as'; clientId: string; seq: number; key: string; value: string; timeoutMs?: number }
  | { id: number; cmd: 'get'; key: string; timeoutMs?: number }
  | { id: number; cmd: 'writes'; key: string }
  | { id: number; cmd: 'load'; clients: number; durationMs: number; size: number }
  | { id: number; cmd: 'add-learner'; nodeId: string; addr: string }
  | { id: number; cmd: 'promote'; nodeId: string }
  | { id: number; cmd: 'add-voter'; nodeId: string; addr: string }
  | { id: number; cmd: 'remove'; nodeId: string }
  | { id: number; cmd: 'transfer'; to?: string }
  | { id: number; cmd: 'stop'; transfer?: boolean };

export type NodeEvent =
  | { ev: 'ready'; id: string; addr: string }
  | { ev: 'leader'; leader: string; term: number; at: number }
  | { ev: 'applied'; index: number }
  | { ev: 'reply'; id: number; ok: true; value: unknown }
  | { ev: 'reply'; id: number; ok: false; error: string; code?: string };

function parseMembers(s: string | undefined): Member[] {
  if (!s) return [];
  return s.split(',').map((kv) => {
    const [id, addr] = kv.split('=');
    if (!id || !addr) throw new Error(`bad member "${kv}": want id=host:port`);
    return { id, addr };
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      id: { type: 'string' },
      addr: { type: 'string' },
      'data-dir': { type: 'string' },
      bootstrap: { type: 'string' },
      peers: { type: 'string' },
      'tick-ms': { type: 'string' },
      'election-ticks': { type: 'string' },
      'snapshot-entries': { type: 'string' },
      'snapshot-bytes': { type: 'string' },
    },
  });
  const id = values.id;
  const addr = values.addr;
  const dataDir = values['data-dir'];
  if (!id || !addr || !dataDir) throw new Error('--id, --addr and --data-dir are required');

  const server = new grpc.Server(raftServerOptions(4 << 20));
  const sm = new KvStateMachine();
  const node = await RaftNode.open({
    id,
    addr,
    dataDir,
    server,
    stateMachine: sm,
    bootstrap: parseMembers(values.bootstrap),
    peers: parseMembers(values.peers),
    timings: {
      ...(values['tick-ms'] ? { tickMs: Number(values['tick-ms']) } : {}),
      ...(values['election-ticks'] ? { electionTicks: Number(values['election-ticks']) } : {}),
    },
    snapshotEntries: values['snapshot-entries'] ? Number(values['snapshot-entries']) : undefined,
    snapshotBytes: values['snapshot-bytes'] ? Number(values['snapshot-bytes']) : undefined,
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  node.start();

  const send = (e: NodeEvent) => process.send?.(e);
  node.on('leader', (leader: string) => send({ ev: 'leader', leader, term: node.status().term, at: Date.now() }));
  node.on('fatal', () => process.exit(3));
  send({ ev: 'ready', id, addr });

  const enc = new TextEncoder();
  const dec = new TextDecoder();

  async function handle(req: NodeRequest): Promise<unknown> {
    switch (req.cmd) {
      case 'status':
        return node.status();
      case 'put': {
        const out = await node.propose(encodeKv({ op: 'put', key: req.key, value: enc.encode(req.value) }), { timeoutMs: req.timeoutMs });
        return { index: out.index, writes: Number(dec.decode(out.result)) };
      }
      case 'put-as': {
        const out = await node.proposeAs(
          { clientId: req.clientId, seq: req.seq, ackedBelow: 0, payload: encodeKv({ op: 'put', key: req.key, value: enc.encode(req.value) }) },
          { timeoutMs: req.timeoutMs },
        );
        return { index: out.index, writes: Number(dec.decode(out.result)) };
      }
      case 'get': {
        const index = await node.readBarrier({ timeoutMs: req.timeoutMs });
        const v = sm.values.get(req.key);
        return { index, value: v === undefined ? null : dec.decode(v) };
      }
      case 'writes':
        return sm.writes.get(req.key) ?? 0;
      case 'load':
        return runLoad(node, req.clients, req.durationMs, req.size);
      case 'add-learner':
        return node.addLearner(req.nodeId, req.addr);
      case 'add-voter':
        return node.addVoter(req.nodeId, req.addr);
      case 'promote':
        return node.promote(req.nodeId);
      case 'remove':
        return node.removeMember(req.nodeId);
      case 'transfer':
        return node.transferLeadership(req.to);
      case 'stop':
        await node.stop({ transfer: req.transfer });
        server.forceShutdown();
        setImmediate(() => process.exit(0));
        return true;
    }
  }

  process.on('message', (req: NodeRequest) => {
    handle(req).then(
      (value) => send({ ev: 'reply', id: req.id, ok: true, value }),
      (err: Error & { code?: string }) => send({ ev: 'reply', id: req.id, ok: false, error: err.message, code: err.code }),
    );
  });
  process.on('disconnect', () => process.exit(0));
  process.on('SIGTERM', () => {
    void node.stop({ transfer: true }).finally(() => process.exit(0));
  });
}

/** Closed-loop clients: each proposes a command, waits for its answer, and proposes the next. */
async function runLoad(node: RaftNode, clients: number, durationMs: number, size: number) {
  const latencies: number[] = [];
  let errors = 0;
  const value = new Uint8Array(size).fill(120);
  const end = Date.now() + durationMs;
  await Promise.all(
    Array.from({ length: clients }, async (_, c) => {
      let i = 0;
      while (Date.now() < end) {
        const cmd = encodeKv({ op: 'put', key: `k${c}.${i++ % 1000}`, value });
        const t0 = process.hrtime.bigint();
        try {
          await node.propose(cmd, { timeoutMs: 5000 });
          latencies.push(Number(process.hrtime.bigint() - t0) / 1e6);
        } catch {
          errors++;
        }
      }
    }),
  );
  return { latencies, errors };
}

main().catch((err) => {
  process.stderr.write(`node-process: ${(err as Error).message}\n`);
  process.exit(2);
});
