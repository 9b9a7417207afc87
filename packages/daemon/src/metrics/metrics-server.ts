// GET /metrics for Prometheus. On a loopback address, plain HTTP: only this machine reaches it.
// Elsewhere HTTPS with the node's certificate, and only a client presenting an admin certificate
// of this cluster's CA is answered (as the control API's TCP port asks), unless the operator
// opened it with --metrics-insecure.

import http from 'node:http';
import https from 'node:https';
import type { TLSSocket } from 'node:tls';
import { type Logger, ShoalError } from '@shoal/api';
import { hostOf, isLoopback } from '@shoal/agent';
import { type NodeIdentity, type TlsMaterial, identityOfPeerCert } from '@shoal/pki';
import type { Registry } from 'prom-client';

export interface MetricsServerOptions {
  /** HOST:PORT, already checked (checkAddr). Port 0: any free port (tests). */
  addr: string;
  registry: Registry;
  /** Plain HTTP and no certificate asked for, whatever the address. */
  insecure?: boolean;
  log: Logger;
}

export interface MetricsEndpoint {
  /** Where it is served (the bound port), e.g. https://10.0.0.1:9323/metrics. */
  readonly url: string;
  /** Whether scrapers need an admin certificate (HTTPS). */
  readonly tls: boolean;
  /** The node's certificate (renewals followed) and cluster: HTTPS answers once it is given. */
  useIdentity(identity: NodeIdentity): void;
  close(): Promise<void>;
}

function secureContext(m: TlsMaterial) {
  return { key: m.keyPem, cert: `${m.certPem.trim()}\n${m.caPem.trim()}\n`, ca: [m.caPem] };
}

/** Binds the metrics endpoint; a one-line INVALID_ARGUMENT error if the address cannot be bound. */
export async function serveMetrics(opts: MetricsServerOptions): Promise<MetricsEndpoint> {
  const host = hostOf(opts.addr);
  const port = Number(opts.addr.slice(opts.addr.lastIndexOf(':') + 1));
  const tls = !opts.insecure && !isLoopback(host);
  let identity: NodeIdentity | undefined;
  const handler = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const path = (req.url ?? '').split('?')[0];
    if (path !== '/metrics') return answer(res, 404, 'not found: metrics are at /metrics\n');
    if (req.method !== 'GET' && req.method !== 'HEAD') return answer(res, 405, 'only GET\n');
    if (tls) {
      // TLS checked the chain and the dates (rejectUnauthorized): here, who it is.
      const id = identityOfPeerCert((req.socket as TLSSocket).getPeerCertificate());
      if (!id || !identity || id.clusterId !== identity.identity.clusterId) return answer(res, 403, 'a certificate of this cluster is needed\n');
      if (id.role !== 'admin') return answer(res, 403, `metrics need an admin certificate, not a ${id.role} one\n`);
    }
    opts.registry.metrics().then(
      (body) => {
        res.writeHead(200, { 'Content-Type': opts.registry.contentType });
        res.end(req.method === 'HEAD' ? undefined : body);
      },
      (err: Error) => {
        opts.log.warn({ err: err.message }, 'metrics: a scrape failed');
        answer(res, 500, `${err.message}\n`);
      },
    );
  };
  // No certificate until useIdentity(): handshakes fail until then.
  const server = tls ? https.createServer({ requestCert: true, rejectUnauthorized: true, minVersion: 'TLSv1.2' }, handler) : http.createServer(handler);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) => reject(new ShoalError('INVALID_ARGUMENT', `--metrics-addr ${opts.addr}: cannot listen: ${err.code ?? err.message}`)));
    server.listen({ host, port }, () => resolve());
  });
  server.on('error', (err) => opts.log.warn({ err: err.message }, 'metrics server error'));
  const bound = (server.address() as { port: number }).port;
  const shown = host.includes(':') ? `[${host}]` : host;
  const url = `${tls ? 'https' : 'http'}://${shown}:${bound}/metrics`;
  opts.log.info({ url, adminCertificate: tls }, 'serving metrics');
  const onRenewed = () => identity && (server as https.Server).setSecureContext(secureContext(identity.material));
  return {
    url,
    tls,
    useIdentity(id) {
      identity?.off('renewed', onRenewed);
      identity = id;
      if (!tls) return;
      (server as https.Server).setSecureContext(secureContext(id.material));
      id.on('renewed', onRenewed);
    },
    close() {
      identity?.off('renewed', onRenewed);
      return new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

function answer(res: http.ServerResponse, status: number, text: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8' });
  res.end(text);
}
