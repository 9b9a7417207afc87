// Serving a proto service from a table of async handlers, with ShoalError → gRPC status mapping
// and a structured log line for internal errors.

import * as grpc from '@grpc/grpc-js';
import { ShoalError, getServiceDefinition, type ServiceName } from '@shoal/api';
import type { Logger } from '@shoal/api';

export type UnaryHandlers = Record<string, (req: any, call: grpc.ServerUnaryCall<unknown, unknown>) => Promise<unknown>>;

/** Checks a call before its handler runs (throws a ShoalError to refuse it). */
export type Guard = (method: string, req: any, call: grpc.ServerUnaryCall<unknown, unknown>) => void;

export function addUnaryService(server: grpc.Server, name: ServiceName, handlers: UnaryHandlers, log: Logger, guard?: Guard): void {
  const def = getServiceDefinition(name);
  const impl: grpc.UntypedServiceImplementation = {};
  for (const method of Object.keys(def)) {
    const h = handlers[method] ?? handlers[method[0].toLowerCase() + method.slice(1)];
    impl[method] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (!h) {
        cb({ code: grpc.status.UNIMPLEMENTED, details: `${method} is not implemented` });
        return;
      }
      try {
        guard?.(method, call.request, call);
      } catch (err) {
        const se = ShoalError.from(err);
        log.warn({ method, peer: call.getPeer(), err: se.message }, 'refused a call');
        cb(se.toGrpcStatus());
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

/** Calls one unary method on a remote service (now in @shoal/api, which the agent uses too). */
export { callUnary, UnaryClientPool } from '@shoal/api';
