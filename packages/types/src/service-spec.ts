// A service spec's rules, in one place: its shape (what the store takes in, in every write and at
// rest), Swarm's defaults for what a client left unset, and the rules a new spec must pass at the
// edge. The control API completes and checks every spec with completeServiceSpec(); the CLI runs
// the same function before it sends anything, and its flag parsers use the same rules, so a spec
// the CLI accepts is one the manager accepts. A new spec field: proto/types.proto, one line in
// SPEC_SHAPE (plus a default and a rule in completeServiceSpec when it has them), and its flag.

import {
  type Check,
  arrayOf,
  bool,
  fail,
  int,
  nullable,
  sint,
  obj,
  oneOf,
  sealedSecretShape,
  str,
  stringMap,
  uint,
  withDefault,
} from './check.js';
import {
  ENDPOINT_MODES,
  MOUNT_TYPES,
  PROTOCOLS,
  PUBLISH_MODES,
  RESTART_CONDITIONS,
  SERVICE_MODES,
  UPDATE_FAILURE_ACTIONS,
  UPDATE_ORDERS,
  type EndpointMode,
  type RestartCondition,
  type ServiceMode,
  isJobMode,
  isPerNodeMode,
  type UpdateFailureAction,
} from './enums.js';
import type {
  ConfigReference,
  DnsConfig,
  HealthConfig,
  LogDriver,
  Mount,
  NetworkAttachmentConfig,
  NodeResources,
  PortConfig,
  ResourceRequirements,
  RestartPolicy,
  SecretReference,
  ServiceSpec,
  TmpfsOptions,
  Ulimit,
  UpdateConfig,
  VolumeOptions,
} from './objects.js';
import { invalid } from './spec-error.js';
import {
  checkDnsOption,
  checkDnsSearch,
  checkHostnameTemplate,
  checkLogDriverName,
  checkMount,
  checkNameserver,
  checkStopSignal,
  checkSysctl,
  checkUlimit,
  checkUser,
  effectiveCapabilities,
} from './container-spec.js';

const q = (s: string): string => JSON.stringify(s);

// ------------------------------------------------------------------ defaults (Swarm's)

/** An update's and a rollback's settings when none are given. */
export const ROLLOUT_DEFAULTS: Readonly<UpdateConfig> = Object.freeze({
  parallelism: 1,
  delayMs: 0,
  failureAction: 'pause',
  order: 'stop-first',
  monitorMs: 5_000,
  maxFailureRatio: 0,
});

export const RESTART_DEFAULTS: Readonly<RestartPolicy> = Object.freeze({ condition: 'any', delayMs: 5_000, maxAttempts: 0, windowMs: 0 });

export const NO_RESOURCES: Readonly<ResourceRequirements> = Object.freeze({
  limits: Object.freeze({ nanoCpus: 0, memoryBytes: 0 }),
  reservations: Object.freeze({ nanoCpus: 0, memoryBytes: 0 }),
});

/** The scalar defaults of a new service. */
export const SPEC_DEFAULTS = Object.freeze({ replicas: 1, stopGracePeriodMs: 10_000 });

/**
 * The fields a spec stored before they existed reads as (what `docker service create` leaves
 * them at): the image's and the engine's own settings, no mounts, secrets or configs.
 */
export const CONTAINER_DEFAULTS = Object.freeze({
  entrypoint: [] as string[],
  user: '',
  hostname: '',
  dnsConfig: null,
  init: false,
  stopSignal: '',
  readOnly: false,
  capAdd: [] as string[],
  capDrop: [] as string[],
  sysctls: {} as Record<string, string>,
  ulimits: [] as Ulimit[],
  containerLabels: {} as Record<string, string>,
  logDriver: null,
  tty: false,
  maxReplicasPerNode: 0,
  mounts: [] as Mount[],
  secrets: [] as SecretReference[],
  configs: [] as ConfigReference[],
  maxConcurrent: 0,
} satisfies Partial<ServiceSpec>);

export const MAX_REPLICAS = 10_000;
/** Docker refuses smaller memory limits. */
export const MIN_MEMORY_LIMIT = 6 << 20;

// ------------------------------------------------------------------ shape (the store)

export const nodeResourcesShape = obj<NodeResources>({ nanoCpus: uint, memoryBytes: uint });

const portShape = obj<PortConfig>({
  protocol: oneOf(PROTOCOLS),
  targetPort: int(1, 65535),
  publishedPort: int(0, 65535),
  publishMode: oneOf(PUBLISH_MODES),
  proxyProtocol: withDefault(bool, false),
});

