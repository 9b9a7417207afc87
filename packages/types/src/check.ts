// Shape checks: small combinators that check a value's type and range and return a fresh,
// canonical copy (fixed key order, sorted maps). The store checks every object it takes in with
// them (store/src/validate.ts), and a service spec's fields are declared with them once
// (service-spec.ts), for the store and the control API alike.

import type { SealedSecret } from '@shoal/api';

/** A validation failure; `message` names the offending field (e.g. `service.spec.replicas`). */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
}

export type Check<T> = (v: unknown, path: string) => T;

export function fail(path: string, what: string, v: unknown): never {
  throw new ValidationError(`${path} ${what} (got ${describe(v)})`);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return `${typeof v} ${String(v)}`;
}

export const MAX_STRING = 64 * 1024;

export const str =
  (opts: { nonEmpty?: boolean; max?: number } = {}): Check<string> =>
  (v, p) => {
    if (typeof v !== 'string') fail(p, 'must be a string', v);
    if (opts.nonEmpty && v.length === 0) fail(p, 'must not be empty', v);
    if (v.length > (opts.max ?? MAX_STRING)) fail(p, `must be at most ${opts.max ?? MAX_STRING} characters`, v);
    return v;
  };

export const int =
  (min: number, max: number = Number.MAX_SAFE_INTEGER): Check<number> =>
  (v, p) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      fail(p, min === 0 && max === Number.MAX_SAFE_INTEGER ? 'must be a non-negative integer' : `must be an integer in [${min}, ${max}]`, v);
    }
    return v;
  };

export const uint = int(0);
export const sint = int(Number.MIN_SAFE_INTEGER);

export const oneOf =
  <T extends string>(values: readonly T[]): Check<T> =>
  (v, p) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) fail(p, `must be one of ${values.join(', ')}`, v);
    return v as T;
  };

export const arrayOf =
  <T>(item: Check<T>): Check<T[]> =>
  (v, p) => {
    if (!Array.isArray(v)) fail(p, 'must be an array', v);
    return v.map((x, i) => item(x, `${p}[${i}]`));
  };

export const nullable =
  <T>(c: Check<T>): Check<T | null> =>
  (v, p) =>
    v === null ? null : c(v, p);

export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A string → string map; keys come out sorted (a canonical form). */
export const stringMap: Check<Record<string, string>> = (v, p) => {
  if (!isPlainObject(v)) fail(p, 'must be an object of strings', v);
  const keys = Object.keys(v).sort();
  // Object.fromEntries defines own properties, so a "__proto__" key stays a plain key.
  return Object.fromEntries(keys.map((k) => [k, str()(v[k], `${p}.${k}`)]));
};

/** A string → non-negative integer map; keys come out sorted. */
export const uintMap: Check<Record<string, number>> = (v, p) => {
  if (!isPlainObject(v)) fail(p, 'must be an object of non-negative integers', v);
  const keys = Object.keys(v).sort();
  return Object.fromEntries(keys.map((k) => [k, uint(v[k], `${p}.${k}`)]));
};

export type Schema<T> = { [K in keyof T]-?: Check<T[K]> };

export const DEFAULT = Symbol('default');
/** A field added after objects were first stored: a missing value (an older entry) takes `d`. */
export const withDefault = <T>(c: Check<T>, d: T): Check<T> => Object.assign((v: unknown, p: string) => c(v, p), { [DEFAULT]: d });

export const bool: Check<boolean> = (v, p) => {
  if (typeof v !== 'boolean') fail(p, 'must be true or false', v);
  return v;
};

export function obj<T>(schema: Schema<T>): Check<T> {
  const fields = Object.keys(schema) as (keyof T & string)[];
  const known = new Set<string>(fields);
  return (v, p) => {
    if (!isPlainObject(v)) fail(p, 'must be an object', v);
    for (const k of Object.keys(v)) if (!known.has(k)) throw new ValidationError(`${p}.${k} is not a known field`);
    const out = {} as Record<string, unknown>;
    for (const k of fields) {
      const check = schema[k] as Check<unknown> & { [DEFAULT]?: unknown };
      if (!Object.hasOwn(v, k)) {
        if (!(DEFAULT in check)) throw new ValidationError(`${p}.${k} is missing`);
        out[k] = structuredClone(check[DEFAULT]);
        continue;
      }
      out[k] = check(v[k], `${p}.${k}`);
    }
    return out as T;
  };
}

const base64 = (max: number): Check<string> => (v, p) => {
  const s = str({ nonEmpty: true, max })(v, p);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) fail(p, 'must be base64', v);
  return s;
};

/** A value sealed with the cluster's key-encryption key (@shoal/pki kek.ts), as the store holds it. */
export const sealedSecretShape = obj<SealedSecret>({
  alg: oneOf(['aes-256-gcm']),
  kekId: str({ nonEmpty: true, max: 64 }),
  nonce: base64(64),
  data: base64(MAX_STRING),
});
