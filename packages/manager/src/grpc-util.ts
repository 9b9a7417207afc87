// Serving a proto service from a table of async handlers, with ShoalError → gRPC status mapping
// and a structured log line for internal errors.

import * as grpc from '@grpc/grpc-js';
import { ShoalError, getServiceDefinition, type ServiceName } from '@shoal/api';
import type { Logger } from '@shoal/api';

export type UnaryHandlers = Record<string, (req: any, call: grpc.ServerUnaryCall<unknown, unknown>) => Promise<unknown>>;

/** A server-streaming method's handler: writes to `call`, resolves when the stream may end. */
export type StreamHandlers = Record<string, (req: any, call: grpc.ServerWritableStream<unknown, unknown>) => Promise<void>>;

/** Checks a call before its handler runs (throws a ShoalError to refuse it). */
export type Guard = (method: string, req: any, call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>) => void;

export function addUnaryService(server: grpc.Server, name: ServiceName, handlers: UnaryHandlers, log: Logger, guard?: Guard, streams: StreamHandlers = {}): void {
  const def = getServiceDefinition(name);
  const impl: grpc.UntypedServiceImplementation = {};
  for (const method of Object.keys(def)) {
    if (def[method]!.responseStream) {
      impl[method] = serveStream(method, streams[method], log, guard);
      continue;
    }
    const h = handlers[method] ?? handlers[method[0].toLowerCase() + method.slice(1)];
    impl[method] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (!h) {
        cb({ code: grpc.status.UNIMPLEMENTED, details: `${method} is not implemented` });
        return;
      }
      const refused = refusal(method, call, log, guard);
      if (refused) {
        cb(refused);
        return;
      }
      h(call.request, call).then(
        (res) => cb(null, res),
        (err: unknown) => {
          const se = ShoalError.from(err);
          if (se.code === 'INTERNAL') log.error({ method, err: (err as Error)?.stack ?? String(err) }, 'internal error');
          cb(se.toGrpcStatus());
        },
      );
    };
  }
  server.addService(def, impl);
}

/** The guard's refusal of a call as the status to answer it with (logged), or undefined. */
function refusal(method: string, call: grpc.ServerUnaryCall<unknown, unknown> | grpc.ServerWritableStream<unknown, unknown>, log: Logger, guard?: Guard): Partial<grpc.StatusObject> | undefined {
  try {
    guard?.(method, call.request, call as grpc.ServerUnaryCall<unknown, unknown>);
    return undefined;
  } catch (err) {
    const se = ShoalError.from(err);
    log.warn({ method, peer: call.getPeer(), err: se.message }, 'refused a call');
    return se.toGrpcStatus();
  }
}

function serveStream(method: string, h: StreamHandlers[string] | undefined, log: Logger, guard?: Guard) {
  return (call: grpc.ServerWritableStream<unknown, unknown>): void => {
    // A server stream's status goes out as an 'error' event (grpc-js); end() is the OK status.
    const fail = (err: unknown): void => {
      const se = ShoalError.from(err);
      if (se.code === 'INTERNAL') log.error({ method, err: (err as Error)?.stack ?? String(err) }, 'internal error');
      if (!call.cancelled) call.emit('error', se.toGrpcStatus());
    };
    if (!h) {
      call.emit('error', { code: grpc.status.UNIMPLEMENTED, details: `${method} is not implemented` });
      return;
    }
    const refused = refusal(method, call, log, guard);
    if (refused) {
      call.emit('error', refused);
      return;
    }
    let p: Promise<void>;
    try {
      p = h(call.request, call);
    } catch (err) {
      fail(err);
      return;
    }
    p.then(() => {
      if (!call.cancelled) call.end();
    }, fail);
  };
}

/** Calls one unary method on a remote service (now in @shoal/api, which the agent uses too). */
export { callUnary, UnaryClientPool } from '@shoal/api';
