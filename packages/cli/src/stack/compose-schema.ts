// A Compose file checked against the Compose Specification's JSON schema (vendored in
// compose-spec.json, see compose-spec.NOTICE.md), its first violation said in one line, and the
// keys Swarm has no use for listed, as `docker stack deploy` reports them.

import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import schema from './compose-spec.json' with { type: 'json' };
import { composeError, dotted } from './interpolate.js';

let compiled: ValidateFunction | undefined;

/** The schema compiled on first use (a few tens of ms: `shoal stack ls` never pays it). */
function validator(): ValidateFunction {
  // strict: false: the schema uses annotations (deprecated, ...) draft-07 does not define.
  // validateSchema: false: it names its meta-schema by an https address Ajv does not know (the
  // draft-07 one, under http); it is vendored and fixed, so checking it at each run adds nothing.
  compiled ??= new Ajv({ allErrors: true, strict: false, validateSchema: false }).compile(schema);
  return compiled;
}

/** Throws the first problem of `doc` (already interpolated and cast) as `FILE: PATH PROBLEM`. */
export function validateCompose(doc: unknown, file: string): void {
  if (doc === null || typeof doc !== 'object' || Array.isArray(doc)) throw composeError(`${file}: the top level must be a mapping (services: ...)`);
  const validate = validator();
  if (validate(doc)) return;
  throw composeError(`${file}: ${describe(validate.errors ?? [])}`);
}

function pathOf(e: ErrorObject): string[] {
  return e.instancePath
    .split('/')
    .slice(1)
    .map((k) => k.replace(/~1/g, '/').replace(/~0/g, '~'));
}

/**
 * The error worth showing out of ajv's list: the deepest one (a `oneOf` reports each branch's
 * failure; the branch that went deepest is the one the writer meant), an unknown key first, and
 * the types a value may have said together (`must be string or array`).
 */
export function describe(errors: readonly ErrorObject[]): string {
  const useful = errors.filter((e) => e.keyword !== 'oneOf' && e.keyword !== 'anyOf' && e.keyword !== 'if');
  const pool = useful.length > 0 ? useful : [...errors];
  const depth = Math.max(...pool.map((e) => pathOf(e).length));
  const deepest = pool.filter((e) => pathOf(e).length === depth);
  const unknown = deepest.find((e) => e.keyword === 'additionalProperties');
  if (unknown) {
    const key = String((unknown.params as { additionalProperty: string }).additionalProperty);
    const at = pathOf(unknown);
    return `${dotted([...at, key])}: unknown key`;
  }
  const at = dotted(pathOf(deepest[0]!)) || 'the top level';
  const types = deepest.filter((e) => e.keyword === 'type').flatMap((e) => String((e.params as { type: string | string[] }).type).split(','));
  if (types.length > 0 && types.length === deepest.filter((e) => e.keyword === 'type' || e.keyword === 'required').length) {
    const uniq = [...new Set(types)];
    return `${at} must be ${uniq.length < 2 ? uniq[0] : `${uniq.slice(0, -1).join(', ')} or ${uniq.at(-1)}`}`;
  }
  const first = deepest.find((e) => e.keyword !== 'type') ?? deepest[0]!;
  if (first.keyword === 'enum') return `${at} must be one of ${((first.params as { allowedValues: unknown[] }).allowedValues ?? []).map((v) => JSON.stringify(v)).join(', ')}`;
  if (first.keyword === 'required') return `${at}: ${(first.params as { missingProperty: string }).missingProperty} is required`;
  return `${at} ${first.message ?? 'is invalid'}`;
}

// ------------------------------------------------------------------ what Swarm ignores

/** The service keys a stack's services use; the schema's others are reported and left out. */
const SERVICE_KEYS = new Set([
  'image',
  'command',
  'entrypoint',
  'environment',
  'env_file',
  'ports',
  'networks',
  'volumes',
  'secrets',
  'configs',
  'healthcheck',
  'user',
  'working_dir',
  'hostname',
  'dns',
  'dns_search',
  'dns_opt',
  'cap_add',
  'cap_drop',
  'read_only',
  'init',
  'ulimits',
  'sysctls',
  'stop_signal',
  'stop_grace_period',
  'labels',
  'logging',
  'deploy',
  'tty',
]);

const DEPLOY_KEYS = new Set(['mode', 'replicas', 'placement', 'resources', 'restart_policy', 'update_config', 'rollback_config', 'endpoint_mode', 'labels']);

const TOP_KEYS = new Set(['version', 'name', 'services', 'networks', 'volumes', 'secrets', 'configs']);

/**
 * The keys of a valid document that a stack does not use (`build`, `depends_on`, `deploy.x`,
 * ...), sorted and each once: what docker prints as "Ignoring unsupported options: ...".
 * Extension fields (`x-...`) are the writer's own: never reported.
 */
export function ignoredKeys(doc: Record<string, unknown>): string[] {
  const out = new Set<string>();
  const ext = (k: string) => k.startsWith('x-');
  for (const k of Object.keys(doc)) if (!TOP_KEYS.has(k) && !ext(k)) out.add(k);
  const services = (doc['services'] ?? {}) as Record<string, Record<string, unknown> | null>;
  for (const svc of Object.values(services)) {
    for (const k of Object.keys(svc ?? {})) if (!SERVICE_KEYS.has(k) && !ext(k)) out.add(k);
    const deploy = (svc?.['deploy'] ?? {}) as Record<string, unknown>;
    for (const k of Object.keys(deploy)) if (!DEPLOY_KEYS.has(k) && !ext(k)) out.add(`deploy.${k}`);
  }
  return [...out].sort();
}
