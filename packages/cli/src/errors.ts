// The two kinds of failure `shoal` reports (as one line `Error: MESSAGE` on stderr).

import { SpecError } from '@shoal/types';

/**
 * A mistake on the command line (exit code 2). A SpecError (a service spec's rule, shared with
 * the control API) is one too: the CLI checks flags with those rules before sending anything.
 */
export class UsageError extends SpecError {
  override name = 'UsageError';
}

/** True for a mistake on the command line, whichever rule found it. */
export function isUsageError(err: unknown): err is SpecError {
  return err instanceof SpecError;
}

/** A failure to report as `Error: MESSAGE` (one line) with this exit code (1 unless said). */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode = 1,
    /** The Shoal error code, when the server (or the transport) gave one; TIMEOUT for a wait. */
    readonly code?: string,
    /** The manager could not be reached at all (another one in --host may be tried). */
    readonly unreachable = false,
  ) {
    super(message);
  }
}
