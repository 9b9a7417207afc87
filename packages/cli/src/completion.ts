// Shell completion (`source <(shoal completion)`): yargs completes the commands and flags; this
// adds the names of services and nodes where a command takes one, asked of the manager (with a
// short budget, and nothing rather than an error when it cannot answer: a key press must not
// print errors or hang).

import type { Ctx } from './context.js';

/** `shoal service X NAME`: the subcommands that take service names. */
const TAKE_SERVICES = new Set(['ps', 'inspect', 'rm', 'remove', 'scale', 'update', 'logs', 'rollback']);
/** `shoal node X NAME`: the subcommands that take node names. */
const TAKE_NODES = new Set(['ps', 'inspect', 'promote', 'demote', 'rm', 'remove', 'update']);

/** The time a completion may take to ask the manager, unless --timeout says otherwise. */
export const COMPLETION_BUDGET_MS = 2_000;

/** What the word being completed names, from the words before it (`service inspect`). */
export function nameKind(words: readonly string[]): 'service' | 'node' | undefined {
  const [group, sub] = words;
  if (words.length < 2 || sub === undefined) return undefined;
  if (group === 'service' && TAKE_SERVICES.has(sub)) return 'service';
  if (group === 'node' && TAKE_NODES.has(sub)) return 'node';
  return undefined;
}

/**
 * The names to offer after `words` (the positional words before the one being completed, without
 * the program's name) that start with `current`: service names (`NAME=` after `service scale`),
 * or node hostnames. Empty when the words take no name or the manager does not answer.
 */
export async function completeNames(ctx: Ctx, words: readonly string[], current: string): Promise<string[]> {
  const kind = nameKind(words);
  if (!kind || current.startsWith('-')) return [];
  try {
    ctx.budget(COMPLETION_BUDGET_MS);
    let names: string[];
    if (kind === 'service') {
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
