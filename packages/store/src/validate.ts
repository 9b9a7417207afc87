// Shape validation of store objects. Every object that enters the store (through a transaction or
// a snapshot) passes through normalize(): it checks every field's type and range, rejects missing
// and unknown fields, and returns a fresh copy with a fixed key order (the schema's) and sorted
// label maps, so equal objects serialize to equal bytes on every member. The copy is deep-frozen:
// the store hands it out to readers as is.

import type {
  Cluster,
  ClusterSpec,
  JoinTokens,
  ManagerStatus,
  Node,
  NodeDescription,
  NodeResources,
  NodeSpec,
  NodeStatus,
  ObjectKind,
  PortConfig,
  RestartPolicy,
  Service,
  ServiceSpec,
  StoreObject,
  Task,
  TaskStatus,
  HealthConfig,
  ResourceRequirements,
  SealedSecret,
  LegacyCaKey,
  UpdateConfig,
  UpdateStatus,
} from './types.js';
import {
  NODE_AVAILABILITIES,
  NODE_ROLES,
  NODE_STATES,
  OBJECT_KINDS,
  PROTOCOLS,
  PUBLISH_MODES,
  RESTART_CONDITIONS,
  SERVICE_MODES,
  TASK_STATES,
  UPDATE_FAILURE_ACTIONS,
  UPDATE_ORDERS,
  UPDATE_STATES,
} from './types.js';

/** A validation failure; `message` names the offending field (e.g. `service.spec.replicas`). */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
}

type Check<T> = (v: unknown, path: string) => T;

function fail(path: string, what: string, v: unknown): never {
  throw new ValidationError(`${path} ${what} (got ${describe(v)})`);
}

