// How a service's update or rollback begins: the one rule for what a new spec (`service update`),
// a manual rollback (`service rollback`) and an update's failure action (the orchestrator) store.
// Shared by the control API and the orchestrator, so it belongs to neither.

import type { Service, ServiceSpec, UpdateStatus } from '@shoal/store';

/**
 * Only changes that alter what a task runs need new tasks (not replicas, not labels of the
 * service, not the registry credentials: a running container pulls nothing, and the credentials
 * are sealed afresh, with a new nonce, by every update that carries them, as docker's are
 * compared in the clear).
 */
export function specChangesTasks(a: ServiceSpec, b: ServiceSpec): boolean {
  const strip = (s: ServiceSpec) =>
    JSON.stringify({ ...s, replicas: 0, name: '', labels: {}, updateConfig: null, rollbackConfig: null, registryAuth: null });
  return strip(a) !== strip(b);
}

/** An update (or rollback) just started. */
export function startedStatus(state: 'updating' | 'rollback_started', now: number, message: string): UpdateStatus {
  return { state, startedAt: now, completedAt: 0, message };
}

/**
 * The service with a new spec (`service update`): the spec it replaces becomes the previous one.
 * A change that replaces tasks starts a rolling update (and ends a paused one).
 */
export function withSpec(s: Service, spec: ServiceSpec, now: number): Service {
  const rolling = specChangesTasks(s.spec, spec);
  return {
    ...s,
    spec,
    previousSpec: s.spec,
    specVersion: s.specVersion + (rolling ? 1 : 0),
    updateStatus: rolling ? startedStatus('updating', now, 'update in progress') : s.updateStatus,
    updatedAt: now,
  };
}

/**
 * A job with a new spec (`service update`, `scale`, even unchanged: `--force`): it runs again, as
 * a new iteration (Swarm's JobStatus); there is no rollout to track.
 */
export function withJobSpec(s: Service, spec: ServiceSpec, now: number): Service {
  return {
    ...s,
    spec,
    previousSpec: s.spec,
    specVersion: s.specVersion + (specChangesTasks(s.spec, spec) ? 1 : 0),
    updateStatus: null,
    jobStatus: { jobIteration: (s.jobStatus?.jobIteration ?? 0) + 1, lastExecution: now },
    updatedAt: now,
  };
}

/**
 * The service with its previous spec back and a rollback started (`service rollback`, or an
 * update's failure action): the spec it replaces becomes the previous one.
 */
export function rolledBack(s: Service & { previousSpec: ServiceSpec }, now: number, message: string): Service {
  return {
    ...s,
    spec: s.previousSpec,
    previousSpec: s.spec,
    specVersion: s.specVersion + (specChangesTasks(s.spec, s.previousSpec) ? 1 : 0),
    updateStatus: startedStatus('rollback_started', now, message),
    updatedAt: now,
  };
}
