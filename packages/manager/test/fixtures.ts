// Store objects for the manager's unit suites (orchestrator, scheduler, log broker).

import type { Node, ServiceSpec, UpdateConfig } from '@shoal/store';

export const T0 = 1_700_000_000_000;

const ROLLOUT: UpdateConfig = { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first', monitorMs: 5000, maxFailureRatio: 0 };

/** A replicated service's spec with Swarm's defaults (restarts without delay), `over` on top. */
export function mkSpec(over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name: 'web',
    labels: {},
    image: 'busybox',
    command: [],
    args: [],
    env: [],
    mode: 'replicated',
    replicas: 3,
    ports: [],
    restartPolicy: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 },
    updateConfig: ROLLOUT,
    rollbackConfig: ROLLOUT,
    stopGracePeriodMs: 1000,
    constraints: [],
    forceUpdate: 0,
    placementPrefs: [],
    healthcheck: null,
    resources: { limits: { nanoCpus: 0, memoryBytes: 0 }, reservations: { nanoCpus: 0, memoryBytes: 0 } },
    ...over,
  };
}

/** A worker node, ready unless said otherwise, with `cpus` CPUs and `memoryBytes` of memory. */
export function mkNode(id: string, opts: { hostname?: string; state?: Node['status']['state']; cpus?: number; memoryBytes?: number } = {}): Node {
  return {
    id,
    version: 0,
    createdAt: T0,
    updatedAt: T0,
    spec: { role: 'worker', availability: 'active', labels: {} },
    description: {
      hostname: opts.hostname ?? id,
      platform: { os: 'linux', arch: 'x86_64' },
      resources: { nanoCpus: (opts.cpus ?? 1) * 1e9, memoryBytes: opts.memoryBytes ?? 2 ** 30 },
      engineVersion: '27',
    },
    status: { state: opts.state ?? 'ready', message: '', addr: '10.0.0.1:2377', meshAddr: '', meshErrors: [] },
    managerStatus: null,
  };
}
