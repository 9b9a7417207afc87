// Waiting for services to converge (create/update/scale without -d): poll GetService until the
// running tasks equal the desired ones, print `SERVICE: N/M` progress lines on stderr when the
// numbers change and `SERVICE: converged` at the end; give up when the command's budget
// (--timeout) runs out.

import { setTimeout as sleep } from 'node:timers/promises';
import { CliError } from './errors.js';
import type { Ctx } from './context.js';
import { formatDuration } from './parse.js';
import type { TaskView } from './wire.js';

export interface WaitTarget {
  /** What to ask GetService for (the id the write returned). */
  ref: string;
  /** What to call it in progress lines. */
  name: string;
  /**
   * After an update: only tasks of this spec version (or newer) count as running, so the wait
   * lasts until the rolling update has replaced the old tasks (counted from ListTasks).
   */
  specVersion?: number;
}

/** Running tasks of at least this spec version among a service's tasks. */
export function runningAtVersion(tasks: readonly TaskView[], specVersion: number): number {
  return tasks.filter(
    (v) => v.task && v.task.desiredState === 'running' && v.task.status?.state === 'running' && v.task.specVersion >= specVersion,
  ).length;
}

/** The progress line of a service. */
export function progressLine(name: string, running: number, desired: number): string {
  return `${name}: ${running}/${desired}`;
}

export const POLL_MS = 500;

/**
 * Resolves once every target has running == desired; rejects with a one-line CliError when the
 * budget runs out (`what`: "created", "updated", "scaled": what the user's change did).
 */
export async function waitForConvergence(ctx: Ctx, targets: readonly WaitTarget[], what: string, pollMs = POLL_MS): Promise<void> {
  const pending = new Map(targets.map((t) => [t.ref, { ...t, last: '', running: -1, desired: -1 }]));
  let lastError: CliError | undefined;
  while (pending.size > 0) {
    for (const t of [...pending.values()]) {
      if (ctx.expired()) break;
      try {
        const notFound = { notFound: { kind: 'service' as const, name: t.name } };
        const r = await ctx.call('GetService', { service: t.ref }, notFound);
        let running = r.running;
        if (t.specVersion !== undefined) {
          const { tasks } = await ctx.call('ListTasks', { service: t.ref, node: '', desiredState: 'running' }, notFound);
          running = Math.min(running, runningAtVersion(tasks, t.specVersion));
        }
        lastError = undefined;
        t.running = running;
        t.desired = r.desired;
        const line = progressLine(t.name, running, r.desired);
        if (line !== t.last) ctx.note(line);
        t.last = line;
        if (running === r.desired && r.running === r.desired) {
          ctx.note(`${t.name}: converged`);
          pending.delete(t.ref);
        }
      } catch (err) {
        // A leader change or a lost connection while waiting: keep trying until the deadline.
        if (err instanceof CliError && err.code === 'UNAVAILABLE') lastError = err;
        else throw err;
      }
    }
    if (pending.size === 0) break;
    if (ctx.expired()) {
      const budget = formatDuration(ctx.budget());
      const t = [...pending.values()][0]!;
      const state = t.desired >= 0 ? `${t.running}/${t.desired} tasks running` : `last error: ${lastError?.message ?? 'none'}`;
      throw new CliError(
        `${t.name}: not converged within ${budget} (${state}); the service was ${what}: see 'shoal service ps ${t.name}' (use -d not to wait, --timeout to wait longer)`,
        1,
        'TIMEOUT',
      );
    }
    await sleep(Math.min(pollMs, ctx.remainingMs()));
  }
}
