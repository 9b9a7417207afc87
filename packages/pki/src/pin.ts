// Joining without trusting on first use: the token names the digest of the cluster's root CA, so
// the joining node fetches the manager's certificate chain over a bare TLS handshake, finds the
// root whose digest the token names, and checks that the manager's certificate was signed by it.
// Only then does it send its token (a secret) over a connection pinned to that root.

import { X509Certificate } from 'node:crypto';
import * as tls from 'node:tls';
import { ShoalError } from '@shoal/api';
import { fingerprintOfDer } from './ca.js';
import { MANAGER_SERVER_NAME } from './names.js';

function hostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[(.*)\]$/, '$1');
  return { host, port: Number(addr.slice(i + 1)) };
}

/** The PEM of the root CA `fingerprint` names, as presented by the manager at `addr`. */
export function fetchPinnedCA(addr: string, fingerprint: string, timeoutMs = 10_000): Promise<string> {
  const { host, port } = hostPort(addr);
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ host, port, servername: MANAGER_SERVER_NAME, rejectUnauthorized: false, ALPNProtocols: ['h2'] });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new ShoalError('UNAVAILABLE', `cannot join through ${addr}: no TLS answer within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.once('error', (err) => {
      clearTimeout(timer);
      reject(new ShoalError('UNAVAILABLE', `cannot join through ${addr}: ${err.message}`));
    });
    sock.once('secureConnect', () => {
      clearTimeout(timer);
      const chain: Buffer[] = [];
      const seen = new Set<Buffer>();
      for (let c = sock.getPeerCertificate(true); c && c.raw && !seen.has(c.raw); c = c.issuerCertificate) {
        seen.add(c.raw);
        chain.push(c.raw);
      }
      sock.destroy();
      const leaf = chain[0];
      const root = chain.find((der) => fingerprintOfDer(der) === fingerprint);
      if (!leaf || !root) {
        reject(new ShoalError('PERMISSION_DENIED', `the manager at ${addr} does not belong to the cluster this token is for (no certificate with the token's CA digest)`));
        return;
      }
      try {
        const l = new X509Certificate(leaf);
        const r = new X509Certificate(root);
        if (!l.checkIssued(r) || !l.verify(r.publicKey) || !r.verify(r.publicKey)) throw new Error('bad signature');
        if (Date.parse(l.validTo) < Date.now()) throw new Error('its certificate expired');
        resolve(r.toString());
      } catch (err) {
        reject(new ShoalError('PERMISSION_DENIED', `the manager at ${addr} presents a certificate not signed by the cluster's CA (${(err as Error).message})`));
      }
    });
  });
}
