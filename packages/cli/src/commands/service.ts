// `shoal service create|ls|ps|inspect|rm|scale|update`.

import type { Argv, Options } from 'yargs';
import type { Service } from '@shoal/types';
import { CliError } from '../errors.js';
import { type Ctx, DEFAULT_WAIT_TIMEOUT_MS } from '../context.js';
import { serviceInspectJson, serviceInspectText } from '../format.js';
import { UsageError } from '../errors.js';
import { parseScaleArgs } from '../parse.js';
import { ENDPOINT_MODES } from '@shoal/types';
import {
  RESTART_CONDITIONS,
  SERVICE_MODES,
  type HealthFlags,
  type ResourceFlags,
  type RolloutFlags,
  type UpdateFlags,
  applyServiceUpdate,
  buildServiceSpec,
  sameSpec,
  validateUpdateFlags,
} from '../spec.js';
import { waitForConvergence } from '../wait.js';
import { printServices, printTasks } from './lists.js';
import { CONTAINER_CREATE_OPTIONS, CONTAINER_UPDATE_OPTIONS, containerCreateFlags, containerUpdateFlags } from './service-container.js';
import { dockerService } from '../docker-shape.js';
import { applyFilters, parseFilters } from '../filters.js';
import { SERVICE_FILTERS, TASK_FILTERS } from '../list-rows.js';
import { registryAuthFor } from '../registry-auth.js';
import { applyFileFlags, validateFileFlags } from '../file-refs.js';
import { parseSince, parseTail, printServiceLogs } from '../logs.js';
import {
  type Args,
  type CtxFactory,
  action,
  forEachReporting,
  list,
  one,
  outputOf,
  printObject,
  required,
  variadic,
  withFilter,
  withFormat,
} from './common.js';

const S = { type: 'string', requiresArg: true } as const;

const DETACH: Options = {
  alias: 'd',
  type: 'boolean',
  default: false,
  describe: 'Exit right after the change is accepted instead of waiting for the service to converge (with progress on stderr)',
};

/** The flags of an update's and a rollback's settings, as create and update take them. */
const ROLLOUT_FLAGS = ['update', 'rollback'].flatMap((w) =>
  ['parallelism', 'delay', 'order', 'failure-action', 'monitor', 'max-failure-ratio'].map((k) => `${w}-${k}`),
);

const RESOURCE_FLAGS = ['limit-cpu', 'limit-memory', 'reserve-cpu', 'reserve-memory'];
const HEALTH_FLAGS = ['health-cmd', 'health-interval', 'health-timeout', 'health-retries', 'health-start-period', 'no-healthcheck'];

/** The values of the health flags given. */
function healthFlags(a: Args): HealthFlags {
  return {
    healthCmd: one(a, 'healthCmd'),
    healthInterval: one(a, 'healthInterval'),
    healthTimeout: one(a, 'healthTimeout'),
    healthRetries: one(a, 'healthRetries'),
    healthStartPeriod: one(a, 'healthStartPeriod'),
    noHealthcheck: a['healthcheck'] === false || a['noHealthcheck'] === true ? true : undefined,
  };
}

/** The values of the resource flags given. */
function resourceFlags(a: Args): ResourceFlags {
  return { limitCpu: one(a, 'limitCpu'), limitMemory: one(a, 'limitMemory'), reserveCpu: one(a, 'reserveCpu'), reserveMemory: one(a, 'reserveMemory') };
}

/** The values of the rollout flags given (`updateParallelism`, `rollbackDelay`, ...). */
function rolloutFlags(a: Args): RolloutFlags {
  const out: Record<string, string | undefined> = {};
  for (const flag of ROLLOUT_FLAGS) {
    const key = flag.replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
    out[key] = one(a, key);
  }
  return out as RolloutFlags;
}

