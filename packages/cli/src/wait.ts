// Waiting for services to converge (create/update/scale without -d), showing Docker-style
// progress on stderr (progress.ts): poll GetService and ListTasks, redraw the block (terminal) or
// print the lines that changed (pipe), and once every task runs (and an update being waited for
// has completed: its monitor period is over), keep watching for a short stability window before
// `verify: Service converged`. Gives up with one line listing the tasks'
// errors when the command's budget (--timeout) runs out; a lost connection or a leader change
// while waiting is retried until then.

import { setTimeout as sleep } from 'node:timers/promises';
import type { UpdateStatus } from '@shoal/types';
import { CliError } from './errors.js';
import type { Ctx } from './context.js';
import { formatDuration } from './parse.js';
import {
  type ProgressOutput,
  ProgressWriter,
  type ServiceProgress,
  VERIFY_DONE,
  VERIFY_JOB_DONE,
  VERIFY_UPDATE_WAITING,
  notConvergedReasons,
  progressLines,
  serviceProgress,
  verifyWaitingText,
} from './progress.js';
import { jobProgress } from './job-progress.js';

export interface WaitTarget {
  /** What to ask GetService for (the id the write returned). */
  ref: string;
  /** What to call it in messages. */
  name: string;
  /**
   * After an update: only tasks of this spec version (or newer) count as running, so the wait
   * lasts until the rolling update has replaced the old tasks.
   */
  specVersion?: number;
  /**
   * Watch the service's update status too: after an update, a pause or a rollback ends the wait
   * with its reason; after a rollback, a paused rollback does.
   */
  watch?: 'update' | 'rollback';
}

/** How often the service and its tasks are read. */
export const POLL_MS = 500;
/**
 * How long every task must keep running before the service counts as converged (Docker waits 5 s;
 * a task that crashes right after it starts shows up within this window).
 */
export const STABLE_MS = 1000;

export interface WaitOptions {
  pollMs?: number;
  stableMs?: number;
  /** Redraw in place (a terminal) or print changed lines; default: whether stderr is a terminal. */
  tty?: boolean;
}

/** Whether progress on this stream may use cursor movements: a terminal that is not `dumb`. */
export function isTerminal(out: ProgressOutput, env: NodeJS.ProcessEnv = process.env): boolean {
  return out.isTTY === true && env['TERM'] !== 'dumb';
}

/**
 * Resolves once every target has converged (one after the other, as `docker service scale`);
 * rejects with a one-line CliError when the budget runs out (`what`: "created", "updated",
 * "scaled": what the user's change did).
 */
export async function waitForConvergence(ctx: Ctx, targets: readonly WaitTarget[], what: string, opts: WaitOptions = {}): Promise<void> {
  const out = ctx.stderr as ProgressOutput;
  const writer = new ProgressWriter(out, opts.tty ?? isTerminal(out, ctx.env));
  for (const t of targets) {
    if (targets.length > 1) writer.line(t.name);
    await waitOne(ctx, t, what, writer, opts.pollMs ?? POLL_MS, opts.stableMs ?? STABLE_MS);
  }
}

/** One read of a service's progress, and its update status. */
async function readProgress(ctx: Ctx, t: WaitTarget): Promise<ServiceProgress & { updateStatus?: UpdateStatus | null; specVersionNow: number }> {
  const notFound = { notFound: { kind: 'service' as const, name: t.name } };
  const r = await ctx.call('GetService', { service: t.ref }, notFound);
  if (!r.service) throw new CliError(`the manager sent no service for ${t.name}`);
  const tasks = await ctx.listTasks({ service: t.ref, node: '', desiredState: '' }, notFound);
  const input = { service: r.service, tasks, specVersion: t.specVersion };
  const extra = { updateStatus: r.service.updateStatus, specVersionNow: Number(r.service.specVersion) };
  // A job: its current iteration's completions (an update has started a new one already).
  if (r.service.spec.mode === 'replicated-job' || r.service.spec.mode === 'global-job') return { ...jobProgress(input), ...extra };
  let p = serviceProgress(input);
  if (p.lingering.length > 0) {
    // Tasks still stopping: those on dead or removed nodes will never say they stopped.
    const { nodes } = await ctx.call('ListNodes', {});
    const live = new Set(nodes.filter((n) => n.node && n.node.status.state === 'ready').map((n) => n.node!.id));
    p = serviceProgress({ ...input, liveNodes: live });
  }
  return { ...p, ...extra };
}

