// Service specs from flags: `service create` builds one, `service update` edits the current one
// (pure functions; every bad value throws a UsageError).

import type { HealthConfig, PortConfig, ResourceRequirements, RestartCondition, ServiceMode, ServiceSpec, UpdateConfig, UpdateFailureAction } from '@shoal/types';
import { UsageError } from './errors.js';
import {
  parseConstraint,
  parseCpus,
  parsePlacementPref,
  parseMemory,
  parseDuration,
  parseEnv,
  parseEnvKey,
  parseLabelKey,
  parseLabels,
  parseNonNegativeInt,
  parsePublishRm,
  parsePublishes,
  parseReplicas,
} from './parse.js';

/** Docker's defaults, sent explicitly (proto3 cannot tell 0 from "not given"). */
export const SPEC_DEFAULTS = {
  replicas: 1,
  restartCondition: 'any' as RestartCondition,
  restartDelayMs: 5000,
  restartMaxAttempts: 0,
  stopGracePeriodMs: 10_000,
  updateParallelism: 1,
  updateDelayMs: 0,
  updateMonitorMs: 5000,
  updateMaxFailureRatio: 0,
} as const;

export const UPDATE_FAILURE_ACTIONS: readonly UpdateFailureAction[] = ['pause', 'continue', 'rollback'];

export const RESTART_CONDITIONS: readonly RestartCondition[] = ['any', 'on-failure', 'none'];
export const SERVICE_MODES: readonly ServiceMode[] = ['replicated', 'global'];

/** SwarmKit's rule for service names: letters and digits, with single `-`/`_` runs inside; 63 at most. */
export function validateServiceName(name: string): string {
  if (name === '') throw new UsageError('the service name is empty (--name NAME)');
  if (name.length > 63) throw new UsageError(`invalid service name ${JSON.stringify(name)}: at most 63 characters`);
  if (!/^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/.test(name)) {
    throw new UsageError(
      `invalid service name ${JSON.stringify(name)}: use letters, digits, '-' and '_' (starting and ending with a letter or digit)`,
    );
  }
  return name;
}

function restartCondition(v: string): RestartCondition {
  if (!(RESTART_CONDITIONS as readonly string[]).includes(v)) {
    throw new UsageError(`invalid --restart-condition ${JSON.stringify(v)}: expected any, on-failure or none`);
  }
  return v as RestartCondition;
}

/** `--health-cmd` and its settings, `--no-healthcheck` (Docker's flags). */
export interface HealthFlags {
  healthCmd?: string;
  healthInterval?: string;
  healthTimeout?: string;
  healthRetries?: string | number;
  healthStartPeriod?: string;
  noHealthcheck?: boolean;
}

