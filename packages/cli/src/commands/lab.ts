// `shoal lab up|ls|env|load|stop|start|exec|down`: a cluster of real hosts on one machine (@shoal/lab).
// The lab code and dockerode are loaded by these commands only, not by every start of the CLI.

import type { Argv } from 'yargs';
import type { Ctx } from '../context.js';
import { CliError, UsageError } from '../errors.js';
import { renderTable } from '../format.js';
import { type Args, type CtxFactory, action, formatOf, one, printJson, required, withFormat } from './common.js';

/** `lab up`'s default --timeout: how long the lab may take to be ready. */
const UP_TIMEOUT_MS = 180_000;

type LabModule = typeof import('@shoal/lab');
type Lab = InstanceType<LabModule['Lab']>;

/** A lab command: a ShoalError of the lab is a usage error (a wrong argument) or a one-line failure. */
function labAction(make: CtxFactory, fn: (ctx: Ctx, a: Args, lab: Lab) => Promise<void>) {
  return action(make, async (ctx, a) => {
    const mod = await import('@shoal/lab');
    try {
      const lab = new mod.Lab({ name: one(a, 'name') ?? mod.DEFAULT_LAB, labsDir: mod.labsDir(ctx.env), image: one(a, 'image') });
      await fn(ctx, a, lab);
    } catch (err) {
      if (!(err instanceof mod.ShoalError)) throw err;
      if (err.code === 'INVALID_ARGUMENT') throw new UsageError(err.message);
      throw new CliError(err.message, 1, err.code);
    }
  });
}

function nodesTable(nodes: readonly { name: string; role: string; addr: string; state: string }[]): string {
  return renderTable(['NAME', 'ROLE', 'ADDRESS', 'STATE'], nodes.map((n) => [n.name, n.role, n.addr, n.state]));
}

function count(a: Args, key: string): number | undefined {
  const v = one(a, key);
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) throw new UsageError(`invalid --${key} ${JSON.stringify(v)}: a whole number`);
  return Number(v);
}

async function up(ctx: Ctx, a: Args, lab: Lab): Promise<void> {
  const managers = count(a, 'managers');
  const workers = count(a, 'workers');
  const nodes = await lab.up({ managers, workers, timeoutMs: ctx.budget(UP_TIMEOUT_MS), progress: (l) => ctx.note(l) });
  ctx.print(nodesTable(nodes));
  ctx.note(`Lab ${lab.name} is ready. To use it from here: eval "$(${lab.command('env')})"`);
}

async function ls(ctx: Ctx, a: Args, lab: Lab): Promise<void> {
  const nodes = await lab.list();
  if (formatOf(a) === 'json') printJson(ctx, nodes);
  else ctx.print(nodesTable(nodes));
}

/** `lab load IMAGE...`: prints each image's reference in the lab, one a line (for a script to take). */
async function load(ctx: Ctx, a: Args, lab: Lab): Promise<void> {
  const images = ((a['image'] as unknown[] | undefined) ?? []).map(String);
  const refs = await lab.load(images, (l) => ctx.note(l));
  for (const ref of refs) ctx.print(ref);
}

async function exec(ctx: Ctx, a: Args, lab: Lab): Promise<void> {
  const node = required(a, 'node', 'NODE: shoal lab exec NODE -- COMMAND [ARG...]');
  const cmd = (a['--'] ?? []).map(String);
  if (cmd.length === 0) throw new UsageError('missing the command: shoal lab exec NODE -- COMMAND [ARG...]');
  // Its output as it comes, bytes as they are (ctx's streams are process.stdout/stderr but in tests).
  const r = await lab.exec(node, cmd, { stdout: ctx.stdout, stderr: ctx.stderr, stdin: a['interactive'] ? ctx.stdin : undefined });
  // The command's own exit code, and no line of shoal's: the command said what it had to.
  if (r.exitCode !== 0) throw new CliError('', r.exitCode);
}

const NAME_OPTION = { type: 'string', requiresArg: true, describe: 'The lab (default: lab)' } as const;
const withName = (y: Argv) => y.option('name', NAME_OPTION);
const MEMBER = { type: 'string', describe: 'managerN, workerN, or registry (the lab\'s registry)' } as const;

