// The domain types and the generated wire types agree. The type-level checks below are compiled by
// `tsc -b` (a failing one is a build error); the tests then send domain objects through the real
// loader (@shoal/api) and get them back unchanged.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getMethodDefinition } from '@shoal/api';
import type { Domains, Equal, MessageName, Wire } from '../src/from-wire.js';
import type { ControlDefinition } from '../src/gen/shoal/control/Control.js';
import type { ServiceSpec as ServiceSpecIn } from '../src/gen/shoal/types/ServiceSpec.js';
import { CONTAINER_DEFAULTS } from '../src/service-spec.js';
import type {
  Cluster,
  ClusterSpec,
  ControlMethods,
  HealthConfig,
  ListTasksResponse,
  Meta,
  Node,
  NodeAvailability,
  NodeRole,
  NodeState,
  NodeView,
  Protocol,
  PublishMode,
  RestartCondition,
  Service,
  ServiceMode,
  ServiceSpec,
  Task,
  TaskState,
  EndpointMode,
  Network,
  NetworkDriver,
  UpdateFailureAction,
  UpdateOrder,
  UpdateState,
  ManagerStatus,
  UpdateStatus,
} from '../src/index.js';

// ------------------------------------------------------------------ type level

/** The fields a domain type has beyond its message: the store's own, never sent. */
interface StoreOnly {
  Cluster: 'caKey' | 'removedNodes' | 'removedNodeExpiry' | 'longestCertExpiryMs' | 'unlockKey';
  ClusterSpec: 'certExpiryMs';
  ServiceSpec: 'registryAuth';
  Secret: 'data';
}
type StoreOnlyOf<N> = N extends keyof StoreOnly ? StoreOnly[N] : never;

/** Bytes fields the store keeps as base64 (JSON has no bytes; protobuf takes base64 for them). */
interface Base64 {
  ConfigSpec: 'data';
  Config: 'spec'; // (a ConfigSpec: its data)
}
type Base64Of<N> = N extends keyof Base64 ? Base64[N] : never;

/**
 * The messages whose domain type disagrees with them: a domain type has exactly its message's
 * fields (and its store-only ones), and a domain object is a valid decoded message (its field
 * types are the wire's, or narrower).
 */
type Disagreements = {
  [N in keyof Domains & MessageName]: Equal<keyof Wire<N>, Exclude<keyof Domains[N], StoreOnlyOf<N>>> extends true
    ? Omit<Domains[N], StoreOnlyOf<N> | Base64Of<N>> extends Omit<Wire<N>, Base64Of<N>>
      ? never
      : [N, 'a field does not fit its wire type']
    : [N, 'fields differ from the message', Exclude<keyof Wire<N>, keyof Domains[N]> | Exclude<keyof Domains[N], keyof Wire<N> | StoreOnlyOf<N>>];
}[keyof Domains & MessageName];
const everyMessageAgrees: [Disagreements] extends [never] ? true : Disagreements = true;
// Every message of types.proto has a domain type.
const everyMessageHasADomainType: Equal<keyof Domains, MessageName> = true;

// The enumerations are the unions of enums.ts.
const enums: [
  Equal<Node['spec']['role'], NodeRole>,
  Equal<Node['spec']['availability'], NodeAvailability>,
  Equal<Node['status']['state'], NodeState>,
  Equal<ServiceSpec['ports'][number]['protocol'], Protocol>,
  Equal<ServiceSpec['ports'][number]['publishMode'], PublishMode>,
  Equal<ServiceSpec['restartPolicy']['condition'], RestartCondition>,
  Equal<ServiceSpec['updateConfig']['failureAction'], UpdateFailureAction>,
  Equal<ServiceSpec['rollbackConfig']['order'], UpdateOrder>,
  Equal<UpdateStatus['state'], UpdateState>,
  Equal<ServiceSpec['mode'], ServiceMode>,
  Equal<Task['status']['state'], TaskState>,
  Equal<Task['desiredState'], TaskState>,
  Equal<Network['spec']['driver'], NetworkDriver>,
  Equal<ServiceSpec['endpointMode'], EndpointMode>,
] = [true, true, true, true, true, true, true, true, true, true, true, true, true, true];