/** The options of `service create` (also used to split IMAGE [COMMAND [ARG...]] off the flags). */
export const CREATE_OPTIONS: Readonly<Record<string, Options>> = {
  name: { ...S, describe: 'Service name (required)' },
  replicas: { ...S, describe: 'Number of tasks (replicated mode; default 1); of a replicated job: the completions it wants' },
  mode: {
    ...S,
    choices: [...SERVICE_MODES],
    describe: 'Service mode: replicated, global (one task per node), replicated-job or global-job (tasks run to completion once; an update runs the job again)',
  },
  'max-concurrent': { ...S, describe: 'A replicated job\'s tasks running at once (default: --replicas)' },
  publish: {
    ...S,
    alias: 'p',
    describe: 'Publish a port: PUBLISHED:TARGET[/udp] (ingress), or mode=ingress|host,published=P,target=T[,protocol=tcp|udp]; repeatable',
  },
  env: { ...S, alias: 'e', describe: 'Set an environment variable KEY=VALUE; repeatable' },
  label: { ...S, describe: 'Service label KEY=VALUE; repeatable' },
  constraint: { ...S, describe: 'Placement constraint, e.g. node.role==manager, node.labels.zone!=a; repeatable' },
  'placement-pref': { ...S, describe: 'Placement preference spread=node.labels.KEY: spread tasks over the label\'s values first; repeatable' },
  'restart-condition': { ...S, choices: [...RESTART_CONDITIONS], describe: 'Restart when: any (default), on-failure, none' },
  'restart-delay': { ...S, describe: 'Delay between restart attempts, e.g. 500ms, 5s, 1m30s (default 5s)' },
  'restart-max-attempts': { ...S, describe: 'Maximum restarts before giving up (default 0: unlimited)' },
  'stop-grace-period': { ...S, describe: 'Time to wait before force-killing a container (default 10s)' },
  network: { ...S, describe: 'Join an overlay network: NAME, or name=NAME,alias=ALIAS (more DNS names on it); repeatable' },
  secret: { ...S, describe: 'Give the tasks a secret at /run/secrets/TARGET: NAME, or source=NAME,target=T,uid=U,gid=G,mode=0400; repeatable' },
  config: { ...S, describe: 'Give the tasks a config: NAME (at /NAME), or source=NAME,target=/PATH,uid=U,gid=G,mode=0444; repeatable' },
  'endpoint-mode': { ...S, choices: [...ENDPOINT_MODES], describe: "vip (default: one virtual IP per network) or dnsrr (DNS answers the tasks' IPs)" },
  workdir: { ...S, alias: 'w', describe: 'Working directory inside the container (an absolute path; default: the image\'s)' },
  'update-parallelism': { ...S, describe: 'Tasks updated at once (default 1; 0: all at once)' },
  'update-delay': { ...S, describe: 'Delay between updates of task batches (default 0s)' },
  'update-order': { ...S, describe: 'stop-first (default: stop the old task, then start the new one) or start-first (the new one runs before the old one stops)' },
  'update-failure-action': { ...S, describe: 'When an updated task fails: pause (default), continue, or rollback (to the previous spec)' },
  'update-monitor': { ...S, describe: 'How long after it starts an updated task is watched for failure (default 5s)' },
  'update-max-failure-ratio': { ...S, describe: 'Share of tasks that may fail during an update before the failure action, 0 to 1 (default 0)' },
  'health-cmd': { ...S, describe: 'Command (run by /bin/sh in the container) that says whether a task is healthy; a task runs once healthy' },
  'health-interval': { ...S, describe: 'Time between health checks (default 30s)' },
  'health-timeout': { ...S, describe: 'Time a health check may take (default 30s)' },
  'health-retries': { ...S, describe: 'Failed checks in a row that make a task unhealthy (default 3)' },
  'health-start-period': { ...S, describe: 'Time after start during which failed checks do not count (default 0s)' },
  'no-healthcheck': { type: 'boolean', describe: "Disable the image's health check" },
  'limit-cpu': { ...S, describe: 'CPUs a task may use, e.g. 0.5 (default: no limit)' },
  'limit-memory': { ...S, describe: 'Memory a task may use, e.g. 256m (default: no limit)' },
  'reserve-cpu': { ...S, describe: 'CPUs set aside for each task on its node (a node without them free is not chosen)' },
  'reserve-memory': { ...S, describe: 'Memory set aside for each task on its node, e.g. 128m' },
  'rollback-parallelism': { ...S, describe: 'Tasks rolled back at once (default 1; 0: all at once)' },
  'rollback-delay': { ...S, describe: 'Delay between rollbacks of task batches (default 0s)' },
  'rollback-order': { ...S, describe: 'stop-first (default) or start-first, for a rollback' },
  'rollback-failure-action': { ...S, describe: 'When a rolled-back task fails: pause (default) or continue' },
  'rollback-monitor': { ...S, describe: 'How long after it starts a rolled-back task is watched for failure (default 5s)' },
  'rollback-max-failure-ratio': { ...S, describe: 'Share of tasks that may fail during a rollback before its failure action, 0 to 1 (default 0)' },
  'with-registry-auth': {
    type: 'boolean',
    default: false,
    describe: "Send the registry credentials of the Docker client's config (docker login) to the nodes that run the tasks",
  },
  'no-resolve-image': { type: 'boolean', describe: "Do not pin the image's tag to its registry digest (default: pinned, so every node runs the same image)" },
  ...CONTAINER_CREATE_OPTIONS,
  detach: DETACH,
};

