// The proposer's side of the store: ids, linearizable reads, transactions through Raft, and the
// optimistic-concurrency loop (read, build ops with expectVersion, commit, retry on conflict).

import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { ShoalError } from '@shoal/api';
import type { ClusterStore } from './store.js';
import { type Op, type TxSuccess, decodeTxResult, encodeTx, isVersionConflict, txError } from './tx.js';
import { checkTxSize } from './tx-size.js';
import { type Cluster, type ObjectKind, type Task, isLegacyCaKey } from './types.js';
import type { KindMap } from './validate.js';

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
export const ID_LENGTH = 25;

/** A new object id: 25 random characters of [a-z0-9] (as Swarm's), uniformly drawn. */
// Random bytes are drawn in blocks: one system call per ~150 ids instead of one per id.
const pool = Buffer.alloc(4096);
let poolAt = pool.length;

export function newId(): string {
  let out = '';
  while (out.length < ID_LENGTH) {
    if (poolAt === pool.length) {
      randomFillSync(pool);
      poolAt = 0;
    }
    const b = pool[poolAt++];
    // 252 = 7 * 36: rejecting 252..255 keeps every character equally likely.
    if (b < 252) out += ALPHABET[b % 36];
  }
  return out;
}

/** The part of RaftNode the client uses (a RaftNode fits). */
export interface StoreProposer {
  propose(payload: Uint8Array, opts?: { timeoutMs?: number; leaderOnly?: boolean }): Promise<{ index: number; result: Uint8Array }>;
  readBarrier(opts?: { timeoutMs?: number }): Promise<number>;
}

/**
 * An update op conditional on `object` being unchanged since it was read (expectVersion = its
 * version), or since the version a caller saw (`service update --version`-style checks).
 */
/** A task's new observed status (a StatusOp), if the task is still at `expectVersion`. */
export function statusOp(task: Task, status: Task['status'], updatedAt: number, expectVersion = task.version): Op {
  return { op: 'status', kind: 'task', id: task.id, status, updatedAt, expectVersion };
}

export function updateOp<K extends ObjectKind>(kind: K, object: KindMap[K], expectVersion = object.version): Op {
  return { op: 'update', kind, object, expectVersion } as Op;
}

/** A delete op conditional on `object` being unchanged since it was read. */
export function deleteOp(kind: ObjectKind, object: { id: string; version: number }): Op {
  return { op: 'delete', kind, id: object.id, expectVersion: object.version };
}

export interface CommitOptions {
  /** Overall time for the proposal (default 10 s, RaftNode's default). */
  timeoutMs?: number;
  /**
   * A leader's own decision: committed only through this member while it leads, never passed to
   * another leader (NOT_LEADER once it no longer leads; see RaftNode's ProposeOptions).
   */
  leaderOnly?: boolean;
}

export interface UpdateOptions extends CommitOptions {
  /** Further attempts after a version conflict (default 5). */
  retries?: number;
  /** Skip the read barrier on the first attempt (only for ops that all carry expectVersion). */
  optimistic?: boolean;
  /**
   * Overall time for every attempt together (ms; default: none, each barrier and commit gets
   * timeoutMs): lets a caller answer inside its own client's deadline whatever the retries.
   */
  budgetMs?: number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class StoreClient {
  constructor(
    readonly node: StoreProposer,
    readonly store: ClusterStore,
  ) {}

  /** A read barrier, then the local store: reads on it see every transaction committed before the call. */
  async read(opts: CommitOptions = {}): Promise<ClusterStore> {
    await this.node.readBarrier({ timeoutMs: opts.timeoutMs });
    return this.store;
  }

  /**
   * Proposes a transaction and waits until it is applied (on this member too: a read of the local
   * store afterwards sees it). Throws the transaction's ShoalError if it was rejected (nothing
   * changed then), RESOURCE_EXHAUSTED (nothing proposed) if it is over the size bound
   * (tx-size.ts), or UNAVAILABLE if no answer came in time (the outcome is then unknown).
   */
  async commit(ops: Op[], opts: CommitOptions = {}): Promise<TxSuccess> {
    for (const op of ops) {
      // Apply takes a plaintext CA key in a create (an old release's log replays one); no new
      // cluster gets one.
      if (op.op === 'create' && op.kind === 'cluster' && isLegacyCaKey((op.object as Cluster).caKey)) {
        throw new ShoalError('FAILED_PRECONDITION', "the cluster's CA key must be stored sealed, not as plaintext");
      }
    }
    const payload = encodeTx(ops);
    checkTxSize(ops, payload.length);
    const out = await this.node.propose(payload, { timeoutMs: opts.timeoutMs, leaderOnly: opts.leaderOnly });
    const r = decodeTxResult(out.result);
    if (!r.ok) throw txError(r);
    return r;
  }

  /**
   * The optimistic-concurrency loop: reads (after a barrier), lets `fn` build the ops from that
   * state (use expectVersion, e.g. updateOp()), commits them, and starts over when another writer
   * got in between (a version conflict), at most `retries` more times. Other failures are thrown
   * at once. If `fn` returns no ops, nothing is proposed: the result has no ids and the read index.
   */
  async update(fn: (store: ClusterStore) => Op[] | Promise<Op[]>, opts: UpdateOptions = {}): Promise<TxSuccess> {
    const retries = opts.retries ?? 5;
    // With `optimistic`, the first attempt reads the local copy without a barrier: for ops that
    // all carry expectVersion, a stale read just fails the version check. Anything else a stale
    // read could cause (a "not found", a decision that nothing needs doing) is only believed after
    // a barrier.
    let fresh = !opts.optimistic;
    const end = opts.budgetMs === undefined ? undefined : performance.now() + opts.budgetMs;
    // Each wait gets timeoutMs, cut to what is left of the budget.
    const wait = (): CommitOptions => {
      if (end === undefined) return opts;
      const left = Math.floor(end - performance.now());
      if (left <= 0) throw new ShoalError('UNAVAILABLE', `the write did not complete within ${opts.budgetMs} ms`);
      return { ...opts, timeoutMs: Math.min(opts.timeoutMs ?? left, left) };
    };
    for (let attempt = 0; ; attempt++) {
      const index = fresh ? await this.node.readBarrier({ timeoutMs: wait().timeoutMs }) : this.store.appliedIndex;
      let ops: Op[];
      try {
        ops = await fn(this.store);
      } catch (err) {
        if (fresh) throw err;
        fresh = true;
        continue;
      }
      if (ops.length === 0) {
        if (fresh) return { ok: true, index, ids: [] };
        fresh = true;
        continue;
      }
      try {
        return await this.commit(ops, wait());
      } catch (err) {
        if (!isVersionConflict(err) || attempt >= retries) throw err;
        fresh = true;
      }
      // Competing writers: a little jitter so they do not collide again in lockstep.
      await sleep(Math.random() * 5 * (attempt + 1));
    }
  }
}