const restartShape = obj<RestartPolicy>({
  condition: oneOf(RESTART_CONDITIONS),
  delayMs: uint,
  maxAttempts: uint,
  windowMs: uint,
});

const ratio: Check<number> = (v, p) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) fail(p, 'must be a number in [0, 1]', v);
  return v;
};

const rolloutShape = obj<UpdateConfig>({
  parallelism: uint,
  delayMs: uint,
  failureAction: oneOf(UPDATE_FAILURE_ACTIONS),
  order: oneOf(UPDATE_ORDERS),
  monitorMs: withDefault(uint, ROLLOUT_DEFAULTS.monitorMs),
  maxFailureRatio: withDefault(ratio, 0),
});

const healthShape = obj<HealthConfig>({ test: arrayOf(str()), intervalMs: uint, timeoutMs: uint, retries: uint, startPeriodMs: uint });

const dnsShape = obj<DnsConfig>({ nameservers: arrayOf(str({ max: 255 })), search: arrayOf(str({ max: 255 })), options: arrayOf(str({ max: 255 })) });

const ulimitShape = obj<Ulimit>({ name: str({ nonEmpty: true, max: 64 }), soft: sint, hard: sint });

const logDriverShape = obj<LogDriver>({ name: str({ nonEmpty: true, max: 255 }), options: stringMap });

const mountShape = obj<Mount>({
  type: oneOf(MOUNT_TYPES),
  source: str({ max: 4096 }),
  target: str({ nonEmpty: true, max: 4096 }),
  readOnly: bool,
  volumeOptions: nullable(obj<VolumeOptions>({ noCopy: bool, labels: stringMap, driver: str({ max: 255 }), driverOptions: stringMap })),
  tmpfsOptions: nullable(obj<TmpfsOptions>({ sizeBytes: uint, mode: int(0, 0o7777) })),
  bindPropagation: str({ max: 16 }),
});

const fileRefFields = { target: str({ nonEmpty: true, max: 4096 }), uid: str({ max: 32 }), gid: str({ max: 32 }), mode: int(0, 0o7777) };

const secretRefShape = obj<SecretReference>({ secretId: str({ nonEmpty: true, max: 64 }), secretName: str({ nonEmpty: true, max: 255 }), ...fileRefFields });

const configRefShape = obj<ConfigReference>({ configId: str({ nonEmpty: true, max: 64 }), configName: str({ nonEmpty: true, max: 255 }), ...fileRefFields });

/** Every field of a service spec (a field added after specs were first stored has a default). */
const SPEC_SHAPE = obj<ServiceSpec>({
  name: str({ nonEmpty: true, max: 255 }),
  labels: stringMap,
  image: str({ nonEmpty: true }),
  command: arrayOf(str()),
  args: arrayOf(str()),
  env: arrayOf(str()),
  mode: oneOf(SERVICE_MODES),
  replicas: uint,
  ports: arrayOf(portShape),
  restartPolicy: restartShape,
  updateConfig: rolloutShape,
  rollbackConfig: withDefault(rolloutShape, ROLLOUT_DEFAULTS),
  stopGracePeriodMs: uint,
  constraints: arrayOf(str()),
  forceUpdate: withDefault(uint, 0),
  placementPrefs: withDefault(arrayOf(str()), []),
  healthcheck: withDefault(nullable(healthShape), null),
  resources: withDefault(obj<ResourceRequirements>({ limits: nodeResourcesShape, reservations: nodeResourcesShape }), NO_RESOURCES),
  workdir: withDefault(str({ max: 4096 }), ''),
  networks: withDefault(arrayOf(obj<NetworkAttachmentConfig>({ target: str({ nonEmpty: true, max: 256 }), aliases: arrayOf(str({ max: 63 })) })), []),
  endpointMode: withDefault(oneOf(ENDPOINT_MODES), 'vip'),
  registryAuth: withDefault(nullable(sealedSecretShape), null),
  entrypoint: withDefault(arrayOf(str()), CONTAINER_DEFAULTS.entrypoint),
  user: withDefault(str({ max: 255 }), CONTAINER_DEFAULTS.user),
  hostname: withDefault(str({ max: 255 }), CONTAINER_DEFAULTS.hostname),
  dnsConfig: withDefault(nullable(dnsShape), CONTAINER_DEFAULTS.dnsConfig),
  init: withDefault(bool, CONTAINER_DEFAULTS.init),
  stopSignal: withDefault(str({ max: 32 }), CONTAINER_DEFAULTS.stopSignal),
  readOnly: withDefault(bool, CONTAINER_DEFAULTS.readOnly),
  capAdd: withDefault(arrayOf(str({ nonEmpty: true, max: 64 })), CONTAINER_DEFAULTS.capAdd),
  capDrop: withDefault(arrayOf(str({ nonEmpty: true, max: 64 })), CONTAINER_DEFAULTS.capDrop),
  sysctls: withDefault(stringMap, CONTAINER_DEFAULTS.sysctls),
  ulimits: withDefault(arrayOf(ulimitShape), CONTAINER_DEFAULTS.ulimits),
  containerLabels: withDefault(stringMap, CONTAINER_DEFAULTS.containerLabels),
  logDriver: withDefault(nullable(logDriverShape), CONTAINER_DEFAULTS.logDriver),
  tty: withDefault(bool, CONTAINER_DEFAULTS.tty),
  maxReplicasPerNode: withDefault(uint, CONTAINER_DEFAULTS.maxReplicasPerNode),
  mounts: withDefault(arrayOf(mountShape), CONTAINER_DEFAULTS.mounts),
  secrets: withDefault(arrayOf(secretRefShape), CONTAINER_DEFAULTS.secrets),
  configs: withDefault(arrayOf(configRefShape), CONTAINER_DEFAULTS.configs),
  maxConcurrent: withDefault(uint, CONTAINER_DEFAULTS.maxConcurrent),
});

