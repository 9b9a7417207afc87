// The cluster-wide settings' ranges and defaults (`shoald init` and `shoal swarm update`'s
// --dispatcher-heartbeat and --cert-expiry, `shoal swarm admin-cert --expiry`): one rule for the
// daemon's flags, the control API and the store.

import { formatDuration } from './duration.js';
import { invalid } from './spec-error.js';

export interface DurationRange {
  minMs: number;
  maxMs: number;
}

/** How often agents heartbeat. */
export const HEARTBEAT_PERIOD: Readonly<DurationRange> = Object.freeze({ minMs: 100, maxMs: 3_600_000 });

/** Node certificates live 90 days by default (`docker swarm init --cert-expiry`'s default too). */
export const DEFAULT_CERT_EXPIRY_MS = 90 * 24 * 3600_000;
/** A certificate's validity: tests renew within seconds (Swarm's floor is 1 h); ten years at most. */
export const CERT_EXPIRY: Readonly<DurationRange> = Object.freeze({ minMs: 10_000, maxMs: 10 * 365 * 24 * 3600_000 });

/** `ms` if it is a whole number of milliseconds within `range`; else a SpecError naming `flag`. */
export function checkDurationIn(ms: unknown, range: DurationRange, flag: string): number {
  const n = Number(ms);
  if (!Number.isSafeInteger(n) || n < range.minMs || n > range.maxMs) {
    const got = typeof ms === 'number' && Number.isFinite(ms) ? formatDuration(ms) : String(ms);
    invalid(`${flag} must be between ${formatDuration(range.minMs)} and ${formatDuration(range.maxMs)}, not ${got}`);
  }
  return n;
}