/** `base` (null: the image's own check) with the health flags that were given applied. */
export function applyHealth(base: HealthConfig | null, f: HealthFlags): HealthConfig | null {
  const settings = f.healthInterval !== undefined || f.healthTimeout !== undefined || f.healthRetries !== undefined || f.healthStartPeriod !== undefined;
  if (f.noHealthcheck === true) {
    if (f.healthCmd !== undefined || settings) throw new UsageError('--no-healthcheck cannot be combined with --health-* options');
    return { test: ['NONE'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 };
  }
  if (f.healthCmd === undefined && !settings) return base;
  let h: HealthConfig = base && base.test[0] !== 'NONE' ? { ...base } : { test: [], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 };
  if (f.healthCmd !== undefined) {
    if (f.healthCmd.trim() === '') throw new UsageError('--health-cmd is empty');
    h = { ...h, test: ['CMD-SHELL', f.healthCmd] };
  }
  if (h.test.length === 0) throw new UsageError('--health-interval, --health-timeout, --health-retries and --health-start-period need a --health-cmd');
  if (f.healthInterval !== undefined) h.intervalMs = parseDuration(f.healthInterval, '--health-interval');
  if (f.healthTimeout !== undefined) h.timeoutMs = parseDuration(f.healthTimeout, '--health-timeout');
  if (f.healthRetries !== undefined) h.retries = parseNonNegativeInt(f.healthRetries, '--health-retries');
  if (f.healthStartPeriod !== undefined) h.startPeriodMs = parseDuration(f.healthStartPeriod, '--health-start-period');
  return h;
}

/** `--limit-cpu`, `--limit-memory`, `--reserve-cpu`, `--reserve-memory`. */
export interface ResourceFlags {
  limitCpu?: string;
  limitMemory?: string;
  reserveCpu?: string;
  reserveMemory?: string;
}

const NO_RESOURCES: ResourceRequirements = { limits: { nanoCpus: 0, memoryBytes: 0 }, reservations: { nanoCpus: 0, memoryBytes: 0 } };

/** `base` with the resource flags that were given applied (0 removes a limit or reservation). */
export function applyResources(base: ResourceRequirements, f: ResourceFlags): ResourceRequirements {
  const r = { limits: { ...base.limits }, reservations: { ...base.reservations } };
  if (f.limitCpu !== undefined) r.limits.nanoCpus = parseCpus(f.limitCpu, '--limit-cpu');
  if (f.limitMemory !== undefined) r.limits.memoryBytes = parseMemory(f.limitMemory, '--limit-memory');
  if (f.reserveCpu !== undefined) r.reservations.nanoCpus = parseCpus(f.reserveCpu, '--reserve-cpu');
  if (f.reserveMemory !== undefined) r.reservations.memoryBytes = parseMemory(f.reserveMemory, '--reserve-memory');
  return r;
}

/** The flags of an update's and a rollback's settings: `--update-*` and `--rollback-*`. */
export interface RolloutFlags {
  updateParallelism?: string | number;
  updateDelay?: string;
  updateOrder?: string;
  updateFailureAction?: string;
  updateMonitor?: string;
  updateMaxFailureRatio?: string | number;
  rollbackParallelism?: string | number;
  rollbackDelay?: string;
  rollbackOrder?: string;
  rollbackFailureAction?: string;
  rollbackMonitor?: string;
  rollbackMaxFailureRatio?: string | number;
}

/** The flags of `service create` (as strings: every value is validated here). */
export interface CreateFlags extends RolloutFlags, ResourceFlags, HealthFlags {
  name: string;
  image: string;
  /** COMMAND and ARGs after IMAGE (docker: they replace the image's CMD). */
  args?: readonly string[];
  replicas?: string | number;
  mode?: string;
  publish?: readonly string[];
  env?: readonly string[];
  label?: readonly string[];
  constraint?: readonly string[];
  placementPref?: readonly string[];
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string | number;
  stopGracePeriod?: string;
}

/** The spec `service create` sends. */
export function buildServiceSpec(f: CreateFlags): ServiceSpec {
  const name = validateServiceName(f.name);
  if (f.image.trim() === '') throw new UsageError('the image is empty');
  const mode = (f.mode ?? 'replicated') as ServiceMode;
  if (!SERVICE_MODES.includes(mode)) throw new UsageError(`invalid --mode ${JSON.stringify(f.mode)}: expected replicated or global`);
  if (mode === 'global' && f.replicas !== undefined) throw new UsageError('--replicas cannot be used with --mode global');
  const replicas = mode === 'global' ? 0 : f.replicas === undefined ? SPEC_DEFAULTS.replicas : parseReplicas(f.replicas);
  return {
    name,
    labels: parseLabels(f.label ?? []),
    image: f.image,
    command: [],
    args: [...(f.args ?? [])],
    env: (f.env ?? []).map((e) => parseEnv(e).entry),
    mode,
    replicas,
    ports: parsePublishes(f.publish ?? []),
    restartPolicy: {
      condition: f.restartCondition === undefined ? SPEC_DEFAULTS.restartCondition : restartCondition(f.restartCondition),
      delayMs: f.restartDelay === undefined ? SPEC_DEFAULTS.restartDelayMs : parseDuration(f.restartDelay, '--restart-delay'),
      maxAttempts:
        f.restartMaxAttempts === undefined
          ? SPEC_DEFAULTS.restartMaxAttempts
          : parseNonNegativeInt(f.restartMaxAttempts, '--restart-max-attempts'),
      windowMs: 0,
    },
    updateConfig: applyRollout(ROLLOUT_DEFAULTS, f, 'update'),
    rollbackConfig: applyRollout(ROLLOUT_DEFAULTS, f, 'rollback'),
    stopGracePeriodMs:
      f.stopGracePeriod === undefined ? SPEC_DEFAULTS.stopGracePeriodMs : parseDuration(f.stopGracePeriod, '--stop-grace-period'),
    constraints: dedupe((f.constraint ?? []).map(parseConstraint)),
    forceUpdate: 0,
    resources: applyResources(NO_RESOURCES, f),
    placementPrefs: dedupe((f.placementPref ?? []).map(parsePlacementPref)),
    healthcheck: applyHealth(null, f),
  };
}

function dedupe(xs: string[]): string[] {
  return [...new Set(xs)];
}

/** The flags of `service update`. */
export interface UpdateFlags extends RolloutFlags, ResourceFlags, HealthFlags {
  replicas?: string | number;
  image?: string;
  envAdd?: readonly string[];
  envRm?: readonly string[];
  publishAdd?: readonly string[];
  publishRm?: readonly string[];
  labelAdd?: readonly string[];
  labelRm?: readonly string[];
  constraintAdd?: readonly string[];
  constraintRm?: readonly string[];
  placementPrefAdd?: readonly string[];
  placementPrefRm?: readonly string[];
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string | number;
  stopGracePeriod?: string;
  /** Replaces COMMAND [ARG...] (docker's --args), already split into words. */
  args?: readonly string[];
  /** `--force`: replace the tasks even if nothing else changes. */
  force?: boolean;
}

/** Checks every update flag without a spec at hand (so bad input fails before any call). */
export function validateUpdateFlags(f: UpdateFlags): void {
  const empty: ServiceSpec = buildServiceSpec({ name: 'x', image: 'x' });
  applyServiceUpdate(empty, { ...f, replicas: undefined });
  if (f.replicas !== undefined) parseReplicas(f.replicas);
}

function envKey(entry: string): string {
  const i = entry.indexOf('=');
  return i < 0 ? entry : entry.slice(0, i);
}

/**
 * The spec after `service update`'s edits (a new object; `spec` is not changed). Removals apply
 * before additions, as docker does.
 */
export function applyServiceUpdate(spec: ServiceSpec, f: UpdateFlags): ServiceSpec {
  const s: ServiceSpec = structuredClone(spec);
  s.labels ??= {};
  s.env ??= [];
  s.ports ??= [];
  s.constraints ??= [];
  s.args ??= [];
  s.command ??= [];
  s.restartPolicy ??= {
    condition: SPEC_DEFAULTS.restartCondition,
    delayMs: SPEC_DEFAULTS.restartDelayMs,
    maxAttempts: SPEC_DEFAULTS.restartMaxAttempts,
    windowMs: 0,
  };

  if (f.replicas !== undefined) {
    if (s.mode === 'global') throw new UsageError(`--replicas cannot be used with a global service (${s.name})`);
    s.replicas = parseReplicas(f.replicas);
  }
  if (f.image !== undefined) {
    if (f.image.trim() === '') throw new UsageError('--image is empty');
    s.image = f.image;
  }
  if (f.args !== undefined) s.args = [...f.args];

  // env: KEY=VALUE entries, one per key.
  for (const k of (f.envRm ?? []).map(parseEnvKey)) s.env = s.env.filter((e) => envKey(e) !== k);
  for (const { key, entry } of (f.envAdd ?? []).map(parseEnv)) {
    const i = s.env.findIndex((e) => envKey(e) === key);
    if (i >= 0) s.env[i] = entry;
    else s.env.push(entry);
  }

  for (const k of (f.labelRm ?? []).map(parseLabelKey)) delete s.labels[k];
  Object.assign(s.labels, parseLabels(f.labelAdd ?? []));

  for (const c of (f.constraintRm ?? []).map(parseConstraint)) s.constraints = s.constraints.filter((x) => x !== c);
  for (const c of (f.constraintAdd ?? []).map(parseConstraint)) if (!s.constraints.includes(c)) s.constraints.push(c);

  s.placementPrefs = [...(s.placementPrefs ?? [])];
  for (const p of (f.placementPrefRm ?? []).map(parsePlacementPref)) s.placementPrefs = s.placementPrefs.filter((x) => x !== p);
  for (const p of (f.placementPrefAdd ?? []).map(parsePlacementPref)) if (!s.placementPrefs.includes(p)) s.placementPrefs.push(p);

  for (const { publishedPort, protocol } of (f.publishRm ?? []).map(parsePublishRm)) {
    s.ports = s.ports.filter((p) => !(p.publishedPort === publishedPort && (protocol === undefined || p.protocol === protocol)));
  }
  const added: PortConfig[] = parsePublishes(f.publishAdd ?? []);
  for (const p of added) {
    const i = s.ports.findIndex((x) => x.publishedPort === p.publishedPort && x.protocol === p.protocol);
    if (i >= 0) s.ports[i] = p;
    else s.ports.push(p);
  }

  if (f.restartCondition !== undefined) s.restartPolicy = { ...s.restartPolicy, condition: restartCondition(f.restartCondition) };
  if (f.restartDelay !== undefined) s.restartPolicy = { ...s.restartPolicy, delayMs: parseDuration(f.restartDelay, '--restart-delay') };
  if (f.restartMaxAttempts !== undefined) {
    s.restartPolicy = { ...s.restartPolicy, maxAttempts: parseNonNegativeInt(f.restartMaxAttempts, '--restart-max-attempts') };
  }
  if (f.stopGracePeriod !== undefined) s.stopGracePeriodMs = parseDuration(f.stopGracePeriod, '--stop-grace-period');
  s.updateConfig = applyRollout(s.updateConfig ?? ROLLOUT_DEFAULTS, f, 'update');
  s.rollbackConfig = applyRollout(s.rollbackConfig ?? ROLLOUT_DEFAULTS, f, 'rollback');
  if (f.force === true) s.forceUpdate = Number(s.forceUpdate ?? 0) + 1;
  s.resources = applyResources(s.resources ?? NO_RESOURCES, f);
  s.healthcheck = applyHealth(s.healthcheck ?? null, f);
  return s;
}

/** True if two specs are the same (so an update that changes nothing is not sent). */
export function sameSpec(a: ServiceSpec, b: ServiceSpec): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}

