// The control API's service calls (`shoal service ...`): each validates its request once, reads
// through a linearizable barrier, and writes through one store transaction (proposed to Raft; a
// follower's proposal is forwarded to the leader by the Raft layer).

import { ShoalError } from '@shoal/api';
import { type ClusterStore, isJobMode, isPerNodeMode, newId, deleteOp, updateOp } from '@shoal/store';
import type { GetServiceRequest, RemoveServiceRequest, ScaleServiceRequest, Service, ServiceSpec } from '@shoal/store';
import { rolledBack, withJobSpec, withSpec } from '../service-update.js';
import { jobProgress } from '../orchestrator/jobs.js';
import { type RegistryAuth, parseRegistryAuth } from '../registry-auth.js';
import { pinImage } from './image-pin.js';
import { attachNetworks } from './networks.js';
import { attachFiles } from './secrets.js';
import { validateServiceSpec } from './validate.js';
import { type ControlContext, commit, read, required, update } from './context.js';

export interface ServiceView {
  service: Service;
  running: number;
  desired: number;
  /** Jobs: the current iteration's completions (`service ls`: `N/M (K/T completed)`). */
  completed: number;
  /** The spec holds registry credentials (never sent: the field is the store's alone). */
  withRegistryAuth: boolean;
  warnings?: string[];
}

function serviceView(store: ClusterStore, s: Service, warnings?: string[]): ServiceView {
  const tasks = store.tasksByService(s.id);
  const extra = { withRegistryAuth: s.spec.registryAuth !== null, ...(warnings ? { warnings } : {}) };
  if (isJobMode(s.spec.mode)) return { service: s, ...jobProgress(s, tasks), ...extra };
  const running = tasks.filter((t) => t.desiredState === 'running' && t.status.state === 'running').length;
  let desired = s.spec.replicas;
  if (s.spec.mode === 'global') desired = tasks.filter((t) => t.desiredState === 'running').length;
  return { service: s, running, desired, completed: 0, ...extra };
}

interface SpecRequest {
  spec?: Partial<ServiceSpec> | null;
  /** `--with-registry-auth`: Docker's AuthConfig JSON; empty: none given. */
  registryAuth?: string;
  resolveImage?: boolean;
}

/**
 * The spec a create or an update stores: its image pinned to a digest when asked (docker's
 * resolve-image; the credentials given, else the service's, reach the registry), and its
 * registry credentials sealed for the service (`auth` undefined: the current ones kept).
 */
async function finishSpec(
  ctx: ControlContext,
  serviceId: string,
  spec: ServiceSpec,
  opts: { auth: RegistryAuth | null | undefined; current?: ServiceSpec; resolve: boolean },
): Promise<{ spec: ServiceSpec; warnings: string[] }> {
  const { auth, current } = opts;
  const warnings: string[] = [];
  let image = spec.image;
  if (opts.resolve) {
    const kept = auth === undefined && current?.registryAuth ? (JSON.parse(ctx.registryAuth.open(serviceId, current.registryAuth)) as RegistryAuth) : null;
    const pinned = await pinImage(spec.image, ctx.resolveImage, auth ?? kept);
    image = pinned.image;
    if (pinned.warning) warnings.push(pinned.warning);
  }
  const registryAuth = auth === undefined ? (current?.registryAuth ?? null) : auth && ctx.registryAuth.seal(serviceId, auth);
  return { spec: { ...spec, image, registryAuth }, warnings };
}

export async function createService(ctx: ControlContext, req: SpecRequest): Promise<ServiceView> {
  const valid = validateServiceSpec(req.spec);
  // A read barrier only when there are networks, secrets or configs to name by id (a create needs none otherwise).
  const named = valid.networks.length > 0 || valid.secrets.length > 0 || valid.configs.length > 0;
  const checked = named ? attachFiles(ctx.store, attachNetworks(await read(ctx), valid)) : valid;
  const auth = parseRegistryAuth(req.registryAuth);
  const id = newId();
  const { spec, warnings } = await finishSpec(ctx, id, checked, { auth, resolve: req.resolveImage === true });
  // No read first: the store refuses a duplicate name when it applies the create.
  const now = ctx.now();
  const jobStatus = isJobMode(spec.mode) ? { jobIteration: 0, lastExecution: now } : null;
  const service: Service = { id, version: 0, createdAt: now, updatedAt: now, spec, previousSpec: null, specVersion: 1, updateStatus: null, endpoint: { virtualIps: [] }, jobStatus };
  await commit(ctx, [{ op: 'create', kind: 'service', object: service }]);
  // A committed proposal is applied here before commit() returns: the local copy has it.
  return serviceView(ctx.store, ctx.store.get('service', service.id) as Service, warnings);
}

