// `shoal secret create|ls|inspect|rm` and `shoal config create|ls|inspect|rm` (INTERFACE.md,
// docker's commands). A secret's data is read from a file or stdin, sent once, and never shown.

import { readFile } from 'node:fs/promises';
import type { Argv } from 'yargs';
import { type FileKind, MAX_FILE_DATA_BYTES, checkFileData, checkFileName } from '@shoal/types';
import { CliError, UsageError } from '../errors.js';
import type { Ctx } from '../context.js';
import { fileInspectJson, fileInspectText, fileLsJson, fileLsTable } from '../file-format.js';
import { parseLabels } from '../parse.js';
import { type Args, type CtxFactory, action, forEachReporting, formatOf, list, printJson, required, variadic, withFormat } from './common.js';

function notFound(kind: FileKind, name: string) {
  return { notFound: { kind, name } };
}

/** FILE's bytes, or stdin's for `-` (at most the limit and a byte, so a huge input stops early). */
async function readData(ctx: Ctx, kind: FileKind, file: string): Promise<Buffer> {
  if (file !== '-') {
    try {
      return await readFile(file);
    } catch (err) {
      throw new UsageError(`cannot read ${kind} file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of ctx.stdin as AsyncIterable<Buffer | string>) {
    const b = typeof c === 'string' ? Buffer.from(c) : c;
    chunks.push(b);
    n += b.length;
    if (n > MAX_FILE_DATA_BYTES) break;
  }
  return Buffer.concat(chunks);
}

function rule(f: () => void): void {
  try {
    f();
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}

async function create(kind: FileKind, ctx: Ctx, a: Args): Promise<void> {
  const usage = `shoal ${kind} create [OPTIONS] NAME FILE|-`;
  const name = required(a, 'name', `NAME: ${usage}`);
  // (yargs hands a lone `-` positional over as '')
  const file = a['file'] === '' ? '-' : required(a, 'file', `FILE (or - for stdin): ${usage}`);
  rule(() => checkFileName(name, kind));
  const labels = parseLabels(list(a, 'label'));
  const data = await readData(ctx, kind, file);
  rule(() => checkFileData(data.length, kind, name));
  if (kind === 'secret') {
    const r = await ctx.call('CreateSecret', { spec: { name, labels }, data });
    data.fill(0);
    if (!r.secret) throw new CliError(`the manager sent no secret for ${name}`);
    ctx.print(r.secret.id);
  } else {
    const r = await ctx.call('CreateConfig', { spec: { name, labels, data } });
    if (!r.config) throw new CliError(`the manager sent no config for ${name}`);
    ctx.print(r.config.id);
  }
}

async function ls(kind: FileKind, ctx: Ctx, a: Args): Promise<void> {
  const xs = kind === 'secret' ? (await ctx.call('ListSecrets', {})).secrets : (await ctx.call('ListConfigs', {})).configs;
  if (a['quiet'] === true) {
    for (const x of fileLsJson(xs)) ctx.print(x.id);
    return;
  }
  if (formatOf(a) === 'json') printJson(ctx, fileLsJson(xs));
  else ctx.print(fileLsTable(xs, ctx.now()));
}

async function inspect(kind: FileKind, ctx: Ctx, a: Args): Promise<void> {
  const refs = variadic(a, kind, `${kind.toUpperCase()}: shoal ${kind} inspect ${kind.toUpperCase()} [${kind.toUpperCase()}...]`);
  const shown: object[] = [];
  const texts: string[] = [];
  for (const ref of refs) {
    const x = kind === 'secret' ? (await ctx.call('GetSecret', { secret: ref }, notFound(kind, ref))).secret : (await ctx.call('GetConfig', { config: ref }, notFound(kind, ref))).config;
    if (!x) throw new CliError(`the manager sent no ${kind} for ${ref}`);
    shown.push(fileInspectJson(kind, x));
    texts.push(fileInspectText(kind, x));
  }
  if (formatOf(a) === 'json') printJson(ctx, shown);
  else ctx.print(texts.join('\n\n'));
}

async function rm(kind: FileKind, ctx: Ctx, a: Args): Promise<void> {
  const refs = variadic(a, kind, `${kind.toUpperCase()}: shoal ${kind} rm ${kind.toUpperCase()} [${kind.toUpperCase()}...]`);
  await forEachReporting(ctx, refs, async (ref) => {
    if (kind === 'secret') await ctx.call('RemoveSecret', { secret: ref }, notFound(kind, ref));
    else await ctx.call('RemoveConfig', { config: ref }, notFound(kind, ref));
    ctx.print(ref);
  });
}

function fileCommand(kind: FileKind, make: CtxFactory, describe: string) {
  const K = kind.toUpperCase();
  const refArg = { type: 'string', describe: `${kind[0]!.toUpperCase()}${kind.slice(1)} name, id or unique id prefix` } as const;
  return {
    command: kind,
    describe,
    builder: (y: Argv) =>
      y
        .usage(`Usage: shoal ${kind} COMMAND\n\n${describe}`)
        .command(
          'create <name> <file>',
          `Create a ${kind} from a file or stdin (-)`,
          (y: Argv) =>
            y
              .usage(`Usage: shoal ${kind} create [OPTIONS] NAME FILE|-`)
              .positional('name', { type: 'string', describe: `The ${kind} name` })
              .positional('file', { type: 'string', describe: 'The file with the data, or - to read stdin' })
              .option('label', { alias: 'l', type: 'string', requiresArg: true, describe: 'A label KEY=VALUE; repeatable' }),
          action(make, (ctx, a) => create(kind, ctx, a)),
        )
        .command(
          ['ls', 'list'],
          `List ${kind}s`,
          (y: Argv) => withFormat(y.usage(`Usage: shoal ${kind} ls [OPTIONS]`).option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'Only print ids' })),
          action(make, (ctx, a) => ls(kind, ctx, a)),
        )
        .command(
          `inspect <${kind}..>`,
          kind === 'secret' ? 'Show secrets (never their data)' : 'Show configs, their data included',
          (y: Argv) => withFormat(y.usage(`Usage: shoal ${kind} inspect [OPTIONS] ${K} [${K}...]`).positional(kind, refArg)),
          action(make, (ctx, a) => inspect(kind, ctx, a)),
        )
        .command(
          [`rm <${kind}..>`, 'remove'],
          `Remove one or more ${kind}s (not while a service uses them)`,
          (y: Argv) => y.usage(`Usage: shoal ${kind} rm ${K} [${K}...]`).positional(kind, refArg),
          action(make, (ctx, a) => rm(kind, ctx, a)),
        )
        .demandCommand(1, `missing a ${kind} command (create, ls, inspect, rm)`),
    handler: () => {},
  };
}

export const secretCommand = (make: CtxFactory) => fileCommand('secret', make, 'Manage the secrets of the cluster (files mounted from memory at /run/secrets in the tasks that use them)');
export const configCommand = (make: CtxFactory) => fileCommand('config', make, 'Manage the configs of the cluster (files mounted into the tasks that use them)');
