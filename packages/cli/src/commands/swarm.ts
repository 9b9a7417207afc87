// `shoal swarm join-token worker|manager [-q] [--rotate]`, `shoal swarm update`,
// `shoal swarm admin-cert --out DIR`, and autolock: `swarm unlock`, `swarm unlock-key [-q] [--rotate]`.

import { resolve } from 'node:path';
import type { Argv } from 'yargs';
import { joinInstructions } from '@shoal/api/join-instructions';
import type { Ctx } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { type Args, type CtxFactory, action, one } from './common.js';
import { parseDuration } from '../parse.js';
import { readSecret } from '../secret-input.js';

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

/** A boolean flag's value as docker's (Go's strconv.ParseBool) reads it; a bare `--autolock` is true. */
function parseBool(v: string, flag: string): boolean {
  if (['', '1', 't', 'T', 'true', 'TRUE', 'True'].includes(v)) return true;
  if (['0', 'f', 'F', 'false', 'FALSE', 'False'].includes(v)) return false;
  throw new UsageError(`invalid argument ${JSON.stringify(v)} for ${flag}: expected true or false`);
}

/** docker's words around an unlock key (`swarm update --autolock true`, `swarm unlock-key`). */
function unlockKeyInstructions(key: string): string {
  return [
    'To unlock a swarm manager after it restarts, run the `shoal swarm unlock`',
    'command and provide the following key:',
    '',
    `    ${key}`,
    '',
    'Please remember to store this key in a password manager, since without it you',
    'will not be able to restart the manager.',
  ].join('\n');
}

async function update(ctx: Ctx, a: Args): Promise<void> {
  const certExpiry = one(a, 'cert-expiry');
  const heartbeat = one(a, 'dispatcher-heartbeat');
  const autolockFlag = one(a, 'autolock');
  if (certExpiry === undefined && heartbeat === undefined && autolockFlag === undefined) {
    throw new UsageError('nothing to update: give --cert-expiry, --dispatcher-heartbeat and/or --autolock');
  }
  const autolock = autolockFlag === undefined ? undefined : parseBool(autolockFlag, '--autolock');
  const r = await ctx.call('UpdateCluster', {
    certExpiryMs: certExpiry === undefined ? 0 : parseDuration(certExpiry, '--cert-expiry'),
    heartbeatPeriodMs: heartbeat === undefined ? 0 : parseDuration(heartbeat, '--dispatcher-heartbeat'),
    changeAutolock: autolock !== undefined,
    autolock: autolock === true,
  });
  ctx.print('Swarm updated.');
  if (autolock === true && r.unlockKey) ctx.print(unlockKeyInstructions(r.unlockKey));
}

/** `swarm unlock-key`: the key that opens a locked manager (`--rotate`: a new one). */
async function unlockKey(ctx: Ctx, a: Args): Promise<void> {
  const rotate = a['rotate'] === true;
  const { unlockKey: key } = await ctx.call('GetUnlockKey', { rotate });
  if (!key) throw new CliError('no unlock key is set', 1, 'FAILED_PRECONDITION');
  if (a['quiet'] === true) {
    ctx.print(key);
    return;
  }
  if (rotate) {
    ctx.print('Successfully rotated manager unlock key.\n');
    ctx.print(
      'The previous key stops working on each manager as soon as it has re-encrypted its key with the new one (at once on a running manager; a manager that is down needs the previous key for its next unlock).\n',
    );
  }
  ctx.print(unlockKeyInstructions(key));
}

/** How long `swarm unlock` waits: the manager starts (opens its Raft log) before the call answers. */
const UNLOCK_TIMEOUT_MS = 60_000;

/** `swarm unlock`: the key from stdin (a prompt without echo at a terminal), to this machine's locked manager. */
async function unlock(ctx: Ctx): Promise<void> {
  const key = await readSecret(ctx.stdin, 'Enter unlock key: ', ctx.stdout);
  ctx.budget(UNLOCK_TIMEOUT_MS);
  await ctx.call('UnlockManager', { unlockKey: key });
}

