// Serving a proto service from a table of async handlers, with ShoalError → gRPC status mapping
// and a structured log line for internal errors.

import * as grpc from '@grpc/grpc-js';
import { ShoalError, getClientConstructor, getServiceDefinition, type ServiceName } from '@shoal/api';
import type { Logger } from '@shoal/raft';

export type UnaryHandlers = Record<string, (req: any, call: grpc.ServerUnaryCall<unknown, unknown>) => Promise<unknown>>;

export function addUnaryService(server: grpc.Server, name: ServiceName, handlers: UnaryHandlers, log: Logger): void {
  const def = getServiceDefinition(name);
  const impl: grpc.UntypedServiceImplementation = {};
  for (const method of Object.keys(def)) {
    const h = handlers[method] ?? handlers[method[0].toLowerCase() + method.slice(1)];
    impl[method] = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => {
      if (!h) {
        cb({ code: grpc.status.UNIMPLEMENTED, details: `${method} is not implemented` });
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
export { callUnary } from '@shoal/api';

/**
 * Unary calls over kept-open channels, one per (service, address): for a caller that talks to the
 * same peers again and again (an agent's heartbeats, reports and long polls), a channel per call
 * would cost a TCP and HTTP/2 handshake on both sides every time. A channel that fails with
 * UNAVAILABLE is dropped, so the next call starts afresh instead of waiting out grpc-js's
 * reconnect backoff; idle channels close after a while.
 */
export class UnaryClientPool {
  private readonly clients = new Map<string, { client: grpc.Client; timer: NodeJS.Timeout; inflight: number }>();
  private closed = false;

  constructor(private readonly idleMs = 30_000) {}

  call<T>(name: ServiceName, addr: string, method: string, req: unknown, timeoutMs: number): Promise<T> {
    if (this.closed) return Promise.reject(new ShoalError('UNAVAILABLE', 'the client pool is closed'));
    const key = `${name} ${addr}`;
    let e = this.clients.get(key);
    if (!e) {
      const Ctor = getClientConstructor(name);
      const client = new Ctor(addr, grpc.credentials.createInsecure(), {
        'grpc.enable_channelz': 0,
        'grpc.initial_reconnect_backoff_ms': 100,
        'grpc.max_reconnect_backoff_ms': 1_000,
      });
      e = { client, timer: setTimeout(() => undefined, 0), inflight: 0 };
      this.clients.set(key, e);
    }
    const entry = e;
    clearTimeout(entry.timer);
    entry.inflight++;
    return new Promise<T>((resolve, reject) => {
      const c = entry.client as unknown as Record<string, Function>;
      const fn = c[method[0].toLowerCase() + method.slice(1)] ?? c[method];
      fn.call(entry.client, req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) => {
        entry.inflight--;
        if (err?.code === grpc.status.UNAVAILABLE) this.drop(key, entry);
        else if (entry.inflight === 0 && this.clients.get(key) === entry) {
          entry.timer = setTimeout(() => this.drop(key, entry), this.idleMs);
          entry.timer.unref();
        }
        if (err) reject(ShoalError.fromGrpcError(err));
        else resolve(res);
      });
    });
  }

  private drop(key: string, entry: { client: grpc.Client; timer: NodeJS.Timeout }): void {
    clearTimeout(entry.timer);
    if (this.clients.get(key) === entry) this.clients.delete(key);
    // In-flight calls on it finish; new ones get a new channel.
    entry.client.close();
  }

  close(): void {
    this.closed = true;
    for (const [key, e] of [...this.clients]) this.drop(key, e);
  }
}
