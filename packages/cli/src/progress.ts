// Docker-style progress of a service converging (`shoal service create|update|scale` without -d),
// as pure functions of what the control API returns (the service, its tasks), plus the writer
// that puts the lines on stderr: redrawn in place on a terminal, changed lines only otherwise.
//
//   overall progress: 3 out of 5 tasks
//   1/5: running   [==================================================>]
//   3/5: starting  [============================================>      ]
//   5/5: no suitable node (1 node: does not satisfy node.hostname==nope)
//   verify: Service converged

import type { Service, Task } from '@shoal/types';

/** A task as ListTasks returns it (the node's hostname names a global service's task in errors). */
export interface ProgressTask {
  task: Task | null;
  nodeHostname?: string;
}

/**
 * How far along each state is, as Docker numbers them (`docker service create` progress bars);
 * Docker's `allocated` (2) and `ready` (7) have no Shoal counterpart, so the bars are Docker's.
 */
export const STATE_PROGRESS: Readonly<Record<string, number>> = {
  new: 1,
  pending: 3,
  assigned: 4,
  accepted: 5,
  preparing: 6,
  starting: 8,
  running: 9,
};
const MAX_PROGRESS = 9;
/** The width of a bar's inside (`=`s, `>` and spaces: 50 + 1, as Docker's). */
export const BAR_WIDTH = 50;
/** States are padded to the longest progressing one (`preparing`). */
const STATE_WIDTH = 9;
/** Above this many slots (or nodes), only the overall line is shown (as Docker). */
export const MAX_PROGRESS_BARS = 100;
/** At most this many distinct errors in a "not converged" message. */
const MAX_SUMMARY_GROUPS = 5;

/** `[=====>      ]` for a task in this state (empty for a state that is not progressing). */
export function progressBar(state: string): string {
  const current = STATE_PROGRESS[state];
  if (current === undefined) return '';
  const filled = Math.min(BAR_WIDTH, Math.trunc((current / MAX_PROGRESS) * 100) / 2) | 0;
  return `[${'='.repeat(filled)}>${' '.repeat(BAR_WIDTH - filled)}]`;
}

/** A task of at least this spec version, meant to run and running: what counts as done. */
export function taskDone(t: Task, specVersion?: number): boolean {
  return t.desiredState === 'running' && t.status?.state === 'running' && (specVersion === undefined || t.specVersion >= specVersion);
}

/** Running tasks of at least this spec version among a service's tasks. */
export function runningAtVersion(tasks: readonly ProgressTask[], specVersion: number): number {
  return tasks.filter((v) => v.task && taskDone(v.task, specVersion)).length;
}

/** One slot (replicated) or one node (global) of a service. */
export interface SlotProgress {
  /** What the line starts with: `3/5` (slot, of the replicas) or a node id prefix. */
  id: string;
  /** What an error summary calls it: `slot 3`, `node HOSTNAME`. */
  label: string;
  /** The task meant to run there. */
  task: Task;
  /** Running, at the wanted spec version. */
  done: boolean;
  /** An older spec version than the update wants (the rolling update has not replaced it yet). */
  outdated: boolean;
  /** Why it is not progressing (the task's error), or ''. */
  error: string;
  /** The error of the slot's previous attempt, when the current one has none (a restart loop). */
  lastError: string;
}

export interface ServiceProgress {
  name: string;
  mode: 'replicated' | 'global';
  /** Tasks that should run: the replicas, or (global) the nodes given a task. */
  desired: number;
  /** Of those, the ones done (running, at the wanted spec version). */
  running: number;
  slots: SlotProgress[];
  /** Tasks no longer wanted that still run (only waited for when nothing should run). */
  lingering: Task[];
  /** Everything wanted runs, nothing else does: the service has converged (for now). */
  converged: boolean;
  /**
   * A job's (job-progress.ts): then `running` counts completions, `desired` those wanted, and
   * `converged` says the job is complete.
   */
  job?: { active: number; activeWanted: number; failed: string };
}

