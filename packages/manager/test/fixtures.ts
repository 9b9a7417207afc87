// Store objects for the manager's unit suites (orchestrator, scheduler, log broker).

import type { Node, ServiceSpec } from '@shoal/store';
import { validateServiceSpec } from '../src/controlapi/validate.js';

export const T0 = 1_700_000_000_000;

/**
 * A replicated service's spec as the control API completes it (Swarm's defaults; restarts
 * without delay), `over` on top.
 */
export function mkSpec(over: Partial<ServiceSpec> = {}): ServiceSpec {
  const base = validateServiceSpec({ name: 'web', image: 'busybox', replicas: 3, restartPolicy: { condition: 'any', delayMs: 0 }, stopGracePeriodMs: 1000 });
  return { ...base, ...over };
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
    status: { state: opts.state ?? 'ready', message: '', addr: '10.0.0.1:2377', meshAddr: '', meshErrors: [], meshMode: '' },
    managerStatus: null,
    attachments: [],
  };
}
