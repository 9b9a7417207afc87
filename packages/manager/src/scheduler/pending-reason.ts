// Why a task meant to run has no node yet, in a few fixed words: a label for metrics (the task's
// own error says it in full, for `service ps`). Read from what the allocator and the scheduler
// left on the task, so any manager can tell, at any time, without running either.

import type { Task } from '@shoal/store';
import { fullyAttached } from '@shoal/types';

/** The words summarize() (filters.ts) puts a refusal in, and the reason each stands for. */
const REFUSALS: readonly [RegExp, string][] = [
  [/: is (pause|drain)\b/, 'node_not_active'],
  [/: is \w+/, 'node_not_ready'],
  [/: does not satisfy /, 'constraint'],
  [/: max replicas per node limit exceed/, 'max_replicas'],
  [/: host port \S+ is taken/, 'host_port'],
  [/: insufficient resources/, 'resources'],
];

/**
 * Why `t` waits for a node, or undefined if it does not (it has one, or is not meant to run):
 * `unallocated` (its network addresses first), `unscheduled` (the scheduler has not looked at it
 * yet), `no_nodes`, or the kinds of refusal the nodes gave, sorted and joined by commas (e.g.
 * `constraint,node_not_ready`), `other` for words this list does not know.
 */
export function pendingReason(t: Task): string | undefined {
  if (t.desiredState !== 'running' || t.nodeId !== '') return undefined;
  if (t.status.state !== 'new' && t.status.state !== 'pending') return undefined;
  if (t.status.state === 'new' || !fullyAttached(t)) return 'unallocated';
  const err = t.status.err;
  if (!err) return 'unscheduled';
  if (err.includes('the cluster has no nodes')) return 'no_nodes';
  const kinds = new Set<string>();
  for (const part of err.replace(/^no suitable node \(|\)$/g, '').split('; ')) {
    const hit = REFUSALS.find(([re]) => re.test(part));
    kinds.add(hit ? hit[1] : 'other');
  }
  return [...kinds].sort().join(',');
}
