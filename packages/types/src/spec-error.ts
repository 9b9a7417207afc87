// The error every rule of this package throws: one line that names the bad input and says what
// was expected. The CLI prints it as a usage error (exit 2); the control API answers it as
// INVALID_ARGUMENT. (A class of its own, not @shoal/api's ShoalError, so that the rules load
// without gRPC.)

export class SpecError extends Error {
  override name = 'SpecError';
  readonly code = 'INVALID_ARGUMENT' as const;
}

/** Throws a SpecError with `message`. */
export function invalid(message: string): never {
  throw new SpecError(message);
}
