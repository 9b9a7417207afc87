// The safety checker: a pure observer fed with events by the simulated drivers (or, in the
// "not vacuous" tests, with a hand-made corrupted history). It throws a SafetyViolation as soon as
// a property is broken.
//
// Properties (Raft paper, Figure 3, plus client-visible ones):
//  - Election Safety: at most one leader per term, over the whole history.
//  - Log Matching: checked inductively on every entry any node persists: two stored entries with
//    the same (index, term) carry the same data and follow entries of the same term. By induction
//    on the index this is equivalent to "the logs are identical up to that entry".
//  - Leader Completeness: an entry committed in term T (first observed on a leader of term T) is in
//    the log of every leader of a term > T.
//  - State Machine Safety: no two nodes apply different entries (or different histories, compared
//    through a running digest) at the same index; snapshots agree with the applied history.
//  - Durable proposals: a proposal acknowledged (applied by some node) at index i is applied at i
//    everywhere, never elsewhere; a node applies a proposal at most once (checked by the state
//    machine, which reports through proposalAppliedTwice).
//  - Linearizable reads: a ReadState answers at an index covering every entry applied anywhere
//    before the read was issued, and the serving state machine holds the last acknowledged write.
//  - Durable hard state: a node's persisted term never decreases, it never changes its persisted
//    vote within a term, and its persisted commit index never decreases.

import type { HardState, NodeId } from '../../src/core/types.js';

export class SafetyViolation extends Error {
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`${property}: ${detail}`);
    this.name = 'SafetyViolation';
  }
}

export class LivenessFailure extends Error {
  readonly property = 'Liveness';
  constructor(msg: string) {
    super(`Liveness: ${msg}`);
    this.name = 'LivenessFailure';
  }
}

/** How a seed that threw failed: the property it broke and the report (with how to replay it). */
export function describeFailure(
  err: Error,
  run: { seed: number; nodes: number; steps: number; step: number; params: unknown; label: string; replay: string },
): { property: string; error: string } {
  const checked = err instanceof SafetyViolation || err instanceof LivenessFailure;
  const property = checked ? err.property : 'Crash (exception)';
  const where = run.step <= run.steps ? `step ${run.step}` : 'the liveness phase';
  const detail = checked ? err.message : (err.stack ?? String(err));
  const error =
    `seed ${run.seed} (${run.nodes} nodes, ${run.steps} steps${run.label}) failed at ${where}: ${detail}\n` +
    `  params: ${JSON.stringify(run.params)}\n` +
    `  replay: ${run.replay}`;
  return { property, error };
}

/** A log entry as the checker compares entries: its type and its bytes. */
export function entryKeyOf(e: { type: number; data: Uint8Array }): string {
  let s = e.type === 0 ? 'N:' : 'C:';
  for (let i = 0; i < e.data.length; i++) s += String.fromCharCode(e.data[i]!);
  return s;
}

interface StoredRec {
  key: string;
  prevTerm: number | undefined;
  node: NodeId;
}

interface AppliedRec {
  term: number;
  key: string;
  digest: number;
  node: NodeId;
}

interface ReadRec {
  node: NodeId;
  minIndex: number;
  lastAckedId: string | undefined;
  answered: boolean;
}

export class SafetyChecker {
  /** term -> the leader of that term. */
  readonly leaders = new Map<number, NodeId>();
  /** `${index}/${term}` -> what was stored there first. */
  private readonly stored = new Map<string, StoredRec>();
  /** index -> the entry first applied at that index (all these are committed). */
  readonly applied = new Map<number, AppliedRec>();
  /** index -> the term of the leader that first reported it committed. */
  readonly commitTerms = new Map<number, number>();
  maxObservedCommit = 0;
  /** The highest index applied by any node. */
  maxApplied = 0;
  /** proposal id -> the index it was applied at. */
  readonly acked = new Map<string, number>();
  lastAckedId: string | undefined;
  private readonly reads = new Map<string, ReadRec>();
  readsServed = 0;

  private fail(property: string, detail: string): never {
    throw new SafetyViolation(property, detail);
  }

  /** A node is leader in `term` (observed through its status or its Ready). */
  leader(node: NodeId, term: number): void {
    const prev = this.leaders.get(term);
    if (prev === undefined) this.leaders.set(term, node);
    else if (prev !== node) this.fail('Election Safety', `two leaders in term ${term}: ${prev} and ${node}`);
  }

  /** A node persisted an entry; prevTerm is the term of the entry before it in that log (if known). */
  entryStored(node: NodeId, index: number, term: number, key: string, prevTerm: number | undefined): void {
    const k = `${index}/${term}`;
    const rec = this.stored.get(k);
    if (rec === undefined) {
      this.stored.set(k, { key, prevTerm, node });
      return;
    }
    if (rec.key !== key)
      this.fail(
        'Log Matching',
        `entry (index ${index}, term ${term}) has different data on ${rec.node} (${show(rec.key)}) and ${node} (${show(key)})`,
      );
    if (prevTerm !== undefined) {
      if (rec.prevTerm === undefined) rec.prevTerm = prevTerm;
      else if (rec.prevTerm !== prevTerm)
        this.fail(
          'Log Matching',
          `entry (index ${index}, term ${term}) follows an entry of term ${rec.prevTerm} on ${rec.node} but of term ${prevTerm} on ${node}`,
        );
    }
  }

  /** A leader of `term` has commit index `commit`. */
  commitObserved(commit: number, term: number): void {
    for (let i = this.maxObservedCommit + 1; i <= commit; i++) {
      const prev = this.commitTerms.get(i);
      if (prev === undefined || term < prev) this.commitTerms.set(i, term);
    }
    if (commit > this.maxObservedCommit) this.maxObservedCommit = commit;
  }

