// Object builders and a tiny "log" that feeds transactions to a ClusterStore with increasing indexes.

import { ClusterStore, decodeTxResult, encodeTx, type Op, type TxResult } from '../src/index.js';
import { completeServiceSpec } from '@shoal/types';
import type { Cluster, Node, Service, ServiceSpec, Task, TaskState } from '../src/types.js';

export const T0 = 1_700_000_000_000;

export function mkCluster(over: Partial<Cluster> = {}, historyLimit = 5): Cluster {
  return {
    id: 'cluster1',
    version: 0,
    createdAt: T0,
    updatedAt: T0,
    spec: { name: 'default', heartbeatPeriodMs: 5000, nodeDownAfterBeats: 3, taskHistoryLimit: historyLimit, certExpiryMs: 90 * 24 * 3600_000 },
    caFingerprint: 'ab'.repeat(32),
    caCert: '-----BEGIN CERTIFICATE-----\n...\n-----END CERTIFICATE-----\n',
    caKey: null,
    joinTokens: { worker: 'SWMTKN-1-w', manager: 'SWMTKN-1-m' },
    removedNodes: [],
      removedNodeExpiry: {},
      longestCertExpiryMs: 0,
    unlockKey: null,
    ...over,
  };
}

export function mkNode(id: string, hostname = `host-${id}`, over: Partial<Node> = {}): Node {
  return {
    id,
    version: 0,
    createdAt: T0,
    updatedAt: T0,
    spec: { role: 'worker', availability: 'active', labels: { zone: 'a' } },
    description: {
      hostname,
      platform: { os: 'linux', arch: 'x86_64' },
      resources: { nanoCpus: 4e9, memoryBytes: 8 * 2 ** 30 },
      engineVersion: '27.0.0',
    },
    status: { state: 'ready', message: '', addr: '10.0.0.1:2377', meshAddr: '', meshErrors: [], meshMode: '' },
    managerStatus: null,
    attachments: [],
    ...over,
  };
}

/** A published port of its own per spec (ingress ports are unique in a cluster). */
let nextPort = 20_000;
function portOf(_name: string): number {
  nextPort = nextPort >= 60_000 ? 20_000 : nextPort + 1;
  return nextPort;
}

/** A spec as the control API completes it (@shoal/types), with two replicas on an ingress port of its own. */
export function mkSpec(name: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  const spec = completeServiceSpec({ name, image: 'nginx:alpine', env: ['A=1'], replicas: 2, ports: [{ targetPort: 80, publishedPort: portOf(name) }] });
  return { ...spec, ...over };
}

export function mkService(id: string, name: string, over: Partial<Service> = {}): Service {
  return { id, version: 0, createdAt: T0, updatedAt: T0, spec: mkSpec(name), previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus: null, ...over };
}

export function mkTask(
  id: string,
  serviceId: string,
  slot: number,
  opts: { nodeId?: string; state?: TaskState; desired?: TaskState; createdAt?: number; global?: boolean } = {},
): Task {
  return {
    id,
    version: 0,
    createdAt: opts.createdAt ?? T0,
    updatedAt: opts.createdAt ?? T0,
    serviceId,
    serviceName: 'web',
    slot,
    nodeId: opts.nodeId ?? '',
    desiredState: opts.desired ?? 'running',
    status: { state: opts.state ?? 'new', timestamp: T0, message: '', err: '', containerId: '', exitCode: 0 },
    spec: mkSpec('web', opts.global ? { mode: 'global', replicas: 0 } : {}),
    specVersion: 1,
    networks: [],
    jobIteration: 0,
  };
}

/** Feeds transactions to a store as a Raft log would: one index per command. */
export class Log {
  index = 0;
  readonly commands: Uint8Array[] = [];
  constructor(readonly store = new ClusterStore()) {}

  raw(bytes: Uint8Array): TxResult {
    this.commands.push(bytes);
    return decodeTxResult(this.store.apply(bytes, ++this.index));
  }

  tx(...ops: Op[]): TxResult {
    return this.raw(encodeTx(ops));
  }

  /** Like tx(), but throws unless the transaction succeeded. */
  ok(...ops: Op[]): number {
    const r = this.tx(...ops);
    if (!r.ok) throw new Error(`expected success, got ${r.code}: ${r.message}`);
    return r.index;
  }
}

export const create = (kind: Op['kind'], object: unknown): Op => ({ op: 'create', kind, object }) as Op;
export const update = (kind: Op['kind'], object: unknown, expectVersion?: number): Op =>
  ({ op: 'update', kind, object, ...(expectVersion === undefined ? {} : { expectVersion }) }) as Op;
export const del = (kind: Op['kind'], id: string, expectVersion?: number): Op => ({ op: 'delete', kind, id, expectVersion });
