// `shoal stack deploy|ls|services|ps|rm`: applications from Compose files (INTERFACE.md,
// "Stacks"). As with `docker stack`, a stack lives in the client: its objects carry its
// namespace label, and the CLI reads the files and calls the control API.

import type { Argv } from 'yargs';
import type { Ctx } from '../context.js';
import { UsageError } from '../errors.js';
import { renderTable } from '../format.js';
import { applyFilters, parseFilters } from '../filters.js';
import { SERVICE_FILTERS, TASK_FILTERS } from '../list-rows.js';
import { type Args, type CtxFactory, action, forEachReporting, list, one, outputOf, printList, required, variadic, withFilter, withFormat } from './common.js';
import { printServices, printTasks } from './lists.js';

const RESOLVE_IMAGE = ['always', 'changed', 'never'] as const;

async function deploy(ctx: Ctx, a: Args): Promise<void> {
  const ns = required(a, 'stack', 'STACK: shoal stack deploy -c FILE [-c FILE]... STACK');
  const files = list(a, 'composeFile');
  if (files.length === 0) throw new UsageError('missing -c FILE: the Compose file(s) of the stack');
  const resolveImage = (one(a, 'resolveImage') ?? 'always') as (typeof RESOLVE_IMAGE)[number];
  // YAML, the schema and its validator: loaded by this command alone.
  const [{ loadCompose }, { convertStack }, { deployStack }] = await Promise.all([
    import('../stack/compose-load.js'),
    import('../stack/convert.js'),
    import('../stack/deploy.js'),
  ]);
  const loaded = loadCompose(files);
  for (const name of loaded.unset) ctx.note(`The "${name}" variable is not set. Defaulting to a blank string.`);
  if (loaded.ignored.length > 0) ctx.note(`Ignoring unsupported options: ${loaded.ignored.join(', ')}`);
  const stack = convertStack(loaded, ns);
  await deployStack(ctx, stack, { prune: a['prune'] === true, resolveImage });
}

async function ls(ctx: Ctx, a: Args): Promise<void> {
  const out = outputOf(a);
  const { listStacks } = await import('../stack/stack-objects.js');
  const stacks = await listStacks(ctx);
  printList(ctx, out, {
    table: () => renderTable(['NAME', 'SERVICES'], stacks.map((s) => [s.name, String(s.services)])),
    json: () => stacks,
    rows: () => stacks.map((s) => ({ Name: s.name, Services: String(s.services) })),
    headers: { Name: 'NAME', Services: 'SERVICES' },
  });
}

async function services(ctx: Ctx, a: Args): Promise<void> {
  const ns = required(a, 'stack', 'STACK: shoal stack services STACK');
  const out = outputOf(a);
  const filters = parseFilters(list(a, 'filter'), SERVICE_FILTERS);
  const { stackServiceSummaries } = await import('../stack/stack-objects.js');
  const xs = applyFilters(await stackServiceSummaries(ctx, ns), filters, SERVICE_FILTERS);
  if (xs.length === 0 && out.kind === 'table') return ctx.note(`Nothing found in stack: ${ns}`);
  printServices(ctx, a, out, xs);
}

async function ps(ctx: Ctx, a: Args): Promise<void> {
  const ns = required(a, 'stack', 'STACK: shoal stack ps STACK');
  const out = outputOf(a);
  const filters = parseFilters(list(a, 'filter'), TASK_FILTERS);
  const { stackTasks } = await import('../stack/stack-objects.js');
  const tasks = applyFilters(await stackTasks(ctx, ns), filters, TASK_FILTERS);
  if (tasks.length === 0 && out.kind === 'table') return ctx.note(`Nothing found in stack: ${ns}`);
  printTasks(ctx, a, out, tasks);
}

async function rm(ctx: Ctx, a: Args): Promise<void> {
  const stacks = variadic(a, 'stack', 'STACK: shoal stack rm STACK [STACK...]');
  const { removeStack } = await import('../stack/stack-objects.js');
  await forEachReporting(ctx, stacks, (ns) => removeStack(ctx, ns));
}

export function stackCommand(make: CtxFactory) {
  const stackArg = { type: 'string', describe: 'The stack name' } as const;
  const quiet = { alias: 'q', type: 'boolean', default: false } as const;
  const noTrunc = { type: 'boolean', default: false, describe: 'Do not truncate ids' } as const;
  return {
    command: 'stack',
    describe: 'Deploy and manage applications from Compose files',
    builder: (y: Argv) =>
      y
        .usage('Usage: shoal stack COMMAND\n\nDeploy and manage applications (stacks) from Compose files')
        .command(
          ['deploy <stack>', 'up'],
          'Deploy a new stack or update an existing one',
          (y: Argv) =>
            y
              .usage('Usage: shoal stack deploy -c FILE [-c FILE]... [--prune] STACK')
              .positional('stack', stackArg)
              .option('compose-file', {
                alias: 'c',
                type: 'string',
                requiresArg: true,
                describe: 'A Compose file; repeatable, later files override earlier ones (.env next to the first is read)',
              })
              .option('prune', { type: 'boolean', default: false, describe: 'Remove the services the files no longer have' })
              .option('resolve-image', {
                choices: RESOLVE_IMAGE,
                default: 'always',
                requiresArg: true,
                describe: 'Pin images to their digests: always, only for changed services, or never',
              }),
          action(make, deploy),
        )
        .command(['ls', 'list'], 'List stacks', (y: Argv) => withFormat(y.usage('Usage: shoal stack ls [OPTIONS]')), action(make, ls))
        .command(
          'services <stack>',
          'List the services of a stack',
          (y: Argv) =>
            withFilter(withFormat(
              y
                .usage('Usage: shoal stack services [OPTIONS] STACK')
                .positional('stack', stackArg)
                .option('quiet', { ...quiet, describe: 'Only print ids' })
                .option('no-trunc', noTrunc),
            ), Object.keys(SERVICE_FILTERS)),
          action(make, services),
        )
        .command(
          'ps <stack>',
          'List the tasks of a stack',
          (y: Argv) =>
            withFilter(withFormat(
              y
                .usage('Usage: shoal stack ps [OPTIONS] STACK')
                .positional('stack', stackArg)
                .option('quiet', { ...quiet, describe: 'Only print task ids' })
                .option('no-trunc', noTrunc),
            ), Object.keys(TASK_FILTERS)),
          action(make, ps),
        )
        .command(
          ['rm <stack..>', 'remove', 'down'],
          'Remove one or more stacks: their services, networks, secrets and configs',
          (y: Argv) => y.usage('Usage: shoal stack rm STACK [STACK...]').positional('stack', stackArg),
          action(make, rm),
        )
        .demandCommand(1, 'missing a stack command (deploy, ls, services, ps, rm)'),
    handler: () => {},
  };
}
