// The process's logging backend (pino, JSON lines on stderr). Components take the `Logger`
// interface from @shoal/api; a PinoLogger satisfies it and adds child() and fatal().
//
// Level: $SHOAL_LOG_LEVEL if set; otherwise 'silent' under `node --test` (which sets
// NODE_TEST_CONTEXT in the test processes) and 'info' elsewhere.

import { pino } from 'pino';

export type PinoLogger = pino.Logger;

export function defaultLogLevel(): pino.LevelWithSilent {
  const env = process.env.SHOAL_LOG_LEVEL;
  if (env) return env as pino.LevelWithSilent;
  return process.env.NODE_TEST_CONTEXT ? 'silent' : 'info';
}

let root: PinoLogger | undefined;

/** The process-wide root logger (created on first use, JSON lines on stderr unless configured). */
export function rootLogger(): PinoLogger {
  return (root ??= newRoot({}));
}

/**
 * Sets the root logger's level and where its lines go (e.g. a prettifier on a terminal). Call it
 * before the first createLogger: loggers made earlier keep the old root.
 */
export function configureRootLogger(opts: { level?: pino.LevelWithSilent; destination?: pino.DestinationStream }): void {
  root = newRoot(opts);
}

function newRoot(opts: { level?: pino.LevelWithSilent; destination?: pino.DestinationStream }): PinoLogger {
  return pino({ level: opts.level ?? defaultLogLevel(), base: { pid: process.pid } }, opts.destination ?? pino.destination(2));
}

/** A child of the root logger tagged with a component name (and any other bindings). */
export function createLogger(component: string, bindings: Record<string, unknown> = {}): PinoLogger {
  return rootLogger().child({ component, ...bindings });
}

/** A logger that drops everything. */
export function silentLogger(): PinoLogger {
  return pino({ level: 'silent' });
}