function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (v && typeof v === 'object') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, canonical((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}

/** Swarm's defaults of an update's and a rollback's settings. */
export const ROLLOUT_DEFAULTS: UpdateConfig = {
  parallelism: SPEC_DEFAULTS.updateParallelism,
  delayMs: SPEC_DEFAULTS.updateDelayMs,
  failureAction: 'pause',
  order: 'stop-first',
  monitorMs: SPEC_DEFAULTS.updateMonitorMs,
  maxFailureRatio: SPEC_DEFAULTS.updateMaxFailureRatio,
};

/** `base` with the `--update-*` (or `--rollback-*`) flags that were given applied. */
export function applyRollout(base: UpdateConfig, f: RolloutFlags, which: 'update' | 'rollback'): UpdateConfig {
  const flag = (name: string): string | number | undefined => (f as Record<string, string | number | undefined>)[`${which}${name}`];
  const c = { ...base };
  const parallelism = flag('Parallelism');
  if (parallelism !== undefined) c.parallelism = parseNonNegativeInt(parallelism, `--${which}-parallelism`);
  const delay = flag('Delay');
  if (delay !== undefined) c.delayMs = parseDuration(String(delay), `--${which}-delay`);
  const order = flag('Order');
  if (order !== undefined) c.order = parseUpdateOrder(String(order), which);
  const action = flag('FailureAction');
  if (action !== undefined) c.failureAction = parseFailureAction(String(action), which);
  const monitor = flag('Monitor');
  if (monitor !== undefined) c.monitorMs = parseMonitor(String(monitor), which);
  const ratio = flag('MaxFailureRatio');
  if (ratio !== undefined) c.maxFailureRatio = parseFailureRatio(ratio, which);
  return c;
}

/** `--update-order`: stop-first (the default: the old task stops, then the new one starts) or start-first. */
export function parseUpdateOrder(v: string, which: 'update' | 'rollback' = 'update'): 'stop-first' | 'start-first' {
  if (v === 'stop-first' || v === 'start-first') return v;
  throw new UsageError(`invalid --${which}-order ${JSON.stringify(v)}: expected stop-first or start-first`);
}

/** `--update-failure-action` (pause, continue, rollback); `--rollback-failure-action` (pause, continue). */
export function parseFailureAction(v: string, which: 'update' | 'rollback' = 'update'): UpdateFailureAction {
  const allowed = which === 'update' ? UPDATE_FAILURE_ACTIONS : UPDATE_FAILURE_ACTIONS.filter((a) => a !== 'rollback');
  if ((allowed as readonly string[]).includes(v)) return v as UpdateFailureAction;
  const list = `${allowed.slice(0, -1).join(', ')} or ${allowed.at(-1)}`;
  throw new UsageError(`invalid --${which}-failure-action ${JSON.stringify(v)}: expected ${list}`);
}

/** `--update-monitor`: a positive duration (0 would mean Swarm's default, 5s: say it instead). */
export function parseMonitor(v: string, which: 'update' | 'rollback' = 'update'): number {
  const ms = parseDuration(v, `--${which}-monitor`);
  if (ms === 0) throw new UsageError(`invalid --${which}-monitor "0": give a duration of at least 1ms (the default is 5s)`);
  return ms;
}

/** `--update-max-failure-ratio`: the share of tasks that may fail, 0 to 1. */
export function parseFailureRatio(v: string | number, which: 'update' | 'rollback' = 'update'): number {
  const text = String(v).trim();
  const n = /^(\d+(\.\d*)?|\.\d+)$/.test(text) ? Number(text) : NaN;
  if (!(n >= 0 && n <= 1)) throw new UsageError(`invalid --${which}-max-failure-ratio ${JSON.stringify(String(v))}: expected a number from 0 to 1`);
  return n;
}
