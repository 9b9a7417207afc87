// Typed errors that survive a gRPC hop.
//
// A ShoalError carries a stable `code` (below), a user-facing `message` and optional string
// `details` (e.g. {leader: 'n2'} on NOT_LEADER). Over gRPC it travels as a status whose numeric
// code is the closest gRPC code (see GRPC_CODE_OF), whose `details` (grpc-message) is the message,
// and whose trailing metadata carries the exact Shoal code (`shoal-error-code`) and the details
// (`shoal-error-details-bin`, JSON in a binary header so any Unicode survives).
// A gRPC error without that metadata (a transport failure, a deadline, a non-Shoal server) is
// mapped back from its numeric gRPC code.

import * as grpc from '@grpc/grpc-js';

export const SHOAL_ERROR_CODES = [
  'NOT_LEADER',
  'UNAVAILABLE',
  'INVALID_ARGUMENT',
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'UNAUTHENTICATED',
  'FAILED_PRECONDITION',
  'RESOURCE_EXHAUSTED',
  'INTERNAL',
  'CORRUPT_DATA',
] as const;

export type ShoalErrorCode = (typeof SHOAL_ERROR_CODES)[number];

/** The gRPC status each Shoal code travels as. NOT_LEADER is UNAVAILABLE: "retry elsewhere". */
export const GRPC_CODE_OF: Readonly<Record<ShoalErrorCode, grpc.status>> = {
  NOT_LEADER: grpc.status.UNAVAILABLE,
  UNAVAILABLE: grpc.status.UNAVAILABLE,
  INVALID_ARGUMENT: grpc.status.INVALID_ARGUMENT,
  NOT_FOUND: grpc.status.NOT_FOUND,
  ALREADY_EXISTS: grpc.status.ALREADY_EXISTS,
  PERMISSION_DENIED: grpc.status.PERMISSION_DENIED,
  UNAUTHENTICATED: grpc.status.UNAUTHENTICATED,
  FAILED_PRECONDITION: grpc.status.FAILED_PRECONDITION,
  RESOURCE_EXHAUSTED: grpc.status.RESOURCE_EXHAUSTED,
  INTERNAL: grpc.status.INTERNAL,
  CORRUPT_DATA: grpc.status.DATA_LOSS,
};

/** Metadata keys used on the wire. */
export const ERROR_CODE_KEY = 'shoal-error-code';
export const ERROR_DETAILS_KEY = 'shoal-error-details-bin';

const CODE_SET: ReadonlySet<string> = new Set(SHOAL_ERROR_CODES);

export function isShoalErrorCode(x: unknown): x is ShoalErrorCode {
  return typeof x === 'string' && CODE_SET.has(x);
}

function shoalCodeOfGrpc(code: number | undefined): ShoalErrorCode {
  switch (code) {
    case grpc.status.INVALID_ARGUMENT:
    case grpc.status.OUT_OF_RANGE:
      return 'INVALID_ARGUMENT';
    case grpc.status.NOT_FOUND:
      return 'NOT_FOUND';
    case grpc.status.ALREADY_EXISTS:
      return 'ALREADY_EXISTS';
    case grpc.status.PERMISSION_DENIED:
      return 'PERMISSION_DENIED';
    case grpc.status.UNAUTHENTICATED:
      return 'UNAUTHENTICATED';
    case grpc.status.FAILED_PRECONDITION:
    case grpc.status.ABORTED:
      return 'FAILED_PRECONDITION';
    case grpc.status.RESOURCE_EXHAUSTED:
      return 'RESOURCE_EXHAUSTED';
    case grpc.status.DATA_LOSS:
      return 'CORRUPT_DATA';
    // The call may or may not have taken effect (deadline, cancel): the caller must treat it as
    // an unknown outcome; `grpcCode` tells which.
    case grpc.status.UNAVAILABLE:
    case grpc.status.DEADLINE_EXCEEDED:
    case grpc.status.CANCELLED:
      return 'UNAVAILABLE';
    default:
      return 'INTERNAL';
  }
}

export interface ShoalErrorOptions {
  /** Extra machine-readable context, e.g. {leader: 'n2', leaderAddr: '10.0.0.2:7000'}. */
  details?: Record<string, string>;
  cause?: unknown;
  /** Set when the error was converted from a gRPC status. */
  grpcCode?: grpc.status;
}

export class ShoalError extends Error {
  readonly code: ShoalErrorCode;
  readonly details: Readonly<Record<string, string>>;
  /** The gRPC status code, when this error came off the wire. */
  readonly grpcCode: grpc.status | undefined;

  constructor(code: ShoalErrorCode, message: string, opts: ShoalErrorOptions = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'ShoalError';
    this.code = code;
    this.details = Object.freeze({ ...(opts.details ?? {}) });
    this.grpcCode = opts.grpcCode;
  }

  /** True if `err` is a ShoalError (with the given code, if any). */
  static is(err: unknown, code?: ShoalErrorCode): err is ShoalError {
    return err instanceof ShoalError && (code === undefined || err.code === code);
  }

  /**
   * Any thrown value as a ShoalError: a ShoalError is returned as is, anything else becomes
   * INTERNAL with a generic message (the original is kept as `cause`, not sent on the wire).
   */
  static from(err: unknown, message = 'internal error'): ShoalError {
    if (err instanceof ShoalError) return err;
    return new ShoalError('INTERNAL', message, { cause: err });
  }

  /** The status to hand to a gRPC server callback / `call.destroy()`. */
  toGrpcStatus(): grpc.StatusObject {
    const metadata = new grpc.Metadata();
    metadata.set(ERROR_CODE_KEY, this.code);
    if (Object.keys(this.details).length > 0) {
      metadata.set(ERROR_DETAILS_KEY, Buffer.from(JSON.stringify(this.details), 'utf8'));
    }
    return { code: GRPC_CODE_OF[this.code], details: this.message, metadata };
  }

  /**
   * Rebuilds a ShoalError from what a gRPC client call reported (a grpc.ServiceError, or any
   * Error / value: those become INTERNAL).
   */
  static fromGrpcError(err: unknown): ShoalError {
    if (err instanceof ShoalError) return err;
    const e = err as Partial<grpc.ServiceError> | null | undefined;
    const grpcCode = typeof e?.code === 'number' ? (e.code as grpc.status) : undefined;
    if (grpcCode === undefined) {
      return new ShoalError('INTERNAL', err instanceof Error ? err.message : String(err), { cause: err });
    }
    let code = shoalCodeOfGrpc(grpcCode);
    let details: Record<string, string> | undefined;
    const md = e?.metadata instanceof grpc.Metadata ? e.metadata : undefined;
    if (md) {
      const [c] = md.get(ERROR_CODE_KEY);
      if (isShoalErrorCode(c)) code = c;
      const [d] = md.get(ERROR_DETAILS_KEY);
      if (Buffer.isBuffer(d)) {
        try {
          const parsed: unknown = JSON.parse(d.toString('utf8'));
          if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) {
            details = {};
            for (const [k, v] of Object.entries(parsed)) if (typeof v === 'string') details[k] = v;
          }
        } catch {
          // Malformed details are dropped; the code and message still stand.
        }
      }
    }
    const message = typeof e?.details === 'string' && e.details !== '' ? e.details : (e?.message ?? 'unknown error');
    return new ShoalError(code, message, { details, cause: err, grpcCode });
  }
}
