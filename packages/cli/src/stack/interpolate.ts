// Variable substitution in a Compose file's values, as `docker stack deploy` does it: `$VAR`,
// `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR?error}`, `${VAR:+alt}`,
// `${VAR+alt}` (defaults may hold further substitutions) and `$$` for a literal `$`; then the
// values the schema types as numbers or booleans are cast from the strings a substitution gave.

import { CliError } from '../errors.js';

export type Env = Readonly<Record<string, string | undefined>>;

/** A Compose file's mistake: one line naming the file, where, and what is wrong. */
export function composeError(message: string): CliError {
  return new CliError(message, 1, 'INVALID_ARGUMENT');
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;

/** Where a substitution is, for its messages: `stack.yml: services.web.image`. */
export interface Where {
  file: string;
  path: string;
}

/** `s` with its substitutions made; unset variables without a default become '' (`warn` says so once each). */
export function interpolateString(s: string, env: Env, where: Where, warn: (name: string) => void): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const end = closingBrace(s, i + 2);
      if (end < 0) throw composeError(`${where.file}: ${where.path}: invalid interpolation format in ${JSON.stringify(s)}: no closing }`);
      out += substitute(s.slice(i + 2, end), env, where, warn, s);
      i = end + 1;
      continue;
    }
    const m = NAME.exec(s.slice(i + 1));
    if (m) {
      out += lookup(m[0], env, warn);
      i += 1 + m[0].length;
      continue;
    }
    // A lone `$` (before a space, a digit, the end...) stays, as compose keeps it.
    out += '$';
    i++;
  }
  return out;
}

/** The index of the `}` that closes a `${` whose body starts at `from` (nested `${...}` inside). */
function closingBrace(s: string, from: number): number {
  let depth = 1;
  for (let i = from; i < s.length; i++) {
    if (s[i] === '$' && s[i + 1] === '$') i++;
    else if (s[i] === '$' && s[i + 1] === '{') {
      depth++;
      i++;
    } else if (s[i] === '}' && --depth === 0) return i;
  }
  return -1;
}

function lookup(name: string, env: Env, warn: (name: string) => void): string {
  const v = env[name];
  if (v === undefined) {
    warn(name);
    return '';
  }
  return v;
}

function substitute(body: string, env: Env, where: Where, warn: (name: string) => void, whole: string): string {
  const m = NAME.exec(body);
  const bad = () => composeError(`${where.file}: ${where.path}: invalid interpolation format in ${JSON.stringify(whole)}`);
  if (!m) throw bad();
  const name = m[0];
  const rest = body.slice(name.length);
  if (rest === '') return lookup(name, env, warn);
  const op = /^(:?[-?+])/.exec(rest);
  if (!op) throw bad();
  const arg = () => interpolateString(rest.slice(op[1]!.length), env, where, warn);
  const v = env[name];
  const colon = op[1]!.startsWith(':');
  const unset = v === undefined || (colon && v === '');
  switch (op[1]!.at(-1)) {
    case '-':
      return unset ? arg() : v!;
    case '+':
      return unset ? '' : arg();
    default: {
      if (!unset) return v!;
      const msg = arg();
      throw composeError(`${where.file}: ${where.path}: required variable ${name} is missing a value${msg === '' ? '' : `: ${msg}`}`);
    }
  }
}

/** Every string value of `doc` (not its keys) with its substitutions made. */
export function interpolateDoc(doc: unknown, env: Env, file: string, warn: (name: string) => void): unknown {
  const walk = (v: unknown, path: string): unknown => {
    if (typeof v === 'string') return interpolateString(v, env, { file, path }, warn);
    if (Array.isArray(v)) return v.map((x, i) => walk(x, `${path}[${i}]`));
    if (v && typeof v === 'object') {
      return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, path === '' ? k : `${path}.${k}`)]));
    }
    return v;
  };
  return walk(doc, '');
}

// ------------------------------------------------------------------ casts

type Cast = 'int' | 'float' | 'bool';

