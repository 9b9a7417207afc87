// `shoal node ls|inspect|promote|demote|rm|update`.

import type { Argv } from 'yargs';
import { CliError } from '../errors.js';
import type { Ctx } from '../context.js';
import { nodeInspectText, nodeLsJson, nodeLsTable } from '../format.js';
import { UsageError } from '../errors.js';
import { parseLabelKey, parseLabels } from '../parse.js';
import type { NodeResponse, NodeView } from '@shoal/types';
import { type Args, type CtxFactory, action, forEachReporting, list, one, outputOf, printList, printObject, required, variadic, withFilter, withFormat } from './common.js';
import { printTasks } from './lists.js';
import { dockerNode } from '../docker-shape.js';
import { applyFilters, parseFilters } from '../filters.js';
import { NODE_FILTERS, NODE_HEADERS, TASK_FILTERS, nodeRows } from '../list-rows.js';

const AVAILABILITIES = ['active', 'pause', 'drain'];

function nodeNotFound(name: string) {
  return { notFound: { kind: 'node' as const, name } };
}

function viewOf(r: NodeResponse, ref: string): NodeView & { node: NonNullable<NodeView['node']> } {
  if (!r.node?.node) throw new CliError(`the manager sent no node for ${ref}`);
  return r.node as NodeView & { node: NonNullable<NodeView['node']> };
}

async function ls(ctx: Ctx, a: Args): Promise<void> {
  const out = outputOf(a);
  const filters = parseFilters(list(a, 'filter'), NODE_FILTERS);
  const nodes = applyFilters((await ctx.call('ListNodes', {})).nodes, filters, NODE_FILTERS);
  if (a['quiet'] === true) {
    for (const n of nodeLsJson(nodes)) ctx.print(n.id);
    return;
  }
  // `.Self` needs the answering manager's id: asked only for a template.
  const self = out.kind === 'template' ? ((await ctx.call('ClusterStatus', {})).self ?? '') : '';
  printList(ctx, out, {
    table: () => nodeLsTable(nodes),
    json: () => nodeLsJson(nodes),
    rows: () => nodeRows(nodes, self),
    headers: NODE_HEADERS,
  });
}

async function inspect(ctx: Ctx, a: Args): Promise<void> {
  const node = required(a, 'node', 'NODE: shoal node inspect NODE');
  const out = outputOf(a, { docker: true });
  const view = viewOf(await ctx.call('GetNode', { node }, nodeNotFound(node)), node);
  printObject(ctx, out, { text: () => nodeInspectText(view, ctx.now()), json: () => view.node, docker: () => dockerNode(view) });
}

/**
 * `shoal node ps NODE...`: the tasks on these nodes, as `service ps` lists them (old tasks of a
 * slot under the current one); `--filter` as service ps.
 */
async function ps(ctx: Ctx, a: Args): Promise<void> {
  const out = outputOf(a);
  const filters = parseFilters(list(a, 'filter'), TASK_FILTERS);
  // As `docker node ps`: without a NODE, the node of the manager the CLI talks to.
  const given = list(a, 'node');
  const nodes = given.length > 0 ? given : [await selfNode(ctx)];
  const desired = filters.get('desired-state');
  const desiredState = desired?.length === 1 ? desired[0]! : '';
  const views = [];
  for (const node of nodes) views.push(...(await ctx.listTasks({ service: '', node, desiredState }, nodeNotFound(node))));
  const tasks = applyFilters(views, filters, TASK_FILTERS);
  printTasks(ctx, a, out, tasks);
}

async function selfNode(ctx: Ctx): Promise<string> {
  const self = (await ctx.call('ClusterStatus', {})).self;
  if (!self) throw new CliError('this manager does not say which node it is (an older shoald?): name a NODE');
  return self;
}

async function promote(ctx: Ctx, a: Args): Promise<void> {
  const nodes = variadic(a, 'node', 'NODE: shoal node promote NODE [NODE...]');
  await forEachReporting(ctx, nodes, async (node) => {
    await ctx.call('PromoteNode', { node }, nodeNotFound(node));
    ctx.print(`Node ${node} promoted to a manager in the cluster.`);
  });
}

async function demote(ctx: Ctx, a: Args): Promise<void> {
  const nodes = variadic(a, 'node', 'NODE: shoal node demote NODE [NODE...]');
  await forEachReporting(ctx, nodes, async (node) => {
    await ctx.call('DemoteNode', { node }, nodeNotFound(node));
    ctx.print(`Manager ${node} demoted in the cluster.`);
  });
}

