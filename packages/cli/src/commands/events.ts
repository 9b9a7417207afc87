// `shoal events`: the cluster's events as `docker events` shows a swarm's, streamed by the manager.
// Without --until it follows; a stream that breaks (its manager stopped or became unreachable) is
// resumed on the next manager of --host after the last version printed, so nothing is missed or
// printed twice: versions are the same on every manager.

import { setTimeout as sleep } from 'node:timers/promises';
import type { Argv } from 'yargs';
import type { Ctx } from '../context.js';
import { CliError } from '../errors.js';
import { EVENT_FILTER_KEYS, EVENT_TYPES, checkEventFilters, eventJson, eventLine } from '../events-format.js';
import { parseSince } from '../logs.js';
import { type Args, type CtxFactory, action, formatOf, list, one } from './common.js';

/** The stream's first metadata: where its live events begin (the manager's events-stream.ts). */
const EVENTS_AFTER_HEADER = 'shoal-events-after';
/** How long `shoal events` keeps trying to reach a manager when none answers (--timeout). */
const DEFAULT_RECONNECT_MS = 60_000;

/** Whether a broken stream is worth resuming (elsewhere); else the error is the command's. */
function resumable(err: unknown, resuming: boolean): 'here' | 'elsewhere' | false {
  if (!(err instanceof CliError)) return false;
  if (err.unreachable || err.code === 'UNAVAILABLE') return 'elsewhere';
  // We fell behind: the same manager still holds what we missed.
  if (err.code === 'RESOURCE_EXHAUSTED' && /fell behind/.test(err.message)) return 'here';
  // This manager no longer holds what comes after our last version: another may.
  if (err.code === 'FAILED_PRECONDITION' && resuming && /no longer holds|installed a snapshot/.test(err.message)) return 'elsewhere';
  return false;
}

async function events(ctx: Ctx, a: Args): Promise<void> {
  const json = formatOf(a) === 'json';
  const filters = checkEventFilters(list(a, 'filter'));
  const sinceArg = one(a, 'since');
  const untilArg = one(a, 'until');
  const since = sinceArg === undefined ? '' : parseSince(sinceArg, ctx.now());
  const until = untilArg === undefined ? '' : parseSince(untilArg, ctx.now(), '--until');
  const windowMs = ctx.budget(DEFAULT_RECONNECT_MS);
  let resumeAfter = '';
  let lastProgress = ctx.now();
  // Managers tried in a row without getting anything: after all of them, wait a little.
  let tried = 0;
  for (;;) {
    try {
      await ctx.stream(
        'Events',
        { since: resumeAfter ? '' : since, until, filters, resumeAfter },
        (e) => {
          ctx.stdout.write(`${json ? eventJson(e) : eventLine(e)}\n`);
          resumeAfter = e.version;
          lastProgress = ctx.now();
        },
        {
          onHeader: (md) => {
            tried = 0;
            lastProgress = ctx.now();
            // Before any event: the live ones begin after this (with --since the held ones come first).
            const v = md.get(EVENTS_AFTER_HEADER)[0];
            if (!resumeAfter && !since && typeof v === 'string') resumeAfter = v;
          },
        },
      );
      return;
    } catch (err) {
      const how = resumable(err, resumeAfter !== '');
      if (!how || ctx.now() - lastProgress > windowMs) throw err;
      if (how === 'here') continue;
      tried += 1;
      const from = ctx.host;
      ctx.nextHost();
      if (tried >= ctx.hosts.length) {
        // Every manager was tried: one that refused to resume (FAILED_PRECONDITION) will not change its mind.
        if ((err as CliError).code === 'FAILED_PRECONDITION') throw err;
        tried = 0;
        await sleep(500);
      }
      if (ctx.hosts.length > 1 || tried === 0) ctx.note(`events: ${(err as Error).message}; resuming${resumeAfter ? ` after ${resumeAfter}` : ''}${from !== ctx.host ? ' on the next manager' : ''}`);
    }
  }
}

export function eventsCommand(make: CtxFactory) {
  return {
    command: 'events',
    describe: "Show the cluster's events as they happen (services, nodes, tasks, networks, secrets, configs, leader changes)",
    builder: (y: Argv) =>
      y
        .usage(
          'Usage: shoal events [OPTIONS]\n\nFollows the events until interrupted (or --until). A lost manager is left for the next of --host, resuming after the last event shown.',
        )
        .option('since', { type: 'string', requiresArg: true, describe: 'Also the events since a time (2026-01-02T15:04:05Z) or for a duration back (10m) that the manager still holds' })
        .option('until', { type: 'string', requiresArg: true, describe: 'Stop at a time (2026-01-02T15:04:05Z) or a duration back (10m)' })
        .option('filter', {
          alias: 'f',
          type: 'string',
          requiresArg: true,
          describe: `Filter KEY=VALUE (${EVENT_FILTER_KEYS.join(', ')}; type is one of ${EVENT_TYPES.join(', ')}); repeatable: different keys must all match, values of one key are alternatives`,
        })
        .option('format', { type: 'string', default: 'table', requiresArg: true, describe: 'table (one line per event, as docker) or json (one object per line)' }),
    handler: action(make, events),
  };
}
