// `shoal network create|ls|inspect|rm`: the cluster's overlay networks (INTERFACE.md).

import type { Argv } from 'yargs';
import { completeNetworkSpec } from '@shoal/types';
import { CliError } from '../errors.js';
import type { Ctx } from '../context.js';
import { networkInspectText, networkLsJson, networkLsTable } from '../network-format.js';
import { parseLabels } from '../parse.js';
import { type Args, type CtxFactory, action, forEachReporting, list, one, outputOf, printList, printObject, required, variadic, withFilter, withFormat } from './common.js';
import { dockerNetwork } from '../docker-shape.js';
import { applyFilters, parseFilters } from '../filters.js';
import { NETWORK_FILTERS, NETWORK_HEADERS, networkRows } from '../list-rows.js';

function networkNotFound(name: string) {
  return { notFound: { kind: 'network' as const, name } };
}

async function create(ctx: Ctx, a: Args): Promise<void> {
  const name = required(a, 'name', 'NAME: shoal network create [OPTIONS] NAME');
  // The manager's rules, run here first: a bad flag is a usage error before anything is sent.
  const spec = completeNetworkSpec({
    name,
    driver: one(a, 'driver') ?? 'overlay',
    labels: parseLabels(list(a, 'label')),
    internal: a['internal'] === true,
    attachable: a['attachable'] === true,
    ipam: { subnet: one(a, 'subnet') ?? '', gateway: one(a, 'gateway') ?? '' },
  });
  const r = await ctx.call('CreateNetwork', { spec });
  if (!r.network) throw new CliError(`the manager sent no network for ${name}`);
  ctx.print(r.network.id);
}

async function ls(ctx: Ctx, a: Args): Promise<void> {
  const out = outputOf(a);
  const filters = parseFilters(list(a, 'filter'), NETWORK_FILTERS);
  const networks = applyFilters((await ctx.call('ListNetworks', {})).networks, filters, NETWORK_FILTERS);
  if (a['quiet'] === true) {
    for (const n of networkLsJson(networks)) ctx.print(n.id);
    return;
  }
  printList(ctx, out, {
    table: () => networkLsTable(networks),
    json: () => networkLsJson(networks),
    rows: () => networkRows(networks, a['noTrunc'] === true),
    headers: NETWORK_HEADERS,
  });
}

async function inspect(ctx: Ctx, a: Args): Promise<void> {
  const network = required(a, 'network', 'NETWORK: shoal network inspect NETWORK');
  const out = outputOf(a, { docker: true });
  const r = await ctx.call('GetNetwork', { network }, networkNotFound(network));
  const n = r.network;
  if (!n) throw new CliError(`the manager sent no network for ${network}`);
  printObject(ctx, out, { text: () => networkInspectText(n), json: () => n, docker: () => dockerNetwork(n) });
}

async function rm(ctx: Ctx, a: Args): Promise<void> {
  const networks = variadic(a, 'network', 'NETWORK: shoal network rm NETWORK [NETWORK...]');
  await forEachReporting(ctx, networks, async (network) => {
    await ctx.call('RemoveNetwork', { network }, networkNotFound(network));
    ctx.print(network);
  });
}

export function networkCommand(make: CtxFactory) {
  const networkArg = { type: 'string', describe: 'Network name, id or unique id prefix' } as const;
  return {
    command: 'network',
    describe: 'Manage the overlay networks of the cluster',
    builder: (y: Argv) =>
      y
        .usage('Usage: shoal network COMMAND\n\nManage the overlay networks of the cluster')
        .command(
          'create <name>',
          'Create an overlay network',
          (y: Argv) =>
            y
              .usage('Usage: shoal network create [OPTIONS] NAME')
              .positional('name', { type: 'string', describe: 'The network name' })
              .option('driver', { alias: 'd', type: 'string', requiresArg: true, describe: 'Driver (overlay, the default and only one)' })
              .option('subnet', { type: 'string', requiresArg: true, describe: 'Subnet in CIDR form (default: the next free /24 of 10.0.0.0/8)' })
              .option('gateway', { type: 'string', requiresArg: true, describe: "Gateway inside the subnet (default: the subnet's first address)" })
              .option('attachable', { type: 'boolean', default: false, describe: 'Standalone containers may join the network' })
              .option('internal', { type: 'boolean', default: false, describe: 'No access from the network to the outside' })
              .option('label', { type: 'string', requiresArg: true, describe: 'A label KEY=VALUE; repeatable' }),
          action(make, create),
        )
        .command(
          ['ls', 'list'],
          'List networks',
          (y: Argv) =>
            withFilter(
              withFormat(
                y
                  .usage('Usage: shoal network ls [OPTIONS]')
                  .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only print ids' })
                  .option('no-trunc', { type: 'boolean', default: false, describe: 'Do not truncate ids (templates)' }),
              ),
              Object.keys(NETWORK_FILTERS),
            ),
          action(make, ls),
        )
        .command(
          'inspect <network>',
          'Show a network in detail (--format json: the whole network object; docker: as docker network inspect)',
          (y: Argv) => withFormat(y.usage('Usage: shoal network inspect [OPTIONS] NETWORK').positional('network', networkArg), { docker: true }),
          action(make, inspect),
        )
        .command(
          ['rm <network..>', 'remove'],
          'Remove one or more networks',
          (y: Argv) => y.usage('Usage: shoal network rm NETWORK [NETWORK...]').positional('network', networkArg),
          action(make, rm),
        )
        .demandCommand(1, 'missing a network command (create, ls, inspect, rm)'),
    handler: () => {},
  };
}
