// Validation at the edge: every spec that enters the control API is checked here, once, and
// completed with Swarm's defaults. A bad field gives one clear INVALID_ARGUMENT line; nothing is
// proposed to Raft.

import { ShoalError } from '@shoal/api';
import type { HealthConfig, NodeResources, PortConfig, ResourceRequirements, RestartPolicy, ServiceSpec, UpdateConfig } from '@shoal/store';

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/;
const ENV_RE = /^[^=\s][^=]*=/;
const CONSTRAINT_RE = /^\s*(node\.id|node\.hostname|node\.role|node\.platform\.os|node\.platform\.arch|node\.labels\.[^=!\s]+)\s*(==|!=)\s*\S.*$/;
export const MAX_REPLICAS = 10_000;
const PLACEMENT_PREF_RE = /^spread=node\.labels\.[^=\s]+$/;
/** Swarm's --update-monitor default. */
export const DEFAULT_UPDATE_MONITOR_MS = 5_000;

const bad = (msg: string) => new ShoalError('INVALID_ARGUMENT', msg);

type Input = Partial<Omit<ServiceSpec, 'restartPolicy' | 'updateConfig' | 'rollbackConfig' | 'resources' | 'healthcheck'>> & {
  healthcheck?: Partial<HealthConfig> | null;
  resources?: { limits?: Partial<NodeResources> | null; reservations?: Partial<NodeResources> | null } | null;
  restartPolicy?: Partial<RestartPolicy> | null;
  updateConfig?: Partial<UpdateConfig> | null;
  rollbackConfig?: Partial<UpdateConfig> | null;
};

/** An update's or a rollback's settings, with Swarm's defaults (a rollback cannot roll back). */
function rolloutConfig(input: Partial<UpdateConfig> | null | undefined, what: 'update' | 'rollback'): UpdateConfig {
  const uc = input ?? {};
  const failureAction = (uc.failureAction || 'pause') as UpdateConfig['failureAction'];
  const actions = what === 'update' ? ['pause', 'continue', 'rollback'] : ['pause', 'continue'];
  if (!actions.includes(failureAction)) throw bad(`${what} failure action must be ${actions.slice(0, -1).join(', ')} or ${actions.at(-1)}, not ${failureAction}`);
  const order = (uc.order || 'stop-first') as UpdateConfig['order'];
  if (!['stop-first', 'start-first'].includes(order)) throw bad(`${what} order must be stop-first or start-first`);
  const maxFailureRatio = Number(uc.maxFailureRatio ?? 0);
  if (!Number.isFinite(maxFailureRatio) || maxFailureRatio < 0 || maxFailureRatio > 1) {
    throw bad(`${what} max failure ratio must be between 0 and 1, not ${String(uc.maxFailureRatio)}`);
  }
  return {
    parallelism: nonNegInt(uc.parallelism ?? 1, `${what} parallelism`),
    delayMs: nonNegInt(uc.delayMs, `${what} delay`),
    failureAction,
    order,
    // 0 (unset on the wire) is the default, as in Swarm.
    monitorMs: nonNegInt(uc.monitorMs, `${what} monitor`) || DEFAULT_UPDATE_MONITOR_MS,
    maxFailureRatio,
  };
}

function nonNegInt(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(v ?? 0);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) throw bad(`${what} must be an integer between 0 and ${max}, not ${String(v)}`);
  return n;
}

function strings(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw bad(`${what} must be a list of strings`);
  return [...v];
}

