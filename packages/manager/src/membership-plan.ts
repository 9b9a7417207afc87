// What the leader's membership reconciler should do next, decided without side effects: the
// store's managers are the truth, the Raft configuration follows them one change at a time.
// Also the one quorum-safety rule for removing a voter (used by the reconciler and by demotion),
// and which never-completed joins have waited long enough to be forgotten.

export interface PlanMember {
  id: string;
  addr: string;
}

export interface PlanProgress {
  /** The highest log index the leader knows this member holds. */
  match: number;
  /** The leader heard from it during the current CheckQuorum window. */
  recentActive: boolean;
}

export interface PlanInput {
  /** This leader's id. */
  self: string;
  /** The leader's commit index. */
  commit: number;
  /** The store's managers (role manager, not removed), with the address Raft reaches them on. */
  managers: readonly PlanMember[];
  conf: { voters: readonly PlanMember[]; learners: readonly PlanMember[] };
  /** The leader's progress of each member (absent: nothing known yet). */
  progress: Readonly<Record<string, PlanProgress | undefined>>;
}

export type MembershipAction =
  | { kind: 'add-learner'; id: string; addr: string }
  | { kind: 'promote'; id: string }
  | { kind: 'remove'; id: string; voter: boolean }
  /** This leader itself is no longer a manager: another voter must lead and remove it. */
  | { kind: 'transfer-leadership'; to: string };

export interface MembershipPlan {
  /** Every change the configuration needs, in the order to make them (Raft takes one at a time). */
  actions: MembershipAction[];
  /** Changes that cannot be made yet, and why (logged; retried on later passes). */
  waiting: { id: string; why: string }[];
}

/**
 * A learner this close to the commit index counts as caught up: under a steady write load its
 * match trails the commit by the entries in flight, and promoting it then costs one round trip.
 */
export const CATCH_UP_LAG = 8;

export function caughtUp(p: PlanProgress | undefined, commit: number): boolean {
  return !!p && p.recentActive && p.match > 0 && p.match + CATCH_UP_LAG >= commit;
}

/**
 * Whether removing `id` from `voters` leaves the remaining voters a majority that the leader can
 * reach (`reachable`: the leader itself and the members it heard from recently). Removing a
 * voter that is not there, or a learner, is always safe.
 */
export function removalKeepsQuorum(
  voters: readonly string[],
  reachable: ReadonlySet<string>,
  id: string,
): { ok: true } | { ok: false; why: string } {
  if (!voters.includes(id)) return { ok: true };
  const remaining = voters.filter((v) => v !== id);
  if (remaining.length === 0) return { ok: false, why: 'cannot remove the last manager' };
  const up = remaining.filter((v) => reachable.has(v)).length;
  const need = Math.floor(remaining.length / 2) + 1;
  if (up < need) {
    return { ok: false, why: `removing this manager would leave ${up} reachable of ${remaining.length} managers, below the quorum of ${need}` };
  }
  return { ok: true };
}

/** The members the leader can reach: itself and those it heard from recently. */
export function reachableMembers(self: string, progress: PlanInput['progress']): Set<string> {
  const out = new Set([self]);
  for (const [id, p] of Object.entries(progress)) if (p?.recentActive) out.add(id);
  return out;
}

/**
 * The changes that bring the Raft configuration to the store's managers. Order: drop learners
 * that are no longer managers (free), promote caught-up learners (fault tolerance first), add
 * missing managers as learners, then remove voters that are no longer managers, one at a time and
 * only while the rest keep a reachable majority (this leader hands leadership over first).
 */
export function planMembership(input: PlanInput): MembershipPlan {
  const wanted = new Map(input.managers.map((m) => [m.id, m]));
  const voters = input.conf.voters.map((m) => m.id);
  const learners = input.conf.learners.map((m) => m.id);
  const inConf = new Set([...voters, ...learners]);
  const actions: MembershipAction[] = [];
  const waiting: MembershipPlan['waiting'] = [];

  for (const id of learners) if (!wanted.has(id)) actions.push({ kind: 'remove', id, voter: false });

  for (const id of learners) {
    if (!wanted.has(id)) continue;
    const p = input.progress[id];
    if (caughtUp(p, input.commit)) actions.push({ kind: 'promote', id });
    else waiting.push({ id, why: `learner catching up (at ${p?.match ?? 0} of ${input.commit})` });
  }

  for (const m of input.managers) {
    if (inConf.has(m.id)) continue;
    if (m.addr) actions.push({ kind: 'add-learner', id: m.id, addr: m.addr });
    else waiting.push({ id: m.id, why: 'the manager has no address yet' });
  }

  const reachable = reachableMembers(input.self, input.progress);
  for (const id of voters) {
    if (wanted.has(id)) continue;
    const safe = removalKeepsQuorum(voters, reachable, id);
    if (!safe.ok) {
      waiting.push({ id, why: safe.why });
      continue;
    }
    if (id !== input.self) {
      actions.push({ kind: 'remove', id, voter: true });
      continue;
    }
    // The most up-to-date reachable voter that stays a manager takes over.
    let to = '';
    let best = -1;
    for (const v of voters) {
      const p = input.progress[v];
      if (v === id || !wanted.has(v) || !p?.recentActive || p.match <= best) continue;
      best = p.match;
      to = v;
    }
    if (to) actions.push({ kind: 'transfer-leadership', to });
    else waiting.push({ id, why: 'no other reachable manager to hand leadership to' });
  }
  return { actions, waiting };
}

/** A node whose join wrote its object but that has not come up yet (no session, not ready). */
export interface PendingJoin {
  id: string;
  /** Evidence that the node is alive and on its way (e.g. a learner answering Raft). */
  heardFrom: boolean;
}

/**
 * Which pending joins have been silent for `graceMs` on this leader's monotonic clock. `silentSince`
 * (node id → since when this leader has seen the join pending with no sign of life) is updated in
 * place: joins no longer pending are dropped from it, a sign of life restarts the wait.
 */
export function expiredJoins(pending: readonly PendingJoin[], silentSince: Map<string, number>, now: number, graceMs: number): string[] {
  const ids = new Set(pending.map((p) => p.id));
  for (const id of silentSince.keys()) if (!ids.has(id)) silentSince.delete(id);
  const out: string[] = [];
  for (const p of pending) {
    if (p.heardFrom || !silentSince.has(p.id)) {
      silentSince.set(p.id, now);
      continue;
    }
    if (now - silentSince.get(p.id)! >= graceMs) out.push(p.id);
  }
  return out;
}
