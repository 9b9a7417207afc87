// `shoal stack deploy`: a converted stack made real through the control API, as `docker stack
// deploy` does it from the client. Everything that can be wrong with the files, and every
// external object the stack names, is checked before the first write, so a refused deploy
// leaves the cluster as it was. A redeploy writes only what changed: a service whose spec is
// the one it has keeps its tasks.

import { type ServiceSpec, completeServiceSpec, withDefaultTag } from '@shoal/types';
import type { Ctx } from '../context.js';
import { CliError } from '../errors.js';
import { sameSpec } from '../spec.js';
import type { Stack } from './convert.js';
import { NAMESPACE_LABEL } from './namespace.js';
import { composeError } from './interpolate.js';

export type ResolveImage = 'always' | 'changed' | 'never';

export interface DeployOptions {
  /** Remove the stack's services the files no longer have. */
  prune: boolean;
  /** Pin images to their digests (docker's --resolve-image). */
  resolveImage: ResolveImage;
}

/** What a deploy did to each service (for its tests and its caller). */
export interface DeployResult {
  created: string[];
  updated: string[];
  unchanged: string[];
  removed: string[];
}

/** The name → id of objects a list call gave (an object may also be named by its id). */
function byName<T>(xs: readonly T[], name: (x: T) => string | undefined, id: (x: T) => string): Map<string, string> {
  const out = new Map<string, string>();
  for (const x of xs) {
    const n = name(x);
    if (n) out.set(n, id(x));
    out.set(id(x), id(x));
  }
  return out;
}

/**
 * The spec to compare with the one stored: the service's own force-update counter, and the
 * digest its image was pinned to when the file names the same tag (a redeploy of an unchanged
 * file is no change, though the manager stored `IMAGE@sha256:...`).
 */
function asStored(spec: ServiceSpec, current: ServiceSpec): ServiceSpec {
  // The manager pins `name` as `name:latest@sha256:...`.
  const pinned = !spec.image.includes('@') && current.image.startsWith(`${withDefaultTag(spec.image)}@`);
  return { ...spec, forceUpdate: current.forceUpdate, image: pinned ? current.image : spec.image };
}

function complete(spec: ServiceSpec): ServiceSpec | undefined {
  try {
    return completeServiceSpec(spec, { currentName: spec.name });
  } catch {
    return undefined;
  }
}