// Message fields are never null but these four; nested messages are the domain types.
const nullability: [
  Equal<Service['previousSpec'], ServiceSpec | null>,
  Equal<Service['updateStatus'], UpdateStatus | null>,
  Equal<ServiceSpec['healthcheck'], HealthConfig | null>,
  Equal<Node['managerStatus'], ManagerStatus | null>,
  Equal<Service['spec'], ServiceSpec>,
  Equal<Task['spec'], ServiceSpec>,
  Equal<Cluster['spec'], ClusterSpec>,
  Equal<Node['description']['resources']['memoryBytes'], number>,
  Equal<ServiceSpec['labels'], { [key: string]: string }>,
] = [true, true, true, true, true, true, true, true, true];

// Every object has the Meta fields, as the message has them.
const meta: [Equal<Pick<Wire<'Task'>, keyof Meta>, Meta>, Cluster extends Meta ? true : false, Node extends Meta ? true : false] = [true, true, true];

// A domain spec can be sent as it is; a response holds domain objects (null when absent).
const sendable: ServiceSpec extends ServiceSpecIn ? true : false = true;
const responses: [
  Equal<ListTasksResponse['tasks'][number]['task'], Task | null>,
  Equal<NodeView['node'], Node | null>,
  Equal<ControlMethods['GetService'][1]['service'], Service | null>,
  Equal<ControlMethods['ListTasks'][1], ListTasksResponse>,
] = [true, true, true, true];

// ControlMethods has every method of the service, and nothing else.
type Methods = keyof { [M in keyof ControlDefinition as string extends M ? never : M]: 0 };
const methods: Equal<keyof ControlMethods, Methods> = true;

// ------------------------------------------------------------------ run time

const spec: ServiceSpec = {
  name: 'web',
  labels: { tier: 'front' },
  image: 'nginx:alpine',
  command: ['nginx'],
  args: ['-g', 'daemon off;'],
  env: ['A=1'],
  mode: 'replicated',
  replicas: 3,
  ports: [{ protocol: 'udp', targetPort: 80, publishedPort: 8080, publishMode: 'host', proxyProtocol: true }],
  restartPolicy: { condition: 'on-failure', delayMs: 5000, maxAttempts: 2, windowMs: 60_000 },
  updateConfig: { parallelism: 2, delayMs: 1000, failureAction: 'rollback', order: 'start-first', monitorMs: 5000, maxFailureRatio: 0.25 },
  rollbackConfig: { parallelism: 1, delayMs: 500, failureAction: 'continue', order: 'stop-first', monitorMs: 4000, maxFailureRatio: 0.5 },
  stopGracePeriodMs: 10_000,
  constraints: ['node.role==worker'],
  forceUpdate: 4,
  resources: { limits: { nanoCpus: 1e9, memoryBytes: 2 ** 30 }, reservations: { nanoCpus: 5e8, memoryBytes: 2 ** 29 } },
  placementPrefs: ['spread=node.labels.zone'],
  healthcheck: { test: ['CMD', 'true'], intervalMs: 1000, timeoutMs: 2000, retries: 3, startPeriodMs: 500 },
  workdir: '/srv/www',
  networks: [{ target: 'n1', aliases: ['www'] }],
  endpointMode: 'dnsrr',
  registryAuth: null,
  ...CONTAINER_DEFAULTS,
  user: 'www-data',
  mounts: [{ type: 'volume', source: 'data', target: '/data', readOnly: false, volumeOptions: null, tmpfsOptions: null, bindPropagation: '' }],
};
const T0 = 1_700_000_000_000;
const service: Service = {
  id: 's1',
  version: 7,
  createdAt: T0,
  updatedAt: T0 + 1,
  spec,
  previousSpec: { ...spec, replicas: 1, healthcheck: null },
  specVersion: 2,
  updateStatus: { state: 'rollback_paused', startedAt: T0 + 2, completedAt: T0 + 3, message: 'paused' },
  endpoint: { virtualIps: [{ networkId: 'n1', addr: '10.0.1.2/24' }] },
  jobStatus: null,
};
const task: Task = {
  id: 't1',
  version: 9,
  createdAt: T0,
  updatedAt: T0 + 5,
  serviceId: 's1',
  serviceName: 'web',
  slot: 2,
  nodeId: 'n1',
  desiredState: 'running',
  status: { state: 'failed', timestamp: T0 + 4, message: 'exited', err: 'non-zero exit (1)', containerId: 'c0ffee', exitCode: 1 },
  spec,
  specVersion: 2,
  networks: [{ networkId: 'n1', addr: '10.0.1.7/24' }],
  jobIteration: 0,
};
const node: Node = {
  id: 'n1',
  version: 3,
  createdAt: T0,
  updatedAt: T0 + 6,
  spec: { role: 'manager', availability: 'drain', labels: { zone: 'a' } },
  description: { hostname: 'h1', platform: { os: 'linux', arch: 'x86_64' }, resources: { nanoCpus: 4e9, memoryBytes: 2 ** 33 }, engineVersion: '27.0.0' },
  status: { state: 'ready', message: 'up', addr: '10.0.0.1:4242', meshAddr: '10.0.0.1:4243', meshErrors: ['8080/tcp: address in use'], meshMode: '' },
  managerStatus: { raftId: 'n1', addr: '10.0.0.1:4242' },
  attachments: [{ networkId: 'ing', addr: '10.255.0.3/16' }],
};