const UPDATE_OPTIONS: Readonly<Record<string, Options>> = {
  replicas: { ...S, describe: 'Number of tasks (of a replicated job: the completions it wants; the job runs again)' },
  'max-concurrent': CREATE_OPTIONS['max-concurrent']!,
  image: { ...S, describe: 'Service image' },
  args: { ...S, describe: 'Replace COMMAND [ARG...] (words separated by spaces)' },
  'env-add': { ...S, describe: 'Add or replace an environment variable KEY=VALUE; repeatable' },
  'env-rm': { ...S, describe: 'Remove an environment variable KEY; repeatable' },
  'publish-add': { ...S, describe: 'Add or replace a published port (same syntax as create -p); repeatable' },
  'publish-rm': { ...S, describe: 'Remove a published port PUBLISHED[/tcp|udp]; repeatable' },
  'label-add': { ...S, describe: 'Add or replace a service label KEY=VALUE; repeatable' },
  'label-rm': { ...S, describe: 'Remove a service label KEY; repeatable' },
  'constraint-add': { ...S, describe: 'Add a placement constraint; repeatable' },
  'constraint-rm': { ...S, describe: 'Remove a placement constraint; repeatable' },
  'placement-pref-add': { ...S, describe: 'Add a placement preference (spread=node.labels.KEY); repeatable' },
  'placement-pref-rm': { ...S, describe: 'Remove a placement preference; repeatable' },
  'restart-condition': CREATE_OPTIONS['restart-condition']!,
  'restart-delay': CREATE_OPTIONS['restart-delay']!,
  'restart-max-attempts': CREATE_OPTIONS['restart-max-attempts']!,
  'stop-grace-period': CREATE_OPTIONS['stop-grace-period']!,
  workdir: CREATE_OPTIONS['workdir']!,
  'network-add': { ...S, describe: 'Join a network (same syntax as create --network); repeatable' },
  'network-rm': { ...S, describe: 'Leave a network NAME (or id); repeatable' },
  'secret-add': { ...S, describe: 'Add a secret (same syntax as create --secret); repeatable' },
  'secret-rm': { ...S, describe: 'Remove a secret NAME (or id); repeatable' },
  'config-add': { ...S, describe: 'Add a config (same syntax as create --config); repeatable' },
  'config-rm': { ...S, describe: 'Remove a config NAME (or id); repeatable' },
  'endpoint-mode': CREATE_OPTIONS['endpoint-mode']!,
  ...CONTAINER_UPDATE_OPTIONS,
  ...Object.fromEntries([...ROLLOUT_FLAGS, ...RESOURCE_FLAGS, ...HEALTH_FLAGS].map((k) => [k, CREATE_OPTIONS[k]!])),
  'with-registry-auth': CREATE_OPTIONS['with-registry-auth']!,
  'no-resolve-image': CREATE_OPTIONS['no-resolve-image']!,
  force: { type: 'boolean', default: false, describe: 'Replace the tasks even if nothing else changes (a rolling restart; a job runs again)' },
  rollback: { type: 'boolean', default: false, describe: 'Roll back to the previous spec (as `shoal service rollback`; no other change may be given)' },
  detach: DETACH,
};

