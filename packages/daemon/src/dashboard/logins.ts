// Who may see the dashboard without an admin certificate: one-time login tokens (`shoal ui`), each
// exchanged once by the page for a session, whose id the browser keeps in an HttpOnly cookie. Both
// live in this daemon's memory only: a restart logs everyone out, and no other manager knows them.

import { createHash, randomBytes } from 'node:crypto';

/** How long a token from `shoal ui` may wait before the page exchanges it. */
export const LOGIN_TOKEN_TTL_MS = 5 * 60_000;
/** How long a session lasts after its last request. */
export const SESSION_IDLE_MS = 8 * 60 * 60_000;
/** Outstanding tokens and sessions are few; past these bounds the oldest give way. */
const MAX_TOKENS = 1_000;
const MAX_SESSIONS = 1_000;

/** Only digests are kept: a heap dump or a log line never holds a usable secret. */
function digest(secret: string): string {
  return createHash('sha256').update(secret).digest('base64url');
}

function secret(): string {
  return randomBytes(32).toString('base64url');
}

export class Logins {
  /** digest of a login token -> when it stops working. */
  private readonly tokens = new Map<string, number>();
  /** digest of a session id -> when it ends unless used. */
  private readonly sessions = new Map<string, number>();

  constructor(private readonly now: () => number = Date.now) {}

  /** A new single-use login token. */
  issue(): { token: string; expiresAtMs: number } {
    this.prune();
    const token = secret();
    const expiresAtMs = this.now() + LOGIN_TOKEN_TTL_MS;
    this.tokens.set(digest(token), expiresAtMs);
    dropOldest(this.tokens, MAX_TOKENS);
    return { token, expiresAtMs };
  }

  /** The token spent for a new session id; undefined if it is unknown, used or expired. */
  redeem(token: string): string | undefined {
    if (typeof token !== 'string' || token.length === 0 || token.length > 200) return undefined;
    const key = digest(token);
    const until = this.tokens.get(key);
    this.tokens.delete(key);
    if (until === undefined || until < this.now()) return undefined;
    const id = secret();
    this.sessions.set(digest(id), this.now() + SESSION_IDLE_MS);
    dropOldest(this.sessions, MAX_SESSIONS);
    return id;
  }

  /** Whether a session id (from the cookie) is live; a use extends it. */
  check(id: string | undefined): boolean {
    if (!id || id.length > 200) return false;
    const key = digest(id);
    const until = this.sessions.get(key);
    if (until === undefined) return false;
    if (until < this.now()) {
      this.sessions.delete(key);
      return false;
    }
    this.sessions.set(key, this.now() + SESSION_IDLE_MS);
    return true;
  }

  end(id: string | undefined): void {
    if (id) this.sessions.delete(digest(id));
  }

  private prune(): void {
    const now = this.now();
    for (const [k, until] of this.tokens) if (until < now) this.tokens.delete(k);
    for (const [k, until] of this.sessions) if (until < now) this.sessions.delete(k);
  }
}

/** Maps keep insertion order: the first keys are the oldest. */
function dropOldest(m: Map<string, number>, max: number): void {
  for (const k of m.keys()) {
    if (m.size <= max) return;
    m.delete(k);
  }
}
