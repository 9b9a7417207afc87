// The control API client of `shoal`: one gRPC channel to a manager (unix socket or TCP), a
// deadline on every call, and errors turned into one-line messages.

//
// Loaded on the first call only (context.ts imports it dynamically): gRPC and the protos are
// most of shoal's start-up time, and --help or a usage error needs neither.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import {
  ERROR_CODE_KEY,
  PROTO_DIR_ENV,
  type ServiceDescriptor,
  ShoalError,
  clientConstructorFromDescriptor,
  getOnlyClientConstructor,
} from '@shoal/api';
import { CliError } from './errors.js';
import { type HostAddr, formatDuration, formatHost } from './parse.js';
import type { ControlMethod, ControlMethods } from '@shoal/types';

// grpc-js logs to stderr; shoal's stderr carries one line per failure. GRPC_VERBOSITY still wins.
if (process.env['GRPC_VERBOSITY'] === undefined) grpc.setLogVerbosity(grpc.logVerbosity.NONE);

/**
 * control.proto's descriptor, made from proto/ when the CLI is bundled (scripts/bundle-cli.mjs
 * defines it): the bundle need not parse .proto text at each start. Unbundled it is not defined,
 * and control.proto is parsed (as it is when $SHOAL_PROTO_DIR names other protos).
 */
declare const SHOAL_BUNDLED_CONTROL_DESCRIPTOR: ServiceDescriptor['json'] | undefined;

function controlClientConstructor(): grpc.ServiceClientConstructor {
  if (typeof SHOAL_BUNDLED_CONTROL_DESCRIPTOR !== 'undefined' && !process.env[PROTO_DIR_ENV]) {
    return clientConstructorFromDescriptor('shoal.control.Control', SHOAL_BUNDLED_CONTROL_DESCRIPTOR);
  }
  // Only control.proto (and types.proto): a third of the parsing of every .proto.
  return getOnlyClientConstructor('shoal.control.Control');
}

/** The gRPC target of an address: `unix:///abs/path`, `unix:rel/path` or `host:port`. */
export function grpcTarget(h: HostAddr): string {
  if (h.kind === 'unix') return h.path.startsWith('/') ? `unix://${h.path}` : `unix:${h.path}`;
  return `${h.host}:${h.port}`;
}

