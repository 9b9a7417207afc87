// The one logging interface every component takes: structured fields first, then a message
// (pino's calling convention, so the daemon's pino loggers satisfy it without an adapter, and
// a test can pass a recording or silent object without pino).

export interface Logger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

const noop = (): void => {};

/** A logger that drops everything (the default where a caller passes none). */
export const NOOP_LOGGER: Logger = Object.freeze({ debug: noop, info: noop, warn: noop, error: noop });
