// Many tasks as a real cluster holds them, for tests and benchmarks at scale: services of 10,000
// replicas (the most a service may ask for) with a spec a user would write (env, labels, two
// published ports, a constraint), their tasks running on a few nodes, each task carrying the spec as the orchestrator writes it (~1.6 KiB of
// JSON each). Ids are 25 characters, as newId() makes them, but numbered so runs are repeatable.

import { completeServiceSpec } from '@shoal/types';
import type { Op } from '../src/index.js';
import type { ServiceSpec, Task } from '../src/types.js';
import { T0, mkCluster, mkNode, mkService } from './fixtures.js';

const NODES = 20;
const PER_SERVICE = 10_000;
/** Enough services for a million tasks. */
const SERVICES = 100;

const nodeId = (n: number) => `bulknode${String(n).padStart(17, '0')}`;
const serviceId = (k: number) => `bulksvc${String(k).padStart(18, '0')}`;
export const bulkTaskId = (i: number) => `bulktask${String(i).padStart(17, '0')}`;

function spec(k: number): ServiceSpec {
  return completeServiceSpec({
    name: `shop-frontend-${k}`,
    image: 'registry.example.com/shop/frontend:2.14.3@sha256:' + 'c0ffee'.repeat(11).slice(0, 64),
    env: ['NODE_ENV=production', 'API_URL=http://shop-api:8080', 'CACHE_TTL=300'],
    labels: { 'com.example.team': 'storefront', 'com.example.tier': 'web' },
    replicas: PER_SERVICE,
    ports: [
      { targetPort: 8080, publishedPort: 20_000 + 2 * k },
      { targetPort: 8443, publishedPort: 20_001 + 2 * k },
    ],
    constraints: ['node.labels.zone==a'],
  });
}

const SPECS = Array.from({ length: SERVICES }, (_, k) => spec(k));

/** The cluster, the nodes and the services the bulk tasks belong to (one transaction). */
export function bulkTaskSetup(): Op[] {
  const ops: Op[] = [{ op: 'create', kind: 'cluster', object: mkCluster() }];
  for (let n = 0; n < NODES; n++) ops.push({ op: 'create', kind: 'node', object: mkNode(nodeId(n), `worker-${n}`) });
  SPECS.forEach((s, k) => ops.push({ op: 'create', kind: 'service', object: mkService(serviceId(k), s.name, { spec: s }) }));
  return ops;
}

/** Task number `i` (of service i / 10,000), running. */
export function bulkTask(i: number): Task {
  const id = bulkTaskId(i);
  const k = Math.floor(i / PER_SERVICE);
  if (k >= SERVICES) throw new RangeError(`bulk tasks go up to ${SERVICES * PER_SERVICE}`);
  return {
    id,
    version: 0,
    createdAt: T0 + i,
    updatedAt: T0 + i,
    serviceId: serviceId(k),
    serviceName: SPECS[k]!.name,
    slot: (i % PER_SERVICE) + 1,
    nodeId: nodeId(i % NODES),
    desiredState: 'running',
    status: { state: 'running', timestamp: T0 + i, message: 'started', err: '', containerId: id.padEnd(64, '0'), exitCode: 0 },
    spec: SPECS[k]!,
    specVersion: 1,
    networks: [],
    jobIteration: 0,
  };
}