function describe(v: unknown): string {
  if (v === undefined) return 'nothing';
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'object') return 'an object';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}...` : v);
  return `${typeof v} ${String(v)}`;
}

const MAX_STRING = 64 * 1024;

const str =
  (opts: { nonEmpty?: boolean; max?: number } = {}): Check<string> =>
  (v, p) => {
    if (typeof v !== 'string') fail(p, 'must be a string', v);
    if (opts.nonEmpty && v.length === 0) fail(p, 'must not be empty', v);
    if (v.length > (opts.max ?? MAX_STRING)) fail(p, `must be at most ${opts.max ?? MAX_STRING} characters`, v);
    return v;
  };

const int =
  (min: number, max: number = Number.MAX_SAFE_INTEGER): Check<number> =>
  (v, p) => {
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < min || v > max) {
      fail(p, min === 0 && max === Number.MAX_SAFE_INTEGER ? 'must be a non-negative integer' : `must be an integer in [${min}, ${max}]`, v);
    }
    return v;
  };

const uint = int(0);
const sint = int(Number.MIN_SAFE_INTEGER);

const oneOf =
  <T extends string>(values: readonly T[]): Check<T> =>
  (v, p) => {
    if (typeof v !== 'string' || !(values as readonly string[]).includes(v)) fail(p, `must be one of ${values.join(', ')}`, v);
    return v as T;
  };

const arrayOf =
  <T>(item: Check<T>): Check<T[]> =>
  (v, p) => {
    if (!Array.isArray(v)) fail(p, 'must be an array', v);
    return v.map((x, i) => item(x, `${p}[${i}]`));
  };

const nullable =
  <T>(c: Check<T>): Check<T | null> =>
  (v, p) =>
    v === null ? null : c(v, p);

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A string → string map; keys come out sorted (a canonical form). */
const stringMap: Check<Record<string, string>> = (v, p) => {
  if (!isPlainObject(v)) fail(p, 'must be an object of strings', v);
  const keys = Object.keys(v).sort();
  // Object.fromEntries defines own properties, so a "__proto__" key stays a plain key.
  return Object.fromEntries(keys.map((k) => [k, str()(v[k], `${p}.${k}`)]));
};

/** A string → non-negative integer map; keys come out sorted. */
const uintMap: Check<Record<string, number>> = (v, p) => {
  if (!isPlainObject(v)) fail(p, 'must be an object of non-negative integers', v);
  const keys = Object.keys(v).sort();
  return Object.fromEntries(keys.map((k) => [k, uint(v[k], `${p}.${k}`)]));
};

type Schema<T> = { [K in keyof T]-?: Check<T[K]> };

const DEFAULT = Symbol('default');
/** A field added after objects were first stored: a missing value (an older entry) takes `d`. */
const withDefault = <T>(c: Check<T>, d: T): Check<T> => Object.assign((v: unknown, p: string) => c(v, p), { [DEFAULT]: d });

const bool: Check<boolean> = (v, p) => {
  if (typeof v !== 'boolean') fail(p, 'must be true or false', v);
  return v;
};

function obj<T>(schema: Schema<T>): Check<T> {
  const fields = Object.keys(schema) as (keyof T & string)[];
  const known = new Set<string>(fields);
  return (v, p) => {
    if (!isPlainObject(v)) fail(p, 'must be an object', v);
    for (const k of Object.keys(v)) if (!known.has(k)) throw new ValidationError(`${p}.${k} is not a known field`);
    const out = {} as Record<string, unknown>;
    for (const k of fields) {
      const check = schema[k] as Check<unknown> & { [DEFAULT]?: unknown };
      if (!Object.hasOwn(v, k)) {
        if (!(DEFAULT in check)) throw new ValidationError(`${p}.${k} is missing`);
        out[k] = structuredClone(check[DEFAULT]);
        continue;
      }
      out[k] = check(v[k], `${p}.${k}`);
    }
    return out as T;
  };
}

const id = str({ nonEmpty: true, max: 256 });

const meta = { id, version: uint, createdAt: sint, updatedAt: sint };

// ------------------------------------------------------------------ cluster

const clusterSpec = obj<ClusterSpec>({
  name: str(),
  heartbeatPeriodMs: int(1),
  nodeDownAfterBeats: int(1),
  taskHistoryLimit: uint,
  // @shoal/pki's MIN_CERT_EXPIRY_MS and DEFAULT_CERT_EXPIRY_MS (the store does not depend on pki;
  // the control API checks the full range before anything is stored).
  certExpiryMs: withDefault(int(10_000), 90 * 24 * 3600_000),
});

const joinTokens = obj<JoinTokens>({ worker: str(), manager: str() });

const base64 = (max: number): Check<string> => (v, p) => {
  const s = str({ nonEmpty: true, max })(v, p);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s)) fail(p, 'must be base64', v);
  return s;
};

const sealedSecret = obj<SealedSecret>({
  alg: oneOf(['aes-256-gcm']),
  kekId: str({ nonEmpty: true, max: 64 }),
  nonce: base64(64),
  data: base64(MAX_STRING),
});

/**
 * The CA key as a cluster object holds it: sealed; or, from a release before keys were sealed, the
 * PEM itself (an empty string then meant no key). The plaintext form is read so an old data dir's
 * log and snapshots replay; the leader seals it (ca-key-migration.ts) and the store refuses it in
 * any new write (store.ts).
 */
const caKey: Check<SealedSecret | LegacyCaKey | null> = (v, p) => {
  if (v === null || v === '') return null;
  if (typeof v === 'string') {
    if (!v.startsWith('-----BEGIN ')) fail(p, 'must be a sealed secret', '(a string that is not a PEM key)');
    return str({ max: MAX_STRING })(v, p);
  }
  return sealedSecret(v, p);
};

const cluster = obj<Cluster>({
  ...meta,
  spec: clusterSpec,
  caFingerprint: str(),
  caCert: str(),
  caKey: withDefault(caKey, null),
  joinTokens,
  removedNodes: withDefault(arrayOf(id), []),
  removedNodeExpiry: withDefault(uintMap, {}),
  longestCertExpiryMs: withDefault(uint, 0),
});

// ------------------------------------------------------------------ nodes

const nodeSpec = obj<NodeSpec>({
  role: oneOf(NODE_ROLES),
  availability: oneOf(NODE_AVAILABILITIES),
  labels: stringMap,
});

const nodeResources = obj<NodeResources>({ nanoCpus: uint, memoryBytes: uint });

const nodeDescription = obj<NodeDescription>({
  hostname: str(),
  platform: obj<{ os: string; arch: string }>({ os: str(), arch: str() }),
  resources: nodeResources,
  engineVersion: str(),
});

const nodeStatus = obj<NodeStatus>({
  state: oneOf(NODE_STATES),
  message: str(),
  addr: str(),
  meshAddr: withDefault(str({ max: 300 }), ''),
  meshErrors: withDefault(arrayOf(str({ max: 1000 })), []),
});

const managerStatus = obj<ManagerStatus>({ raftId: str({ nonEmpty: true }), addr: str() });

const node = obj<Node>({
  ...meta,
  spec: nodeSpec,
  description: nodeDescription,
  status: nodeStatus,
  managerStatus: nullable(managerStatus),
});

// ------------------------------------------------------------------ services

const portConfig = obj<PortConfig>({
  protocol: oneOf(PROTOCOLS),
  targetPort: int(1, 65535),
  publishedPort: int(0, 65535),
  publishMode: oneOf(PUBLISH_MODES),
  proxyProtocol: withDefault(bool, false),
});

const restartPolicy = obj<RestartPolicy>({
  condition: oneOf(RESTART_CONDITIONS),
  delayMs: uint,
  maxAttempts: uint,
  windowMs: uint,
});

const ratio: Check<number> = (v, p) => {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) fail(p, 'must be a number in [0, 1]', v);
  return v;
};

const updateConfig = obj<UpdateConfig>({
  parallelism: uint,
  delayMs: uint,
  failureAction: oneOf(UPDATE_FAILURE_ACTIONS),
  order: oneOf(UPDATE_ORDERS),
  monitorMs: withDefault(uint, 5_000),
  maxFailureRatio: withDefault(ratio, 0),
});

const updateStatus = obj<UpdateStatus>({
  state: oneOf(UPDATE_STATES),
  startedAt: sint,
  completedAt: sint,
  message: str({ max: 1000 }),
});

const serviceSpecShape = obj<ServiceSpec>({
  name: str({ nonEmpty: true, max: 255 }),
  labels: stringMap,
  image: str({ nonEmpty: true }),
  command: arrayOf(str()),
  args: arrayOf(str()),
  env: arrayOf(str()),
  mode: oneOf(SERVICE_MODES),
  replicas: uint,
  ports: arrayOf(portConfig),
  restartPolicy,
  updateConfig,
  rollbackConfig: withDefault(updateConfig, { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first', monitorMs: 5_000, maxFailureRatio: 0 }),
  stopGracePeriodMs: uint,
  constraints: arrayOf(str()),
  forceUpdate: withDefault(uint, 0),
  placementPrefs: withDefault(arrayOf(str()), []),
  healthcheck: withDefault(nullable(obj<HealthConfig>({ test: arrayOf(str()), intervalMs: uint, timeoutMs: uint, retries: uint, startPeriodMs: uint })), null),
  resources: withDefault(obj<ResourceRequirements>({ limits: nodeResources, reservations: nodeResources }), {
    limits: { nanoCpus: 0, memoryBytes: 0 },
    reservations: { nanoCpus: 0, memoryBytes: 0 },
  }),
});

const serviceSpec: Check<ServiceSpec> = (v, p) => {
  const s = serviceSpecShape(v, p);
  if (s.mode === 'global' && s.replicas !== 0) fail(`${p}.replicas`, 'must be 0 in global mode', s.replicas);
  return s;
};

const service = obj<Service>({ ...meta, spec: serviceSpec, previousSpec: nullable(serviceSpec), specVersion: uint, updateStatus: withDefault(nullable(updateStatus), null) });

// ------------------------------------------------------------------ tasks

const taskState = oneOf(TASK_STATES);

const taskStatus = obj<TaskStatus>({
  state: taskState,
  timestamp: sint,
  message: str(),
  err: str(),
  containerId: str(),
  exitCode: int(-2147483648, 2147483647),
});

const taskShape = obj<Task>({
  ...meta,
  serviceId: id,
  serviceName: str(),
  slot: uint,
  nodeId: str({ max: 256 }),
  desiredState: taskState,
  status: taskStatus,
  spec: serviceSpec,
  specVersion: uint,
});

const task: Check<Task> = (v, p) => {
  const t = taskShape(v, p);
  if (t.spec.mode === 'global' && t.slot !== 0) fail(`${p}.slot`, 'must be 0 for a global-mode task', t.slot);
  if (t.spec.mode === 'replicated' && t.slot < 1) fail(`${p}.slot`, 'must be at least 1 for a replicated-mode task', t.slot);
  if (t.spec.mode === 'global' && t.nodeId === '') fail(`${p}.nodeId`, 'must be set for a global-mode task', t.nodeId);
  return t;
};

// ------------------------------------------------------------------ entry points

export { OBJECT_KINDS };

export function isObjectKind(k: unknown): k is ObjectKind {
  return typeof k === 'string' && (OBJECT_KINDS as readonly string[]).includes(k);
}

const CHECKS: { [K in ObjectKind]: Check<KindMap[K]> } = { cluster, node, service, task };

export interface KindMap {
  cluster: Cluster;
  node: Node;
  service: Service;
  task: Task;
}

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null && !Object.isFrozen(v)) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

/**
 * Validates `value` as an object of `kind` and returns a canonical, deep-frozen copy, with
 * `version` replaced when given. Throws ValidationError (message names the field) if malformed.
 */
export function normalize<K extends ObjectKind>(kind: K, value: unknown, version?: number): KindMap[K] {
  const out = CHECKS[kind](value, kind) as KindMap[K] & StoreObject;
  if (version !== undefined) out.version = version;
  return deepFreeze(out);
}
