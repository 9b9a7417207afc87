// ListTasks in pages: a service of 10,000 tasks does not fit one gRPC reply (4 MiB by default).
// Pages follow one total order (service name, slot, node, newest first, then id); a page token is
// the position of the last task given, so the next page starts right after it whatever changed
// in between (keyset paging: nothing is held on the server between calls).

import { ShoalError } from '@shoal/api';
import { type Task, jsonBytes } from '@shoal/store';

/** Tasks in a page when the caller names no size, and the most it may ask for. */
export const DEFAULT_TASK_PAGE = 1000;
export const MAX_TASK_PAGE = 5000;
/**
 * A page stops growing past this many JSON bytes (a task is about 1.4 KiB, its spec carrying every
 * container setting; a spec up to 256 KiB): a default page fits, well within gRPC's 4 MiB.
 */
export const TASK_PAGE_BYTES = 2 << 20;

type Key = [serviceName: string, slot: number, nodeId: string, createdAt: number, id: string];

const keyOf = (t: Task): Key => [t.serviceName, t.slot, t.nodeId, t.createdAt, t.id];

function compareKeys(a: Key, b: Key): number {
  return a[0].localeCompare(b[0]) || a[1] - b[1] || a[2].localeCompare(b[2]) || b[3] - a[3] || (a[4] < b[4] ? -1 : a[4] > b[4] ? 1 : 0);
}

/** The listing's order (`service ps`: a slot's tasks together, the newest first). */
export function compareTasks(a: Task, b: Task): number {
  return compareKeys(keyOf(a), keyOf(b));
}

function encodeToken(k: Key): string {
  return Buffer.from(JSON.stringify(k), 'utf8').toString('base64url');
}

function decodeToken(token: string): Key {
  let k: unknown;
  try {
    k = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
  } catch {
    k = undefined;
  }
  const ok =
    Array.isArray(k) &&
    k.length === 5 &&
    typeof k[0] === 'string' &&
    typeof k[1] === 'number' &&
    typeof k[2] === 'string' &&
    typeof k[3] === 'number' &&
    typeof k[4] === 'string';
  if (!ok) throw new ShoalError('INVALID_ARGUMENT', 'page_token is not one ListTasks gave (pass a next_page_token unchanged)');
  return k as Key;
}

export interface TaskPage {
  tasks: Task[];
  /** Empty when this page ends the listing. */
  nextPageToken: string;
}

/** One page of `tasks` (any order): after `token`, at most `size` tasks (0: the default) and about TASK_PAGE_BYTES. */
export function taskPage(tasks: readonly Task[], size: number, token: string): TaskPage {
  const limit = size > 0 ? Math.min(size, MAX_TASK_PAGE) : DEFAULT_TASK_PAGE;
  const after = token ? decodeToken(token) : undefined;
  const rest = (after ? tasks.filter((t) => compareKeys(keyOf(t), after) > 0) : [...tasks]).sort(compareTasks);
  const page: Task[] = [];
  let bytes = 0;
  for (const t of rest) {
    if (page.length >= limit) break;
    const n = jsonBytes(t);
    // At least one task per page, however large: the listing always moves on.
    if (page.length > 0 && bytes + n > TASK_PAGE_BYTES) break;
    page.push(t);
    bytes += n;
  }
  const more = page.length < rest.length;
  return { tasks: page, nextPageToken: more ? encodeToken(keyOf(page[page.length - 1]!)) : '' };
}
