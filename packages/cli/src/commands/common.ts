// Helpers shared by the command modules.

import type { Argv } from 'yargs';
import { Ctx } from '../context.js';
import { toJson } from '../format.js';
import { UsageError } from '../errors.js';
import { type ListView, type ObjectView, type Output, parseOutput, renderList, renderObject } from '../output.js';

/** Parsed arguments as yargs hands them to a handler (every command reads its own keys). */
export type Args = Record<string, unknown> & { _: (string | number)[]; '--'?: (string | number)[] };

/** How each handler gets its context (tests may build one with other streams). */
export type CtxFactory = (args: Args) => Ctx;

export const defaultCtxFactory: CtxFactory = (a) =>
  new Ctx({ host: a['host'] as string | undefined, timeout: a['timeout'] as string | undefined, 'cert-path': a['cert-path'] as string | undefined });

/** A yargs handler that runs `fn` with a context and always closes the client. */
export function action(make: CtxFactory, fn: (ctx: Ctx, a: Args) => Promise<void>): (a: Args) => Promise<void> {
  return async (a) => {
    const ctx = make(a);
    try {
      await fn(ctx, a);
    } finally {
      ctx.close();
    }
  };
}

/** A string option's value(s) as a list (repeated flags give an array, a single one a string). */
export function list(a: Args, key: string): string[] {
  const v = a[key];
  if (v === undefined || v === null) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

/** A string option given at most once (the last one wins if repeated, as docker's flags). */
export function one(a: Args, key: string): string | undefined {
  const l = list(a, key);
  return l.length === 0 ? undefined : l[l.length - 1];
}

/** A positional argument that must be there. */
export function required(a: Args, key: string, what: string): string {
  const v = a[key];
  if (v === undefined || v === null || String(v) === '') throw new UsageError(`missing ${what}`);
  return String(v);
}

/** Positional arguments of a variadic `<x..>`. */
export function variadic(a: Args, key: string, what: string): string[] {
  const v = a[key];
  const l = v === undefined || v === null ? [] : (Array.isArray(v) ? v : [v]).map(String);
  if (l.length === 0 || l.some((x) => x === '')) throw new UsageError(`missing ${what}`);
  return l;
}

export type Format = 'json' | 'table';

const FORMAT_HELP =
  "Output format: table (default: aligned, for people), json (INTERFACE.md's shape), or a Go template: " +
  "'{{.Name}} {{.Replicas}}', 'table {{.ID}}\\t{{.Name}}' (with a header row), '{{json .}}'";

/**
 * `--format` on an ls/ps/inspect/status command: table, json, or a Go template (printList and
 * printObject run it); `docker: true` (inspect) adds `--format docker`, the Engine API's shape.
 */
export function withFormat<T>(y: Argv<T>, opts: { docker?: boolean } = {}): Argv<T> {
  return y.option('format', {
    type: 'string',
    default: 'table',
    describe: opts.docker ? `${FORMAT_HELP}; docker: as \`docker inspect\` prints it (templates see that shape too)` : FORMAT_HELP,
    requiresArg: true,
  });
}

/**
 * table or json, for a command that prints through neither printList nor printObject: a
 * template is refused there rather than ignored.
 */
export function formatOf(a: Args): Format {
  const f = one(a, 'format') ?? 'table';
  if (f === 'json') return 'json';
  if (f === 'table') return 'table';
  throw new UsageError(`--format ${JSON.stringify(f)}: this command prints table or json only`);
}

/** The command's `--format` (a bad template is a usage error here, before any call). */
export function outputOf(a: Args, opts: { docker?: boolean } = {}): Output {
  return parseOutput(one(a, 'format'), opts);
}

/** Prints a list as `--format` asks (one call per ls/ps command; see output.ts's ListView). */
export function printList(ctx: Ctx, out: Output, view: ListView): void {
  ctx.stdout.write(renderList(out, view));
}

/** Prints one object (inspect, status) as `--format` asks. */
export function printObject(ctx: Ctx, out: Output, view: ObjectView): void {
  ctx.stdout.write(renderObject(out, view));
}

/** `--filter` / `-f` on an ls/ps command; `keys` names the filters it takes, for --help. */
export function withFilter<T>(y: Argv<T>, keys: readonly string[]): Argv<T> {
  return y.option('filter', {
    alias: 'f',
    type: 'string',
    requiresArg: true,
    describe: `Filter KEY=VALUE (${keys.join(', ')}); repeatable: different keys must all match, values of one key are alternatives`,
  });
}

export function printJson(ctx: Ctx, v: unknown): void {
  ctx.print(toJson(v));
}

/**
 * Runs `fn` on each item, going on after a failure (as docker's rm, scale...); every failure is
 * reported on its own line and the last one is rethrown at the end.
 */
export async function forEachReporting<T>(ctx: Ctx, items: readonly T[], fn: (item: T) => Promise<void>): Promise<void> {
  let last: unknown;
  const failures: unknown[] = [];
  for (const item of items) {
    try {
      await fn(item);
    } catch (err) {
      failures.push(err);
      last = err;
    }
  }
  if (failures.length > 1) {
    for (const f of failures.slice(0, -1)) ctx.note(`Error: ${f instanceof Error ? f.message : String(f)}`);
  }
  if (failures.length > 0) throw last;
}

/** `-f desired-state=running`, `-f node=NODE`: docker's task filters that the API supports (`allowed` of them). */
export function taskFilters(values: readonly string[], allowed: readonly ('desired-state' | 'node')[]): { desiredState: string; node: string } {
  const out = { desiredState: '', node: '' };
  const forms = allowed.map((k) => (k === 'node' ? 'node=NODE' : 'desired-state=STATE')).join(' or ');
  for (const v of values) {
    const m = /^([a-z-]+)=(.+)$/.exec(v.trim());
    if (!m) throw new UsageError(`invalid filter ${JSON.stringify(v)}: expected ${forms}`);
    const key = m[1] as 'desired-state' | 'node';
    if (!allowed.includes(key)) throw new UsageError(`invalid filter ${JSON.stringify(v)}: supported filters are ${allowed.join(' and ')}`);
    if (key === 'desired-state') out.desiredState = m[2]!;
    else out.node = m[2]!;
  }
  return out;
}
