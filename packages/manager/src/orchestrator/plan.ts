// An orchestration pass's decisions as groups of ops, each group a change that must be committed
// whole to leave the store consistent (a slot's old task shut down together with its replacement
// created), and the cut of a pass into transactions under the store's size bound. A pass too
// large for one transaction commits its groups in several, one after the other (orchestrator.ts).

import { type Op, jsonBytes, txBytes } from '@shoal/store';

export class Plan {
  /** The groups, in the order they were decided. */
  readonly groups: Op[][] = [];

  /** Adds one group: these ops go into the same transaction. */
  add(...ops: Op[]): void {
    if (ops.length > 0) this.groups.push(ops);
  }

  get empty(): boolean {
    return this.groups.length === 0;
  }

  /**
   * Rewrites the ops of the groups from `from` on (`f` returns the op to keep, changed or not, or
   * undefined to drop it); a group left empty goes.
   */
  rewrite(from: number, f: (op: Op) => Op | undefined): void {
    const kept: Op[][] = [];
    for (const g of this.groups.slice(from)) {
      const ops = g.flatMap((op) => f(op) ?? []);
      if (ops.length > 0) kept.push(ops);
    }
    this.groups.splice(from, this.groups.length - from, ...kept);
  }

  /** Every op, in order. */
  ops(): Op[] {
    return this.groups.flat();
  }
}

export interface Batch {
  ops: Op[];
  /** Groups were left out: another batch must follow. */
  more: boolean;
  /** The index of the first group left out (groups.length when none is). */
  next: number;
}

/**
 * The groups of `groups` from `start` on whose transaction stays within `maxBytes` (whole groups
 * only; a single group over it is taken alone, and the store client refuses it with a clear
 * error). Ops are measured only until the batch is full: cutting a pass of 10,000 tasks into
 * batches measures each op once.
 */
export function batchAt(groups: readonly Op[][], start: number, maxBytes: number): Batch {
  const ops: Op[] = [];
  let bytes = 0;
  let next = start;
  const specs = new Map<object, number>();
  for (; next < groups.length; next++) {
    const g = groups[next]!;
    const n = g.reduce((sum, op) => sum + opBytes(op, specs), 0);
    if (next > start && txBytes(ops.length + g.length, bytes + n) > maxBytes) break;
    ops.push(...g);
    bytes += n;
  }
  return { ops, more: next < groups.length, next };
}

/**
 * An op's JSON length. A task's spec, most of its bytes and shared by the tasks of a service, is
 * measured once (`specs`, by identity): the rest of the task is measured with the spec as null.
 */
function opBytes(op: Op, specs: Map<object, number>): number {
  if (op.op === 'delete' || op.op === 'status' || op.kind !== 'task' || !op.object.spec) return jsonBytes(op);
  const spec = op.object.spec;
  let n = specs.get(spec);
  if (n === undefined) specs.set(spec, (n = jsonBytes(spec)));
  return jsonBytes({ ...op, object: { ...op.object, spec: null } }) - 'null'.length + n;
}

/** The first batch of `groups` (batchAt from the start). */
export function firstBatch(groups: readonly Op[][], maxBytes: number): Batch {
  return batchAt(groups, 0, maxBytes);
}
