// Shell completion (`source <(shoal completion)`): yargs completes the commands and flags; this
// adds the names of services, nodes and stacks where a command takes one, asked of the manager, and of a
// lab's nodes (and registry) after `lab stop|start|exec`, asked of the host's Docker engine (with
// a short budget, and nothing rather than an error when it cannot answer: a key press must not
// print errors or hang).

import type { Ctx } from './context.js';
import { NAMESPACE_LABEL } from './stack/namespace.js';

/** `shoal service X NAME`: the subcommands that take service names. */
const TAKE_SERVICES = new Set(['ps', 'inspect', 'rm', 'remove', 'scale', 'update', 'logs', 'rollback']);
/** `shoal node X NAME`: the subcommands that take node names. */
const TAKE_NODES = new Set(['ps', 'inspect', 'promote', 'demote', 'rm', 'remove', 'update']);

/** `shoal stack X STACK`: the subcommands that take stack names. */
const TAKE_STACKS = new Set(['services', 'ps', 'rm', 'remove', 'down']);

/** `shoal lab X NODE`: the subcommands that take one lab node's name. */
const TAKE_LAB_MEMBER = new Set(['stop', 'start', 'exec']);

/** The time a completion may take to ask the manager, unless --timeout says otherwise. */
export const COMPLETION_BUDGET_MS = 2_000;

/** What the word being completed names, from the words before it (`service inspect`). */
export function nameKind(words: readonly string[]): 'service' | 'node' | 'stack' | 'lab' | undefined {
  const [group, sub] = words;
  if (words.length < 2 || sub === undefined) return undefined;
  if (group === 'service' && TAKE_SERVICES.has(sub)) return 'service';
  if (group === 'node' && TAKE_NODES.has(sub)) return 'node';
  if (group === 'stack' && TAKE_STACKS.has(sub)) return 'stack';
  // One node only: after it come `exec`'s command and nothing else.
  if (group === 'lab' && TAKE_LAB_MEMBER.has(sub) && words.length === 2) return 'lab';
  return undefined;
}

/** The names of lab `labName`'s nodes and registry, from the host's engine (@shoal/lab, loaded only here). */
async function labMembers(ctx: Ctx, labName: string | undefined): Promise<string[]> {
  const mod = await import('@shoal/lab');
  const lab = new mod.Lab({ name: labName ?? mod.DEFAULT_LAB, labsDir: mod.labsDir(ctx.env) });
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error('the engine did not answer')), COMPLETION_BUDGET_MS)));
  try {
    return (await Promise.race([lab.list(), late])).map((n) => n.name);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The names to offer after `words` (the positional words before the one being completed, without
 * the program's name) that start with `current`: service names (`NAME=` after `service scale`),
 * node hostnames, or the names of lab `labName`'s nodes. Empty when the words take no name or the
 * manager (the engine) does not answer.
 */
export async function completeNames(ctx: Ctx, words: readonly string[], current: string, labName?: string): Promise<string[]> {
  const kind = nameKind(words);
  if (!kind || current.startsWith('-')) return [];
  try {
    if (kind === 'lab') return (await labMembers(ctx, labName)).filter((n) => n.startsWith(current));
    ctx.budget(COMPLETION_BUDGET_MS);
    let names: string[];
    if (kind === 'stack') {
      const { services } = await ctx.call('ListServices', {});
      names = [...new Set(services.flatMap((s) => s.service?.spec.labels?.[NAMESPACE_LABEL] ?? []))];
    } else if (kind === 'service') {
      const { services } = await ctx.call('ListServices', {});
      names = services.flatMap((s) => (s.service ? [s.service.spec.name] : []));
      if (words[1] === 'scale') names = names.map((n) => `${n}=`);
    } else {
      const { nodes } = await ctx.call('ListNodes', {});
      names = nodes.flatMap((n) => (n.node ? [n.node.description.hostname] : []));
    }
    return names.filter((n) => n.startsWith(current)).sort();
  } catch {
    return [];
  } finally {
    ctx.close();
  }
}
