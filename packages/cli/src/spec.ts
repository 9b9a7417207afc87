// Service specs from flags: `service create` builds one, `service update` edits the current one
// (pure functions; every bad value throws a UsageError).

import {
  type HealthConfig,
  type PortConfig,
  type ResourceRequirements,
  type RestartCondition,
  type ServiceMode,
  type ServiceSpec,
  type UpdateConfig,
  type UpdateFailureAction,
  NO_RESOURCES,
  RESTART_CONDITIONS,
  RESTART_DEFAULTS,
  ROLLOUT_DEFAULTS,
  SERVICE_MODES,
  checkServiceName,
  completeServiceSpec,
  failureActionsOf,
  orList,
} from '@shoal/types';
import { UsageError } from './errors.js';
import { type ContainerCreateFlags, type ContainerUpdateFlags, applyContainerUpdate, containerSpecOf } from './container-flags.js';
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
  parseNetworkAttachment,
} from './parse.js';

export { RESTART_CONDITIONS, SERVICE_MODES };

/** SwarmKit's rule for service names (the control API's too). */
export const validateServiceName = checkServiceName;

function restartCondition(v: string): RestartCondition {
  if (!(RESTART_CONDITIONS as readonly string[]).includes(v)) {
    throw new UsageError(`invalid --restart-condition ${JSON.stringify(v)}: expected ${orList(RESTART_CONDITIONS)}`);
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
export interface CreateFlags extends RolloutFlags, ResourceFlags, HealthFlags, ContainerCreateFlags {
  name: string;
  image: string;
  /** COMMAND and ARGs after IMAGE (docker: they replace the image's CMD). */
  args?: readonly string[];
  replicas?: string | number;
  mode?: string;
  /** `--max-concurrent N`: a replicated job's tasks at once (default: its replicas). */
  maxConcurrent?: string | number;
  publish?: readonly string[];
  env?: readonly string[];
  label?: readonly string[];
  constraint?: readonly string[];
  placementPref?: readonly string[];
  restartCondition?: string;
  restartDelay?: string;
  restartMaxAttempts?: string | number;
  stopGracePeriod?: string;
  /** `-w, --workdir`: the container's working directory (empty: the image's). */
  workdir?: string;
  /** `--network NAME | name=NAME,alias=A`: the networks, named as the user named them. */
  network?: readonly string[];
  endpointMode?: string;
}

/** The spec `service create` sends: the flags given, completed and checked as the manager will. */
export function buildServiceSpec(f: CreateFlags): ServiceSpec {
  const name = validateServiceName(f.name);
  const mode = (f.mode ?? 'replicated') as ServiceMode;
  if (!SERVICE_MODES.includes(mode)) throw new UsageError(`invalid --mode ${JSON.stringify(f.mode)}: expected ${orList(SERVICE_MODES)}`);
  if ((mode === 'global' || mode === 'global-job') && f.replicas !== undefined) throw new UsageError(`--replicas cannot be used with --mode ${mode}`);
  if (f.maxConcurrent !== undefined && mode !== 'replicated-job') throw new UsageError('--max-concurrent can only be used with --mode replicated-job');
  return completeServiceSpec({
    name,
    labels: parseLabels(f.label ?? []),
    image: f.image,
    args: [...(f.args ?? [])],
    // As docker: the --env-file entries first, so that an --env of the same name wins.
    env: [...(f.envFromFiles ?? []), ...(f.env ?? [])].map((e) => parseEnv(e).entry),
    mode,
    replicas: f.replicas === undefined ? undefined : parseReplicas(f.replicas),
    maxConcurrent: f.maxConcurrent === undefined ? undefined : parseNonNegativeInt(f.maxConcurrent, '--max-concurrent'),
    ports: parsePublishes(f.publish ?? []),
    restartPolicy: {
      condition: f.restartCondition === undefined ? undefined : restartCondition(f.restartCondition),
      delayMs: f.restartDelay === undefined ? undefined : parseDuration(f.restartDelay, '--restart-delay'),
      maxAttempts: f.restartMaxAttempts === undefined ? undefined : parseNonNegativeInt(f.restartMaxAttempts, '--restart-max-attempts'),
    },
    updateConfig: applyRollout(ROLLOUT_DEFAULTS, f, 'update'),
    rollbackConfig: applyRollout(ROLLOUT_DEFAULTS, f, 'rollback'),
    stopGracePeriodMs: f.stopGracePeriod === undefined ? undefined : parseDuration(f.stopGracePeriod, '--stop-grace-period'),
    constraints: (f.constraint ?? []).map(parseConstraint),
    resources: applyResources(NO_RESOURCES, f),
    placementPrefs: (f.placementPref ?? []).map(parsePlacementPref),
    healthcheck: applyHealth(null, f),
    workdir: f.workdir,
    networks: (f.network ?? []).map(parseNetworkAttachment),
    endpointMode: f.endpointMode,
    ...containerSpecOf(f),
  });
}

/** The flags of `service update`. */
export interface UpdateFlags extends RolloutFlags, ResourceFlags, HealthFlags, ContainerUpdateFlags {
  replicas?: string | number;
  /** `--max-concurrent N` (replicated jobs). */
  maxConcurrent?: string | number;
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
  /** `-w, --workdir`: the container's working directory (empty: the image's). */
  workdir?: string;
  networkAdd?: readonly string[];
  /**
   * `--network-rm NETWORK`: the ids (a spec names its networks by id) of the networks to leave,
   * as the manager resolved the names given (see resolveNetworkRm).
   */
  networkRm?: readonly string[];
  endpointMode?: string;
  /** Replaces COMMAND [ARG...] (docker's --args), already split into words. */
  args?: readonly string[];
  /** `--force`: replace the tasks even if nothing else changes. */
  force?: boolean;
}

/** Checks every update flag without a spec at hand (so bad input fails before any call). */
export function validateUpdateFlags(f: UpdateFlags): void {
  const empty: ServiceSpec = buildServiceSpec({ name: 'x', image: 'x' });
  applyServiceUpdate(empty, { ...f, replicas: undefined, maxConcurrent: undefined });
  if (f.replicas !== undefined) parseReplicas(f.replicas);
  if (f.maxConcurrent !== undefined) parseNonNegativeInt(f.maxConcurrent, '--max-concurrent');
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
  s.restartPolicy ??= { ...RESTART_DEFAULTS };

  if (f.replicas !== undefined) {
    if (s.mode === 'global') throw new UsageError(`--replicas cannot be used with a global service (${s.name})`);
    if (s.mode === 'global-job') throw new UsageError(`--replicas cannot be used with a global job (${s.name})`);
    s.replicas = parseReplicas(f.replicas);
    // A job keeps its concurrency (docker's) within the completions it now wants.
    if (s.mode === 'replicated-job') s.maxConcurrent = Math.min(Number(s.maxConcurrent ?? 0), s.replicas);
  }
  if (f.maxConcurrent !== undefined) {
    if (s.mode !== 'replicated-job') throw new UsageError(`--max-concurrent can only be used with a replicated job (${s.name} is ${s.mode})`);
    s.maxConcurrent = parseNonNegativeInt(f.maxConcurrent, '--max-concurrent');
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
  if (f.workdir !== undefined) s.workdir = f.workdir;
  s.networks = (s.networks ?? []).filter((n) => !(f.networkRm ?? []).includes(n.target));
  s.networks.push(...(f.networkAdd ?? []).map(parseNetworkAttachment));
  if (f.endpointMode !== undefined) s.endpointMode = f.endpointMode as ServiceSpec['endpointMode'];
  s.updateConfig = applyRollout(s.updateConfig ?? ROLLOUT_DEFAULTS, f, 'update');
  s.rollbackConfig = applyRollout(s.rollbackConfig ?? ROLLOUT_DEFAULTS, f, 'rollback');
  if (f.force === true) s.forceUpdate = Number(s.forceUpdate ?? 0) + 1;
  s.resources = applyResources(s.resources ?? NO_RESOURCES, f);
  s.healthcheck = applyHealth(s.healthcheck ?? null, f);
  applyContainerUpdate(s, f);
  // Every rule the manager applies, so a bad combination (a limit below a reservation...) fails here.
  return completeServiceSpec(s, { currentName: spec.name });
}

/**
 * True if two specs are the same (so an update that changes nothing is not sent). The sealed
 * registry credentials are the manager's alone (never sent): not part of the comparison.
 */
export function sameSpec(a: ServiceSpec, b: ServiceSpec): boolean {
  const sent = (s: ServiceSpec) => canonical({ ...s, registryAuth: null });
  return JSON.stringify(sent(a)) === JSON.stringify(sent(b));
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
  const allowed = failureActionsOf(which);
  if ((allowed as readonly string[]).includes(v)) return v as UpdateFailureAction;
  throw new UsageError(`invalid --${which}-failure-action ${JSON.stringify(v)}: expected ${orList(allowed)}`);
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