/**
 * The store's check of a spec: types and ranges only (what every stored spec, of any release,
 * satisfies), never the edge's rules, which may grow stricter without making old entries unreadable.
 */
export const serviceSpecShape: Check<ServiceSpec> = (v, p) => {
  const s = SPEC_SHAPE(v, p);
  if (isPerNodeMode(s.mode) && s.replicas !== 0) fail(`${p}.replicas`, `must be 0 in ${s.mode} mode`, s.replicas);
  return s;
};

// ------------------------------------------------------------------ rules (the edge)

/** SwarmKit's rule for service names (a DNS label): letters and digits, with `-`/`_` runs inside; 63 at most. */
export function checkServiceName(name: string): string {
  return checkDnsLabel(name, 'service', '--name NAME');
}

/** SwarmKit's name rule (validateAnnotations) for a service's or a network's name. */
export function checkDnsLabel(name: string, kind: 'service' | 'network' | 'alias', usage: string): string {
  if (name === '') invalid(`the ${kind} name is empty (${usage})`);
  if (name.length > 63) invalid(`invalid ${kind} name ${q(name)}: at most 63 characters`);
  if (!/^[a-zA-Z0-9](?:[-_]*[A-Za-z0-9]+)*$/.test(name)) {
    invalid(`invalid ${kind} name ${q(name)}: use letters, digits, '-' and '_' (starting and ending with a letter or digit)`);
  }
  return name;
}

/** An image reference: not empty, no whitespace. */
export function checkImage(image: string): string {
  const s = image.trim();
  if (s === '') invalid('the image is empty');
  if (/\s/.test(s)) invalid(`invalid image reference ${q(image)}`);
  return s;
}

/** `KEY=VALUE`: a non-empty key without spaces; the value may be empty (`KEY=`). */
export function parseEnv(value: string): { key: string; value: string; entry: string } {
  const i = value.indexOf('=');
  if (i < 0) invalid(`invalid environment variable ${q(value)}: expected KEY=VALUE`);
  const key = value.slice(0, i);
  if (key === '') invalid(`invalid environment variable ${q(value)}: the name before '=' is empty`);
  if (/\s/.test(key)) invalid(`invalid environment variable ${q(value)}: the name contains whitespace`);
  return { key, value: value.slice(i + 1), entry: value };
}

const CONSTRAINT_KEYS = ['node.id', 'node.hostname', 'node.role', 'node.platform.os', 'node.platform.arch'];

/**
 * A placement constraint `KEY==VALUE` or `KEY!=VALUE`, KEY being node.id, node.hostname,
 * node.role, node.platform.os, node.platform.arch or node.labels.NAME. Returns it normalized
 * (no spaces around the operator).
 */
export function parseConstraint(value: string): string {
  const m = /^\s*([^=!\s]+)\s*(==|!=)\s*(.*?)\s*$/.exec(value);
  if (!m) invalid(`invalid constraint ${q(value)}: expected KEY==VALUE or KEY!=VALUE, like node.role==manager`);
  const [, key, op, v] = m;
  const known = CONSTRAINT_KEYS.includes(key!) || /^node\.labels\.[^.\s][^\s]*$/.test(key!);
  if (!known) {
    invalid(
      `invalid constraint ${q(value)}: unknown key ${q(key!)} (expected node.id, node.hostname, node.role, node.platform.os, node.platform.arch or node.labels.NAME)`,
    );
  }
  if (v === '') invalid(`invalid constraint ${q(value)}: the value after ${op} is empty`);
  if (v!.includes('==') || v!.includes('!=')) invalid(`invalid constraint ${q(value)}: more than one operator`);
  if (key === 'node.role' && v !== 'manager' && v !== 'worker') invalid(`invalid constraint ${q(value)}: node.role is manager or worker`);
  return `${key}${op}${v}`;
}