/** `lab stop NODE` / `lab start NODE`: prints NODE once done, as `docker stop`/`start` print the container. */
function powerCommand(make: CtxFactory, verb: 'stop' | 'start', describe: string) {
  return {
    command: `${verb} <node>`,
    describe,
    builder: (y: Argv) => withName(y).usage(`Usage: shoal lab ${verb} [OPTIONS] NODE`).positional('node', MEMBER),
    handler: labAction(make, async (ctx, a, lab) => {
      const node = required(a, 'node', 'NODE');
      await lab[verb](node);
      ctx.print(node);
    }),
  };
}

export function labCommand(make: CtxFactory) {
  return {
    command: 'lab',
    describe: 'A cluster of real hosts on this machine: each node a container with its own Docker engine',
    builder: (y: Argv) =>
      y
        .usage('Usage: shoal lab COMMAND')
        .command(
          'up',
          'Make a lab and wait until every node is ready; prints its nodes',
          (y: Argv) =>
            withName(y)
              .usage('Usage: shoal lab up [OPTIONS]   (--timeout: how long it may take to be ready, default 3m)')
              .option('managers', { type: 'string', requiresArg: true, describe: 'How many managers (default 3)' })
              .option('workers', { type: 'string', requiresArg: true, describe: 'How many workers (default 2)' })
              .option('image', { type: 'string', requiresArg: true, describe: 'The node image (default shoal/lab-node:dev, built by scripts/build-lab-image.sh)' }),
          labAction(make, up),
        )
        .command(
          'ls',
          'List the lab\'s nodes',
          (y: Argv) => withFormat(withName(y)).usage('Usage: shoal lab ls [OPTIONS]'),
          labAction(make, ls),
        )
        .command(
          'env',
          'Print the shell line that points shoal at the lab: eval "$(shoal lab env)"',
          (y: Argv) => withName(y).usage('Usage: shoal lab env [OPTIONS]'),
          labAction(make, async (ctx, _a, lab) => ctx.print(await lab.env())),
        )
        .command(
          'load <image..>',
          'Push images of this host\'s Docker engine into the lab\'s registry; prints the reference each has in the lab',
          (y: Argv) =>
            withName(y)
              .usage('Usage: shoal lab load [OPTIONS] IMAGE [IMAGE...]')
              .positional('image', { type: 'string', describe: 'NAME[:TAG] of a local image' })
              .example('shoal lab load shoal/busybox:latest', 'prints e.g. 172.18.255.254:5000/shoal/busybox:latest, for shoal service create'),
          labAction(make, load),
        )
        .command(powerCommand(make, 'stop', 'Power a node off: its container is killed, its tasks\' containers die with it'))
        .command(powerCommand(make, 'start', 'Power a node on: it boots its engine and its shoald again'))
        .command(
          'exec <node>',
          'Run a command on a node (e.g. docker ps): its output and exit code',
          (y: Argv) =>
            withName(y)
              .usage('Usage: shoal lab exec [OPTIONS] NODE -- COMMAND [ARG...]')
              .positional('node', MEMBER)
              .option('interactive', { alias: 'i', type: 'boolean', describe: 'Pass what is piped into shoal to the command\'s stdin (docker exec -i)' })
              .example('docker save app:1 | shoal lab exec -i worker1 -- docker load', 'load a host image into one node\'s engine'),
          labAction(make, exec),
        )
        .command(
          'down',
          'Remove the lab: its nodes, registry, network, volumes and admin certificate',
          (y: Argv) => withName(y).usage('Usage: shoal lab down [OPTIONS]'),
          labAction(make, async (ctx, _a, lab) => {
            const r = await lab.down();
            const registry = r.registries > 0 ? ', its registry' : '';
            ctx.print(`Removed lab ${lab.name}: ${r.nodes} node${r.nodes === 1 ? '' : 's'}${registry}, ${r.networks} network${r.networks === 1 ? '' : 's'}, ${r.volumes} volumes`);
          }),
        )
        .demandCommand(1, 'missing a lab command (up, ls, env, load, stop, start, exec, down)'),
    handler: () => {},
  };
}
