// The evaluator of `--format` templates, with Go's value semantics where scripts see them: an
// object is a struct (an unknown field is an error) unless it is a map, made by goMap() (a
// missing key prints `<no value>`, `index` gives ""); values print as Go's %v does (`[a b]`,
// `map[k:v]`); a function-valued field is a method taking the arguments after it (`.Label "k"`).
// An error is one line, as Go's: `template: :1:2: executing "" at <.Foo>: can't evaluate field Foo`.

import { CliError } from '../errors.js';
import { type Command, type Node, type Operand, type Pipe, lineOf, parseTemplate } from './parse.js';

/** A map for templates (labels, options...): a missing key is no error. JSON.stringify sees a plain object. */
export function goMap(entries: Record<string, unknown> | null | undefined): Record<string, unknown> {
  const m = Object.create(null) as Record<string, unknown>;
  for (const k of Object.keys(entries ?? {}).sort()) m[k] = entries![k];
  return m;
}

export function isGoMap(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && Object.getPrototypeOf(v) === null;
}

/** A parsed template, to run on each row. */
export class Template {
  private readonly nodes: Node[];
  constructor(readonly source: string) {
    this.nodes = parseTemplate(source);
  }

  /** The text for `data` (throws a CliError on the first failure, as Go's Execute). */
  execute(data: unknown): string {
    const run = new Run(this.source, data);
    run.list(this.nodes, data);
    return run.out;
  }
}

const NONE = Symbol('none');
type Maybe = unknown | typeof NONE;

class Run {
  out = '';
  private readonly vars: { name: string; value: unknown }[];
  constructor(
    private readonly src: string,
    root: unknown,
  ) {
    this.vars = [{ name: '$', value: root }];
  }

  fail(pos: number, at: string, msg: string): never {
    const lineStart = this.src.lastIndexOf('\n', pos - 1) + 1;
    throw new CliError(`template: :${lineOf(this.src, pos)}:${pos - lineStart}: executing "" at <${at}>: ${msg}`);
  }

  list(nodes: readonly Node[], dot: unknown): void {
    for (const n of nodes) this.node(n, dot);
  }

  private scoped(fn: () => void): void {
    const mark = this.vars.length;
    try {
      fn();
    } finally {
      this.vars.length = mark;
    }
  }

  private node(n: Node, dot: unknown): void {
    switch (n.kind) {
      case 'text':
        this.out += n.text;
        return;
      case 'action': {
        const v = this.pipe(n.pipe, dot);
        if (n.pipe.vars.length === 0) this.out += printValue(v);
        return;
      }
      case 'if':
      case 'with':
        this.scoped(() => {
          const v = this.pipe(n.pipe, dot);
          if (truth(v)) this.list(n.list, n.kind === 'with' ? v : dot);
          else this.list(n.elseList, dot);
        });
        return;
      case 'range':
        this.scoped(() => this.range(n, dot));
        return;
    }
  }