/** `spread=node.labels.KEY` (Swarm's only placement strategy). */
export function parsePlacementPref(value: string): string {
  const v = value.trim();
  if (!/^spread=node\.labels\.[^=\s]+$/.test(v)) invalid(`invalid placement preference ${q(value)}: expected spread=node.labels.KEY, like spread=node.labels.zone`);
  return v;
}

/** The failure actions an update (pause, continue, rollback) or a rollback (no rollback of a rollback) may take. */
export function failureActionsOf(which: 'update' | 'rollback'): readonly UpdateFailureAction[] {
  return which === 'update' ? UPDATE_FAILURE_ACTIONS : UPDATE_FAILURE_ACTIONS.filter((a) => a !== 'rollback');
}

/** "a, b or c". */
export function orList(xs: readonly string[]): string {
  return xs.length < 2 ? xs.join('') : `${xs.slice(0, -1).join(', ')} or ${xs.at(-1)}`;
}

/** Rules that span a spec's ports: each published port once, PROXY protocol only where the mesh sends it. */
export function checkPorts(ports: readonly PortConfig[]): PortConfig[] {
  const seen = new Set<string>();
  for (const p of ports) {
    if (p.publishedPort === 0) invalid(`port ${p.targetPort}/${p.protocol}: a published port is required`);
    const key = `${p.publishedPort}/${p.protocol}`;
    if (seen.has(key)) invalid(`published port ${key} is given twice`);
    seen.add(key);
    if (p.proxyProtocol && p.publishMode !== 'ingress') invalid(`port ${key}: the PROXY protocol is sent by the routing mesh: only with mode=ingress`);
    if (p.proxyProtocol && p.protocol !== 'tcp') invalid(`port ${key}: the PROXY protocol is for tcp ports`);
  }
  return [...ports];
}

/** A memory limit Docker accepts; reservations within the limits. */
export function checkResources(r: ResourceRequirements): ResourceRequirements {
  const { limits, reservations } = r;
  if (limits.memoryBytes > 0 && limits.memoryBytes < MIN_MEMORY_LIMIT) invalid(`a memory limit must be at least 6 MiB, not ${limits.memoryBytes} bytes`);
  if (limits.nanoCpus > 0 && reservations.nanoCpus > limits.nanoCpus) invalid('the CPUs reserved cannot exceed the CPU limit');
  if (limits.memoryBytes > 0 && reservations.memoryBytes > limits.memoryBytes) invalid('the memory reserved cannot exceed the memory limit');
  return r;
}

/** A container's working directory (`--workdir`): an absolute path, as Docker requires; empty keeps the image's. */
export function checkWorkdir(dir: string): string {
  if (dir !== '' && !dir.startsWith('/')) invalid(`invalid working directory ${q(dir)}: it must be an absolute path`);
  if (dir.length > 4096) invalid('the working directory is longer than 4096 characters');
  return dir;
}

/** Docker's health check test: ["CMD", argv...], ["CMD-SHELL", cmd] or ["NONE"]. */
export function checkHealthTest(test: readonly string[]): string[] {
  const kind = test[0];
  if (kind === 'NONE') {
    if (test.length !== 1) invalid('a health check of NONE takes no command');
  } else if (kind === 'CMD' || kind === 'CMD-SHELL') {
    if (test.length < 2 || test[1]!.trim() === '') invalid(`a ${kind} health check needs a command`);
  } else {
    invalid(`a health check must start with CMD, CMD-SHELL or NONE, not ${q(String(kind))}`);
  }
  return [...test];
}

// ------------------------------------------------------------------ completion (the edge)

/** A spec as a client sends it: any field may be missing (or null, or the wire's zero value). */
export type SpecInput = Partial<
  Omit<
    ServiceSpec,
    | 'ports'
    | 'restartPolicy'
    | 'updateConfig'
    | 'rollbackConfig'
    | 'resources'
    | 'healthcheck'
    | 'registryAuth'
    | 'networks'
    | 'endpointMode'
    | 'dnsConfig'
    | 'ulimits'
    | 'logDriver'
    | 'mounts'
    | 'secrets'
    | 'configs'
  >
