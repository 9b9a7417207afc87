// What the orchestrator does to one task, for services (reconcile.ts) and jobs (jobs.ts) alike: a
// new task for a place, a task shut down (or deleted when no node ever had it), orphaned with its
// lost node, and whether (and when) the restart policy replaces one that stopped.

import type { Node, Service, Task, Op } from '@shoal/store';
import { isTerminal, deleteOp, updateOp } from '@shoal/store';
import type { ReconcileContext } from './reconcile.js';

export function newTask(s: Service, slot: number, nodeId: string, ctx: ReconcileContext): Task {
  return {
    id: ctx.newId(),
    version: 0,
    createdAt: ctx.now,
    updatedAt: ctx.now,
    serviceId: s.id,
    serviceName: s.spec.name,
    slot,
    nodeId,
    desiredState: 'running',
    status: {
      state: nodeId ? 'assigned' : 'pending',
      timestamp: ctx.now,
      message: nodeId ? 'scheduled' : 'created',
      err: '',
      containerId: '',
      exitCode: 0,
    },
    spec: s.spec,
    specVersion: s.specVersion,
    jobIteration: s.jobStatus?.jobIteration ?? 0,
    networks: [],
  };
}

export function shutdown(t: Task, ctx: ReconcileContext, desired: Task['desiredState'] = 'shutdown'): Op {
  // No node ever got it: no agent will report it stopped, so it would wait forever (SwarmKit's
  // task reaper deletes these too). expectVersion loses the race to a scheduler that placed it.
  // Nor one waiting for its addresses (state new): it was never given to its node's agent.
  if ((!t.nodeId || t.status.state === 'new') && !isTerminal(t.status.state)) return deleteOp('task', t);
  return updateOp('task', { ...t, desiredState: desired, updatedAt: ctx.now });
}

/**
 * A task whose node is down: nobody can say how it is doing, so it is marked orphaned (as Swarm
 * does) and replaced. If the node comes back, its agent stops the container (desired shutdown).
 */
export function orphan(t: Task, n: Node | undefined, ctx: ReconcileContext): Op {
  const why = n ? `node ${n.description.hostname || n.id} is down` : `node ${t.nodeId} was removed`;
  const status = isTerminal(t.status.state) ? t.status : { ...t.status, state: 'orphaned' as const, message: 'orphaned', err: why, timestamp: ctx.now };
  return updateOp('task', { ...t, desiredState: 'shutdown', status, updatedAt: ctx.now });
}

/** Whether the restart policy wants a replacement for a task that stopped. */
export function shouldRestart(s: Service, slotTasks: Task[], t: Task): boolean {
  const rp = s.spec.restartPolicy;
  const failed = t.status.state === 'failed' || t.status.state === 'rejected' || (t.status.state === 'complete' && t.status.exitCode !== 0);
  if (rp.condition === 'none') return false;
  if (rp.condition === 'on-failure' && !failed) return false;
  if (rp.maxAttempts > 0) {
    const since = rp.windowMs > 0 ? t.status.timestamp - rp.windowMs : -Infinity;
    const attempts = slotTasks.filter((x) => isTerminal(x.status.state) && x.status.timestamp >= since).length;
    if (attempts > rp.maxAttempts) return false;
  }
  return true;
}

/** Waits out a stopped task's restart delay: true while the place must wait (a wake-up is asked for). */
export function restartPending(s: Service, list: Task[], t: Task, ctx: ReconcileContext): boolean {
  if (!shouldRestart(s, list, t)) return false;
  const left = ctx.restartDelayLeft(t, s.spec.restartPolicy.delayMs);
  if (left <= 0) return false;
  ctx.wakeAt?.(ctx.now + left);
  return true;
}