const noTrunc: Options = { type: 'boolean', default: false, describe: 'Do not truncate ids and errors' };
const quiet: Options = { alias: 'q', type: 'boolean', default: false, describe: 'Only print ids' };

function svcNotFound(name: string) {
  return { notFound: { kind: 'service' as const, name } };
}

function serviceOf(r: { service: Service | null }, ref: string): Service {
  if (!r.service) throw new CliError(`the manager sent no service for ${ref}`);
  return r.service;
}

/** `--with-registry-auth`: the Docker client's credentials for the image's registry, as the request's field. */
function registryAuthFlag(a: Args, image: string): { registryAuth?: string } {
  if (a['withRegistryAuth'] !== true) return {};
  return { registryAuth: JSON.stringify(registryAuthFor(image)) };
}

/** Docker pins the image to its digest unless `--no-resolve-image`. */
function resolveImageFlag(a: Args): boolean {
  return !(a['resolveImage'] === false || a['noResolveImage'] === true);
}

/** The manager's warnings, on stderr before anything else, as docker prints them. */
function printWarnings(ctx: Ctx, warnings: readonly string[] | undefined): void {
  for (const w of warnings ?? []) ctx.stderr.write(`${w}\n`);
}

// ------------------------------------------------------------------ handlers

async function create(ctx: Ctx, a: Args): Promise<void> {
  const rest = (a['--'] ?? []).map(String);
  const image = rest[0];
  if (image === undefined || image === '') throw new UsageError("missing IMAGE: shoal service create --name NAME [OPTIONS] IMAGE [COMMAND [ARG...]]");
  const name = one(a, 'name');
  if (name === undefined) throw new UsageError('missing --name NAME');
  const files = { secretAdd: list(a, 'secret'), configAdd: list(a, 'config') };
  validateFileFlags(files);
  const built = buildServiceSpec({
    name,
    image,
    args: rest.slice(1),
    replicas: one(a, 'replicas'),
    mode: one(a, 'mode'),
    maxConcurrent: one(a, 'maxConcurrent'),
    publish: list(a, 'publish'),
    env: list(a, 'env'),
    label: list(a, 'label'),
    constraint: list(a, 'constraint'),
    placementPref: list(a, 'placementPref'),
    restartCondition: one(a, 'restartCondition'),
    restartDelay: one(a, 'restartDelay'),
    restartMaxAttempts: one(a, 'restartMaxAttempts'),
    stopGracePeriod: one(a, 'stopGracePeriod'),
    workdir: one(a, 'workdir'),
    network: list(a, 'network'),
    endpointMode: one(a, 'endpointMode'),
    ...rolloutFlags(a),
    ...resourceFlags(a),
    ...healthFlags(a),
    ...containerCreateFlags(a),
  });
  const spec = applyFileFlags(built, files);
  const registryAuth = registryAuthFlag(a, spec.image);
  const detach = a['detach'] === true;
  if (!detach) ctx.budget(DEFAULT_WAIT_TIMEOUT_MS);
  const r = await ctx.call('CreateService', { spec, ...registryAuth, resolveImage: resolveImageFlag(a) });
  printWarnings(ctx, r.warnings);
  const svc = serviceOf(r, name);
  ctx.print(svc.id);
  if (!detach) await waitForConvergence(ctx, [{ ref: svc.id, name: svc.spec.name }], 'created');
}

async function ls(ctx: Ctx, a: Args): Promise<void> {
  const out = outputOf(a);
  const filters = parseFilters(list(a, 'filter'), SERVICE_FILTERS);
  const services = applyFilters((await ctx.call('ListServices', {})).services, filters, SERVICE_FILTERS);
  printServices(ctx, a, out, services);
}

async function ps(ctx: Ctx, a: Args): Promise<void> {
  const service = required(a, 'service', 'SERVICE: shoal service ps SERVICE');
  const out = outputOf(a);
  const filters = parseFilters(list(a, 'filter'), TASK_FILTERS);
  // One node or desired state: the manager filters (and resolves the node's name); several: here.
  const single = (k: string): string => (filters.get(k)?.length === 1 ? filters.get(k)![0]! : '');
  const listed = await ctx.listTasks({ service, desiredState: single('desired-state'), node: single('node') }, svcNotFound(service));
  const tasks = applyFilters(listed, filters, TASK_FILTERS);
  printTasks(ctx, a, out, tasks);
}

