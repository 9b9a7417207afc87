// Transactions: the store's Raft commands, and the answers apply() gives their proposers. Both
// travel as UTF-8 JSON.

import { type ShoalErrorCode, isShoalErrorCode, ShoalError } from '@shoal/api';
import type { ObjectKind } from './types.js';
import type { KindMap } from './validate.js';

export type CreateOp = { [K in ObjectKind]: { op: 'create'; kind: K; object: KindMap[K] } }[ObjectKind];

/** Replaces the whole object (matched by `object.id`). With expectVersion: only if unchanged since. */
export type UpdateOp = {
  [K in ObjectKind]: { op: 'update'; kind: K; object: KindMap[K]; expectVersion?: number };
}[ObjectKind];

/**
 * A task's observed status, and only that (with the time of the change): what a node reports
 * most, at a tenth of a whole task's bytes in the Raft log. Applied as an update of the task with
 * that status, under every rule an update obeys (forward only, versions).
 */
export interface StatusOp {
  op: 'status';
  kind: 'task';
  id: string;
  status: KindMap['task']['status'];
  updatedAt: number;
  expectVersion?: number;
}

export interface DeleteOp {
  op: 'delete';
  kind: ObjectKind;
  id: string;
  expectVersion?: number;
}

export type Op = CreateOp | UpdateOp | StatusOp | DeleteOp;

export interface Tx {
  ops: Op[];
}

export interface TxSuccess {
  ok: true;
  /** The Raft index the transaction was applied at: the new version of every object it wrote. */
  index: number;
  /** The id of each op's object, in op order. */
  ids: string[];
  /** Tasks deleted by history pruning (see README), if any. */
  pruned?: string[];
}

export interface TxFailure {
  ok: false;
  code: ShoalErrorCode;
  message: string;
  /** Machine-readable context: on a version conflict {reason: 'version-conflict', kind, id, expected, actual}. */
  details?: Record<string, string>;
}

export type TxResult = TxSuccess | TxFailure;

const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: true });

export function encodeTx(tx: Tx | Op[]): Uint8Array {
  return enc.encode(JSON.stringify(Array.isArray(tx) ? { ops: tx } : tx));
}

/**
 * Parses a command's bytes into a transaction. Checks only the envelope (JSON, an `ops` array of
 * objects); the ops themselves are validated by ClusterStore.apply(). Throws ShoalError
 * INVALID_ARGUMENT.
 */
export function decodeTx(data: Uint8Array): Tx {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(data));
  } catch (err) {
    throw new ShoalError('INVALID_ARGUMENT', `transaction is not valid UTF-8 JSON: ${(err as Error).message}`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || !Array.isArray((v as { ops?: unknown }).ops)) {
    throw new ShoalError('INVALID_ARGUMENT', 'transaction must be an object with an "ops" array');
  }
  return v as Tx;
}

export function encodeTxResult(r: TxResult): Uint8Array {
  return enc.encode(JSON.stringify(r));
}

export function decodeTxResult(data: Uint8Array): TxResult {
  let v: unknown;
  try {
    v = JSON.parse(dec.decode(data));
  } catch {
    throw new ShoalError('INTERNAL', 'the store answered with malformed bytes');
  }
  const r = (typeof v === 'object' && v !== null ? v : {}) as Record<string, unknown>;
  if (r.ok === true && typeof r.index === 'number' && Array.isArray(r.ids)) return r as unknown as TxSuccess;
  if (r.ok === false && isShoalErrorCode(r.code) && typeof r.message === 'string') return r as unknown as TxFailure;
  throw new ShoalError('INTERNAL', 'the store answered with an unexpected result');
}

/** The ShoalError a failed transaction stands for. */
export function txError(r: TxFailure): ShoalError {
  return new ShoalError(r.code, r.message, { details: r.details });
}

/** True if `err` is a failed transaction's version conflict (an optimistic-concurrency miss). */
export function isVersionConflict(err: unknown): boolean {
  return ShoalError.is(err, 'FAILED_PRECONDITION') && err.details.reason === 'version-conflict';
}