/** docker/cli's cast table (its loader's interpolation options): where a string is a number or a boolean. */
const CASTS: readonly [readonly string[], Cast][] = [
  [['services', '*', 'configs', '*', 'mode'], 'int'],
  [['services', '*', 'secrets', '*', 'mode'], 'int'],
  [['services', '*', 'deploy', 'replicas'], 'int'],
  [['services', '*', 'deploy', 'update_config', 'parallelism'], 'int'],
  [['services', '*', 'deploy', 'update_config', 'max_failure_ratio'], 'float'],
  [['services', '*', 'deploy', 'rollback_config', 'parallelism'], 'int'],
  [['services', '*', 'deploy', 'rollback_config', 'max_failure_ratio'], 'float'],
  [['services', '*', 'deploy', 'restart_policy', 'max_attempts'], 'int'],
  [['services', '*', 'deploy', 'placement', 'max_replicas_per_node'], 'int'],
  [['services', '*', 'healthcheck', 'retries'], 'int'],
  [['services', '*', 'healthcheck', 'disable'], 'bool'],
  [['services', '*', 'init'], 'bool'],
  [['services', '*', 'ports', '*', 'target'], 'int'],
  [['services', '*', 'read_only'], 'bool'],
  [['services', '*', 'tty'], 'bool'],
  [['services', '*', 'ulimits', '*'], 'int'],
  [['services', '*', 'ulimits', '*', 'hard'], 'int'],
  [['services', '*', 'ulimits', '*', 'soft'], 'int'],
  [['services', '*', 'volumes', '*', 'read_only'], 'bool'],
  [['services', '*', 'volumes', '*', 'volume', 'nocopy'], 'bool'],
  [['networks', '*', 'external'], 'bool'],
  [['networks', '*', 'internal'], 'bool'],
  [['networks', '*', 'attachable'], 'bool'],
  [['volumes', '*', 'external'], 'bool'],
  [['secrets', '*', 'external'], 'bool'],
  [['configs', '*', 'external'], 'bool'],
];

const TRUE = new Set(['y', 'yes', 'true', 'on']);
const FALSE = new Set(['n', 'no', 'false', 'off']);

function cast(v: string, kind: Cast, where: string): number | boolean {
  const s = v.trim();
  if (kind === 'bool') {
    if (TRUE.has(s.toLowerCase())) return true;
    if (FALSE.has(s.toLowerCase())) return false;
    throw composeError(`${where} must be boolean`);
  }
  const n = Number(s);
  if (s === '' || !Number.isFinite(n) || (kind === 'int' && !/^[-+]?\d+$/.test(s))) throw composeError(`${where} must be ${kind === 'int' ? 'integer' : 'number'}`);
  return n;
}

/** `doc` with the strings at CASTS' paths turned into the numbers or booleans they spell. */
export function castDoc(doc: unknown, file: string): unknown {
  const walk = (v: unknown, path: string[]): unknown => {
    if (typeof v === 'string') {
      const hit = CASTS.find(([p]) => p.length === path.length && p.every((k, i) => k === '*' || k === path[i]));
      if (hit) return cast(v, hit[1], `${file}: ${dotted(path)}`);
      return v;
    }
    if (Array.isArray(v)) return v.map((x, i) => walk(x, [...path, String(i)]));
    if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, walk(x, [...path, k])]));
    return v;
  };
  return walk(doc, []);
}

/** `services.web.ports[0].target`. */
export function dotted(path: readonly string[]): string {
  return path.reduce((acc, k) => (/^\d+$/.test(k) ? `${acc}[${k}]` : acc === '' ? k : `${acc}.${k}`), '');
}

// ------------------------------------------------------------------ .env files

/**
 * A `.env` file or an env_file: `KEY=VALUE` lines, `#` comments, optional `export `, values in
 * single quotes (as is) or double quotes (with \n, \t, \\, \" escapes); a line `KEY` alone takes
 * KEY from `lookupEnv` (and is left out if that has none), as compose does.
 */
export function parseEnvFile(text: string, file: string, lookupEnv: Env = {}): [string, string][] {
  const out: [string, string][] = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const body = line.replace(/^export\s+/, '');
    const eq = body.indexOf('=');
    const key = (eq < 0 ? body : body.slice(0, eq)).trim();
    if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(key)) throw composeError(`${file}: line ${i + 1}: invalid variable name ${JSON.stringify(key)}`);
    if (eq < 0) {
      const v = lookupEnv[key];
      if (v !== undefined) out.push([key, v]);
      return;
    }
    let v = body.slice(eq + 1).trim();
    if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) v = v.slice(1, -1);
    else if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) {
      v = v.slice(1, -1).replace(/\\(.)/g, (_m, c: string) => ({ n: '\n', t: '\t', r: '\r' })[c] ?? c);
    } else v = v.replace(/\s+#.*$/, '');
    out.push([key, v]);
  });
  return out;
}