/** What a client decodes of an object holding `spec`: no store-only field. */
const { registryAuth: _storeOnly, ...wireSpec } = spec;

/** The response of a control method, encoded and decoded as a client receives it. */
function throughTheWire<M extends keyof ControlMethods>(method: M, res: ControlMethods[M][1]): unknown {
  const def = getMethodDefinition('shoal.control.Control', method);
  return def.responseDeserialize(def.responseSerialize(res));
}

describe('domain objects cross gRPC unchanged (every field is in the message, with its type)', () => {
  test('a service (every field set)', () => {
    const res = { service, running: 2, desired: 3, completed: 1, warnings: [], withRegistryAuth: false };
    const expected = { service: { ...service, spec: wireSpec, previousSpec: { ...wireSpec, replicas: 1, healthcheck: null } }, running: 2, desired: 3, completed: 1, warnings: [], withRegistryAuth: false };
    assert.deepEqual(throughTheWire('GetService', res), expected);
  });
  test("a spec's sealed registry credentials (store only) never cross: not in a service, its previous spec or a task", () => {
    const sealed = { alg: 'aes-256-gcm' as const, kekId: '0123456789abcdef', nonce: 'bm9uY2Vub25jZQ==', data: 'c2VhbGVkLWNyZWRlbnRpYWxz' };
    const withAuth = { ...spec, registryAuth: sealed };
    const svc = throughTheWire('GetService', { service: { ...service, spec: withAuth, previousSpec: withAuth }, running: 2, desired: 3, completed: 0, warnings: [], withRegistryAuth: false });
    const tasks = throughTheWire('ListTasks', { tasks: [{ task: { ...task, spec: withAuth }, nodeHostname: 'h1' }], nextPageToken: '' });
    for (const decoded of [svc, tasks]) {
      const text = JSON.stringify(decoded);
      assert.ok(!text.includes(sealed.data) && !text.includes('registryAuth'), text);
    }
  });
  test('a task', () => {
    const res: ListTasksResponse = { tasks: [{ task, nodeHostname: 'h1' }], nextPageToken: 'p2' };
    assert.deepEqual(throughTheWire('ListTasks', res), { ...res, tasks: [{ task: { ...task, spec: wireSpec }, nodeHostname: 'h1' }] });
  });
  test('a node, and the null of an absent nullable field', () => {
    const res = { node: { node, leader: true, reachability: 'reachable' } };
    assert.deepEqual(throughTheWire('GetNode', res), res);
    const worker = { node: { node: { ...node, managerStatus: null }, leader: false, reachability: '' } };
    assert.deepEqual(throughTheWire('GetNode', worker), worker);
  });
});

// Read by the compiler only: each constant's type is the check.
void [everyMessageAgrees, everyMessageHasADomainType, enums, nullability, meta, sendable, responses, methods];