export interface ProgressInput {
  service: Service;
  /** The service's tasks, any desired state (ListTasks). */
  tasks: readonly ProgressTask[];
  /** After an update: only tasks of this spec version (or newer) count as done. */
  specVersion?: number;
  /**
   * The nodes that are up. When given, tasks on other nodes (down, removed) are not waited for
   * to stop: nothing can report them stopped.
   */
  liveNodes?: ReadonlySet<string>;
}

function oneLine(s: string): string {
  return s.replace(/\s*[\r\n]+\s*/g, ' ').trim();
}

const newestFirst = (a: Task, b: Task) => (b.createdAt ?? 0) - (a.createdAt ?? 0) || (b.version ?? 0) - (a.version ?? 0);

/** Where the slots of current tasks are shown: their own number when it is within 1..desired, else the free ones in order. */
function slotNumbers(slots: readonly number[], desired: number): Map<number, number> {
  const out = new Map<number, number>();
  const used = new Set<number>();
  for (const s of slots) {
    if (s >= 1 && s <= desired) {
      out.set(s, s);
      used.add(s);
    }
  }
  let next = 1;
  for (const s of slots) {
    if (out.has(s)) continue;
    while (used.has(next)) next++;
    out.set(s, next);
    used.add(next);
  }
  return out;
}

/** Where a service stands, from GetService's service and ListTasks' tasks. */
export function serviceProgress(input: ProgressInput): ServiceProgress {
  const { service, specVersion, liveNodes } = input;
  const name = service.spec.name;
  const mode = service.spec.mode === 'global' ? 'global' : 'replicated';
  const views = input.tasks.filter((v): v is ProgressTask & { task: Task } => v.task != null && v.task.serviceId === service.id);
  const hostname = new Map<string, string>();
  for (const v of views) if (v.nodeHostname) hostname.set(v.task.nodeId, v.nodeHostname);

  // The place of a task: its slot, or (global) its node. The current task of a place is the
  // newest one meant to run; the others are its history.
  const placeOf = (t: Task) => (mode === 'global' ? `n:${t.nodeId}` : `s:${t.slot}`);
  const byPlace = new Map<string, Task[]>();
  for (const { task } of views) {
    const k = placeOf(task);
    const l = byPlace.get(k);
    if (l) l.push(task);
    else byPlace.set(k, [task]);
  }
  const current: Task[] = [];
  for (const list of byPlace.values()) {
    list.sort(newestFirst);
    const cur = list.find((t) => t.desiredState === 'running');
    if (cur) current.push(cur);
  }

  const desired = mode === 'global' ? current.length : service.spec.replicas;
  const slots: SlotProgress[] = [];
  const lastErrorOf = (t: Task): string => {
    const older = byPlace.get(placeOf(t))!.filter((x) => x !== t && (x.createdAt ?? 0) <= (t.createdAt ?? 0));
    return oneLine(older.find((x) => x.status?.err)?.status.err ?? '');
  };
  const slotOf = (t: Task, id: string, label: string): SlotProgress => {
    const state = t.status?.state ?? 'new';
    const done = taskDone(t, specVersion);
    const err = state === 'running' ? '' : oneLine(t.status?.err ?? '');
    return {
      id,
      label,
      task: t,
      done,
      outdated: specVersion !== undefined && t.specVersion < specVersion,
      error: err,
      lastError: err || done ? '' : lastErrorOf(t),
    };
  };
  if (mode === 'global') {
    current.sort((a, b) => a.nodeId.localeCompare(b.nodeId));
    for (const t of current) {
      const host = hostname.get(t.nodeId);
      slots.push(slotOf(t, t.nodeId.slice(0, 12) || '-', `node ${host || t.nodeId.slice(0, 12)}`));
    }
  } else {
    current.sort((a, b) => a.slot - b.slot);
    const shown = slotNumbers(current.map((t) => t.slot), desired);
    for (const t of current) {
      const n = shown.get(t.slot)!;
      // Beyond the replicas: a task that scaling down is about to stop.
      if (n > desired) continue;
      slots.push(slotOf(t, `${n}/${desired}`, `slot ${t.slot}`));
    }
    slots.sort((a, b) => Number(a.id.split('/')[0]) - Number(b.id.split('/')[0]));
  }

  const running = Math.min(desired, slots.filter((s) => s.done).length);
  // Scaled to nothing: done once nothing runs any more (tasks on dead nodes cannot tell).
  const lingering =
    desired === 0
      ? views
          .map((v) => v.task)
          .filter((t) => t.desiredState !== 'running' && t.status?.state === 'running' && (!liveNodes || liveNodes.has(t.nodeId)))
      : [];
  const converged = running === desired && current.length === desired && lingering.length === 0;
  return { name, mode, desired, running, slots, lingering, converged };
}

