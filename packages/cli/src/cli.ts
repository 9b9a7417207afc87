// The `shoal` command line: global options, the command tree, and the one rule of failures:
// one line `Error: ...` on stderr and a non-zero exit (2: usage, 1: anything else), never a stack.

import { createRequire } from 'node:module';
import yargs from 'yargs';
import { DEFAULT_LOCAL_SOCKET, LOCAL_SOCKET_ENV } from '@shoal/api/local-socket';
import { clusterCommand } from './commands/cluster.js';
import { eventsCommand } from './commands/events.js';
import { type CtxFactory, defaultCtxFactory } from './commands/common.js';
import { completeNames } from './completion.js';
import { labCommand } from './commands/lab.js';
import { nodeCommand } from './commands/node.js';
import { networkCommand } from './commands/network.js';
import { configCommand, secretCommand } from './commands/secret.js';
import { CREATE_OPTIONS, serviceCommand } from './commands/service.js';
import { stackCommand } from './commands/stack.js';
import { swarmCommand } from './commands/swarm.js';
import { uiCommand } from './commands/ui.js';
import { CERT_PATH_ENV, HOST_ENV, type Output } from './context.js';
import { CliError, UsageError, isUsageError } from './errors.js';
import { splitTrailingArgs } from './parse.js';

const require = createRequire(import.meta.url);

function version(): string {
  try {
    return (require('../../package.json') as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/** Exit codes. */
export const EXIT_OK = 0;
export const EXIT_ERROR = 1;
export const EXIT_USAGE = 2;

const GLOBAL_VALUE_OPTIONS = ['host', 'H', 'timeout', 'cert-path'];

/** Flags of `service create` that consume the next word (for splitTrailingArgs). */
function createTakesValue(flag: string): boolean {
  if (GLOBAL_VALUE_OPTIONS.includes(flag)) return true;
  for (const [name, o] of Object.entries(CREATE_OPTIONS)) {
    const aliases = o.alias === undefined ? [] : Array.isArray(o.alias) ? o.alias : [o.alias];
    if (name === flag || aliases.includes(flag)) return o.type !== 'boolean';
  }
  return false;
}

/** The words of the command being run (`service create`), for "see --help" hints. */
const SUBCOMMANDS: Readonly<Record<string, readonly string[]>> = {
  service: ['create', 'ls', 'ps', 'inspect', 'rm', 'remove', 'scale', 'update'],
  node: ['ls', 'inspect', 'promote', 'demote', 'rm', 'remove', 'update'],
  cluster: ['status'],
  events: [],
  swarm: ['join-token', 'update', 'unlock', 'unlock-key', 'admin-cert'],
  lab: ['up', 'ls', 'env', 'stop', 'start', 'exec', 'down'],
  stack: ['deploy', 'up', 'ls', 'list', 'services', 'ps', 'rm', 'remove', 'down'],
};

export function commandPath(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const t = argv[i]!;
    if (t === '--') break;
    if (t.startsWith('-')) {
      if (!t.includes('=') && GLOBAL_VALUE_OPTIONS.includes(t.replace(/^--?/, ''))) i++;
      continue;
    }
    if (words.length === 0 && SUBCOMMANDS[t]) {
      words.push(t);
      continue;
    }
    if (words.length === 1 && SUBCOMMANDS[words[0]!]!.includes(t)) words.push(t);
    break;
  }
  return words;
}

/** How far a typo may be from the command it is taken for: one edit, two from 8 letters on. */
const maxTypoEdits = (word: string) => Math.max(1, Math.floor(word.length / 4));

/** Edits from `a` to `b`: insertions, deletions, substitutions, swaps of two neighbours (`scael`). */
export function editDistance(a: string, b: string): number {
  let before: number[] = [];
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) {
      cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) cur[j] = Math.min(cur[j]!, before[j - 2]! + 1);
    }
    before = prev;
    prev = cur;
  }
  return prev[b.length]!;
}

/** The word after the command path (`servce` in `shoal servce ls`): what a typo suggestion is about. */
export function wordAfter(argv: readonly string[], path: readonly string[]): string | undefined {
  const words: string[] = [];
  for (let i = 0; i < argv.length && words.length <= path.length; i++) {
    const t = argv[i]!;
    if (t === '--') break;
    if (t.startsWith('-')) {
      if (!t.includes('=') && GLOBAL_VALUE_OPTIONS.includes(t.replace(/^--?/, ''))) i++;
      continue;
    }
    words.push(t);
  }
  return words[path.length];
}

function oneLine(s: string): string {
  return s
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .join(' ');
}

export interface MainOptions {
  stdout?: Output;
  stderr?: Output;
  ctxFactory?: CtxFactory;
}

