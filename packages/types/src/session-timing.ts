// How a node's dispatcher session is timed, as the dispatcher and the agent both need it: with
// thousands of nodes, anything they all do at the same moment (beat after a session opened in the
// same second, come back after a leader change) lands on the leader at once. Each side spreads
// its part at random; these bounds are the ones each side counts on from the other.

/**
 * The dispatcher answers each heartbeat with the period plus up to this fraction of it, at random
 * (SwarmKit's epsilon): beats that started in step drift apart instead of staying together.
 */
export const HEARTBEAT_JITTER = 0.25;

/** At most this long a node waits, at random, before opening a session again after losing one. */
export const RECONNECT_SPREAD_MAX_MS = 1_500;

/**
 * The window a node draws its wait from after losing its session (a leader change: every node
 * loses its session at once): one heartbeat period, at most RECONNECT_SPREAD_MAX_MS. 2,000 nodes
 * reach the new leader over a second or so, and a node alone, whose heartbeats were late already,
 * is still back before the dispatcher would judge it (after nodeDownAfterBeats periods: 3).
 */
export function reconnectSpreadMs(periodMs: number): number {
  return Math.max(0, Math.min(RECONNECT_SPREAD_MAX_MS, periodMs));
}

/** The details key of a refusal (UNAVAILABLE) that says when to try again, in ms. */
export const RETRY_AFTER_DETAIL = 'retryAfterMs';
