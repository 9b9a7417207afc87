// What a stack is in the cluster: the services, networks, secrets and configs that carry its
// namespace label (a stack has no object of its own, as in Swarm), listed and removed.

import type { Network, Service, ServiceSummary, TaskView } from '@shoal/types';
import type { Ctx } from '../context.js';
import { CliError } from '../errors.js';
import { NAMESPACE_LABEL } from './namespace.js';

const inStack = (labels: Readonly<Record<string, string>> | null | undefined, ns: string) => (labels ?? {})[NAMESPACE_LABEL] === ns;

/** The service summaries of stack `ns` (every stack's when `ns` is undefined). */
export async function stackServiceSummaries(ctx: Ctx, ns?: string): Promise<(ServiceSummary & { service: Service })[]> {
  const r = await ctx.call('ListServices', {});
  return r.services.filter(
    (s): s is ServiceSummary & { service: Service } => s.service?.spec != null && (ns === undefined ? NAMESPACE_LABEL in (s.service.spec.labels ?? {}) : inStack(s.service.spec.labels, ns)),
  );
}

export interface StackLsEntry {
  name: string;
  services: number;
}

/** `stack ls`: each stack by name with its number of services. */
export async function listStacks(ctx: Ctx): Promise<StackLsEntry[]> {
  const counts = new Map<string, number>();
  for (const s of await stackServiceSummaries(ctx)) {
    const ns = s.service.spec.labels[NAMESPACE_LABEL]!;
    counts.set(ns, (counts.get(ns) ?? 0) + 1);
  }
  return [...counts].sort(([a], [b]) => a.localeCompare(b)).map(([name, services]) => ({ name, services }));
}

/** `stack ps`: the tasks of every service of the stack. */
export async function stackTasks(ctx: Ctx, ns: string): Promise<TaskView[]> {
  const out: TaskView[] = [];
  for (const s of await stackServiceSummaries(ctx, ns)) out.push(...(await ctx.listTasks({ service: s.service.id })));
  return out;
}

/**
 * A list call that a manager without secrets and configs does not serve (an older release, or
 * one that has the RPC but not yet its implementation): none there. Any other failure is one.
 */
async function unlessUnserved<T>(list: () => Promise<T[]>): Promise<T[]> {
  try {
    return await list();
  } catch (err) {
    if (err instanceof CliError && /does not serve|has no method|not served by this release/.test(err.message)) return [];
    throw err;
  }
}

export async function stackNetworks(ctx: Ctx, ns: string): Promise<Network[]> {
  return (await ctx.call('ListNetworks', {})).networks.filter((n) => inStack(n.spec?.labels, ns));
}

export async function listSecrets(ctx: Ctx) {
  return unlessUnserved(async () => (await ctx.call('ListSecrets', {})).secrets);
}

export async function listConfigs(ctx: Ctx) {
  return unlessUnserved(async () => (await ctx.call('ListConfigs', {})).configs);
}

/**
 * `stack rm NS`: its services first (their tasks go with them, on every node), then its networks
 * (free once no service uses them), secrets and configs. Goes on after a failure and rethrows
 * the last one, as docker does.
 */
export async function removeStack(ctx: Ctx, ns: string): Promise<void> {
  const services = await stackServiceSummaries(ctx, ns);
  const networks = await stackNetworks(ctx, ns);
  const secrets = (await listSecrets(ctx)).filter((s) => inStack(s.spec?.labels, ns));
  const configs = (await listConfigs(ctx)).filter((c) => inStack(c.spec?.labels, ns));
  if (services.length + networks.length + secrets.length + configs.length === 0) {
    ctx.note(`Nothing found in stack: ${ns}`);
    return;
  }
  let failure: unknown;
  const attempt = async (what: string, fn: () => Promise<unknown>) => {
    try {
      await fn();
      ctx.print(what);
    } catch (err) {
      if (failure !== undefined) ctx.note(`Error: ${(failure as Error).message}`);
      failure = err;
    }
  };
  for (const s of services.sort((a, b) => a.service.spec.name.localeCompare(b.service.spec.name))) {
    await attempt(`Removing service ${s.service.spec.name}`, () => ctx.call('RemoveService', { service: s.service.id }));
  }
  for (const s of secrets) await attempt(`Removing secret ${s.spec!.name}`, () => ctx.call('RemoveSecret', { secret: s.id }));
  for (const c of configs) await attempt(`Removing config ${c.spec!.name}`, () => ctx.call('RemoveConfig', { config: c.id }));
  for (const n of networks.sort((a, b) => a.spec!.name.localeCompare(b.spec!.name))) await attempt(`Removing network ${n.spec!.name}`, () => ctx.call('RemoveNetwork', { network: n.id }));
  if (failure !== undefined) throw failure;
}