> & {
  dnsConfig?: Partial<DnsConfig> | null;
  ulimits?: Partial<Ulimit>[] | null;
  logDriver?: Partial<LogDriver> | null;
  mounts?: (Partial<Omit<Mount, 'volumeOptions' | 'tmpfsOptions' | 'type'>> & {
    type?: string | null;
    volumeOptions?: Partial<VolumeOptions> | null;
    tmpfsOptions?: Partial<TmpfsOptions> | null;
  })[] | null;
  secrets?: Partial<SecretReference>[] | null;
  configs?: Partial<ConfigReference>[] | null;
  networks?: Partial<NetworkAttachmentConfig>[] | null;
  endpointMode?: string | null;
  ports?: Partial<PortConfig>[] | null;
  healthcheck?: Partial<HealthConfig> | null;
  resources?: { limits?: Partial<NodeResources> | null; reservations?: Partial<NodeResources> | null } | null;
  restartPolicy?: Partial<RestartPolicy> | null;
  updateConfig?: Partial<UpdateConfig> | null;
  rollbackConfig?: Partial<UpdateConfig> | null;
};

function nonNegInt(v: unknown, what: string, max = Number.MAX_SAFE_INTEGER): number {
  const n = Number(v ?? 0);
  if (!Number.isSafeInteger(n) || n < 0 || n > max) invalid(`${what} must be an integer between 0 and ${max}, not ${String(v)}`);
  return n;
}

function strings(v: unknown, what: string): string[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) invalid(`${what} must be a list of strings`);
  return [...v];
}

export function labelMap(v: unknown, what: string): Record<string, string> {
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) invalid(`${what} must be a map of strings`);
  const out: Record<string, string> = {};
  for (const [k, val] of Object.entries(v as Record<string, unknown>)) {
    if (!k) invalid(`${what}: empty key`);
    if (typeof val !== 'string') invalid(`${what}.${k} must be a string`);
    out[k] = val;
  }
  return out;
}

export function memberOf<T extends string>(v: unknown, values: readonly T[], fallback: T, what: string): T {
  const s = v === undefined || v === null || v === '' ? fallback : v;
  if (typeof s !== 'string' || !(values as readonly string[]).includes(s)) invalid(`${what} must be ${orList(values)}, not ${String(s)}`);
  return s as T;
}

/** An update's or a rollback's settings, with Swarm's defaults (a rollback cannot roll back). */
function completeRollout(input: Partial<UpdateConfig> | null | undefined, what: 'update' | 'rollback'): UpdateConfig {
  const uc = input ?? {};
  const maxFailureRatio = Number(uc.maxFailureRatio ?? 0);
  if (!Number.isFinite(maxFailureRatio) || maxFailureRatio < 0 || maxFailureRatio > 1) {
    invalid(`${what} max failure ratio must be between 0 and 1, not ${String(uc.maxFailureRatio)}`);
  }
  return {
    parallelism: nonNegInt(uc.parallelism ?? ROLLOUT_DEFAULTS.parallelism, `${what} parallelism`),
    delayMs: nonNegInt(uc.delayMs ?? ROLLOUT_DEFAULTS.delayMs, `${what} delay`),
    failureAction: memberOf(uc.failureAction, failureActionsOf(what), ROLLOUT_DEFAULTS.failureAction, `${what} failure action`),
    order: memberOf(uc.order, UPDATE_ORDERS, ROLLOUT_DEFAULTS.order, `${what} order`),
    // 0 (unset on the wire) is the default, as in Swarm.
    monitorMs: nonNegInt(uc.monitorMs, `${what} monitor`) || ROLLOUT_DEFAULTS.monitorMs,
    maxFailureRatio,
  };
}

function completePorts(ports: unknown): PortConfig[] {
  if (ports === undefined || ports === null) return [];
  if (!Array.isArray(ports)) invalid('ports must be a list');
  return checkPorts(
    ports.map((p: Partial<PortConfig>) => {
      const targetPort = Number(p.targetPort);
      if (!Number.isInteger(targetPort) || targetPort < 1 || targetPort > 65535) invalid(`target port must be 1-65535, not ${p.targetPort}`);
      const publishedPort = Number(p.publishedPort ?? 0);
      if (!Number.isInteger(publishedPort) || publishedPort < 0 || publishedPort > 65535) invalid(`published port must be 1-65535, not ${p.publishedPort}`);
      return {
        protocol: memberOf(p.protocol, PROTOCOLS, 'tcp', 'port protocol'),
        targetPort,
        publishedPort,
        publishMode: memberOf(p.publishMode, PUBLISH_MODES, 'ingress', 'publish mode'),
        proxyProtocol: p.proxyProtocol === true,
      };
    }),
  );
}