/** One line of the progress block; `key` says which line it is (plain output prints a line when its text changes). */
export interface ProgressLine {
  key: string;
  text: string;
}

/** What a slot's line says after `ID: `. */
export function slotText(s: SlotProgress): string {
  const state = s.task.status?.state ?? 'new';
  if (s.error) return s.error;
  if (s.outdated) return `${state.padEnd(STATE_WIDTH)} (previous version, to be updated)`;
  const bar = progressBar(state);
  return bar ? `${state.padEnd(STATE_WIDTH)} ${bar}` : state;
}

/**
 * The progress block: `overall progress: N out of M tasks`, one line per slot (or node), the
 * tasks still stopping when nothing should run, and the `verify:` line if given.
 */
export function progressLines(p: ServiceProgress, verify?: string): ProgressLine[] {
  const out: ProgressLine[] = p.job
    ? [
        { key: 'overall', text: `job progress: ${p.running} out of ${p.desired} complete` },
        { key: 'active', text: `active tasks: ${p.job.active} out of ${p.job.activeWanted} tasks` },
      ]
    : [{ key: 'overall', text: `overall progress: ${p.running} out of ${p.desired} tasks` }];
  if (p.slots.length <= MAX_PROGRESS_BARS) {
    const width = Math.max(0, ...p.slots.map((s) => s.id.length));
    for (const s of p.slots) out.push({ key: `slot ${s.id.split('/')[0]}`, text: `${`${s.id}:`.padEnd(width + 1)} ${slotText(s)}` });
  }
  if (p.lingering.length > 0) {
    const n = p.lingering.length;
    out.push({ key: 'stopping', text: `stopping: ${n} task${n === 1 ? '' : 's'} still running` });
  }
  if (verify !== undefined) out.push({ key: 'verify', text: verify });
  return out;
}

/** `verify: Waiting 1 second to verify that tasks are stable...` (Docker's wording). */
export function verifyWaitingText(stableMs: number): string {
  const s = Math.max(1, Math.round(stableMs / 1000));
  return `verify: Waiting ${s} second${s === 1 ? '' : 's'} to verify that tasks are stable...`;
}
export const VERIFY_DONE = 'verify: Service converged';
export const VERIFY_JOB_DONE = 'verify: Job complete';
/** Every task runs the new spec; the update is not over until its monitor period is. */
export const VERIFY_UPDATE_WAITING = 'verify: Waiting for the update to complete (its monitor period)...';

/** `slot 4` / `slots 4, 5` / `nodes a, b` (labels are `KIND NAME`). */
function labelsText(labels: readonly string[]): string {
  if (labels.length === 1) return labels[0]!;
  const kind = labels[0]!.split(' ')[0]!;
  return `${kind}s ${labels.map((l) => l.slice(kind.length + 1)).join(', ')}`;
}

/**
 * Why a service has not converged, in one line: the errors of its slots, grouped
 * (`slot 4: no suitable node (...); slots 5, 6: task: non-zero exit (1)`); without errors, the
 * states of the slots that are not done yet (`slot 3: preparing`). '' when there is nothing to say.
 */
