// The two kinds of failure `shoal` reports (as one line `Error: MESSAGE` on stderr).

/** A mistake on the command line (exit code 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
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
