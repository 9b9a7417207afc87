// When a task marked for removal (desired state `remove`: its slot was scaled away) may be
// deleted: once nothing of it can still run or report. Tasks a service still wants, whatever
// their state (a task that failed for good under restart `none` is its slot's, and stays
// visible), have another desired state and are never the reaper's.

import type { Node, Task } from '@shoal/store';
import { isTerminal, taskStateRank } from '@shoal/store';

/** Whether `t` may be deleted; `node`: its node as the store has it (none: no node, or removed). */
export function isReapable(t: Task, node: Node | null | undefined): boolean {
  if (t.desiredState !== 'remove') return false;
  // Stopped: its agent reported the last of it.
  if (isTerminal(t.status.state)) return true;
  // Never given to an agent: none will ever report it (SwarmKit reaps below ASSIGNED too).
  if (t.nodeId === '' || taskStateRank(t.status.state) < taskStateRank('assigned')) return true;
  // Its node is gone or down: no report will come; if the node returns, its agent stops a
  // container whose task it is no longer given.
  return !node || node.status.state === 'down';
}
