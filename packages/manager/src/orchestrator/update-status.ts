// Where a rolling update stands, judged from the tasks (Swarm's UpdateStatus): a failure of an
// updated task applies the update's failure action (pause, continue, or roll back to the previous
// spec), and the update is complete once every task runs the new spec and the last one to start
// has run for the monitor period. A pure function of the store, like the rest of reconcile.

import type { Service, Task, UpdateConfig, UpdateState } from '@shoal/store';
import { rolledBack, specChangesTasks } from '../service-update.js';

export interface UpdateContext {
  now: number;
  wakeAt?(ms: number): void;
}

export interface UpdateVerdict {
  /** The service as it should be stored (a new status, or rolled back); absent: unchanged. */
  service?: Service;
  /** No new batch may start (the update is paused, or was just rolled back). */
  hold: boolean;
  /** The service's spec was just rolled back: its tasks wait for the next pass. */
  rolledBack: boolean;
  /** The tasks of the update in progress that failed (updateFailures). */
  failed: Task[];
}

const IN_PROGRESS: ReadonlySet<UpdateState> = new Set(['updating', 'rollback_started']);
const PAUSED: ReadonlySet<UpdateState> = new Set(['paused', 'rollback_paused']);

/** Stopped on its own while meant to run: a failure, or an early termination (exit 0 counts too). */
function failedEarly(t: Task): boolean {
  const s = t.status.state;
  return s === 'failed' || s === 'rejected' || s === 'complete';
}

/**
 * Whether a task runs the service's spec: made from its spec version, or from an older one that
 * runs the same (a rollback does not replace the tasks the failed update never reached).
 */
export function runsSpec(t: Task, s: Service): boolean {
  return t.specVersion === s.specVersion || (t.specVersion < s.specVersion && !specChangesTasks(t.spec, s.spec));
}

/** The settings the service's rollout follows: its rollback's during a rollback, else its update's. */
export function rolloutConfig(s: Service): UpdateConfig {
  return s.updateStatus?.state.startsWith('rollback') ? s.spec.rollbackConfig : s.spec.updateConfig;
}

/** The tasks of the update in progress that failed (none when no update is in progress). */
function updateFailures(s: Service, tasks: readonly Task[]): Task[] {
  const us = s.updateStatus;
  if (!us || !IN_PROGRESS.has(us.state)) return [];
  // Tasks this update made (the service's spec version, created once it started).
  return tasks.filter((t) => t.specVersion === s.specVersion && t.createdAt >= us.startedAt && failedEarly(t));
}

/**
 * Failures first (before any task is replaced this pass): the failure action, if one is due.
 * `tasks` are all of the service's tasks, history included.
 */
export function judgeFailures(s: Service, tasks: readonly Task[], ctx: UpdateContext): UpdateVerdict {
  const us = s.updateStatus;
  const failed = updateFailures(s, tasks);
  if (!us || !IN_PROGRESS.has(us.state)) return { hold: us !== null && PAUSED.has(us.state), rolledBack: false, failed };
  const rollingBack = us.state === 'rollback_started';
  const uc = rolloutConfig(s);
  const goOn: UpdateVerdict = { hold: false, rolledBack: false, failed };
  if (failed.length === 0) return goOn;
  const size = s.spec.mode === 'global' ? new Set(tasks.map((t) => t.nodeId)).size : s.spec.replicas;
  if (failed.length / Math.max(1, size) <= uc.maxFailureRatio) return goOn;
  const first = failed.reduce((a, b) => (b.status.timestamp < a.status.timestamp ? b : a));
  const why = `failure or early termination of task ${first.id}${first.status.err ? ` (${first.status.err})` : ''}`;
  if (!rollingBack && uc.failureAction === 'rollback' && s.previousSpec) {
    return {
      service: rolledBack({ ...s, previousSpec: s.previousSpec }, ctx.now, `update rolled back due to ${why}`),
      hold: true,
      rolledBack: true,
      failed,
    };
  }
  if (uc.failureAction === 'continue') return goOn;
  const state: UpdateState = rollingBack ? 'rollback_paused' : 'paused';
  return {
    service: { ...s, updateStatus: { ...us, state, message: `${rollingBack ? 'rollback' : 'update'} paused due to ${why}` }, updatedAt: ctx.now },
    hold: true,
    rolledBack: false,
    failed,
  };
}

/**
 * Once the pass's tasks are known: the update is complete when every task that serves (`active`)
 * runs this spec and the last to start has run for the monitor period.
 */
export function judgeCompletion(s: Service, active: readonly Task[], ctx: UpdateContext): Service | undefined {
  const us = s.updateStatus;
  if (!us || !IN_PROGRESS.has(us.state)) return undefined;
  if (!active.every((t) => runsSpec(t, s) && t.status.state === 'running')) return undefined;
  // A loop, not Math.max(...active): a spread of 100,000 arguments overflows the stack.
  let lastStart = us.startedAt;
  for (const t of active) lastStart = Math.max(lastStart, t.status.timestamp);
  const { monitorMs } = rolloutConfig(s);
  if (lastStart + monitorMs > ctx.now) {
    ctx.wakeAt?.(lastStart + monitorMs);
    return undefined;
  }
  // A completed rollback keeps its message: why it was rolled back is what one wants to read then.
  const rollingBack = us.state === 'rollback_started';
  return {
    ...s,
    updateStatus: { ...us, state: rollingBack ? 'rollback_completed' : 'completed', completedAt: ctx.now, message: rollingBack ? us.message : 'update completed' },
    updatedAt: ctx.now,
  };
}
