// Compose files read as `docker stack deploy -c A -c B` reads them: each parsed as YAML, its
// variables substituted (the shell's environment first, then the `.env` next to the first file),
// the values a substitution made numeric cast, checked against the Compose schema, and the files
// merged, a later one overriding an earlier one.

import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { type ScalarTag, YAMLParseError, parse } from 'yaml';
import { castDoc, composeError, type Env, interpolateDoc, parseEnvFile } from './interpolate.js';
import { ignoredKeys, validateCompose } from './compose-schema.js';

export type Doc = Record<string, unknown>;

export interface LoadedCompose {
  /** The merged document (valid against the schema, values substituted and cast). */
  doc: Doc;
  /** Where relative paths (env_file, bind mounts, secret files) start: the first file's directory. */
  workingDir: string;
  /** The variables substitutions read: the environment over `.env`. */
  env: Env;
  /** Keys a stack does not use, for "Ignoring unsupported options: ...". */
  ignored: string[];
  /** Variables used but set nowhere (each became ''). */
  unset: string[];
}

export interface LoadOptions {
  /** The environment of substitutions (default: process.env); `.env` fills what it lacks. */
  env?: Env;
  /** How a file is read (default: from the disk; `-` is stdin in the command). */
  readFile?: (path: string) => string;
}

const readText = (path: string): string => readFileSync(path, 'utf8');

/** Reads, substitutes, checks and merges `files` (in order). Throws one line for the first problem. */
export function loadCompose(files: readonly string[], opts: LoadOptions = {}): LoadedCompose {
  if (files.length === 0) throw composeError('no Compose file: pass -c FILE');
  const read = opts.readFile ?? readText;
  const workingDir = resolve(dirname(files[0]!));
  const env = { ...dotEnv(join(workingDir, '.env'), read, opts.env ?? process.env), ...(opts.env ?? process.env) };
  const unset = new Set<string>();
  let merged: Doc | undefined;
  const ignored = new Set<string>();
  for (const file of files) {
    const doc = parseYaml(readOrFail(file, read), file);
    const interpolated = castDoc(interpolateDoc(doc, env, file, (n) => unset.add(n)), file);
    validateCompose(interpolated, file);
    for (const k of ignoredKeys(interpolated as Doc)) ignored.add(k);
    merged = merged === undefined ? (interpolated as Doc) : mergeDocs(merged, interpolated as Doc);
  }
  return { doc: merged!, workingDir, env, ignored: [...ignored].sort(), unset: [...unset].sort() };
}

function readOrFail(file: string, read: (p: string) => string): string {
  try {
    return read(file);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw composeError(`${file}: cannot read it (${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)})`);
  }
}

/** The `.env` file's variables, if there is one (a missing one is no error). */
function dotEnv(path: string, read: (p: string) => string, env: Env): Env {
  let text: string;
  try {
    text = read(path);
  } catch {
    return {};
  }
  return Object.fromEntries(parseEnvFile(text, path, env));
}

/**
 * YAML 1.1's octal integers (`mode: 0440`), which compose's YAML parser still reads as octal and
 * Compose files use for file modes; YAML 1.2 would read 440.
 */
const LEGACY_OCTAL: ScalarTag = {
  identify: (v) => typeof v === 'number',
  default: true,
  tag: 'tag:yaml.org,2002:int',
  format: 'OCT',
  test: /^0[0-7]+$/,
  resolve: (s) => parseInt(s, 8),
};

