// `--filter KEY=VALUE` on ls/ps as docker reads it: filters on different keys must all match
// (AND), several values of one key are alternatives (OR); an unknown key is one line,
// `invalid filter 'x'`, before anything is printed.

import { UsageError } from './errors.js';

/** A filter key's test of one item against one value; `check` refuses a value that can never be right. */
export interface FilterKey<T> {
  match(item: T, value: string): boolean;
  check?(value: string): void;
}

/** `KEY=VALUE` strings by key, each checked against the keys this list knows. */
export function parseFilters<T>(values: readonly string[], keys: Readonly<Record<string, FilterKey<T>>>): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const v of values) {
    const eq = v.indexOf('=');
    if (eq <= 0) throw new UsageError(`bad format of filter (expected name=value): ${JSON.stringify(v)}`);
    const key = v.slice(0, eq).trim().toLowerCase();
    const value = v.slice(eq + 1);
    if (!Object.hasOwn(keys, key)) throw new UsageError(`invalid filter '${key}' (this list filters by ${Object.keys(keys).join(', ')})`);
    keys[key]!.check?.(value);
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

/** The items every key's filter lets through (a key passes an item when one of its values matches). */
export function applyFilters<T>(items: readonly T[], filters: ReadonlyMap<string, readonly string[]>, keys: Readonly<Record<string, FilterKey<T>>>): T[] {
  return items.filter((item) => [...filters].every(([key, values]) => values.some((v) => keys[key]!.match(item, v))));
}

/** parseFilters then applyFilters. */
export function filterItems<T>(items: readonly T[], values: readonly string[], keys: Readonly<Record<string, FilterKey<T>>>): T[] {
  return applyFilters(items, parseFilters(values, keys), keys);
}

/** docker's `label=KEY` (the label is there) or `label=KEY=VALUE` (with that value). */
export function labelMatch(labels: Readonly<Record<string, string>> | null | undefined, filter: string): boolean {
  const eq = filter.indexOf('=');
  const key = eq < 0 ? filter : filter.slice(0, eq);
  if (!labels || !Object.hasOwn(labels, key)) return false;
  return eq < 0 || labels[key] === filter.slice(eq + 1);
}

/** A check that the value is one of `allowed` (docker refuses others: `invalid filter 'mode=x'`). */
export function oneOf(key: string, allowed: readonly string[]): (value: string) => void {
  return (value) => {
    if (!allowed.includes(value)) throw new UsageError(`invalid filter '${key}=${value}': ${key} is ${allowed.join(', ')}`);
  };
}
