// `shoal swarm join-token worker|manager [-q] [--rotate]`.

import type { Argv } from 'yargs';
import type { Ctx } from '../context.js';
import { UsageError } from '../errors.js';
import { type Args, type CtxFactory, action, one } from './common.js';
import { parseDuration } from '../parse.js';

/** The lines `swarm join-token` prints without -q. */
export function joinInstructions(role: string, token: string, managerAddr: string): string {
  return [
    `To add a ${role} to this cluster, run the following command on the new node:`,
    '',
    `    shoald join --data-dir DIR --listen-addr HOST:PORT --join-addr ${managerAddr} --token ${token}`,
    '',
  ].join('\n');
}

/** A manager's address to join through: the leader's, else any member's (best effort). */
async function managerAddr(ctx: Ctx): Promise<string> {
  try {
    const s = await ctx.call('ClusterStatus', {});
    const leader = s.members.find((m) => m.nodeId === s.leader) ?? s.members.find((m) => m.raftRole === 'leader');
    return leader?.addr || s.members[0]?.addr || 'MANAGER_HOST:PORT';
  } catch {
    return 'MANAGER_HOST:PORT';
  }
}

async function joinToken(ctx: Ctx, a: Args): Promise<void> {
  const role = one(a, 'role') ?? '';
  if (role !== 'worker' && role !== 'manager') throw new UsageError(`invalid role ${JSON.stringify(role)}: expected worker or manager`);
  const rotate = a['rotate'] === true;
  const { token } = await ctx.call('GetJoinToken', { role, rotate });
  if (a['quiet'] === true) {
    ctx.print(token);
    return;
  }
  if (rotate) ctx.print(`Successfully rotated ${role} join token.\n`);
  ctx.print(joinInstructions(role, token, await managerAddr(ctx)));
}

async function update(ctx: Ctx, a: Args): Promise<void> {
  const certExpiry = one(a, 'cert-expiry');
  const heartbeat = one(a, 'dispatcher-heartbeat');
  if (certExpiry === undefined && heartbeat === undefined) throw new UsageError('nothing to update: give --cert-expiry and/or --dispatcher-heartbeat');
  await ctx.call('UpdateCluster', {
    certExpiryMs: certExpiry === undefined ? 0 : parseDuration(certExpiry, '--cert-expiry'),
    heartbeatPeriodMs: heartbeat === undefined ? 0 : parseDuration(heartbeat, '--dispatcher-heartbeat'),
  });
  ctx.print('Swarm updated.');
}

export function swarmCommand(make: CtxFactory) {
  return {
    command: 'swarm',
    describe: 'Manage the cluster (join tokens, settings)',
    builder: (y: Argv) =>
      y
        .usage('Usage: shoal swarm COMMAND')
        .command(
          'join-token <role>',
          'Show (or rotate) the token that joins a node as a worker or a manager',
          (y: Argv) =>
            y
              .usage('Usage: shoal swarm join-token [OPTIONS] worker|manager')
              .positional('role', { type: 'string', choices: ['worker', 'manager'], describe: 'worker or manager' })
              .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only print the token' })
              .option('rotate', { type: 'boolean', default: false, describe: 'Replace the token with a new one (the old one stops working)' }),
          action(make, joinToken),
        )
        .command(
          'update',
          'Update the cluster\'s settings',
          (y: Argv) =>
            y
              .usage('Usage: shoal swarm update [OPTIONS]')
              .option('cert-expiry', { type: 'string', requiresArg: true, describe: 'Validity of node certificates, e.g. 2160h (new certificates; renewals follow)' })
              .option('dispatcher-heartbeat', { type: 'string', requiresArg: true, describe: 'How often nodes heartbeat, e.g. 1s' }),
          action(make, update),
        )
        .demandCommand(1, 'missing a swarm command (join-token, update)'),
    handler: () => {},
  };
}
