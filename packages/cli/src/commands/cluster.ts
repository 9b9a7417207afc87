// `shoal cluster status`.

import type { Argv } from 'yargs';
import type { Ctx } from '../context.js';
import { clusterStatusJson, clusterStatusText } from '../format.js';
import { type Args, type CtxFactory, action, formatOf, printJson, withFormat } from './common.js';

async function status(ctx: Ctx, a: Args): Promise<void> {
  const r = await ctx.call('ClusterStatus', {});
  if (formatOf(a) === 'json') printJson(ctx, clusterStatusJson(r));
  else ctx.print(clusterStatusText(r));
}

export function clusterCommand(make: CtxFactory) {
  return {
    command: 'cluster',
    describe: 'Inspect the cluster',
    builder: (y: Argv) =>
      y
        .usage('Usage: shoal cluster COMMAND')
        .command(
          'status',
          'Show the Raft state of the managers: leader, term, members and their indexes',
          (y: Argv) => withFormat(y.usage('Usage: shoal cluster status [OPTIONS]')),
          action(make, status),
        )
        .demandCommand(1, 'missing a cluster command (status)'),
    handler: () => {},
  };
}
