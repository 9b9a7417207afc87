// Join tokens, in Swarm's format: SWMTKN-1-<CA fingerprint, 50 chars base 36>-<secret, 25 chars>.
// The secret tells the role: the cluster keeps one token per role and rotating one replaces it.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { ShoalError } from '@shoal/api';

const PREFIX = 'SWMTKN';
const VERSION = '1';
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';

export interface ParsedToken {
  fingerprint: string;
  secret: string;
}

/** n random characters of [a-z0-9] (rejection sampling keeps the distribution uniform). */
export function randomAlnum(n: number): string {
  let out = '';
  while (out.length < n) {
    for (const b of randomBytes(n * 2)) {
      if (b < 252 && out.length < n) out += ALPHABET[b % 36];
    }
  }
  return out;
}

export function newJoinToken(fingerprint: string): string {
  return `${PREFIX}-${VERSION}-${fingerprint}-${randomAlnum(25)}`;
}

export function parseJoinToken(token: string): ParsedToken {
  const parts = token.trim().split('-');
  if (parts.length !== 4 || parts[0] !== PREFIX) {
    throw new ShoalError('INVALID_ARGUMENT', 'malformed join token: expected SWMTKN-1-<fingerprint>-<secret>');
  }
  if (parts[1] !== VERSION) throw new ShoalError('INVALID_ARGUMENT', `unsupported join token version ${parts[1]}`);
  const [, , fingerprint, secret] = parts;
  if (!/^[a-z0-9]{50}$/.test(fingerprint)) throw new ShoalError('INVALID_ARGUMENT', 'malformed join token: bad CA fingerprint');
  if (!/^[a-z0-9]{25}$/.test(secret)) throw new ShoalError('INVALID_ARGUMENT', 'malformed join token: bad secret');
  return { fingerprint, secret };
}

/**
 * Compares two secrets in constant time: their SHA-256 digests (equal lengths whatever the
 * inputs) through timingSafeEqual, so neither the length nor the first differing character shows.
 */
export function safeEqual(a: string, b: string): boolean {
  const da = createHash('sha256').update(a).digest();
  const db = createHash('sha256').update(b).digest();
  return timingSafeEqual(da, db);
}

/** The role a (well-formed) token grants in a cluster with these tokens, if any. Both are compared, always. */
export function roleOfToken(t: ParsedToken, tokens: { worker: string; manager: string }): 'manager' | 'worker' | undefined {
  const presented = `${PREFIX}-${VERSION}-${t.fingerprint}-${t.secret}`;
  const manager = safeEqual(presented, tokens.manager);
  const worker = safeEqual(presented, tokens.worker);
  return manager ? 'manager' : worker ? 'worker' : undefined;
}
