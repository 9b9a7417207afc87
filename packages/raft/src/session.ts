// Exactly-once proposals. Every command in the log is wrapped in an envelope naming the client and
// its sequence number; the session table (part of the replicated state, so part of snapshots)
// remembers each client's recent results, so a retried command is answered from the table
// instead of being applied twice. The table is bounded (clients, results per client); a retry of
// a command whose answer it forgot is answered "stale" (an error), never applied again.

export interface Envelope {
  clientId: string;
  seq: number;
  /** The client has every answer below this seq: the table may forget them. */
  ackedBelow: number;
  payload: Uint8Array;
}

const VERSION = 1;
const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeEnvelope(e: Envelope): Uint8Array {
  const id = enc.encode(e.clientId);
  const out = new Uint8Array(1 + 2 + id.length + 8 + 8 + e.payload.length);
  const dv = new DataView(out.buffer);
  out[0] = VERSION;
  dv.setUint16(1, id.length);
  out.set(id, 3);
  let o = 3 + id.length;
  dv.setFloat64(o, e.seq);
  dv.setFloat64(o + 8, e.ackedBelow);
  o += 16;
  out.set(e.payload, o);
  return out;
}

export function decodeEnvelope(b: Uint8Array): Envelope {
  if (b.length < 19 || b[0] !== VERSION) throw new Error(`malformed command envelope (${b.length} bytes, version ${b[0]})`);
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = dv.getUint16(1);
  if (3 + n + 16 > b.length) throw new Error('malformed command envelope: truncated client id');
  const clientId = dec.decode(b.subarray(3, 3 + n));
  const o = 3 + n;
  return { clientId, seq: dv.getFloat64(o), ackedBelow: dv.getFloat64(o + 8), payload: b.subarray(o + 16) };
}

interface Answer {
  /** The log index at which the command was first applied. */
  index: number;
  result: Uint8Array;
}

/**
 * A client id names the log index its session began after: `<name>@<index>`, where index is no
 * later than the client's first command (e.g. the proposer's applied index when it made the id).
 * That is how the table tells a brand-new client from one whose session it evicted: a client it
 * does not know, whose session began before the table last evicted one, may be that evicted
 * client retrying, so its commands are refused as stale. Such a client starts a new session.
 */
export function sessionClientId(name: string, since: number): string {
  return `${name}@${since}`;
}

/** The index a client id's session began after (0 if the id does not say). */
export function sessionSince(clientId: string): number {
  const at = clientId.lastIndexOf('@');
  if (at < 0) return 0;
  const n = Number(clientId.slice(at + 1));
  return Number.isSafeInteger(n) && n >= 0 ? n : 0;
}

interface ClientSession {
  results: Map<number, Answer>;
  ackedBelow: number;
  /** The highest seq whose answer was dropped to bound `results`: a retry up to it is stale. */
  forgottenSeq: number;
  /** Log index of this client's last command: the least recently active client is evicted first. */
  lastIndex: number;
}

export type SessionOutcome =
  | { kind: 'applied'; index: number; result: Uint8Array }
  | { kind: 'duplicate'; index: number; result: Uint8Array }
  | { kind: 'stale' };

export interface SessionLimits {
  maxClients: number;
  maxResultsPerClient: number;
}

/**
 * Deterministic: every replica applies the same commands in the same order, so every replica
 * evicts the same sessions and answers a retry the same way.
 */
export class SessionTable {
  private clients = new Map<string, ClientSession>();
  /** Log index of the last eviction of a whole session (0: none yet). */
  private lastEviction = 0;

  constructor(private readonly limits: SessionLimits = { maxClients: 10_000, maxResultsPerClient: 1024 }) {}

  apply(index: number, env: Envelope, run: (payload: Uint8Array) => Uint8Array): SessionOutcome {
    let s = this.clients.get(env.clientId);
    if (!s) {
      // Possibly a client we evicted, retrying a command we applied: never apply it again.
      if (sessionSince(env.clientId) < this.lastEviction) return { kind: 'stale' };
      s = { results: new Map(), ackedBelow: 0, forgottenSeq: 0, lastIndex: index };
      this.clients.set(env.clientId, s);
      this.evict(index);
    }
    s.lastIndex = index;
    if (env.ackedBelow > s.ackedBelow) {
      s.ackedBelow = env.ackedBelow;
      for (const seq of s.results.keys()) if (seq < s.ackedBelow) s.results.delete(seq);
    }
    const cached = s.results.get(env.seq);
    if (cached) return { kind: 'duplicate', index: cached.index, result: cached.result };
    if (env.seq < s.ackedBelow || env.seq <= s.forgottenSeq) return { kind: 'stale' };
    const result = run(env.payload);
    s.results.set(env.seq, { index, result });
    if (s.results.size > this.limits.maxResultsPerClient) {
      // Drop the lowest seq: every seq up to it is then either answered from here or stale.
      let lowest = Infinity;
      for (const seq of s.results.keys()) if (seq < lowest) lowest = seq;
      s.results.delete(lowest);
      if (lowest > s.forgottenSeq) s.forgottenSeq = lowest;
    }
    return { kind: 'applied', index, result };
  }

  private evict(index: number): void {
    if (this.clients.size <= this.limits.maxClients) return;
    this.lastEviction = index;
    let victim: string | undefined;
    let least = Infinity;
    for (const [id, s] of this.clients) {
      if (s.lastIndex < least) {
        least = s.lastIndex;
        victim = id;
      }
    }
    if (victim !== undefined) this.clients.delete(victim);
  }

  size(): number {
    return this.clients.size;
  }

  toJSON(): unknown {
    return {
      lastEviction: this.lastEviction,
      clients: [...this.clients].map(([id, s]) => [
        id,
        s.ackedBelow,
        s.lastIndex,
        [...s.results].map(([seq, r]) => [seq, r.index, Buffer.from(r.result).toString('base64')]),
        s.forgottenSeq,
      ]),
    };
  }

  /** Reads toJSON()'s form, or the earlier one (a bare array of clients, from older snapshots). */
  static fromJSON(v: unknown, limits?: SessionLimits): SessionTable {
    const t = new SessionTable(limits);
    const o = v as { lastEviction?: unknown; clients?: unknown };
    const rows = Array.isArray(v) ? v : o && Array.isArray(o.clients) ? o.clients : undefined;
    if (!rows) throw new Error('malformed session table in snapshot');
    t.lastEviction = Array.isArray(v) ? 0 : Number(o.lastEviction ?? 0);
    for (const row of rows as [string, number, number, [number, number, string][], number?][]) {
      t.clients.set(row[0], {
        ackedBelow: row[1],
        lastIndex: row[2],
        forgottenSeq: row[4] ?? 0,
        results: new Map(row[3].map(([seq, index, r]) => [seq, { index, result: new Uint8Array(Buffer.from(r, 'base64')) }])),
      });
    }
    return t;
  }
}