async function logs(ctx: Ctx, a: Args): Promise<void> {
  const service = required(a, 'service', 'SERVICE: shoal service logs SERVICE');
  const since = one(a, 'since');
  await printServiceLogs(ctx, service, {
    tail: parseTail(one(a, 'tail')),
    since: since === undefined ? '' : parseSince(since, ctx.now()),
    follow: a['follow'] === true,
    timestamps: a['timestamps'] === true,
    noTrunc: a['noTrunc'] === true,
  });
}

async function inspect(ctx: Ctx, a: Args): Promise<void> {
  const service = required(a, 'service', 'SERVICE: shoal service inspect SERVICE');
  const out = outputOf(a, { docker: true });
  const r = await ctx.call('GetService', { service }, svcNotFound(service));
  const svc = serviceOf(r, service);
  printObject(ctx, out, {
    text: () => serviceInspectText(svc, r.running, r.desired, r.withRegistryAuth),
    // Only whether the spec holds registry credentials: the manager never sends them back.
    json: () => (r.withRegistryAuth ? { ...serviceInspectJson(svc), withRegistryAuth: true } : serviceInspectJson(svc)),
    docker: () => dockerService(svc),
  });
}

async function rm(ctx: Ctx, a: Args): Promise<void> {
  const services = variadic(a, 'service', 'SERVICE: shoal service rm SERVICE [SERVICE...]');
  await forEachReporting(ctx, services, async (service) => {
    await ctx.call('RemoveService', { service }, svcNotFound(service));
    ctx.print(service);
  });
}

async function scale(ctx: Ctx, a: Args): Promise<void> {
  const targets = parseScaleArgs(list(a, 'targets'));
  const detach = a['detach'] === true;
  if (!detach) ctx.budget(DEFAULT_WAIT_TIMEOUT_MS);
  const scaled: { ref: string; name: string }[] = [];
  let failure: unknown;
  try {
    await forEachReporting(ctx, targets, async ({ service, replicas }) => {
      const r = await ctx.call('ScaleService', { service, replicas }, svcNotFound(service));
      const svc = serviceOf(r, service);
      ctx.print(`${service} scaled to ${replicas}`);
      scaled.push({ ref: svc.id, name: svc.spec.name });
    });
  } catch (err) {
    failure = err;
  }
  if (!detach && scaled.length > 0) await waitForConvergence(ctx, scaled, 'scaled');
  if (failure !== undefined) throw failure;
}

/** The edits of `service update` from its flags. */
function updateFlags(a: Args): UpdateFlags {
  const args = one(a, 'args');
  return {
    replicas: one(a, 'replicas'),
    maxConcurrent: one(a, 'maxConcurrent'),
    image: one(a, 'image'),
    envAdd: list(a, 'envAdd'),
    envRm: list(a, 'envRm'),
    publishAdd: list(a, 'publishAdd'),
    publishRm: list(a, 'publishRm'),
    labelAdd: list(a, 'labelAdd'),
    labelRm: list(a, 'labelRm'),
    constraintAdd: list(a, 'constraintAdd'),
    constraintRm: list(a, 'constraintRm'),
    placementPrefAdd: list(a, 'placementPrefAdd'),
    placementPrefRm: list(a, 'placementPrefRm'),
    restartCondition: one(a, 'restartCondition'),
    restartDelay: one(a, 'restartDelay'),
    restartMaxAttempts: one(a, 'restartMaxAttempts'),
    stopGracePeriod: one(a, 'stopGracePeriod'),
    workdir: one(a, 'workdir'),
    networkAdd: list(a, 'networkAdd'),
    networkRm: list(a, 'networkRm'),
    endpointMode: one(a, 'endpointMode'),
    ...rolloutFlags(a),
    ...resourceFlags(a),
    ...healthFlags(a),
    ...containerUpdateFlags(a),
    force: a['force'] === true ? true : undefined,
    args: args === undefined ? undefined : args.split(/\s+/).filter((w) => w !== ''),
  };
}

