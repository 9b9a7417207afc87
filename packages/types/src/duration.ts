// Durations as Go's time.ParseDuration (and so docker and Swarm) reads and prints them: the one
// parser of every duration flag of `shoal` and `shoald`.

import { invalid } from './spec-error.js';

const UNIT_MS: Readonly<Record<string, number>> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

/**
 * One or more decimal numbers each followed by a unit (ns, us, ms, s, m, h), e.g. `500ms`, `5s`,
 * `1m30s`, `1.5h`; or `0`. Returns whole milliseconds (rounded). A number without a unit (but 0)
 * and negative durations are refused, as Go refuses them. `what` names the input in the error.
 */
export function parseDuration(value: string, what = 'duration'): number {
  const s = value.trim();
  const q = JSON.stringify(value);
  const bad = (): never => invalid(`invalid ${what} ${q}: expected a number with a unit (ms, s, m, h), like 500ms, 5s or 1m30s`);
  if (s === '0') return 0;
  if (s === '') bad();
  const re = /(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)/y;
  let ms = 0;
  let pos = 0;
  while (pos < s.length) {
    re.lastIndex = pos;
    const m = re.exec(s);
    if (!m) bad();
    ms += Number(m![1]) * UNIT_MS[m![2]!]!;
    pos = re.lastIndex;
  }
  if (!Number.isFinite(ms) || ms > Number.MAX_SAFE_INTEGER) invalid(`invalid ${what} ${q}: too large`);
  return Math.round(ms);
}

/** Milliseconds as a short Go-style duration: 0s, 500ms, 5s, 1m30s, 2h0m0s. */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  if (ms < 1000) return `${ms}ms`;
  const h = Math.floor(ms / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const sec = (ms % 60_000) / 1000;
  const secStr = `${Number.isInteger(sec) ? sec : sec.toFixed(3).replace(/0+$/, '')}s`;
  if (h > 0) return `${h}h${m}m${secStr}`;
  if (m > 0) return `${m}m${secStr}`;
  return secStr;
}