/**
 * The networks a service joins (`--network`): each once (by what the client named it; the control
 * API then checks the ids), its aliases DNS labels.
 */
function completeNetworks(v: SpecInput['networks']): NetworkAttachmentConfig[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) invalid('networks must be a list');
  const seen = new Set<string>();
  return v.map((n) => {
    const target = String(n?.target ?? '');
    if (target === '') invalid('a network attachment needs its network (--network NAME)');
    if (seen.has(target)) invalid(`network ${q(target)} is given twice`);
    seen.add(target);
    const aliases = [...new Set(strings(n.aliases, `the aliases of network ${q(target)}`).map((a) => checkDnsLabel(a, 'alias', `--network name=${target},alias=ALIAS`)))];
    return { target, aliases };
  });
}

/** Docker's rule: the routing mesh (ingress ports) needs a virtual IP; dnsrr publishes in host mode only. */
function checkEndpointMode(mode: EndpointMode, ports: SpecInput['ports']): EndpointMode {
  if (mode === 'dnsrr' && (ports ?? []).some((p) => (p.publishMode ?? 'ingress') === 'ingress')) {
    invalid('--endpoint-mode dnsrr cannot publish a port in ingress mode (publish it with mode=host)');
  }
  return mode;
}

function completeResources(r: SpecInput['resources']): ResourceRequirements {
  const read = (x: Partial<NodeResources> | null | undefined, what: string): NodeResources => ({
    nanoCpus: nonNegInt(x?.nanoCpus, `${what} CPUs (nanoCPUs)`),
    memoryBytes: nonNegInt(x?.memoryBytes, `${what} memory (bytes)`),
  });
  return checkResources({ limits: read(r?.limits, 'limit'), reservations: read(r?.reservations, 'reserved') });
}

function completeHealthcheck(h: Partial<HealthConfig> | null | undefined): HealthConfig | null {
  if (!h || !h.test || h.test.length === 0) return null;
  return {
    test: checkHealthTest(strings(h.test, 'health check')),
    intervalMs: nonNegInt(h.intervalMs, 'health interval'),
    timeoutMs: nonNegInt(h.timeoutMs, 'health timeout'),
    retries: nonNegInt(h.retries, 'health retries'),
    startPeriodMs: nonNegInt(h.startPeriodMs, 'health start period'),
  };
}

function completeDns(d: SpecInput['dnsConfig']): DnsConfig | null {
  if (!d) return null;
  const out = {
    nameservers: [...new Set(strings(d.nameservers, 'DNS servers').map(checkNameserver))],
    search: [...new Set(strings(d.search, 'DNS search domains').map(checkDnsSearch))],
    options: [...new Set(strings(d.options, 'DNS options').map(checkDnsOption))],
  };
  return out.nameservers.length + out.search.length + out.options.length === 0 ? null : out;
}

function completeUlimits(v: SpecInput['ulimits']): Ulimit[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) invalid('ulimits must be a list');
  const seen = new Set<string>();
  return v.map((u) => {
    const name = String(u?.name ?? '');
    if (seen.has(name)) invalid(`ulimit ${name} is given twice`);
    seen.add(name);
    const soft = Number(u.soft ?? 0);
    const hard = Number(u.hard ?? soft);
    checkUlimit(name, soft, hard);
    return { name, soft, hard };
  });
}

function completeLogDriver(l: SpecInput['logDriver']): LogDriver | null {
  if (!l || !l.name) {
    if (l?.options && Object.keys(l.options).length > 0) invalid('log options need a log driver (--log-driver)');
    return null;
  }
  return { name: checkLogDriverName(String(l.name)), options: labelMap(l.options, 'log options') };
}

function completeSysctls(v: SpecInput['sysctls']): Record<string, string> {
  const out = labelMap(v, 'sysctls');
  for (const [k, val] of Object.entries(out)) checkSysctl(k, val);
  return out;
}

/** Docker's rule: a limit of tasks per node is for replicated services (a global one has one per node). */
function completeMaxReplicasPerNode(v: unknown, mode: string): number {
  const n = nonNegInt(v, 'max replicas per node', MAX_REPLICAS);
  if (n > 0 && mode.startsWith('global')) invalid('--replicas-max-per-node can only be used with a replicated service');
  return n;
}