async function update(ctx: Ctx, a: Args): Promise<void> {
  const service = required(a, 'service', 'SERVICE: shoal service update [OPTIONS] SERVICE');
  const flags = updateFlags(a);
  validateUpdateFlags(flags); // bad input fails before any call
  const files = { secretAdd: list(a, 'secretAdd'), secretRm: list(a, 'secretRm'), configAdd: list(a, 'configAdd'), configRm: list(a, 'configRm') };
  validateFileFlags(files);
  if (a['rollback'] === true) {
    const given = Object.entries({ ...flags, ...files }).filter(([, v]) => v !== undefined && !(Array.isArray(v) && v.length === 0));
    if (given.length > 0) throw new UsageError('--rollback cannot be combined with other changes');
    await rollback(ctx, a, service);
    return;
  }
  const detach = a['detach'] === true;
  if (!detach) ctx.budget(DEFAULT_WAIT_TIMEOUT_MS);
  const current = serviceOf(await ctx.call('GetService', { service }, svcNotFound(service)), service);
  const spec = applyFileFlags(applyServiceUpdate(current.spec, { ...flags, networkRm: await networkIds(ctx, flags.networkRm ?? []) }), files);
  // As docker: the credentials for the image the service will run (the new one, or its own).
  const registryAuth = registryAuthFlag(a, spec.image);
  let specVersion = current.specVersion;
  if (!sameSpec(spec, current.spec) || registryAuth.registryAuth !== undefined) {
    const req = { service: current.id, spec, version: current.version, ...registryAuth, resolveImage: resolveImageFlag(a) };
    const r = await ctx.call('UpdateService', req, svcNotFound(service));
    printWarnings(ctx, r.warnings);
    specVersion = r.service?.specVersion ?? specVersion;
  }
  ctx.print(service);
  if (!detach) await waitForConvergence(ctx, [{ ref: current.id, name: current.spec.name, specVersion, watch: 'update' }], 'updated');
}

/** The ids of the networks `--network-rm` names (a spec holds its networks' ids). */
async function networkIds(ctx: Ctx, refs: readonly string[]): Promise<string[]> {
  const ids: string[] = [];
  for (const network of refs) {
    const r = await ctx.call('GetNetwork', { network }, { notFound: { kind: 'network', name: network } });
    if (r.network) ids.push(r.network.id);
  }
  return ids;
}

/** `shoal service rollback SERVICE` and `service update --rollback`: the previous spec back. */
async function rollback(ctx: Ctx, a: Args, service = required(a, 'service', 'SERVICE: shoal service rollback [OPTIONS] SERVICE')): Promise<void> {
  const detach = a['detach'] === true;
  if (!detach) ctx.budget(DEFAULT_WAIT_TIMEOUT_MS);
  const s = serviceOf(await ctx.call('RollbackService', { service }, svcNotFound(service)), service);
  ctx.print(service);
  if (!detach) {
    ctx.stderr.write('rollback: manually requested rollback\n');
    await waitForConvergence(ctx, [{ ref: s.id, name: s.spec.name, specVersion: s.specVersion, watch: 'rollback' }], 'rolled back');
  }
}

// ------------------------------------------------------------------ yargs