async function waitOne(ctx: Ctx, t: WaitTarget, what: string, writer: ProgressWriter, pollMs: number, stableMs: number): Promise<void> {
  let progress: ServiceProgress | undefined;
  let lastError: CliError | undefined;
  /** Since when every task runs (the stability window), if they do. */
  let stableSince: number | undefined;
  /** The update (or rollback) being waited for is still in progress. */
  let rolling = false;
  for (;;) {
    if (!ctx.expired()) {
      try {
        const read = await readProgress(ctx, t);
        progress = read;
        lastError = undefined;
        const ended = updateEnded(t, read.updateStatus, read.specVersionNow);
        if (read.job?.failed) {
          writer.render(progressLines(read, undefined));
          throw new CliError(`${t.name}: the job cannot complete: ${read.job.failed}; see 'shoal service ps ${t.name}'`, 1, 'JOB_FAILED');
        }
        if (ended) {
          writer.render(progressLines(read, undefined));
          throw new CliError(`${t.name}: ${ended}; see 'shoal service ps ${t.name}'`, 1, 'UPDATE_FAILED');
        }
        // A rolling update is over when the orchestrator says so: after its monitor period, not
        // when the last new task starts (inspect would still say "updating").
        rolling = updateInProgress(t, read.updateStatus);
        if (progress.converged && !rolling) stableSince ??= ctx.now();
        else stableSince = undefined;
      } catch (err) {
        // A leader change or a lost connection while waiting: keep trying until the deadline.
        if (err instanceof CliError && err.code === 'UNAVAILABLE') lastError = err;
        else throw err;
      }
    }
    const expired = ctx.expired();
    // Stable for the whole window; or converged at the last look when time is up. A job is done
    // once complete (its tasks have stopped: nothing to watch for stability).
    const done = stableSince !== undefined && (ctx.now() - stableSince >= stableMs || expired || progress?.job !== undefined);
    if (progress) {
      const verify = done
        ? progress.job
          ? VERIFY_JOB_DONE
          : VERIFY_DONE
        : stableSince !== undefined
          ? verifyWaitingText(stableMs)
          : progress.converged && rolling
            ? VERIFY_UPDATE_WAITING
            : undefined;
      writer.render(progressLines(progress, verify));
    }
    if (done) return;
    if (expired) throw notConverged(ctx, t, what, progress, lastError, rolling);
    const untilStable = stableSince === undefined ? Infinity : Math.max(1, stableSince + stableMs - ctx.now());
    await sleep(Math.min(pollMs, untilStable, ctx.remainingMs()));
  }
}

/**
 * Whether the update (or rollback) `t` waits for is still rolling out: the orchestrator has not
 * yet said it completed, which it does once the last new task has run for the monitor period.
 */
export function updateInProgress(t: WaitTarget, us: UpdateStatus | null | undefined): boolean {
  if (!t.watch || !us) return false;
  return us.state === 'updating' || us.state === 'rollback_started';
}

/**
 * Why waiting on `t` is over without convergence, from the service's update status: the update
 * paused, or was rolled back (reported once the rollback completed or paused); a rollback that
 * paused. Undefined: keep waiting.
 */
export function updateEnded(t: WaitTarget, us: UpdateStatus | null | undefined, specVersionNow: number): string | undefined {
  if (!t.watch || !us) return undefined;
  if (t.watch === 'update') {
    if (us.state === 'paused') return us.message;
    // A rollback after our update (a newer spec version): it tells once it has run its course.
    const after = t.specVersion === undefined || specVersionNow > t.specVersion;
    if (after && us.state === 'rollback_completed') return `${us.message}; the previous spec runs again`;
    if (after && us.state === 'rollback_paused') return us.message;
    return undefined;
  }
  return us.state === 'rollback_paused' ? us.message : undefined;
}

/** `web: not converged within 30s (3/5 running): slot 4: no suitable node (...); see 'shoal service ps web'`. */
export function notConvergedMessage(name: string, budgetMs: number, what: string, progress: ServiceProgress | undefined, lastError?: Error, rolling = false): string {
  let state: string;
  if (progress) {
    const reasons = notConvergedReasons(progress);
    const update = rolling && progress.converged ? ', the update still in its monitor period' : '';
    const counted = progress.job ? 'complete' : 'running';
    state = `(${progress.running}/${progress.desired} ${counted}${update})${reasons ? `: ${reasons}` : ''}`;
  } else {
    state = `(last error: ${lastError?.message ?? 'none'})`;
  }
  return `${name}: not converged within ${formatDuration(budgetMs)} ${state}; the service was ${what}: see 'shoal service ps ${name}' (use -d not to wait, --timeout to wait longer)`;
}

function notConverged(ctx: Ctx, t: WaitTarget, what: string, progress: ServiceProgress | undefined, lastError: CliError | undefined, rolling: boolean): CliError {
  return new CliError(notConvergedMessage(t.name, ctx.budget(), what, progress, lastError, rolling), 1, 'TIMEOUT');
}
