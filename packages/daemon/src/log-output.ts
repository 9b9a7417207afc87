// How shoald writes its log: readable lines on a terminal, JSON lines for a collector, at the
// level the operator asks for. pino writes both; pino-pretty shapes the text lines (loaded only
// in text mode, so a daemon under a supervisor does not pay for it at start-up).

import type { DestinationStream, LevelWithSilent } from 'pino';
import type { PrettyOptions } from 'pino-pretty';
import { ShoalError } from '@shoal/api';
import { configureRootLogger } from '@shoal/raft';

export const LOG_FORMATS = ['text', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** --log-format wins; otherwise text for a person at a terminal, JSON for anything else. */
export function chooseLogFormat(flag: LogFormat | undefined, stderrIsTTY: boolean): LogFormat {
  return flag ?? (stderrIsTTY ? 'text' : 'json');
}

/** pino's levels, which $SHOAL_LOG_LEVEL may name (it predates --log-level and keeps them all). */
const ENV_LEVELS: readonly string[] = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'];

/** --log-level wins, then $SHOAL_LOG_LEVEL; undefined leaves the default (see @shoal/raft's logger). */
export function chooseLogLevel(flag: LogLevel | undefined, env: string | undefined): LevelWithSilent | undefined {
  if (flag) return flag;
  if (!env) return undefined;
  if (!ENV_LEVELS.includes(env)) throw new ShoalError('INVALID_ARGUMENT', `SHOAL_LOG_LEVEL=${env}: want one of ${ENV_LEVELS.join(', ')}`);
  return env as LevelWithSilent;
}

/** The fields a text line shows in its own columns rather than as key=value. */
const SHOWN = new Set(['time', 'level', 'pid', 'hostname', 'component', 'msg']);

function fieldValue(v: unknown): string {
  if (typeof v === 'string') return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
  return JSON.stringify(v) ?? String(v);
}

/** One log record's message column: `component: message key=value ...`. */
export function textMessage(log: Record<string, unknown>): string {
  const fields = Object.entries(log)
    .filter(([k, v]) => !SHOWN.has(k) && v !== undefined)
    .map(([k, v]) => ` ${k}=${fieldValue(v)}`)
    .join('');
  const component = typeof log.component === 'string' ? `${log.component}: ` : '';
  return `${component}${log.msg ?? ''}${fields}`;
}

/** pino-pretty's settings for one line per record: time, level, then textMessage. */
export function textOptions(colorize: boolean): PrettyOptions {
  return {
    colorize,
    translateTime: 'SYS:yyyy-mm-dd HH:MM:ss.l',
    ignore: 'pid,hostname',
    // The fields are in textMessage; pino-pretty would print them as an indented block. (Not
    // singleLine: with hideObject it drops the line's end.)
    hideObject: true,
    messageFormat: (log) => textMessage(log),
  };
}

/** Sets up the process's root logger from shoald's flags, before anything logs. */
export async function setUpLogging(level: LogLevel | undefined, format: LogFormat | undefined): Promise<void> {
  const stderr = process.stderr;
  const destination = await logDestination(chooseLogFormat(format, stderr.isTTY === true), stderr.hasColors?.() === true);
  configureRootLogger({ level: chooseLogLevel(level, process.env.SHOAL_LOG_LEVEL), destination });
}

/** Where the root logger writes: stderr, through pino-pretty in text mode. */
export async function logDestination(format: LogFormat, colorize: boolean): Promise<DestinationStream | undefined> {
  if (format === 'json') return undefined; // pino's own stderr destination
  const { default: pretty } = await import('pino-pretty');
  return pretty({ ...textOptions(colorize), destination: 2, sync: true });
}