/** Each mount's fields as given, with the options only its type takes; targets once each. */
function completeMounts(v: SpecInput['mounts']): Mount[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) invalid('mounts must be a list');
  const seen = new Set<string>();
  return v.map((m) => {
    const type = memberOf(m?.type, MOUNT_TYPES, 'volume', 'a mount type');
    const vo = m.volumeOptions;
    const to = m.tmpfsOptions;
    const volumeOptions = vo
      ? { noCopy: vo.noCopy === true, labels: labelMap(vo.labels, 'volume labels'), driver: String(vo.driver ?? ''), driverOptions: labelMap(vo.driverOptions, 'volume driver options') }
      : null;
    const tmpfsOptions = to ? { sizeBytes: nonNegInt(to.sizeBytes, 'tmpfs size'), mode: nonNegInt(to.mode, 'tmpfs mode', 0o7777) } : null;
    const mount: Mount = {
      type,
      source: String(m.source ?? ''),
      target: String(m.target ?? ''),
      readOnly: m.readOnly === true,
      volumeOptions: type === 'volume' ? volumeOptions : null,
      tmpfsOptions: type === 'tmpfs' ? tmpfsOptions : null,
      bindPropagation: String(m.bindPropagation ?? ''),
    };
    // Options of another type than the mount's are refused, not dropped (only what says something counts).
    checkMount(mount, {
      volumeOptions: volumeOptions !== null && (volumeOptions.noCopy || volumeOptions.driver !== '' || Object.keys(volumeOptions.labels).length + Object.keys(volumeOptions.driverOptions).length > 0),
      tmpfsOptions: tmpfsOptions !== null && (tmpfsOptions.sizeBytes > 0 || tmpfsOptions.mode > 0),
      bindPropagation: mount.bindPropagation !== '',
    });
    if (seen.has(mount.target)) invalid(`mount target ${mount.target} is given twice`);
    seen.add(mount.target);
    return mount;
  });
}

/** A secret's or config's file: a target (default: its name; a config's an absolute path), owner and mode. */
function completeFileRef(r: { target?: string | null; uid?: string | null; gid?: string | null; mode?: number | null }, name: string, what: 'secret' | 'config') {
  const target = String(r.target || (what === 'config' ? `/${name}` : name));
  return { target, uid: String(r.uid || '0'), gid: String(r.gid || '0'), mode: nonNegInt(r.mode || 0o444, `the mode of ${what} ${q(name)}`, 0o7777) };
}

function completeSecretRefs(v: SpecInput['secrets']): SecretReference[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) invalid('secrets must be a list');
  return v.map((r) => {
    const secretName = String(r?.secretName ?? '');
    if (secretName === '') invalid('a secret reference needs the secret (--secret NAME)');
    return { secretId: String(r.secretId || secretName), secretName, ...completeFileRef(r, secretName, 'secret') };
  });
}

function completeConfigRefs(v: SpecInput['configs']): ConfigReference[] {
  if (v === undefined || v === null) return [];
  if (!Array.isArray(v)) invalid('configs must be a list');
  return v.map((r) => {
    const configName = String(r?.configName ?? '');
    if (configName === '') invalid('a config reference needs the config (--config NAME)');
    return { configId: String(r.configId || configName), configName, ...completeFileRef(r, configName, 'config') };
  });
}

export interface CompleteOptions {
  /**
   * The name the service has now (an update): kept without the name rule, so a service named
   * under an older, looser rule can still be updated.
   */
  currentName?: string;
}

