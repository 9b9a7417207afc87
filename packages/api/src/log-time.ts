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
