// A published port's backends as the mesh tracks them: the table's entries plus their connection
// counters and failure backoff, kept across table updates, and the pick of the next one to try
// (least connections, healthy first, ties round-robin).

import { parseHostPort, type HostPort } from './addr.js';
import { isValidTaskId } from './forward-header.js';
import type { Backend } from './types.js';

/** A backend as the mesh tracks it: the table's entry plus counters and its failure backoff. */
export interface BackendState {
  /** Identity across table updates: a change of any of these makes it a new backend. */
  readonly key: string;
  backend: Backend;
  /** Where to connect: the container (local) or the remote node's forwarding listener. */
  readonly target: HostPort;
  active: number;
  total: number;
  failed: number;
  failingUntil: number;
}

function backendKey(b: Backend): string {
  return b.local ? `L|${b.taskId}|${b.targetPort}|${b.addr}` : `R|${b.taskId}|${b.targetPort}|${b.via}`;
}

/** How the forwarding listener names a local backend: what a peer asks for. */
export function localKey(taskId: string, targetPort: number): string {
  return `${taskId}/${targetPort}`;
}

function backendTarget(b: Backend): HostPort | undefined {
  if (!isValidTaskId(b.taskId)) return undefined;
  if (!Number.isInteger(b.targetPort) || b.targetPort < 1 || b.targetPort > 65535) return undefined;
  const text = b.local ? b.addr : b.via;
  return text === undefined ? undefined : parseHostPort(text);
}

/**
 * The port's backends for a new table entry `list`: those already known keep their state (and
 * take the new entry), new ones start fresh; duplicates are dropped, invalid ones passed to
 * `onInvalid` and dropped.
 */
export function diffBackends(current: BackendState[], list: Backend[], onInvalid: (b: Backend) => void): BackendState[] {
  const old = new Map<string, BackendState>();
  for (const b of current) old.set(b.key, b);
  const out: BackendState[] = [];
  const keys = new Set<string>();
  for (const backend of list) {
    const key = backendKey(backend);
    if (keys.has(key)) continue;
    const prev = old.get(key);
    if (prev) {
      prev.backend = backend;
      keys.add(key);
      out.push(prev);
      continue;
    }
    const target = backendTarget(backend);
    if (!target) {
      onInvalid(backend);
      continue;
    }
    keys.add(key);
    out.push({ key, backend, target, active: 0, total: 0, failed: 0, failingUntil: 0 });
  }
  return out;
}

/**
 * The index in `list` of the backend to try next, -1 if none is left: least connections among
 * those not `tried` yet for this client, healthy ones before those in failure backoff at `now`;
 * ties go round-robin (the scan starts at `start`, the port's cursor). With `demoteLocal` (the
 * kernel serves the port's local share), local backends come after the remote ones of the same
 * health: the listener only gets the remote share.
 */
export function pickBackend(list: readonly BackendState[], start: number, tried: readonly BackendState[], now: number, demoteLocal: boolean): number {
  const n = list.length;
  let best: BackendState | undefined;
  let bestIdx = -1;
  let bestRank = 4;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    const b = list[i]!;
    if (tried.length > 0 && tried.includes(b)) continue;
    // 0: healthy, 1: healthy but served by the kernel, 2-3: the same in failure backoff.
    const rank = (b.failingUntil > now ? 2 : 0) + (demoteLocal && b.backend.local ? 1 : 0);
    if (best === undefined || rank < bestRank || (rank === bestRank && b.active < best.active)) {
      best = b;
      bestIdx = i;
      bestRank = rank;
    }
  }
  return bestIdx;
}
