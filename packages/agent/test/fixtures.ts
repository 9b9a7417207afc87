// Tasks for the agent's suites (the Docker executor's and the task runner's).

import { type ServiceSpec, type Task, completeServiceSpec } from '@shoal/types';

/** A replicated service's spec as a manager stores it (httpd on 8080), `over` on top. */
export function taskSpec(image: string, over: Partial<ServiceSpec> = {}): ServiceSpec {
  const spec = completeServiceSpec({
    name: 'web',
    image,
    command: ['httpd', '-f', '-p', '8080'],
    env: ['GREETING=hello world', 'A=1'],
    restartPolicy: { delayMs: 0 },
    stopGracePeriodMs: 1000,
  });
  return { ...spec, ...over };
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
    specVersion: 1, networks: [], jobIteration: 0,
  };
}