/** The admin's TLS material (ca.pem, cert.pem, key.pem in --cert-path, as Docker lays them out). */
export interface AdminTls {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

export function readAdminTls(dir: string | undefined, env: string): AdminTls {
  if (!dir) {
    throw new CliError(
      `a manager's TCP address needs the admin certificate: pass --cert-path DIR or set ${env} (shoald init writes it to DATA_DIR/admin)`,
      1,
      'INVALID_ARGUMENT',
    );
  }
  const read = (name: string): Buffer => {
    try {
      return readFileSync(join(dir, name));
    } catch (err) {
      throw new CliError(`--cert-path ${dir}: cannot read ${name} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`, 1, 'INVALID_ARGUMENT');
    }
  };
  return { ca: read('ca.pem'), cert: read('cert.pem'), key: read('key.pem') };
}

/** What the resource argument of a call names, for "no such service: X" messages. */
export interface CallContext {
  notFound?: { kind: 'service' | 'node' | 'network' | 'secret' | 'config'; name: string };
  /** The deadline of this call (defaults to the client's timeout). */
  timeoutMs?: number;
}

function firstLine(s: string): string {
  const l = s
    .split(/\r?\n/)
    .map((x) => x.trim())
    .filter((x) => x !== '');
  return l.length === 0 ? '' : l.length === 1 ? l[0]! : l.join(' ');
}

/** A transport failure's cause in words (`connection refused`, `no such socket /x`). */
export function transportReason(details: string, h: HostAddr): string {
  const d = details.replace(/^No connection established\.\s*/i, '').replace(/^Last error:\s*/i, '').replace(/^Error:\s*/, '');
  if (/ECONNREFUSED/.test(d)) return 'connection refused (is shoald running there?)';
  if (/ENOENT/.test(d)) return h.kind === 'unix' ? `no such socket ${h.path} (is shoald running?)` : 'not found';
  if (/EACCES|EPERM/.test(d)) return 'permission denied';
  if (/ENOTFOUND|EAI_AGAIN/.test(d)) return h.kind === 'tcp' ? `unknown host ${h.host}` : d;
  if (/ETIMEDOUT|EHOSTUNREACH|ENETUNREACH/.test(d)) return 'host unreachable';
  if (/ECONNRESET|EPIPE/.test(d)) return 'connection reset';
  if (/ENOTSOCK/.test(d)) return `${h.kind === 'unix' ? h.path : 'it'} is not a socket`;
  return firstLine(d) || 'unavailable';
}

/**
 * A failed call as one line. Server errors (a Shoal code in the trailers) keep the server's
 * message, except NOT_FOUND of the named resource (`no such service: web`); transport failures
 * say the manager cannot be reached; a deadline says nothing answered in time.
 */
export function describeCallError(err: unknown, h: HostAddr, timeoutMs: number, ctx: CallContext = {}): CliError {
  if (err instanceof CliError) return err;
  const e = err as Partial<grpc.ServiceError> | null | undefined;
  if (typeof e?.code !== 'number') {
    return new CliError(firstLine(err instanceof Error ? err.message : String(err)) || 'unknown error', 1, 'INTERNAL');
  }
  const se = ShoalError.fromGrpcError(err);
  const fromServer = e.metadata instanceof grpc.Metadata && e.metadata.get(ERROR_CODE_KEY).length > 0;
  const addr = formatHost(h);
  const msg = firstLine(se.message);
  if (fromServer) {
    // The named service/node does not exist: docker's wording. Other NOT_FOUNDs (a node's missing
    // label...) keep the server's message.
    if (se.code === 'NOT_FOUND' && ctx.notFound && /not found|no such/i.test(msg)) {
      return new CliError(`no such ${ctx.notFound.kind}: ${ctx.notFound.name}`, 1, se.code);
    }
    return new CliError(msg || se.code.toLowerCase().replace(/_/g, ' '), 1, se.code);
  }
  switch (e.code) {
    case grpc.status.UNAVAILABLE:
      return new CliError(`cannot reach a manager at ${addr}: ${transportReason(e.details ?? '', h)}`, 1, 'UNAVAILABLE', true);
    case grpc.status.DEADLINE_EXCEEDED:
      return new CliError(
        `no answer from the manager at ${addr} within ${formatDuration(timeoutMs)} (a cluster without a quorum cannot answer; --timeout sets the limit)`,
        1,
        'UNAVAILABLE',
      );
    case grpc.status.UNIMPLEMENTED:
      return new CliError(`the server at ${addr} does not serve the Shoal control API (is it a Shoal manager?)`, 1, 'INTERNAL');
    case grpc.status.RESOURCE_EXHAUSTED:
      // gRPC's own size limit (a Shoal answer would carry its code): the request or the reply.
      return new CliError(`the message is too large for the manager at ${addr} or for shoal: ${msg || 'resource exhausted'}`, 1, 'RESOURCE_EXHAUSTED');
    case grpc.status.NOT_FOUND:
      if (ctx.notFound) return new CliError(`no such ${ctx.notFound.kind}: ${ctx.notFound.name}`, 1, 'NOT_FOUND');
      return new CliError(msg || 'not found', 1, 'NOT_FOUND');
    default:
      return new CliError(msg || grpc.status[e.code] || 'error', 1, se.code);
  }
}

type Callback<Res> = (err: grpc.ServiceError | null, res?: Res) => void;
type StreamFn<Req, Res> = (req: Req, md: grpc.Metadata, opts: grpc.CallOptions) => grpc.ClientReadableStream<Res>;
type UnaryFn<Req, Res> = (req: Req, md: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<Res>) => grpc.ClientUnaryCall;

/** The shoal.control.Control client. Close it when done so the process can exit. */
export class ControlClient {
  private readonly client: grpc.Client;

  constructor(
    readonly host: HostAddr,
    /** The default deadline of a call. */
    readonly timeoutMs: number,
    /** Admin TLS material (TCP hosts); absent: plaintext (the unix socket). */
    tls?: AdminTls,
  ) {
    const Ctor = controlClientConstructor();
    let creds: grpc.ChannelCredentials;
    try {
      creds = tls ? grpc.credentials.createSsl(tls.ca, tls.key, tls.cert) : grpc.credentials.createInsecure();
    } catch (err) {
      throw new CliError(`the admin certificate cannot be used: ${(err as Error).message}`, 1, 'INVALID_ARGUMENT');
    }
    this.client = new Ctor(grpcTarget(host), creds, {
      'grpc.max_receive_message_length': 64 * 1024 * 1024,
      // Fail fast when nothing listens instead of waiting out the deadline.
      'grpc.initial_reconnect_backoff_ms': 200,
      // Managers are named by role in their certificates, not by address.
      ...(tls ? { 'grpc.ssl_target_name_override': 'shoal-manager', 'grpc.default_authority': 'shoal-manager' } : {}),
    });
  }