export function notConvergedReasons(p: ServiceProgress): string {
  const groups = new Map<string, string[]>();
  const add = (reason: string, label: string) => {
    const l = groups.get(reason);
    if (l) l.push(label);
    else groups.set(reason, [label]);
  };
  const pending = p.slots.filter((s) => !s.done);
  for (const s of pending) {
    const reason = s.error || s.lastError;
    if (reason) add(reason, s.label);
  }
  if (groups.size === 0) for (const s of pending) add(s.outdated ? 'not updated yet' : (s.task.status?.state ?? 'new'), s.label);
  const parts = [...groups].map(([reason, labels]) => `${labelsText(labels)}: ${reason}`);
  let text = parts.slice(0, MAX_SUMMARY_GROUPS).join('; ');
  if (parts.length > MAX_SUMMARY_GROUPS) text += `; and ${parts.length - MAX_SUMMARY_GROUPS} more`;
  if (p.lingering.length > 0) {
    const n = p.lingering.length;
    text += `${text ? '; ' : ''}${n} task${n === 1 ? '' : 's'} still running`;
  }
  return text;
}

// ------------------------------------------------------------------ the writer

/** Where progress goes: a stream, maybe a terminal. */
export interface ProgressOutput {
  write(s: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

const ESC = '\x1b[';

/** A line cut to the terminal's width (a wrapped line would break the redraw). */
export function fitWidth(s: string, columns: number | undefined): string {
  if (!columns || columns <= 1 || s.length < columns) return s;
  return `${s.slice(0, columns - 2)}…`;
}

/**
 * Writes successive progress blocks. On a terminal, each block replaces the previous one in place
 * (cursor up, clear line); otherwise only lines whose text changed are printed, without escape
 * codes, so logs stay readable.
 */
export class ProgressWriter {
  private drawn: string[] = [];
  private readonly printed = new Map<string, string>();

  constructor(
    private readonly out: ProgressOutput,
    readonly tty: boolean = out.isTTY === true,
  ) {}

  /** Shows this block (a no-op when nothing changed). */
  render(lines: readonly ProgressLine[]): void {
    if (this.tty) this.redraw(lines.map((l) => fitWidth(l.text, this.out.columns)));
    else {
      const s = changedLines(this.printed, lines);
      if (s.length > 0) this.out.write(`${s.join('\n')}\n`);
    }
  }

  /** A line above the block (e.g. the service's name when several are waited for): starts a new block. */
  line(text: string): void {
    this.out.write(`${text}\n`);
    this.drawn = [];
    this.printed.clear();
  }

  private redraw(lines: string[]): void {
    if (lines.length === this.drawn.length && lines.every((l, i) => l === this.drawn[i])) return;
    let s = this.drawn.length > 0 ? `${ESC}${this.drawn.length}A` : '';
    for (const l of lines) s += `${ESC}2K${l}\n`;
    const extra = this.drawn.length - lines.length;
    if (extra > 0) {
      // The block shrank: clear what is left of the old one and come back up.
      for (let i = 0; i < extra; i++) s += `${ESC}2K\n`;
      s += `${ESC}${extra}A`;
    }
    this.out.write(s);
    this.drawn = lines;
  }
}

/**
 * The lines to print in plain (non-terminal) mode: those whose text differs from the last one
 * printed under the same key; `printed` is updated.
 */
export function changedLines(printed: Map<string, string>, lines: readonly ProgressLine[]): string[] {
  const out: string[] = [];
  // A line that left the block prints again when it comes back.
  const keys = new Set(lines.map((l) => l.key));
  for (const k of [...printed.keys()]) if (!keys.has(k)) printed.delete(k);
  for (const l of lines) {
    if (printed.get(l.key) === l.text) continue;
    printed.set(l.key, l.text);
    out.push(l.text);
  }
  return out;
}
