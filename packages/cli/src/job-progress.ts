// Where a job stands (`service create|update|scale` of a replicated-job or global-job without -d),
// as docker's job progress: completions of the current iteration out of those wanted, the tasks
// active now, a line per place (slot, or node). Done when every place has completed; failed
// when a place's last task failed and its restart policy runs no other (the job cannot complete).
//
//   job progress: 3 out of 5 complete
//   active tasks: 2 out of 2 tasks
//   1/5: complete
//   4/5: running   [==================================================>]

import type { RestartPolicy, Service, Task } from '@shoal/types';
import type { ProgressInput, ServiceProgress, SlotProgress } from './progress.js';

const succeeded = (t: Task) => t.status?.state === 'complete' && Number(t.status.exitCode ?? 0) === 0;
const failedState = (t: Task) => ['failed', 'rejected'].includes(t.status?.state ?? '') || (t.status?.state === 'complete' && !succeeded(t));
const isTerminalState = (s: string) => ['complete', 'shutdown', 'failed', 'rejected', 'remove', 'orphaned'].includes(s);

/** Whether the restart policy runs no other task after these failures of a place (the orchestrator's rule). */
function givesUp(rp: RestartPolicy | undefined, failures: number): boolean {
  if (!rp || rp.condition === 'none') return true;
  return rp.maxAttempts > 0 && failures > rp.maxAttempts;
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

export interface JobState {
  /** Tasks running or on their way now. */
  active: number;
  /** How many the job wants active now (max-concurrent within what is left; a global job's nodes left). */
  activeWanted: number;
  /** Why the job cannot complete (places whose restart policy gave up), or ''. */
  failed: string;
}

/** The progress of a job (the current iteration's tasks only): `running` counts completions, `desired` those wanted. */
export function jobProgress(input: ProgressInput): ServiceProgress & { job: JobState } {
  const service: Service = input.service;
  const spec = service.spec;
  const iteration = Number(service.jobStatus?.jobIteration ?? 0);
  const global = spec.mode === 'global-job';
  const tasks = input.tasks
    .map((v) => v.task)
    .filter((t): t is Task => t != null && t.serviceId === service.id && Number(t.jobIteration ?? 0) === iteration);
  const hostname = new Map<string, string>();
  for (const v of input.tasks) if (v.task && v.nodeHostname) hostname.set(v.task.nodeId, v.nodeHostname);
  const byPlace = new Map<string, Task[]>();
  for (const t of tasks) {
    const k = global ? t.nodeId : String(t.slot);
    byPlace.set(k, [...(byPlace.get(k) ?? []), t]);
  }
  const total = global ? byPlace.size : Number(spec.replicas);
  const slots: SlotProgress[] = [];
  const failures: string[] = [];
  let active = 0;
  const places = [...byPlace.keys()].sort((a, b) => (global ? a.localeCompare(b) : Number(a) - Number(b)));
  for (const k of places) {
    const list = byPlace.get(k)!.sort((a, b) => (b.createdAt ?? 0) - (a.createdAt ?? 0));
    const id = global ? k.slice(0, 12) : `${k}/${total}`;
    const label = global ? `node ${hostname.get(k) || k.slice(0, 12)}` : `slot ${k}`;
    const done = list.find(succeeded);
    const cur = list.find((t) => t.desiredState === 'running');
    const lastErr = oneLine(list.find((t) => t.status?.err)?.status.err ?? '');
    if (done) {
      slots.push({ id, label, task: done, done: true, outdated: false, error: '', lastError: '' });
      continue;
    }
    if (cur) {
      if (!isTerminalState(cur.status?.state ?? 'new')) active++;
      const err = cur.status?.state === 'running' ? '' : oneLine(cur.status?.err ?? '');
      slots.push({ id, label, task: cur, done: false, outdated: false, error: err, lastError: err ? '' : lastErr });
      continue;
    }
    const newest = list[0]!;
    if (failedState(newest) && givesUp(spec.restartPolicy, list.filter(failedState).length)) {
      const why = lastErr || `exit code ${newest.status?.exitCode ?? '?'}`;
      failures.push(`${label}: ${why}`);
      slots.push({ id, label, task: newest, done: false, outdated: false, error: why, lastError: '' });
    }
  }
  const completed = slots.filter((s) => s.done).length;
  const activeWanted = global ? total - completed : Math.min(Number(spec.maxConcurrent) || total, total - completed);
  // A global job with no task yet has not started (the orchestrator has yet to see it), not ended.
  const converged = completed === total && (total > 0 || !global);
  return {
    name: spec.name,
    mode: global ? 'global' : 'replicated',
    desired: total,
    running: completed,
    slots,
    lingering: [],
    converged,
    job: { active, activeWanted: Math.max(0, activeWanted), failed: failures.join('; ') },
  };
}
