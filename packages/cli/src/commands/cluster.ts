// `shoal cluster status`.

import type { Argv } from 'yargs';
import type { Ctx } from '../context.js';
import { clusterStatusJson, clusterStatusText } from '../format.js';
import type { ClusterStatusResponse } from '@shoal/types';
import { type Args, type CtxFactory, action, outputOf, printObject, withFormat } from './common.js';

/** What a `cluster status --format` template sees: the JSON's fields with Go's capitals. */
function statusTemplateData(r: ClusterStatusResponse): object {
  const j = clusterStatusJson(r);
  return {
    ClusterID: j.clusterId,
    Leader: j.leader,
    Term: j.term,
    Members: j.members.map((m) => ({
      NodeID: m.nodeId,
      Addr: m.addr,
      RaftRole: m.raftRole,
      Reachable: m.reachable,
      CommitIndex: m.commitIndex,
      AppliedIndex: m.appliedIndex,
    })),
  };
}

async function status(ctx: Ctx, a: Args): Promise<void> {
  const out = outputOf(a);
  const r = await ctx.call('ClusterStatus', {});
  printObject(ctx, out, { text: () => clusterStatusText(r), json: () => clusterStatusJson(r), template: () => statusTemplateData(r) });
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