  /**
   * A node applied the entry (index, term, key); digest is its state machine's running digest
   * after applying it; nodeTerm is the node's current term (an upper bound of the commit term,
   * used if no leader was seen committing the index).
   */
  entryApplied(node: NodeId, index: number, term: number, key: string, digest: number, nodeTerm: number): void {
    const rec = this.applied.get(index);
    if (rec === undefined) {
      this.applied.set(index, { term, key, digest, node });
      if (index > this.maxApplied) this.maxApplied = index;
      if (!this.commitTerms.has(index)) this.commitTerms.set(index, nodeTerm);
      return;
    }
    if (rec.term !== term || rec.key !== key)
      this.fail(
        'State Machine Safety',
        `index ${index}: ${rec.node} applied (term ${rec.term}, ${show(rec.key)}) but ${node} applied (term ${term}, ${show(key)})`,
      );
    if (rec.digest !== digest)
      this.fail('State Machine Safety', `index ${index}: ${rec.node} and ${node} applied different histories up to it`);
  }

  /** A node restored its state machine from a snapshot at (index, term) with this digest. */
  snapshotRestored(node: NodeId, index: number, term: number, digest: number): void {
    const rec = this.applied.get(index);
    if (rec === undefined) {
      // Nobody applied it yet (impossible with a correct driver: snapshots come from applied state).
      this.fail('State Machine Safety', `${node} restored a snapshot at ${index} that no node has applied`);
    }
    if (rec.term !== term || rec.digest !== digest)
      this.fail(
        'State Machine Safety',
        `${node} restored a snapshot at (index ${index}, term ${term}) that disagrees with the history applied by ${rec.node} (term ${rec.term})`,
      );
  }

  /** A node's state machine applied client proposal `id` at `index`. */
  proposalApplied(node: NodeId, id: string, index: number): void {
    const prev = this.acked.get(id);
    if (prev === undefined) {
      this.acked.set(id, index);
      this.lastAckedId = id;
    } else if (prev !== index) {
      this.fail('Durable proposals', `proposal ${id} acknowledged at index ${prev} but ${node} applied it at ${index}`);
    }
  }

  proposalAppliedTwice(node: NodeId, id: string, first: number, second: number): never {
    this.fail('At-most-once', `${node} applied proposal ${id} twice (indexes ${first} and ${second})`);
  }

  /**
   * Leader Completeness, checked on a leader's log: `termAt(i)` gives the term of its entry i
   * (undefined if it has none); entries at or below snapIndex are covered by its snapshot (and by
   * State Machine Safety).
   */
  leaderLog(node: NodeId, term: number, snapIndex: number, termAt: (i: number) => number | undefined): void {
    for (let i = snapIndex + 1; i <= this.maxApplied; i++) {
      const rec = this.applied.get(i);
      const ct = this.commitTerms.get(i);
      if (rec === undefined || ct === undefined || ct >= term) continue;
      const t = termAt(i);
      if (t !== rec.term)
        this.fail(
          'Leader Completeness',
          `${node}, leader of term ${term}, has ${t === undefined ? 'no entry' : `term ${t}`} at index ${i}, ` +
            `but (index ${i}, term ${rec.term}) was committed in term ${ct}`,
        );
    }
  }

  readIssued(node: NodeId, ctx: string): void {
    this.reads.set(ctx, { node, minIndex: this.maxApplied, lastAckedId: this.lastAckedId, answered: false });
  }

  readState(node: NodeId, ctx: string, index: number): void {
    const r = this.reads.get(ctx);
    if (r === undefined) this.fail('Linearizable reads', `${node} produced a ReadState for an unknown context ${ctx}`);
    if (r.node !== node) this.fail('Linearizable reads', `read ${ctx} issued on ${r.node} answered on ${node}`);
    if (index < r.minIndex)
      this.fail(
        'Linearizable reads',
        `${node} answered read ${ctx} at index ${index}, but index ${r.minIndex} was applied before the read was issued`,
      );
    r.answered = true;
  }

  /** A node serves read `ctx` from its state machine, which has applied through `applied`. */
  readServed(node: NodeId, ctx: string, applied: number, hasProposal: (id: string) => boolean): void {
    const r = this.reads.get(ctx);
    if (r === undefined) this.fail('Linearizable reads', `${node} served an unknown read ${ctx}`);
    if (applied < r.minIndex)
      this.fail('Linearizable reads', `${node} served read ${ctx} at applied ${applied} < ${r.minIndex}`);
    if (r.lastAckedId !== undefined && !hasProposal(r.lastAckedId))
      this.fail('Linearizable reads', `${node} served read ${ctx} without the acknowledged write ${r.lastAckedId}`);
    this.readsServed++;
  }

  /** A node persisted a new hard state over `prev`. */
  hardStatePersisted(node: NodeId, prev: HardState, next: HardState): void {
    if (next.term < prev.term) this.fail('Durable state', `${node} persisted term ${next.term} after ${prev.term}`);
    if (next.term === prev.term && prev.vote !== '' && next.vote !== prev.vote)
      this.fail('Durable state', `${node} changed its vote in term ${next.term} from ${prev.vote} to ${next.vote || '(none)'}`);
    if (next.commit < prev.commit)
      this.fail('Durable state', `${node} persisted commit ${next.commit} after ${prev.commit}`);
  }

  /** Any other violation detected by the simulated driver. */
  violation(property: string, detail: string): never {
    this.fail(property, detail);
  }

  /** A driver-contract violation detected by the simulated driver. */
  contract(detail: string): never {
    this.fail('Ready contract', detail);
  }
}

function show(key: string): string {
  const s = key.length > 40 ? key.slice(0, 40) + '…' : key;
  return JSON.stringify(s);
}