  /** Calls `method`; rejects with a CliError (one-line message) on any failure. */
  call<M extends ControlMethod>(method: M, req: ControlMethods[M][0], ctx: CallContext = {}): Promise<ControlMethods[M][1]> {
    const timeoutMs = ctx.timeoutMs ?? this.timeoutMs;
    const fn = (this.client as unknown as Record<string, UnaryFn<ControlMethods[M][0], ControlMethods[M][1]>>)[method];
    if (typeof fn !== 'function') return Promise.reject(new CliError(`the control API has no method ${method}`, 1, 'INTERNAL'));
    return new Promise((resolve, reject) => {
      fn.call(this.client, req, new grpc.Metadata(), { deadline: Date.now() + Math.max(1, timeoutMs) }, (err, res) => {
        if (err) reject(describeCallError(err, this.host, this.timeoutMs, ctx));
        else if (res === undefined) reject(new CliError(`empty answer to ${method}`, 1, 'INTERNAL'));
        else resolve(res);
      });
    });
  }

  /**
   * A server-streaming call (Events, SubscribeServiceLogs): `onMessage` for each message, `onHeader`
   * with the server's first metadata. Resolves when the server ends the stream; rejects with a
   * CliError, `unreachable` when the connection was lost rather than the server said no (a client
   * resumes elsewhere then). No deadline: a stream lasts as long as the client wants it.
   */
  stream<M extends ControlMethod>(
    method: M,
    req: ControlMethods[M][0],
    onMessage: (m: ControlMethods[M][1]) => void,
    opts: { onHeader?: (md: grpc.Metadata) => void; ctx?: CallContext } = {},
  ): Promise<void> {
    const fn = (this.client as unknown as Record<string, StreamFn<ControlMethods[M][0], ControlMethods[M][1]>>)[method];
    if (typeof fn !== 'function') return Promise.reject(new CliError(`the control API has no method ${method}`, 1, 'INTERNAL'));
    return new Promise((resolve, reject) => {
      const call = fn.call(this.client, req, new grpc.Metadata(), {});
      if (opts.onHeader) call.on('metadata', opts.onHeader);
      call.on('data', (m: ControlMethods[M][1]) => {
        try {
          onMessage(m);
        } catch (err) {
          call.cancel();
          reject(err);
        }
      });
      call.on('error', (err: grpc.ServiceError) => {
        const fromServer = err.metadata instanceof grpc.Metadata && err.metadata.get(ERROR_CODE_KEY).length > 0;
        const lost = !fromServer && (err.code === grpc.status.UNAVAILABLE || err.code === grpc.status.INTERNAL || err.code === grpc.status.UNKNOWN);
        if (lost && err.code !== grpc.status.UNAVAILABLE) {
          reject(new CliError(`lost the manager at ${formatHost(this.host)}: ${firstLine(err.details ?? '') || 'connection reset'}`, 1, 'UNAVAILABLE', true));
        } else {
          reject(describeCallError(err, this.host, this.timeoutMs, opts.ctx));
        }
      });
      call.on('status', (st: grpc.StatusObject) => {
        if (st.code === grpc.status.OK) resolve();
      });
    });
  }

  /**
   * Waits until the channel is connected (or has failed outright: the call that follows then says
   * why, at once). Still connecting after `timeoutMs`: nothing answers there — a powered-off host
   * drops the SYNs or the handshake hangs — and the manager counts as unreachable, so the next of
   * --host can be tried before the command's whole budget is gone.
   */
  connect(timeoutMs: number): Promise<void> {
    const channel = this.client.getChannel();
    const deadline = Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      const check = (): void => {
        const state = channel.getConnectivityState(true);
        if (state === grpc.connectivityState.READY || state === grpc.connectivityState.TRANSIENT_FAILURE) return resolve();
        if (state === grpc.connectivityState.SHUTDOWN) return reject(new CliError('the connection was closed', 1, 'UNAVAILABLE', true));
        channel.watchConnectivityState(state, deadline, (err) => {
          if (!err) return check();
          reject(
            new CliError(
              `cannot reach a manager at ${formatHost(this.host)}: no connection within ${formatDuration(timeoutMs)} (is the host up?)`,
              1,
              'UNAVAILABLE',
              true,
            ),
          );
        });
      };
      check();
    });
  }

  close(): void {
    this.client.close();
  }
}