/** YAML to plain values; a syntax error names its line. `<<` merge keys are read as compose reads them. */
export function parseYaml(text: string, file: string): unknown {
  try {
    const doc = parse(text, { merge: true, prettyErrors: true, uniqueKeys: true, customTags: (tags) => [LEGACY_OCTAL, ...tags] }) as unknown;
    return doc ?? {};
  } catch (err) {
    if (err instanceof YAMLParseError) {
      const pos = err.linePos?.[0];
      const what = err.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
      throw composeError(`${file}: invalid YAML${pos ? ` at line ${pos.line}, column ${pos.col}` : ''}: ${what}`);
    }
    throw composeError(`${file}: invalid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
}

// ------------------------------------------------------------------ merging (docker/cli's rules)

const isMap = (v: unknown): v is Doc => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `environment`, `labels`... as a map, whichever form the file used (`K=V` list or mapping). */
export function listOrDict(v: unknown, sep = '='): Record<string, string | null> {
  if (v === undefined || v === null) return {};
  if (Array.isArray(v)) {
    return Object.fromEntries(
      v.map((e) => {
        const s = String(e);
        const i = s.indexOf(sep);
        return i < 0 ? [s, null] : [s.slice(0, i), s.slice(i + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(v as Doc).map(([k, x]) => [k, x === null || x === undefined ? null : String(x)]));
}

/** Lists merged by a key of each entry: an override's entry replaces the base's with the same key. */
function mergeByKey(base: unknown, over: unknown, key: (e: unknown) => string): unknown[] {
  const out = new Map<string, unknown>();
  for (const e of [...((base as unknown[]) ?? []), ...((over as unknown[]) ?? [])]) out.set(key(e), e);
  return [...out.values()];
}

const volumeTarget = (e: unknown): string => (isMap(e) ? String(e['target']) : (String(e).split(':')[1] ?? String(e)));
const fileSource = (e: unknown): string => (isMap(e) ? String(e['source']) : String(e));
const portKey = (e: unknown): string => JSON.stringify(e);

/** Service keys merged rather than replaced (as docker/cli's mergeServices). */
const SERVICE_MERGES: Record<string, (a: unknown, b: unknown) => unknown> = {
  environment: (a, b) => ({ ...listOrDict(a), ...listOrDict(b) }),
  labels: (a, b) => ({ ...listOrDict(a), ...listOrDict(b) }),
  sysctls: (a, b) => ({ ...listOrDict(a), ...listOrDict(b) }),
  volumes: (a, b) => mergeByKey(a, b, volumeTarget),
  secrets: (a, b) => mergeByKey(a, b, fileSource),
  configs: (a, b) => mergeByKey(a, b, fileSource),
  ports: (a, b) => mergeByKey(a, b, portKey),
  ulimits: (a, b) => ({ ...(a as Doc), ...(b as Doc) }),
  networks: (a, b) => ({ ...networkMap(a), ...networkMap(b) }),
  deploy: (a, b) => deepMerge(a, b),
  logging: (a, b) => deepMerge(a, b),
  healthcheck: (a, b) => deepMerge(a, b),
};

/** A service's networks as a map (the list form names networks without options). */
export function networkMap(v: unknown): Record<string, Doc | null> {
  if (Array.isArray(v)) return Object.fromEntries(v.map((n) => [String(n), null]));
  return (v ?? {}) as Record<string, Doc | null>;
}

function deepMerge(a: unknown, b: unknown): unknown {
  if (b === undefined) return a;
  if (!isMap(a) || !isMap(b)) return b;
  const out: Doc = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = deepMerge(a[k], v);
  return out;
}

function mergeService(a: Doc | null, b: Doc | null): Doc {
  const out: Doc = { ...(a ?? {}) };
  for (const [k, v] of Object.entries(b ?? {})) out[k] = k in out && SERVICE_MERGES[k] ? SERVICE_MERGES[k](out[k], v) : v;
  return out;
}

/** `over` merged onto `base`: services key by key, top-level networks/volumes/secrets/configs replaced by name. */
export function mergeDocs(base: Doc, over: Doc): Doc {
  const out: Doc = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (k === 'services' && isMap(base['services']) && isMap(v)) {
      const services: Doc = { ...base['services'] };
      for (const [name, svc] of Object.entries(v)) services[name] = name in services ? mergeService(services[name] as Doc, svc as Doc) : svc;
      out[k] = services;
    } else if (['networks', 'volumes', 'secrets', 'configs'].includes(k) && isMap(base[k]) && isMap(v)) {
      out[k] = { ...base[k], ...v };
    } else out[k] = v;
  }
  return out;
}
