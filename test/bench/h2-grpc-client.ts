// A lean unary gRPC client on node:http2, for benchmarks only. grpc-js spends ~0.5 ms of CPU per
// call on the client side on this 2-core VM, so a benchmark driving the server with it measures
// mostly its own clients. This speaks the same wire protocol (length-prefixed protobuf messages,
// grpc-status trailers) with one HTTP/2 connection per client, as separate CLI processes would.
import * as http2 from 'node:http2';
import { getMethodDefinition, type ServiceName } from '@shoal/api';

export class H2GrpcClient {
  private readonly session: http2.ClientHttp2Session;

  constructor(
    addr: string,
    private readonly service: ServiceName,
    /** Mutual TLS (PEMs), asking for the managers' name as Shoal's clients do; absent: h2c. */
    tls?: { ca: string; cert: string; key: string },
  ) {
    this.session = tls
      ? http2.connect(`https://${addr}`, { ca: tls.ca, cert: tls.cert, key: tls.key, servername: 'shoal-manager' })
      : http2.connect(`http://${addr}`);
    this.session.on('error', () => {});
  }

  call<T = unknown>(method: string, req: unknown, timeoutMs = 10_000): Promise<T> {
    const def = getMethodDefinition(this.service, method);
    const body = def.requestSerialize(req);
    const frame = Buffer.allocUnsafe(5 + body.length);
    frame[0] = 0;
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    return new Promise<T>((resolve, reject) => {
      const stream = this.session.request({
        ':method': 'POST',
        ':path': `/${this.service}/${method}`,
        'content-type': 'application/grpc',
        te: 'trailers',
        'grpc-timeout': `${timeoutMs}m`,
      });
      const chunks: Buffer[] = [];
      let status: string | undefined;
      let message = '';
      const onHeaders = (h: http2.IncomingHttpHeaders) => {
        if (h['grpc-status'] !== undefined) {
          status = String(h['grpc-status']);
          message = decodeURIComponent(String(h['grpc-message'] ?? ''));
        }
      };
      stream.on('response', onHeaders);
      stream.on('trailers', onHeaders);
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('error', reject);
      stream.on('close', () => {
        if (status !== '0') return reject(new Error(`grpc status ${status ?? 'missing'}: ${message}`));
        const buf = Buffer.concat(chunks);
        resolve(def.responseDeserialize(buf.subarray(5, 5 + buf.readUInt32BE(1))) as T);
      });
      stream.end(frame);
    });
  }

  close(): void {
    this.session.close();
  }
}
