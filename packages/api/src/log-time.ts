// Log lines carry the engine's timestamps: RFC 3339 with up to nine fraction digits, trailing
// zeros dropped ("...:05.1Z" is later than "...:05.09Z"). Every part of Shoal that orders or
// filters log lines compares them through logTimeKey.

const RFC3339 = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/;

/**
 * A key that sorts as the time does (fraction padded to nanoseconds, in UTC); undefined for a
 * string that is not an RFC 3339 time.
 */
export function logTimeKey(ts: string): string | undefined {
  const m = RFC3339.exec(ts);
  if (!m) return undefined;
  let base = m[1]!;
  if (m[3] !== 'Z') {
    const ms = Date.parse(`${m[1]}${m[3]}`);
    if (Number.isNaN(ms)) return undefined;
    base = new Date(ms).toISOString().slice(0, 19);
  }
  return `${base}.${(m[2] ?? '').padEnd(9, '0')}Z`;
}

/** The engine's `since` parameter for "after this time": seconds.nanoseconds since the epoch. */
export function logTimeToUnix(ts: string): string | undefined {
  const key = logTimeKey(ts);
  if (!key) return undefined;
  const seconds = Math.floor(Date.parse(`${key.slice(0, 19)}Z`) / 1000);
  return `${seconds}.${key.slice(20, 29)}`;
}

/**
 * Log lines in time order, cut to the newest that fit in `maxBytes` (each line counting its text
 * and `overhead` bytes besides); `dropped`: how many older lines were left out.
 */
export function newestLogLines<L extends { timestamp: string; data: string }>(lines: readonly L[], maxBytes: number, overhead: number): { lines: L[]; dropped: number } {
  const keyed = lines.map((l) => ({ l, k: logTimeKey(l.timestamp) ?? '' })).sort((x, y) => (x.k < y.k ? -1 : x.k > y.k ? 1 : 0));
  let bytes = 0;
  let first = keyed.length;
  while (first > 0) {
    const size = keyed[first - 1]!.l.data.length + overhead;
    if (bytes + size > maxBytes) break;
    bytes += size;
    first--;
  }
  return { lines: keyed.slice(first).map((x) => x.l), dropped: first };
}
