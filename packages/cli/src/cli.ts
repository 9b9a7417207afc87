// The `shoal` command line: global options, the command tree, and the one rule of failures:
// one line `Error: ...` on stderr and a non-zero exit (2: usage, 1: anything else), never a stack.

import { createRequire } from 'node:module';
import yargs from 'yargs';
import { DEFAULT_LOCAL_SOCKET, LOCAL_SOCKET_ENV } from '@shoal/api/local-socket';
import { clusterCommand } from './commands/cluster.js';
import { type CtxFactory, defaultCtxFactory } from './commands/common.js';
import { nodeCommand } from './commands/node.js';
import { CREATE_OPTIONS, serviceCommand } from './commands/service.js';
import { swarmCommand } from './commands/swarm.js';
import { CERT_PATH_ENV, HOST_ENV, type Output } from './context.js';
import { CliError, UsageError } from './errors.js';
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
  swarm: ['join-token'],
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
    .command(clusterCommand(make))
    .command(swarmCommand(make))
    .completion('completion', 'Print a bash/zsh completion script: source <(shoal completion)')
    .demandCommand(1, 'missing a command (service, node, cluster, swarm)')
    .strict()
    .help()
    .alias('help', 'h')
    .version(version())
    .wrap(Math.min(120, process.stdout.columns || 100))
    .exitProcess(false)
    .fail((msg, err) => {
      // yargs' own validation errors (YError: a flag without its value...) are usage errors too.
      if (err && err.name !== 'YError') throw err;
      throw new UsageError(oneLine(msg || err?.message || 'invalid command line'));
    });
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

async function run(parser: { parseAsync(): Promise<unknown> }, stderr: Output, hint: string): Promise<number> {
  try {
    await parser.parseAsync();
    return EXIT_OK;
  } catch (err) {
    if (err instanceof UsageError) {
      stderr.write(`Error: ${oneLine(err.message)}${hint}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof CliError) {
      stderr.write(`Error: ${oneLine(err.message)}\n`);
      return err.exitCode;
    }
    const message = err instanceof Error ? err.message : String(err);
    stderr.write(`Error: ${oneLine(message) || 'unknown error'}\n`);
    return EXIT_ERROR;
  }
}
