// Tasks for the agent's suites (the Docker executor's and the task runner's).

import type { ServiceSpec, Task } from '@shoal/types';

/** A replicated service's spec as a manager stores it (httpd on 8080), `over` on top. */
export function taskSpec(image: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  return {
    name: 'web',
    labels: {},
    image,
    command: ['httpd', '-f', '-p', '8080'],
    args: [],
    env: ['GREETING=hello world', 'A=1'],
    mode: 'replicated',
    replicas: 1,
    ports: [],
    restartPolicy: { condition: 'any', delayMs: 0, maxAttempts: 0, windowMs: 0 },
    updateConfig: { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first', monitorMs: 5000, maxFailureRatio: 0 },
    rollbackConfig: { parallelism: 1, delayMs: 0, failureAction: 'pause', order: 'stop-first', monitorMs: 5000, maxFailureRatio: 0 },
    stopGracePeriodMs: 1000,
    constraints: [],
    forceUpdate: 0,
    placementPrefs: [],
    healthcheck: null,
    resources: { limits: { nanoCpus: 0, memoryBytes: 0 }, reservations: { nanoCpus: 0, memoryBytes: 0 } },
    ...over,
  };
}

/** A task assigned to `nodeId`, meant to run. */
export function assignedTask(opts: { id: string; nodeId: string; spec: ServiceSpec; serviceId: string; serviceName: string; slot?: number }): Task {
  const now = Date.now();
  return {
    id: opts.id,
    version: 1,
    createdAt: now,
    updatedAt: now,
    serviceId: opts.serviceId,
    serviceName: opts.serviceName,
    slot: opts.spec.mode === 'global' ? 0 : (opts.slot ?? 1),
    nodeId: opts.nodeId,
    desiredState: 'running',
    status: { state: 'assigned', timestamp: now, message: '', err: '', containerId: '', exitCode: 0 },
    spec: opts.spec,
    specVersion: 1,
  };
}