async function rm(ctx: Ctx, a: Args): Promise<void> {
  const nodes = variadic(a, 'node', 'NODE: shoal node rm [--force] NODE [NODE...]');
  const force = a['force'] === true;
  await forEachReporting(ctx, nodes, async (node) => {
    await ctx.call('RemoveNode', { node, force }, nodeNotFound(node));
    ctx.print(node);
  });
}

async function update(ctx: Ctx, a: Args): Promise<void> {
  const node = required(a, 'node', 'NODE: shoal node update [OPTIONS] NODE');
  const availability = one(a, 'availability') ?? '';
  if (availability !== '' && !AVAILABILITIES.includes(availability)) {
    throw new UsageError(`invalid --availability ${JSON.stringify(availability)}: expected active, pause or drain`);
  }
  const labelAdd = parseLabels(list(a, 'labelAdd'));
  const labelRm = list(a, 'labelRm').map(parseLabelKey);
  await ctx.call('UpdateNode', { node, availability, labelAdd, labelRm }, nodeNotFound(node));
  ctx.print(node);
}

export function nodeCommand(make: CtxFactory) {
  const nodeArg = { type: 'string', describe: 'Node id, unique id prefix or hostname' } as const;
  return {
    command: 'node',
    describe: 'Manage the nodes of the cluster',
    builder: (y: Argv) =>
      y
        .usage('Usage: shoal node COMMAND\n\nManage the nodes of the cluster')
        .command(
          'ls',
          'List nodes',
          (y: Argv) =>
            withFilter(
              withFormat(
                y.usage('Usage: shoal node ls [OPTIONS]').option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only print ids' }),
              ),
              Object.keys(NODE_FILTERS),
            ),
          action(make, ls),
        )
        .command(
          'ps [node..]',
          'List the tasks on one or more nodes (default: the node of the manager answering)',
          (y: Argv) =>
            withFilter(
              withFormat(
                y
                  .usage('Usage: shoal node ps [OPTIONS] [NODE...]')
                  .positional('node', nodeArg)
                  .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only print task ids' })
                  .option('no-trunc', { type: 'boolean', default: false, describe: 'Do not truncate ids and errors' }),
              ),
              Object.keys(TASK_FILTERS),
            ),
          action(make, ps),
        )
        .command(
          'inspect <node>',
          'Show a node in detail (--format json: the whole node object; docker: as docker node inspect)',
          (y: Argv) => withFormat(y.usage('Usage: shoal node inspect [OPTIONS] NODE').positional('node', nodeArg), { docker: true }),
          action(make, inspect),
        )
        .command(
          'promote <node..>',
          'Promote one or more workers to managers',
          (y: Argv) => y.usage('Usage: shoal node promote NODE [NODE...]').positional('node', nodeArg),
          action(make, promote),
        )
        .command(
          'demote <node..>',
          'Demote one or more managers to workers',
          (y: Argv) => y.usage('Usage: shoal node demote NODE [NODE...]').positional('node', nodeArg),
          action(make, demote),
        )
        .command(
          ['rm <node..>', 'remove'],
          'Remove one or more nodes from the cluster',
          (y: Argv) =>
            y
              .usage('Usage: shoal node rm [OPTIONS] NODE [NODE...]')
              .positional('node', nodeArg)
              .option('force', { alias: 'f', type: 'boolean', default: false, describe: 'Remove the node even if it is not down' }),
          action(make, rm),
        )
        .command(
          'update <node>',
          "Update a node's availability or labels",
          (y: Argv) =>
            y
              .usage('Usage: shoal node update [OPTIONS] NODE')
              .positional('node', nodeArg)
              .option('availability', {
                type: 'string',
                requiresArg: true,
                choices: AVAILABILITIES,
                describe: 'active: takes tasks; pause: keeps its tasks, gets no new ones; drain: its tasks move elsewhere',
              })
              .option('label-add', { type: 'string', requiresArg: true, describe: 'Add or replace a node label KEY=VALUE; repeatable' })
              .option('label-rm', { type: 'string', requiresArg: true, describe: 'Remove a node label KEY; repeatable' }),
          action(make, update),
        )
        .demandCommand(1, 'missing a node command (ls, ps, inspect, promote, demote, rm, update)'),
    handler: () => {},
  };
}
