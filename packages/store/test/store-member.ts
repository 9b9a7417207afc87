// One member of a store cluster as an OS process: the cluster store as the state machine of a real
// RaftNode (LevelDB, gRPC on loopback), driven over IPC with node-process.js's protocol (status,
// add-learner, promote, add-voter, stop) plus the store's own commands, so a test can hold a
// large store in several processes and measure each (its own event loop, its own RSS).
//
//   node store-member.js --id m1 --addr 127.0.0.1:7001 --data-dir DIR [--bootstrap m1=addr,...]
//                        [--peers m1=addr,...] [--snapshot-bytes N] [--snapshot-entries N]

import * as grpc from '@grpc/grpc-js';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { RaftNode, raftServerOptions, type Member } from '@shoal/raft';
import { ClusterStore, MAX_TX_BYTES, StoreClient, encodeTx, type Op } from '../src/index.js';
import { bulkTask, bulkTaskSetup } from './bulk-tasks.js';

type Request = { id: number; cmd: string; [field: string]: unknown };

function parseMembers(s: string | undefined): Member[] {
  if (!s) return [];
  return s.split(',').map((kv) => {
    const [id, addr] = kv.split('=');
    if (!id || !addr) throw new Error(`bad member "${kv}": want id=host:port`);
    return { id, addr };
  });
}

/** The process's resident set (VmRSS), in KiB. */
function rssKiB(): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) : -1;
}

/**
 * The longest the event loop went without turning since the last reset: a 5 ms timer's lateness.
 * A member that holds its loop longer than an election timeout misses heartbeats (as leader) or
 * campaigns (as follower).
 */
class LoopWatch {
  private max = 0;
  private last = performance.now();
  private readonly timer = setInterval(() => {
    const now = performance.now();
    const late = now - this.last - 5;
    this.max = Math.max(this.max, late);
    this.last = now;
    if (late >= this.reportMs) this.report(Math.round(late));
  }, 5);

  /** `report` hears of every stall of `reportMs` or more (the test's log, with SHOAL_TEST_LOGS). */
  constructor(
    private readonly reportMs: number,
    private readonly report: (ms: number) => void,
  ) {
    this.timer.unref();
  }