  private range(n: Node & { kind: 'if' | 'range' | 'with' }, dot: unknown): void {
    const v = this.pipeValue(n.pipe, dot);
    let items: [unknown, unknown][];
    if (Array.isArray(v)) items = v.map((x, i) => [i, x]);
    else if (typeof v === 'object' && v !== null) items = Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]]);
    else if (typeof v === 'number' && Number.isInteger(v)) items = Array.from({ length: Math.max(0, v) }, (_x, i) => [i, i]);
    else if (v === null || v === undefined) items = [];
    else return this.fail(n.pos, 'range', `range can't iterate over ${printValue(v)}`);
    if (items.length === 0) return this.list(n.elseList, dot);
    const mark = this.vars.length;
    for (const [k, x] of items) {
      this.vars.length = mark;
      const names = n.pipe.vars;
      if (names.length === 1) this.vars.push({ name: names[0]!, value: x });
      if (names.length === 2) this.vars.push({ name: names[0]!, value: k }, { name: names[1]!, value: x });
      this.list(n.list, x);
    }
  }

  /** A pipeline's value, its variables declared (or assigned) in the current scope. */
  private pipe(p: Pipe, dot: unknown): unknown {
    const v = this.pipeValue(p, dot);
    for (const name of p.vars) {
      if (p.assign) {
        const slot = [...this.vars].reverse().find((x) => x.name === name);
        if (!slot) this.fail(p.pos, name, `undefined variable: ${name}`);
        slot.value = v;
      } else this.vars.push({ name, value: v });
    }
    return v;
  }

  private pipeValue(p: Pipe, dot: unknown): unknown {
    let v: Maybe = NONE;
    for (const c of p.cmds) v = this.command(c, dot, v);
    return v;
  }

  private command(c: Command, dot: unknown, piped: Maybe): unknown {
    const [first, ...rest] = c.args;
    const extra = (): unknown[] => [...rest.map((o) => this.arg(o, dot)), ...(piped === NONE ? [] : [piped])];
    switch (first!.kind) {
      case 'func':
        return this.call(first!, extra());
      case 'field':
      case 'var':
      case 'chain':
        if (first!.path.length > 0) return this.chain(first!, this.receiver(first!, dot), first!.path, extra());
    }
    if (rest.length > 0 || piped !== NONE) this.fail(first!.pos, first!.text, `can't give argument to non-function ${first!.text}`);
    return this.arg(first!, dot);
  }

  private receiver(o: Operand, dot: unknown): unknown {
    if (o.kind === 'var') {
      const slot = [...this.vars].reverse().find((x) => x.name === o.name);
      if (!slot) this.fail(o.pos, o.name, `undefined variable: ${o.name}`);
      return slot.value;
    }
    if (o.kind === 'chain') return this.pipeValue(o.pipe, dot);
    return dot;
  }

  /** An operand as an argument (a function named alone is called without arguments). */
  private arg(o: Operand, dot: unknown): unknown {
    switch (o.kind) {
      case 'literal':
        return o.value;
      case 'func':
        return this.call(o, []);
      default:
        return this.chain(o, this.receiver(o, dot), o.path, []);
    }
  }

  /** `.A.B.C args...`: fields in turn; the last may be a method given the arguments. */
  private chain(o: Operand, recv: unknown, path: readonly string[], args: unknown[]): unknown {
    if (path.length === 0) {
      if (args.length > 0) this.fail(o.pos, o.text, `can't give argument to non-function ${o.text}`);
      return recv;
    }
    let v = recv;
    path.forEach((name, i) => {
      v = this.field(o, v, name, i === path.length - 1 ? args : []);
    });
    return v;
  }

  private field(o: Operand, recv: unknown, name: string, args: unknown[]): unknown {
    if (recv === null || recv === undefined) this.fail(o.pos, o.text, `nil pointer evaluating ${recv === null ? '<nil>' : '<no value>'}.${name}`);
    if (Array.isArray(recv)) this.fail(o.pos, o.text, `can't evaluate field ${name} in type list`);
    if (typeof recv !== 'object') this.fail(o.pos, o.text, `can't evaluate field ${name} in type ${goType(recv)}`);
    const obj = recv as Record<string, unknown>;
    if (isGoMap(obj)) {
      if (args.length > 0) this.fail(o.pos, o.text, `${name} is not a method but has arguments`);
      return Object.hasOwn(obj, name) ? obj[name] : undefined;
    }
    if (!Object.hasOwn(obj, name)) this.fail(o.pos, o.text, `can't evaluate field ${name}`);
    const v = obj[name];
    if (typeof v === 'function') {
      const method = v as (...xs: unknown[]) => unknown;
      if (method.length !== args.length) this.fail(o.pos, o.text, `wrong number of args for ${name}: want ${method.length} got ${args.length}`);
      return method.apply(obj, args);
    }
    if (args.length > 0) this.fail(o.pos, o.text, `${name} has arguments but cannot be invoked as function`);
    return v;
  }

  private call(o: Operand & { kind: 'func' }, args: unknown[]): unknown {
    try {
      return FUNCS[o.name]!(...args);
    } catch (err) {
      if (err instanceof CliError) throw err;
      return this.fail(o.pos, o.name, `error calling ${o.name}: ${(err as Error).message}`);
    }
  }
}

function goType(v: unknown): string {
  if (v === null || v === undefined) return '<nil>';
  if (Array.isArray(v)) return 'list';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float64';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'string') return 'string';
  return isGoMap(v) ? 'map' : 'struct';
}

/** Go's truth: false, 0, "", nil and empty lists and maps are false; a struct is true. */
export function truth(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (isGoMap(v)) return Object.keys(v).length > 0;
  return true;
}