export async function getService(ctx: ControlContext, req: GetServiceRequest): Promise<ServiceView> {
  const store = await read(ctx);
  return serviceView(store, store.resolveService(required(req.service, 'service')));
}

export async function listServices(ctx: ControlContext): Promise<{ services: ServiceView[] }> {
  const store = await read(ctx);
  const services = (store.list('service') as Service[]).sort((a, b) => a.spec.name.localeCompare(b.spec.name));
  return { services: services.map((s) => serviceView(store, s)) };
}

export async function updateService(ctx: ControlContext, req: SpecRequest & { service?: string; version?: number }): Promise<ServiceView> {
  const store = await read(ctx);
  const current = store.resolveService(required(req.service, 'service'));
  const checked = attachFiles(store, attachNetworks(store, validateServiceSpec(req.spec, { currentName: current.spec.name })));
  if (checked.mode !== current.spec.mode) throw new ShoalError('INVALID_ARGUMENT', 'a service\'s mode cannot be changed');
  const auth = parseRegistryAuth(req.registryAuth);
  // As docker: an image is pinned again only when the update changes it.
  const resolve = req.resolveImage === true && checked.image !== current.spec.image;
  const { spec, warnings } = await finishSpec(ctx, current.id, checked, { auth, current: current.spec, resolve });
  const expect = req.version ? Number(req.version) : current.version;
  const next = isJobMode(spec.mode) ? withJobSpec(current, spec, ctx.now()) : withSpec(current, spec, ctx.now());
  await commit(ctx, [updateOp('service', next, expect)]);
  return serviceView(ctx.store, ctx.store.get('service', current.id) as Service, warnings);
}

/**
 * `shoal service rollback` (`docker service rollback`): the previous spec comes back, rolled out
 * as an update is (parallelism, order); the spec it replaces becomes the previous one.
 */
export async function rollbackService(ctx: ControlContext, req: GetServiceRequest): Promise<ServiceView> {
  const ref = required(req.service, 'service');
  let id = '';
  await update(ctx, (store) => {
    const s = store.resolveService(ref);
    id = s.id;
    if (isJobMode(s.spec.mode)) throw new ShoalError('FAILED_PRECONDITION', `${s.spec.name} is a job: it is never rolled out nor back (update it to run it again)`);
    if (!s.previousSpec) throw new ShoalError('FAILED_PRECONDITION', `service ${s.spec.name} has no previous spec to roll back to (it was never updated)`);
    const next = rolledBack({ ...s, previousSpec: s.previousSpec }, ctx.now(), 'manually requested rollback');
    return [updateOp('service', next)];
  });
  return serviceView(ctx.store, ctx.store.get('service', id) as Service);
}

export async function scaleService(ctx: ControlContext, req: ScaleServiceRequest): Promise<ServiceView> {
  const ref = required(req.service, 'service');
  const replicas = Number(req.replicas ?? 0);
  let id = '';
  await update(ctx, (store) => {
    const s = store.resolveService(ref);
    id = s.id;
    if (isPerNodeMode(s.spec.mode)) throw new ShoalError('INVALID_ARGUMENT', `${s.spec.name} is a ${s.spec.mode === 'global' ? 'global service' : 'global job'}: it cannot be scaled`);
    // A job's concurrency stays (docker's), within the completions it now wants.
    const maxConcurrent = Math.min(s.spec.maxConcurrent, replicas);
    const spec = { ...validateServiceSpec({ ...s.spec, replicas, maxConcurrent }, { currentName: s.spec.name }), registryAuth: s.spec.registryAuth };
    if (isJobMode(s.spec.mode)) return [updateOp('service', withJobSpec(s, spec, ctx.now()))];
    return [updateOp('service', { ...s, spec, updatedAt: ctx.now() })];
  });
  return serviceView(ctx.store, ctx.store.get('service', id) as Service);
}

export async function removeService(ctx: ControlContext, req: RemoveServiceRequest): Promise<{ id: string }> {
  const store = await read(ctx);
  const s = store.resolveService(required(req.service, 'service'));
  // Its tasks are shut down and removed by the orchestrator, which watches for the deletion.
  await commit(ctx, [deleteOp('service', s)]);
  return { id: s.id };
}