  take(): number {
    const m = this.max;
    this.max = 0;
    return Math.round(m);
  }
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      id: { type: 'string' },
      addr: { type: 'string' },
      'data-dir': { type: 'string' },
      bootstrap: { type: 'string' },
      peers: { type: 'string' },
      'snapshot-entries': { type: 'string' },
      'snapshot-bytes': { type: 'string' },
    },
  });
  const { id, addr } = values;
  const dataDir = values['data-dir'];
  if (!id || !addr || !dataDir) throw new Error('--id, --addr and --data-dir are required');

  let opened: RaftNode | undefined;
  const loop = new LoopWatch(200, (ms) => {
    const st = opened?.status();
    process.stderr.write(`${id}: event loop held ${ms} ms (role ${st?.role}, applied ${st?.applied}, snapshots ${st?.stats.snapshots})\n`);
  });
  const server = new grpc.Server(raftServerOptions(4 << 20));
  const store = new ClusterStore();
  const t0 = performance.now();
  const node = await RaftNode.open({
    id,
    addr,
    dataDir,
    server,
    stateMachine: store,
    bootstrap: parseMembers(values.bootstrap),
    peers: parseMembers(values.peers),
    snapshotEntries: values['snapshot-entries'] ? Number(values['snapshot-entries']) : undefined,
    snapshotBytes: values['snapshot-bytes'] ? Number(values['snapshot-bytes']) : undefined,
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(addr, grpc.ServerCredentials.createInsecure(), (err) => (err ? reject(err) : resolve())),
  );
  opened = node;
  node.start();
  const client = new StoreClient(node, store);
  // When the store was last replaced by a snapshot, and how long after start.
  let restoredAtMs: number | undefined;
  store.watch(
    (events) => {
      if (events.some((e) => e.action === 'restore')) restoredAtMs = Math.round(performance.now() - t0);
    },
    { kinds: [] },
  );

  const send = (e: unknown) => process.send?.(e);
  node.on('leader', (leader: string) => send({ ev: 'leader', leader, term: node.status().term, at: Date.now() }));
  node.on('fatal', () => process.exit(3));
  send({ ev: 'ready', id, addr });

  /**
   * As a control API client does: a write that failed for want of a leader (an election under a
   * heavy load) is tried again; ALREADY_EXISTS then means an earlier try got in (a transaction
   * applies whole or not at all).
   */
  async function commitRetrying(ops: Op[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await client.commit(ops, { timeoutMs: 60_000 });
        return;
      } catch (err) {
        const code = (err as { code?: string }).code;
        if (attempt > 1 && code === 'ALREADY_EXISTS') return;
        if (attempt >= 10 || (code !== 'UNAVAILABLE' && code !== 'NOT_LEADER')) throw err;
        retries++;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
  let retries = 0;

  /** Writes `count` tasks from number `from` on, in transactions within MAX_TX_BYTES. */
  async function fill(from: number, count: number): Promise<{ txs: number; bytes: number; retries: number }> {
    if (from === 0) await client.commit(bulkTaskSetup());
    let ops: Op[] = [];
    let opBytes = 0;
    let txs = 0;
    let bytes = 0;
    // A few transactions in flight at once, as a busy control API would have.
    const inflight = new Set<Promise<unknown>>();
    const flush = async () => {
      const batch = ops;
      ops = [];
      opBytes = 0;
      txs++;
      bytes += encodeTx(batch).length;
      const p = commitRetrying(batch).finally(() => inflight.delete(p));
      inflight.add(p);
      if (inflight.size >= 4) await Promise.race(inflight);
    };
    for (let i = from; i < from + count; i++) {
      const op: Op = { op: 'create', kind: 'task', object: bulkTask(i) };
      const n = JSON.stringify(op).length + 1;
      if (opBytes + n > MAX_TX_BYTES - 1024) await flush();
      ops.push(op);
      opBytes += n;
    }
    if (ops.length > 0) await flush();
    await Promise.all(inflight);
    return { txs, bytes, retries };
  }

  async function handle(req: Request): Promise<unknown> {
    switch (req.cmd) {
      case 'status': {
        const st = node.status();
        return {
          role: st.role,
          leader: st.leader,
          term: st.term,
          commit: st.commit,
          applied: st.applied,
          snapshotIndex: st.snapshotIndex,
          voters: st.conf.voters.map((m) => m.id),
          learners: st.conf.learners.map((m) => m.id),
          progress: st.progress,
          stats: st.stats,
          tasks: store.count('task'),
          storeIndex: store.appliedIndex,
          rssKiB: rssKiB(),
          restoredAtMs,
          maxLoopBlockMs: loop.take(),
        };
      }
      case 'fill':
        return fill(Number(req.from), Number(req.count));
      case 'snapshot-now':
        return node.snapshotNow();
      case 'snapshot-bytes':
        // What this member's snapshot of its store is now (the store's part of it).
        return (await store.captureSnapshot().encode()).length;
      case 'add-learner':
        return node.addLearner(String(req.nodeId), String(req.addr));
      case 'add-voter':
        return node.addVoter(String(req.nodeId), String(req.addr), Number(req.timeoutMs ?? 120_000));
      case 'promote':
        return node.promote(String(req.nodeId));
      case 'gc':
        // RSS of the live state, not of garbage a major GC has not reached yet (needs --expose-gc).
        (globalThis as { gc?: () => void }).gc?.();
        return rssKiB();
      case 'stop':
        await node.stop({ transfer: false });
        server.forceShutdown();
        setImmediate(() => process.exit(0));
        return true;
      default:
        throw new Error(`unknown command ${req.cmd}`);
    }
  }

  process.on('message', (req: Request) => {
    handle(req).then(
      (value) => send({ ev: 'reply', id: req.id, ok: true, value }),
      (err: Error & { code?: string }) => send({ ev: 'reply', id: req.id, ok: false, error: err.message, code: err.code }),
    );
  });
  process.on('disconnect', () => process.exit(0));
}

main().catch((err) => {
  process.stderr.write(`store-member: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(2);
});