/**
 * A new admin certificate in --out: the key is made here and never leaves this machine; the
 * manager signs a CSR for it. DIR must be new or empty: an existing certificate is never overwritten.
 */
async function adminCert(ctx: Ctx, a: Args): Promise<void> {
  const out = one(a, 'out');
  if (!out) throw new UsageError('--out DIR is required: the directory to write ca.pem, cert.pem and key.pem to');
  const dir = resolve(out);
  // X.509 code is loaded by the one command that needs it, not by every start of the CLI.
  const { adminDirProblem, newKeyAndCsr, writeAdminMaterial } = await import('@shoal/pki');
  const problem = adminDirProblem(dir);
  if (problem) throw new CliError(`${problem} (nothing was issued)`, 1, 'ALREADY_EXISTS');
  const expiry = one(a, 'expiry');
  const expiryMs = expiry === undefined ? 0 : parseDuration(expiry, '--expiry');
  const { keyPem, csrPem } = await newKeyAndCsr();
  const r = await ctx.call('IssueAdminCertificate', { csr: csrPem, expiryMs });
  writeAdminMaterial(dir, { caPem: r.caCert, certPem: r.cert, keyPem });
  if (a['quiet'] === true) {
    ctx.print(dir);
    return;
  }
  ctx.print(`Admin certificate ${r.name} written to ${dir} (valid until ${new Date(Number(r.notAfterMs)).toISOString()}).`);
  ctx.print(`Use it with: shoal --host MANAGER_HOST:PORT --cert-path ${dir} ...  (or SHOAL_CERT_PATH=${dir})`);
}

export function swarmCommand(make: CtxFactory) {
  return {
    command: 'swarm',
    describe: 'Manage the cluster (join tokens, settings, autolock)',
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
              .option('dispatcher-heartbeat', { type: 'string', requiresArg: true, describe: 'How often nodes heartbeat, e.g. 1s' })
              .option('autolock', {
                type: 'string',
                describe: 'true: managers keep the cluster\'s key-encryption key locked by an unlock key (shown once; a restarted manager serves nothing until `shoal swarm unlock`); false: no longer',
              })
              .example('$0 swarm update --autolock true', 'lock every manager\'s keys with a new unlock key, and print it'),
          action(make, update),
        )
        .command(
          'unlock',
          'Unlock this machine\'s manager after a restart (autolock): the unlock key is read from stdin',
          (y: Argv) =>
            y
              .usage('Usage: shoal swarm unlock')
              .example('$0 swarm unlock', 'prompts for the key (not echoed)')
              .example('$0 swarm unlock < key.txt', 'reads the key from a file'),
          action(make, (ctx) => unlock(ctx)),
        )
        .command(
          'unlock-key',
          'Show (or rotate) the key that unlocks a manager after a restart (autolock)',
          (y: Argv) =>
            y
              .usage('Usage: shoal swarm unlock-key [OPTIONS]')
              .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only print the key' })
              .option('rotate', { type: 'boolean', default: false, describe: 'Replace the key with a new one (the old one stops opening each manager once it has re-encrypted its key)' }),
          action(make, unlockKey),
        )
        .command(
          'admin-cert',
          'Issue another admin certificate (for the control API over TCP) into a new directory',
          (y: Argv) =>
            y
              .usage('Usage: shoal swarm admin-cert --out DIR [OPTIONS]')
              .option('out', { type: 'string', requiresArg: true, describe: 'Directory to write ca.pem, cert.pem and key.pem to (created; must not hold them already)' })
              .option('expiry', { type: 'string', requiresArg: true, describe: 'Validity, e.g. 720h (default 8760h: a year)' })
              .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only print the directory' }),
          action(make, adminCert),
        )
        .demandCommand(1, 'missing a swarm command (join-token, update, unlock, unlock-key, admin-cert)'),
    handler: () => {},
  };
}