/** Checks a spec from a client against every rule and fills in Swarm's defaults. Throws a SpecError. */
export function completeServiceSpec(input: SpecInput | null | undefined, opts: CompleteOptions = {}): ServiceSpec {
  if (!input) invalid('a service spec is required');
  const name = String(input.name ?? '');
  if (name !== opts.currentName) checkServiceName(name);
  const image = checkImage(String(input.image ?? ''));
  const mode = memberOf(input.mode, SERVICE_MODES, 'replicated', 'mode');
  const replicas = nonNegInt(input.replicas ?? (isPerNodeMode(mode) ? 0 : SPEC_DEFAULTS.replicas), 'replicas', MAX_REPLICAS);
  if (isPerNodeMode(mode) && replicas !== 0) invalid(`replicas cannot be set on a ${mode === 'global' ? 'global service' : 'global job'}`);
  const rp = input.restartPolicy ?? {};
  const job = checkJob(mode, replicas, input);
  return {
    name,
    labels: labelMap(input.labels, 'labels'),
    image,
    command: strings(input.command, 'command'),
    args: strings(input.args, 'args'),
    env: strings(input.env, 'env').map((e) => parseEnv(e).entry),
    mode,
    replicas,
    ports: completePorts(input.ports),
    restartPolicy: {
      condition: job.restartCondition,
      delayMs: nonNegInt(rp.delayMs ?? RESTART_DEFAULTS.delayMs, 'restart delay'),
      maxAttempts: nonNegInt(rp.maxAttempts, 'restart max attempts'),
      windowMs: nonNegInt(rp.windowMs, 'restart window'),
    },
    updateConfig: completeRollout(input.updateConfig, 'update'),
    rollbackConfig: completeRollout(input.rollbackConfig, 'rollback'),
    stopGracePeriodMs: nonNegInt(input.stopGracePeriodMs ?? SPEC_DEFAULTS.stopGracePeriodMs, 'stop grace period'),
    constraints: [...new Set(strings(input.constraints, 'constraints').map(parseConstraint))],
    forceUpdate: nonNegInt(input.forceUpdate, 'force update counter'),
    resources: completeResources(input.resources),
    placementPrefs: [...new Set(strings(input.placementPrefs, 'placement preferences').map(parsePlacementPref))],
    healthcheck: completeHealthcheck(input.healthcheck),
    workdir: checkWorkdir(String(input.workdir ?? '')),
    networks: completeNetworks(input.networks),
    endpointMode: checkEndpointMode(memberOf(input.endpointMode, ENDPOINT_MODES, 'vip', 'the endpoint mode'), input.ports),
    // Never a client's: the control API seals the credentials a request carries (or keeps the
    // service's) into it.
    registryAuth: null,
    entrypoint: strings(input.entrypoint, 'entrypoint'),
    user: checkUser(String(input.user ?? '')),
    hostname: checkHostnameTemplate(String(input.hostname ?? '')),
    dnsConfig: completeDns(input.dnsConfig),
    init: input.init === true,
    stopSignal: checkStopSignal(String(input.stopSignal ?? '')),
    readOnly: input.readOnly === true,
    ...effectiveCapabilities(strings(input.capAdd, 'capabilities to add'), strings(input.capDrop, 'capabilities to drop')),
    sysctls: completeSysctls(input.sysctls),
    ulimits: completeUlimits(input.ulimits),
    containerLabels: labelMap(input.containerLabels, 'container labels'),
    logDriver: completeLogDriver(input.logDriver),
    tty: input.tty === true,
    maxReplicasPerNode: completeMaxReplicasPerNode(input.maxReplicasPerNode, mode),
    mounts: completeMounts(input.mounts),
    secrets: completeSecretRefs(input.secrets),
    configs: completeConfigRefs(input.configs),
    maxConcurrent: job.maxConcurrent,
  };
}

/**
 * Docker's rules for jobs (`--mode replicated-job|global-job`): `replicas` is the number of
 * completions a replicated job wants and `--max-concurrent` (its default) how many run at once;
 * a task that completes is never restarted, so the restart condition defaults to on-failure and
 * `any` is refused; a job is run again by an update, never rolled out, so it takes no update or
 * rollback settings.
 */
function checkJob(mode: ServiceMode, replicas: number, input: SpecInput): { maxConcurrent: number; restartCondition: RestartCondition } {
  const given = nonNegInt(input.maxConcurrent, 'max concurrent', MAX_REPLICAS);
  const job = isJobMode(mode);
  const restartCondition = memberOf(input.restartPolicy?.condition, RESTART_CONDITIONS, job ? 'on-failure' : RESTART_DEFAULTS.condition, 'restart condition');
  if (!job) {
    if (given !== 0) invalid('--max-concurrent is only for replicated jobs (--mode replicated-job)');
    return { maxConcurrent: 0, restartCondition };
  }
  if (restartCondition === 'any') invalid(`restart condition "any" is not allowed for a job: a task that completes is never run again (use on-failure or none)`);
  for (const [what, uc] of [['update', input.updateConfig], ['rollback', input.rollbackConfig]] as const) {
    if (uc && JSON.stringify(completeRollout(uc, what)) !== JSON.stringify(completeRollout(null, what))) {
      invalid(`a job is not rolled out: it takes no ${what} settings (--${what}-*); an update runs it again`);
    }
  }
  if (mode === 'global-job') {
    if (given !== 0) invalid('--max-concurrent is only for replicated jobs (a global job runs once on every node)');
    return { maxConcurrent: 0, restartCondition };
  }
  if (given > replicas) invalid(`max concurrent (${given}) cannot exceed replicas (${replicas}), the completions the job wants`);
  return { maxConcurrent: given || replicas, restartCondition };
}
