// Calling the services of proto/ as a client.

import * as grpc from '@grpc/grpc-js';
import { ShoalError } from './errors.js';
import { type ServiceName, getClientConstructor } from './proto.js';

/**
 * Calls one unary method on a remote service (a channel of its own, closed after the answer),
 * with a deadline; errors come back as ShoalErrors.
 */
export function callUnary<T>(name: ServiceName, addr: string, method: string, req: unknown, timeoutMs: number): Promise<T> {
  const Ctor = getClientConstructor(name);
  const client = new Ctor(addr, grpc.credentials.createInsecure());
  return new Promise<T>((resolve, reject) => {
    const c = client as unknown as Record<string, Function>;
    const fn = c[method[0].toLowerCase() + method.slice(1)] ?? c[method];
    fn.call(client, req, { deadline: Date.now() + timeoutMs }, (err: grpc.ServiceError | null, res: T) => {
      client.close();
      if (err) reject(ShoalError.fromGrpcError(err));
      else resolve(res);
    });
  });
}
