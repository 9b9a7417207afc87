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
  Network,
  Node,
  NodeDescription,
  NodeSpec,
  NodeStatus,
  ObjectKind,
  Service,
  StoreObject,
  Task,
  TaskStatus,
  SealedSecret,
  LegacyCaKey,
  UpdateStatus,
  JobStatus,
  Secret,
  SecretSpec,
  Config,
  ConfigSpec,
} from './types.js';
import { NODE_AVAILABILITIES, NODE_ROLES, NODE_STATES, OBJECT_KINDS, TASK_STATES, UPDATE_STATES, isPerNodeMode } from './types.js';
import {
  type Check,
  CERT_EXPIRY,
  DEFAULT_CERT_EXPIRY_MS,
  MAX_STRING,
  ValidationError,
  arrayOf,
  fail,
  int,
  endpointShape,
  networkAttachmentShape,
  networkShape,
  NO_ENDPOINT,
  nodeResourcesShape,
  nullable,
  obj,
  oneOf,
  sealedSecretShape,
  serviceSpecShape,
  sint,
  str,
  stringMap,
  uint,
  uintMap,
  withDefault,
  MAX_FILE_DATA_BYTES,
  checkFileName,
  SpecError,
} from '@shoal/types';

export { ValidationError };

const id = str({ nonEmpty: true, max: 256 });

const meta = { id, version: uint, createdAt: sint, updatedAt: sint };

// ------------------------------------------------------------------ cluster

const clusterSpec = obj<ClusterSpec>({
  name: str(),
  heartbeatPeriodMs: int(1),
  nodeDownAfterBeats: int(1),
  taskHistoryLimit: uint,
  // The control API checks the full range (cluster-settings.ts) before anything is stored.
  certExpiryMs: withDefault(int(CERT_EXPIRY.minMs), DEFAULT_CERT_EXPIRY_MS),
});

const joinTokens = obj<JoinTokens>({ worker: str(), manager: str() });

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
  return sealedSecretShape(v, p);
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
  unlockKey: withDefault(nullable(sealedSecretShape), null),
});

// ------------------------------------------------------------------ nodes

const nodeSpec = obj<NodeSpec>({
  role: oneOf(NODE_ROLES),
  availability: oneOf(NODE_AVAILABILITIES),
  labels: stringMap,
});


const nodeDescription = obj<NodeDescription>({
  hostname: str(),
  platform: obj<{ os: string; arch: string }>({ os: str(), arch: str() }),
  resources: nodeResourcesShape,
  engineVersion: str(),
});

const nodeStatus = obj<NodeStatus>({
  state: oneOf(NODE_STATES),
  message: str(),
  addr: str(),
  meshAddr: withDefault(str({ max: 300 }), ''),
  meshErrors: withDefault(arrayOf(str({ max: 1000 })), []),
  meshMode: withDefault(str({ max: 20 }), ''),
});

const managerStatus = obj<ManagerStatus>({ raftId: str({ nonEmpty: true }), addr: str() });

const node = obj<Node>({
  ...meta,
  spec: nodeSpec,
  description: nodeDescription,
  status: nodeStatus,
  managerStatus: nullable(managerStatus),
  attachments: withDefault(arrayOf(networkAttachmentShape), []),
});

// ------------------------------------------------------------------ services (the spec: @shoal/types service-spec.ts)

const updateStatus = obj<UpdateStatus>({
  state: oneOf(UPDATE_STATES),
  startedAt: sint,
  completedAt: sint,
  message: str({ max: 1000 }),
});

const service = obj<Service>({
  ...meta,
  spec: serviceSpecShape,
  previousSpec: nullable(serviceSpecShape),
  specVersion: uint,
  updateStatus: withDefault(nullable(updateStatus), null),
  endpoint: withDefault(endpointShape, NO_ENDPOINT),
  jobStatus: withDefault(nullable(obj<JobStatus>({ jobIteration: uint, lastExecution: sint })), null),
});

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
  spec: serviceSpecShape,
  specVersion: uint,
  networks: withDefault(arrayOf(networkAttachmentShape), []),
  jobIteration: withDefault(uint, 0),
});

const task: Check<Task> = (v, p) => {
  const t = taskShape(v, p);
  const perNode = isPerNodeMode(t.spec.mode);
  if (perNode && t.slot !== 0) fail(`${p}.slot`, `must be 0 for a ${t.spec.mode}-mode task`, t.slot);
  if (!perNode && t.slot < 1) fail(`${p}.slot`, `must be at least 1 for a ${t.spec.mode}-mode task`, t.slot);
  if (perNode && t.nodeId === '') fail(`${p}.nodeId`, `must be set for a ${t.spec.mode}-mode task`, t.nodeId);
  return t;
};

// ------------------------------------------------------------------ secrets and configs

/** Swarm's name rule, in the store's words. */
const fileName = (kind: 'secret' | 'config'): Check<string> => (v, p) => {
  const name = str({ nonEmpty: true, max: 64 })(v, p);
  try {
    return checkFileName(name, kind);
  } catch (err) {
    if (err instanceof SpecError) fail(p, err.message, v);
    throw err;
  }
};

const base64Of = (maxBytes: number): Check<string> => (v, p) => {
  const s = str({ nonEmpty: true, max: Math.ceil(maxBytes / 3) * 4 })(v, p);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length % 4 !== 0) fail(p, 'must be base64', '(not shown)');
  return s;
};

/** A sealed value as large as a sealed secret may be (@shoal/types' shape bounds a CA key's). */
const sealedData = obj<SealedSecret>({
  alg: oneOf(['aes-256-gcm']),
  kekId: str({ nonEmpty: true, max: 64 }),
  nonce: base64Of(48),
  // The data is sealed as base64 (a string), plus the 16-byte tag.
  data: base64Of(Math.ceil(MAX_FILE_DATA_BYTES / 3) * 4 + 16),
});

const secretShape = obj<Secret>({
  ...meta,
  spec: obj<SecretSpec>({ name: fileName('secret'), labels: stringMap }),
  size: int(1, MAX_FILE_DATA_BYTES),
  // Only ever sealed: the shape has no place for the data in the clear.
  data: sealedData,
});

const configShape: Check<Config> = (v, p) => {
  const c = obj<Config>({ ...meta, spec: obj<ConfigSpec>({ name: fileName('config'), labels: stringMap, data: base64Of(MAX_FILE_DATA_BYTES) }) })(v, p);
  if (Buffer.byteLength(c.spec.data, 'base64') > MAX_FILE_DATA_BYTES) fail(`${p}.spec.data`, `must be at most ${MAX_FILE_DATA_BYTES} bytes`, '(not shown)');
  return c;
};

// ------------------------------------------------------------------ entry points

export { OBJECT_KINDS };

export function isObjectKind(k: unknown): k is ObjectKind {
  return typeof k === 'string' && (OBJECT_KINDS as readonly string[]).includes(k);
}

const CHECKS: { [K in ObjectKind]: Check<KindMap[K]> } = { cluster, node, service, task, network: networkShape, secret: secretShape, config: configShape };

export interface KindMap {
  cluster: Cluster;
  node: Node;
  service: Service;
  task: Task;
  network: Network;
  secret: Secret;
  config: Config;
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