export function serviceCommand(make: CtxFactory) {
  return {
    command: 'service',
    describe: 'Manage services',
    builder: (y: Argv) =>
      y
        .usage('Usage: shoal service COMMAND\n\nManage services')
        .command(
          'create',
          'Create a new service',
          (y: Argv) =>
            y
              .usage(
                'Usage: shoal service create --name NAME [OPTIONS] IMAGE [COMMAND [ARG...]]\n\nCreate a new service and print its id. Without -d, waits until its tasks run, showing docker-style progress on stderr (overall progress, a line per task, verify: Service converged); if it does not converge within --timeout, exits 1 with the errors of its tasks.',
              )
              .options(CREATE_OPTIONS)
              .example('shoal service create --name web --replicas 5 -p 8080:80 nginx:alpine', '')
              .example('shoal service create --name pinger --mode global -d busybox ping 10.0.0.1', '')
              .example('shoal service create --name batch --mode replicated-job --replicas 10 --max-concurrent 2 busybox sh -c "exit 0"', ''),
          action(make, create),
        )
        .command(
          'ls',
          'List services',
          (y: Argv) =>
            withFilter(withFormat(y.usage('Usage: shoal service ls [OPTIONS]').option('quiet', quiet).option('no-trunc', noTrunc)), Object.keys(SERVICE_FILTERS)),
          action(make, ls),
        )
        .command(
          'ps <service>',
          "List a service's tasks (older tasks of a slot below the current one)",
          (y: Argv) =>
            withFilter(
              withFormat(
                y
                  .usage('Usage: shoal service ps [OPTIONS] SERVICE')
                  .positional('service', { type: 'string', describe: 'Service name, id or unique id prefix' })
                  .option('quiet', quiet)
                  .option('no-trunc', noTrunc),
              ),
              Object.keys(TASK_FILTERS),
            ),
          action(make, ps),
        )
        .command(
          'logs <service>',
          "Show the logs of a service's tasks (gathered from every node that runs them)",
          (y: Argv) =>
            y
              .usage('Usage: shoal service logs [OPTIONS] SERVICE\n\nEach line is prefixed with its task and node (SERVICE.SLOT.TASKID@NODE); stderr lines go to stderr.')
              .positional('service', { type: 'string', describe: 'Service name, id or unique id prefix' })
              .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'Keep following new lines (until interrupted)' })
              .option('tail', { ...S, describe: 'Lines to show from the end of each task\'s log, or "all" (default)' })
              .option('since', { ...S, describe: 'Only lines since a time (2026-01-02T15:04:05Z) or for a duration back (10m)' })
              .option('timestamps', { alias: 't', type: 'boolean', default: false, describe: 'Show each line\'s time' })
              .option('no-trunc', noTrunc),
          action(make, logs),
        )
        .command(
          'inspect <service>',
          'Show a service in detail (--format json: the whole service object; docker: as docker service inspect)',
          (y: Argv) =>
            withFormat(
              y
                .usage('Usage: shoal service inspect [OPTIONS] SERVICE')
                .positional('service', { type: 'string', describe: 'Service name, id or unique id prefix' }),
              { docker: true },
            ),
          action(make, inspect),
        )
        .command(
          ['rm <service..>', 'remove'],
          'Remove one or more services',
          (y: Argv) =>
            y
              .usage('Usage: shoal service rm SERVICE [SERVICE...]')
              .positional('service', { type: 'string', describe: 'Service name, id or unique id prefix' }),
          action(make, rm),
        )
        .command(
          'scale <targets..>',
          'Scale one or more replicated services',
          (y: Argv) =>
            y
              .usage('Usage: shoal service scale SERVICE=REPLICAS [SERVICE=REPLICAS...]\n\nWithout -d, waits for each service to converge, showing progress on stderr.')
              .positional('targets', { type: 'string', describe: 'SERVICE=REPLICAS' })
              .option('detach', DETACH)
              .example('shoal service scale web=10 db=1', ''),
          action(make, scale),
        )
        .command(
          'update <service>',
          "Update a service (reads its spec, edits it, sends it back)",
          (y: Argv) =>
            y
              .usage('Usage: shoal service update [OPTIONS] SERVICE\n\nWithout -d, waits until every task runs the new spec, showing progress on stderr.')
              .positional('service', { type: 'string', describe: 'Service name, id or unique id prefix' })
              .options(UPDATE_OPTIONS)
              .example('shoal service update --image nginx:1.27 --env-add MODE=prod web', ''),
          action(make, update),
        )
        .command(
          'rollback <service>',
          'Revert a service to its previous spec',
          (y: Argv) =>
            y
              .usage('Usage: shoal service rollback [OPTIONS] SERVICE\n\nThe spec before the last update comes back, rolled out as an update is. Without -d, waits until every task runs it.')
              .positional('service', { type: 'string', describe: 'Service name, id or unique id prefix' })
              .option('detach', DETACH),
          action(make, (ctx, a) => rollback(ctx, a)),
        )
        .demandCommand(1, 'missing a service command (create, ls, ps, logs, inspect, rm, scale, update, rollback)'),
    handler: () => {},
  };
}