/** A value as Go's fmt %v prints it. */
export function printValue(v: unknown): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(printValue).join(' ')}]`;
  if (typeof v === 'object') {
    const o = v as Record<string, unknown>;
    if (isGoMap(o)) return `map[${Object.keys(o).sort().map((k) => `${k}:${printValue(o[k])}`).join(' ')}]`;
    return `{${Object.values(o).filter((x) => typeof x !== 'function').map(printValue).join(' ')}}`;
  }
  return String(v);
}

/** Compact JSON as docker's `json` function writes it (no HTML escaping; map keys sorted). */
export function goJson(v: unknown): string {
  if (v === undefined) return 'null';
  return JSON.stringify(v, (_k, x: unknown) => (isGoMap(x) ? { ...x } : typeof x === 'bigint' ? Number(x) : x)) ?? 'null';
}

function str(v: unknown): string {
  if (typeof v !== 'string') throw new Error(`wrong type for value; expected string; got ${goType(v)}`);
  return v;
}

function int(v: unknown): number {
  if (typeof v !== 'number' || !Number.isInteger(v)) throw new Error(`wrong type for value; expected int; got ${goType(v)}`);
  return v;
}

function compare(a: unknown, b: unknown): number {
  if (typeof a === 'number' && typeof b === 'number') return a - b;
  if (typeof a === 'string' && typeof b === 'string') return a < b ? -1 : a > b ? 1 : 0;
  throw new Error('incompatible types for comparison');
}

/** fmt.Sprint: a space between operands when neither is a string. */
function sprint(args: unknown[]): string {
  let s = '';
  args.forEach((a, i) => {
    if (i > 0 && typeof a !== 'string' && typeof args[i - 1] !== 'string') s += ' ';
    s += printValue(a);
  });
  return s;
}

/** fmt.Sprintf for the verbs scripts use: %s %v %d %q %t %x %%, with `-` and a width. */
function sprintf(format: string, args: unknown[]): string {
  let i = 0;
  return format.replace(/%(-?)(\d*)([svdqtx%])/g, (_m, minus: string, width: string, verb: string) => {
    if (verb === '%') return '%';
    if (i >= args.length) return `%!${verb}(MISSING)`;
    const a = args[i++];
    let s: string;
    if (verb === 'q') s = JSON.stringify(printValue(a));
    else if (verb === 'x') s = typeof a === 'number' ? a.toString(16) : Buffer.from(printValue(a)).toString('hex');
    else s = printValue(a);
    const w = Number(width || 0);
    return minus ? s.padEnd(w) : s.padStart(w);
  });
}

function firstOr(i: number, last: number): number {
  return i < 0 ? last : i;
}

const FUNCS: Record<string, (...args: unknown[]) => unknown> = {
  // Go's: the first false (and) or true (or) argument, else the last.
  and: (...xs) => xs[firstOr(xs.findIndex((x) => !truth(x)), xs.length - 1)],
  or: (...xs) => xs[firstOr(xs.findIndex((x) => truth(x)), xs.length - 1)],
  not: (...xs) => {
    if (xs.length !== 1) throw new Error(`wrong number of args for not: want 1 got ${xs.length}`);
    return !truth(xs[0]);
  },
  len: (x) => {
    if (typeof x === 'string' || Array.isArray(x)) return x.length;
    if (isGoMap(x)) return Object.keys(x).length;
    throw new Error(`len of type ${goType(x)}`);
  },
  index: (x, ...keys) => {
    let v = x;
    for (const k of keys) {
      if (Array.isArray(v)) {
        const i = int(k);
        if (i < 0 || i >= v.length) throw new Error(`index out of range: ${i}`);
        v = v[i];
      } else if (v === null || v === undefined) return '';
      else if (typeof v === 'object') v = Object.hasOwn(v, str(k)) ? (v as Record<string, unknown>)[k as string] : '';
      else throw new Error(`can't index item of type ${goType(v)}`);
    }
    return v;
  },
  print: (...xs) => sprint(xs),
  println: (...xs) => `${xs.map(printValue).join(' ')}\n`,
  printf: (f, ...xs) => sprintf(str(f), xs),
  eq: (a, ...bs) => {
    if (bs.length === 0) throw new Error('missing argument for comparison');
    return bs.some((b) => a === b || (a == null && b == null));
  },
  ne: (a, b) => !(a === b || (a == null && b == null)),
  lt: (a, b) => compare(a, b) < 0,
  le: (a, b) => compare(a, b) <= 0,
  gt: (a, b) => compare(a, b) > 0,
  ge: (a, b) => compare(a, b) >= 0,
  // docker's own (cli/templates): json, join, split, upper, lower, title, truncate, pad.
  json: (v) => goJson(v),
  join: (xs, sep) => {
    if (!Array.isArray(xs)) throw new Error(`wrong type for value; expected []string; got ${goType(xs)}`);
    return xs.map(printValue).join(str(sep));
  },
  split: (s, sep) => str(s).split(str(sep)),
  upper: (s) => str(s).toUpperCase(),
  lower: (s) => str(s).toLowerCase(),
  title: (s) => str(s).replace(/(^|[^\p{L}\p{N}_'])(\p{Ll})/gu, (_m, sep: string, c: string) => sep + c.toUpperCase()),
  truncate: (s, n) => [...str(s)].slice(0, int(n)).join(''),
  pad: (s, before, after) => `${' '.repeat(int(before))}${str(s)}${' '.repeat(int(after))}`,
};