function labels(v: unknown, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw bad(`${what} must be a map of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!k) throw bad(`${what}: empty key`);
    if (typeof val !== 'string') throw bad(`${what}.${k} must be a string`);
    out[k] = val;
  }
  return out;
}

export function validatePorts(ports: unknown): PortConfig[] {
  if (ports === undefined || ports === null) return [];
  if (!Array.isArray(ports)) throw bad('ports must be a list');
  const seen = new Set<string>();
  return ports.map((p: Partial<PortConfig>) => {
    const protocol = (p.protocol || 'tcp') as PortConfig['protocol'];
    if (protocol !== 'tcp' && protocol !== 'udp') throw bad(`port protocol must be tcp or udp, not ${protocol}`);
    const publishMode = (p.publishMode || 'ingress') as PortConfig['publishMode'];
    if (publishMode !== 'ingress' && publishMode !== 'host') throw bad(`publish mode must be ingress or host, not ${publishMode}`);
    const targetPort = Number(p.targetPort);
    if (!Number.isInteger(targetPort) || targetPort < 1 || targetPort > 65535) throw bad(`target port must be 1-65535, not ${p.targetPort}`);
    const publishedPort = Number(p.publishedPort ?? 0);
    if (!Number.isInteger(publishedPort) || publishedPort < 0 || publishedPort > 65535) {
      throw bad(`published port must be 1-65535, not ${p.publishedPort}`);
    }
    if (publishedPort === 0) throw bad(`port ${targetPort}/${protocol}: a published port is required`);
    const key = `${publishedPort}/${protocol}`;
    if (seen.has(key)) throw bad(`published port ${key} is given twice`);
    seen.add(key);
    const proxyProtocol = p.proxyProtocol === true;
    if (proxyProtocol && publishMode !== 'ingress') throw bad(`port ${key}: the PROXY protocol is sent by the routing mesh: only with mode=ingress`);
    if (proxyProtocol && protocol !== 'tcp') throw bad(`port ${key}: the PROXY protocol is for tcp ports`);
    return { protocol, targetPort, publishedPort, publishMode, proxyProtocol };
  });
}

/** Docker refuses smaller memory limits. */
export const MIN_MEMORY_LIMIT = 6 << 20;

function validateResources(r: Input['resources']): ResourceRequirements {
  const read = (x: Partial<NodeResources> | null | undefined, what: string): NodeResources => ({
    nanoCpus: nonNegInt(x?.nanoCpus, `${what} CPUs (nanoCPUs)`),
    memoryBytes: nonNegInt(x?.memoryBytes, `${what} memory (bytes)`),
  });
  const limits = read(r?.limits, 'limit');
  const reservations = read(r?.reservations, 'reserved');
  if (limits.memoryBytes > 0 && limits.memoryBytes < MIN_MEMORY_LIMIT) throw bad(`a memory limit must be at least 6 MiB, not ${limits.memoryBytes} bytes`);
  if (limits.nanoCpus > 0 && reservations.nanoCpus > limits.nanoCpus) throw bad('the CPUs reserved cannot exceed the CPU limit');
  if (limits.memoryBytes > 0 && reservations.memoryBytes > limits.memoryBytes) throw bad('the memory reserved cannot exceed the memory limit');
  return { limits, reservations };
}

function validateHealthcheck(h: Partial<HealthConfig> | null | undefined): HealthConfig | null {
  if (!h || !h.test || h.test.length === 0) return null;
  const test = strings(h.test, 'health check');
  const kind = test[0];
  if (kind === 'NONE') {
    if (test.length !== 1) throw bad('a health check of NONE takes no command');
  } else if (kind === 'CMD' || kind === 'CMD-SHELL') {
    if (test.length < 2 || test[1]!.trim() === '') throw bad(`a ${kind} health check needs a command`);
  } else {
    throw bad(`a health check must start with CMD, CMD-SHELL or NONE, not ${JSON.stringify(kind)}`);
  }
  return {
    test,
    intervalMs: nonNegInt(h.intervalMs, 'health interval'),
    timeoutMs: nonNegInt(h.timeoutMs, 'health timeout'),
    retries: nonNegInt(h.retries, 'health retries'),
    startPeriodMs: nonNegInt(h.startPeriodMs, 'health start period'),
  };
}

/** Checks a service spec from a client and fills in the defaults. */
export function validateServiceSpec(input: Input | null | undefined): ServiceSpec {
  if (!input) throw bad('a service spec is required');
  const name = String(input.name ?? '');
  if (!NAME_RE.test(name)) {
    throw bad(`invalid service name "${name}": 1-63 characters of [a-zA-Z0-9_.-], starting with a letter or digit`);
  }
  const image = String(input.image ?? '').trim();
  if (!image) throw bad('an image is required');
  if (/\s/.test(image)) throw bad(`invalid image reference "${image}"`);
  const mode = (input.mode || 'replicated') as ServiceSpec['mode'];
  if (mode !== 'replicated' && mode !== 'global') throw bad(`mode must be replicated or global, not ${mode}`);
  const replicas = nonNegInt(input.replicas ?? (mode === 'replicated' ? 1 : 0), 'replicas', MAX_REPLICAS);
  if (mode === 'global' && replicas !== 0) throw bad('replicas cannot be set on a global service');
  const env = strings(input.env, 'env');
  for (const e of env) if (!ENV_RE.test(e)) throw bad(`invalid environment variable "${e}": want KEY=VALUE`);
  const constraints = strings(input.constraints, 'constraints');
  for (const c of constraints) {
    if (!CONSTRAINT_RE.test(c)) throw bad(`invalid constraint "${c}": want e.g. node.role==manager or node.labels.zone!=a`);
  }
  const placementPrefs = strings(input.placementPrefs, 'placement preferences');
  for (const p of placementPrefs) {
    if (!PLACEMENT_PREF_RE.test(p)) throw bad(`invalid placement preference "${p}": want spread=node.labels.KEY`);
  }
  const rp = input.restartPolicy ?? {};
  const condition = (rp.condition || 'any') as RestartPolicy['condition'];
  if (!['none', 'on-failure', 'any'].includes(condition)) throw bad(`restart condition must be none, on-failure or any, not ${condition}`);
  return {
    name,
    labels: labels(input.labels, 'labels'),
    image,
    command: strings(input.command, 'command'),
    args: strings(input.args, 'args'),
    env,
    mode,
    replicas,
    ports: validatePorts(input.ports),
    restartPolicy: {
      condition,
      delayMs: nonNegInt(rp.delayMs ?? 5000, 'restart delay'),
      maxAttempts: nonNegInt(rp.maxAttempts, 'restart max attempts'),
      windowMs: nonNegInt(rp.windowMs, 'restart window'),
    },
    updateConfig: rolloutConfig(input.updateConfig, 'update'),
    rollbackConfig: rolloutConfig(input.rollbackConfig, 'rollback'),
    stopGracePeriodMs: nonNegInt(input.stopGracePeriodMs ?? 10_000, 'stop grace period'),
    constraints,
    forceUpdate: nonNegInt(input.forceUpdate, 'force update counter'),
    resources: validateResources(input.resources),
    placementPrefs,
    healthcheck: validateHealthcheck(input.healthcheck),
  };
}