/** Runs `shoal` with these arguments (without node and the script); resolves to the exit code. */
export async function main(rawArgv: readonly string[], opts: MainOptions = {}): Promise<number> {
  const stderr = opts.stderr ?? process.stderr;
  const make = opts.ctxFactory ?? defaultCtxFactory;
  const argv = splitTrailingArgs(rawArgv, ['service', 'create'], createTakesValue);
  const path = commandPath(argv);
  const hint = ` (see 'shoal ${path.length > 0 ? `${path.join(' ')} ` : ''}--help')`;

  const parser = yargs(argv)
    .scriptName('shoal')
    .usage(
      `Usage: shoal [-H ADDR[,ADDR...]] COMMAND\n\nThe command-line client of a Shoal cluster: talks to a manager's control API.\nThe manager is --host, else $${HOST_ENV}, else this machine's ${DEFAULT_LOCAL_SOCKET}.`,
    )
    .parserConfiguration({ 'populate--': true, 'boolean-negation': false, 'duplicate-arguments-array': true })
    .option('host', {
      alias: 'H',
      type: 'string',
      requiresArg: true,
      global: true,
      describe: `The manager: unix:///PATH/control.sock or HOST:PORT; several, comma-separated, are tried in turn (default: $${HOST_ENV}, else unix://${DEFAULT_LOCAL_SOCKET} or $${LOCAL_SOCKET_ENV})`,
    })
    .option('cert-path', {
      type: 'string',
      requiresArg: true,
      global: true,
      describe: `Directory with the admin certificate (ca.pem, cert.pem, key.pem) for a TCP --host (default: $${CERT_PATH_ENV}; shoald init writes DATA_DIR/admin)`,
    })
    .option('timeout', {
      type: 'string',
      requiresArg: true,
      global: true,
      describe:
        'Give up after this long, e.g. 5s, 2m (default 10s; 60s for create/update/scale, which wait for the service to converge unless -d)',
    })
    .command(serviceCommand(make))
    .command(nodeCommand(make))
    .command(networkCommand(make))
    .command(stackCommand(make))
    .command(secretCommand(make))
    .command(configCommand(make))
    .command(clusterCommand(make))
    .command(eventsCommand(make))
    .command(swarmCommand(make))
    .command(labCommand(make))
    .command(uiCommand(make))
    .completion('completion', 'Print a bash/zsh completion script: source <(shoal completion)')
    .demandCommand(1, 'missing a command (service, node, network, stack, secret, config, cluster, events, swarm, lab, ui)')
    .recommendCommands()
    .strict()
    .help()
    .alias('help', 'h')
    .version(version())
    .wrap(Math.min(120, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      // yargs' own validation errors (YError: a flag without its value...) are usage errors too.
      if (err && err.name !== 'YError') throw err;
      // recommendCommands() says only "Did you mean X?": name the word it is about.
      // Its guesses go up to 3 edits away (`bogus` → `logs`): only close ones are worth saying.
      const typo = /^Did you mean (.+)\?$/.exec(msg ?? '');
      const word = wordAfter(argv, path);
      if (typo && word !== undefined) {
        if (editDistance(word, typo[1]!) <= maxTypoEdits(word)) throw new UsageError(`unknown command ${word}: did you mean ${typo[1]}?`);
        throw new UsageError(`Unknown argument: ${word}`);
      }
      throw new UsageError(oneLine(msg || err?.message || 'invalid command line'));
    });
  const completing = argv.indexOf(COMPLETIONS_FLAG);
  if (completing >= 0) return complete(() => run(parser, stderr, hint), argv.slice(completing + 1), make, opts.stdout ?? process.stdout);
  if (opts.stdout) {
    // yargs prints help/version/completion with console.log: route those too.
    const out = opts.stdout;
    const log = console.log;
    console.log = (...xs: unknown[]) => void out.write(`${xs.map(String).join(' ')}\n`);
    try {
      return await run(parser, stderr, hint);
    } finally {
      console.log = log;
    }
  }
  return run(parser, stderr, hint);
}

/** What the script of `shoal completion` runs on a TAB: `shoal --get-yargs-completions shoal WORD...`. */
const COMPLETIONS_FLAG = '--get-yargs-completions';

/**
 * The completions of `words` (the command line so far, the last one being completed), one a line:
 * the commands and flags yargs offers, then the names of services or nodes where the command takes
 * one (completion.ts). Not in a yargs completion callback: yargs runs its strict checks before
 * an asynchronous callback answers, and its getCompletion() never settles inside a subcommand.
 */
async function complete(yargsCompletes: () => Promise<number>, words: string[], make: CtxFactory, out: Output): Promise<number> {
  // yargs prints its completions with console.log: they are kept to go before the names.
  const base: string[] = [];
  const log = console.log;
  console.log = (...xs: unknown[]) => void base.push(xs.map(String).join(' '));
  try {
    await yargsCompletes();
  } finally {
    console.log = log;
  }
  const current = words.length > 0 ? words[words.length - 1]! : '';
  const before = words.slice(words[0] === 'shoal' ? 1 : 0, -1);
  const global: Record<string, string> = {};
  const positional: string[] = [];
  let labName: string | undefined;
  for (let i = 0; i < before.length; i++) {
    const t = before[i]!;
    if (!t.startsWith('-')) {
      positional.push(t);
      continue;
    }
    const [flag, inline] = t.replace(/^--?/, '').split('=', 2) as [string, string | undefined];
    // `lab ... --name LAB`: which lab's nodes to offer (and LAB is no positional word).
    const isLabName = flag === 'name' && positional[0] === 'lab';
    if (!GLOBAL_VALUE_OPTIONS.includes(flag) && !isLabName) continue;
    const value = inline ?? before[++i];
    if (value === undefined) continue;
    if (isLabName) labName = value;
    else global[flag === 'H' ? 'host' : flag] = value;
  }
  const names = await completeNames(make({ _: [], ...global }), positional, current, labName);
  for (const c of [...base, ...names]) out.write(`${c}\n`);
  return EXIT_OK;
}

async function run(parser: { parseAsync(): Promise<unknown> }, stderr: Output, hint: string): Promise<number> {
  try {
    await parser.parseAsync();
    return EXIT_OK;
  } catch (err) {
    if (isUsageError(err)) {
      stderr.write(`Error: ${oneLine(err.message)}${hint}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof CliError) {
      // No message: the exit code is all (`lab exec`'s command failed and said so itself).
      if (err.message !== '') stderr.write(`Error: ${oneLine(err.message)}\n`);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    stderr.write(`Error: ${oneLine(message) || 'unknown error'}\n`);
    return EXIT_ERROR;
  }
}