export async function deployStack(ctx: Ctx, stack: Stack, opts: DeployOptions): Promise<DeployResult> {
  const ns = stack.namespace;
  const result: DeployResult = { created: [], updated: [], unchanged: [], removed: [] };

  // ---- what is there, and whether every external object is among it: no write before this.
  const networks = (await ctx.call('ListNetworks', {})).networks;
  const networkIds = byName(networks, (n) => n.spec?.name, (n) => n.id);
  for (const n of stack.networks.filter((x) => x.external)) {
    if (!networkIds.has(n.name)) {
      throw composeError(`network ${JSON.stringify(n.name)} is declared as external, but could not be found: create it (shoal network create) before the stack is deployed`);
    }
  }
  // Listed only when the stack has some (a manager that serves no secrets still deploys the
  // others); when it has, a manager that cannot list them cannot make them: refused here.
  const secrets = stack.secrets.length > 0 ? (await ctx.call('ListSecrets', {})).secrets : [];
  const secretIds = byName(secrets, (s) => s.spec?.name, (s) => s.id);
  const configs = stack.configs.length > 0 ? (await ctx.call('ListConfigs', {})).configs : [];
  const configIds = byName(configs, (c) => c.spec?.name, (c) => c.id);
  for (const [kind, objs, ids] of [['secret', stack.secrets, secretIds], ['config', stack.configs, configIds]] as const) {
    for (const o of objs.filter((x) => x.external)) {
      if (!ids.has(o.name)) throw composeError(`${kind} ${JSON.stringify(o.name)} is declared as external, but could not be found: create it (shoal ${kind} create) before the stack is deployed`);
    }
  }
  // A config's data cannot change (Swarm's rule): a file that now says otherwise is refused here,
  // before anything is written, rather than halfway.
  for (const c of stack.configs.filter((x) => !x.external && configIds.has(x.name))) {
    const current = configs.find((x) => x.spec?.name === c.name);
    if (current?.spec?.data && c.data && !Buffer.from(current.spec.data).equals(c.data)) {
      throw composeError(`config ${c.name} exists with other content and a config cannot change: give the new one another name (name: in the file)`);
    }
  }
  // Every service by name: one of the stack's names taken by another service is updated, as docker does.
  const current = new Map(
    (await ctx.call('ListServices', {})).services.flatMap((s) => (s.service?.spec ? [[s.service.spec.name, s.service] as const] : [])),
  );

  // ---- networks, secrets and configs the stack makes (those already there are kept).
  for (const n of stack.networks) {
    if (n.external || networkIds.has(n.name)) continue;
    ctx.print(`Creating network ${n.name}`);
    const r = await ctx.call('CreateNetwork', { spec: n.spec! });
    if (!r.network) throw new CliError(`the manager sent no network for ${n.name}`);
    networkIds.set(n.name, r.network.id);
  }
  for (const s of stack.secrets) {
    if (s.external || secretIds.has(s.name)) continue;
    ctx.print(`Creating secret ${s.name}`);
    const r = await ctx.call('CreateSecret', { spec: { name: s.name, labels: s.labels }, data: s.data! });
    if (!r.secret) throw new CliError(`the manager sent no secret for ${s.name}`);
    secretIds.set(s.name, r.secret.id);
  }
  for (const c of stack.configs) {
    if (c.external || configIds.has(c.name)) continue;
    ctx.print(`Creating config ${c.name}`);
    const r = await ctx.call('CreateConfig', { spec: { name: c.name, labels: c.labels, data: c.data! } });
    if (!r.config) throw new CliError(`the manager sent no config for ${c.name}`);
    configIds.set(c.name, r.config.id);
  }

  // ---- services: created, updated where the spec changed, or left alone.
  const idOf = (ids: Map<string, string>, name: string): string => ids.get(name) ?? name;
  for (const { spec: named } of stack.services) {
    const spec: ServiceSpec = {
      ...named,
      networks: named.networks.map((n) => ({ ...n, target: idOf(networkIds, n.target) })),
      secrets: named.secrets.map((r) => ({ ...r, secretId: idOf(secretIds, r.secretName) })),
      configs: named.configs.map((r) => ({ ...r, configId: idOf(configIds, r.configName) })),
    };
    const svc = current.get(spec.name);
    if (!svc) {
      ctx.print(`Creating service ${spec.name}`);
      const r = await ctx.call('CreateService', { spec, resolveImage: opts.resolveImage !== 'never' });
      for (const w of r.warnings ?? []) ctx.note(w);
      result.created.push(spec.name);
      continue;
    }
    const next = asStored(spec, svc.spec);
    const stored = complete(svc.spec);
    if (stored && sameSpec(next, stored)) {
      result.unchanged.push(spec.name);
      continue;
    }
    const imageChanged = next.image !== svc.spec.image;
    ctx.print(`Updating service ${spec.name} (id: ${svc.id})`);
    const r = await ctx.call('UpdateService', {
      service: svc.id,
      spec: next,
      version: svc.version,
      resolveImage: opts.resolveImage === 'always' || (opts.resolveImage === 'changed' && imageChanged),
    });
    for (const w of r.warnings ?? []) ctx.note(w);
    result.updated.push(spec.name);
  }

  if (opts.prune) {
    const wanted = new Set(stack.services.map((s) => s.spec.name));
    for (const [name, svc] of current) {
      if (wanted.has(name) || svc.spec.labels[NAMESPACE_LABEL] !== ns) continue;
      ctx.print(`Removing service ${name}`);
      await ctx.call('RemoveService', { service: svc.id });
      result.removed.push(name);
    }
  }
  return result;
}
