// Who is on the other end of a call: the identity in its TLS client certificate, once TLS has
// verified the chain against this cluster's CA and the validity dates (grpc-js exposes the
// certificate only for an authorized connection: no certificate, an expired one or one from
// another CA all leave the caller anonymous).

import { X509Certificate } from 'node:crypto';
import type { PeerCertificate } from 'node:tls';
import { type PeerIdentity, roleOfOU } from './names.js';

interface AuthContextLike {
  sslPeerCertificate?: PeerCertificate;
}
export interface CallWithAuth {
  getAuthContext?(): AuthContextLike | null;
}

const first = (v: string | string[] | undefined): string | undefined => (Array.isArray(v) ? v[0] : v);

export function identityOfPeerCert(cert: PeerCertificate | undefined): PeerIdentity | null {
  if (!cert?.subject) return null;
  const role = roleOfOU(first(cert.subject.OU));
  const nodeId = first(cert.subject.CN);
  const clusterId = first(cert.subject.O);
  if (!role || !nodeId || !clusterId) return null;
  return { nodeId, role, clusterId, notAfter: Date.parse(cert.valid_to) };
}

/**
 * The HTTP/2 session a grpc-js server call arrived on (grpc-js internals: the call wraps an
 * intercepting call that holds the stream), or undefined where the shape differs.
 */
function sessionOf(call: CallWithAuth): object | undefined {
  let c = (call as { call?: unknown }).call as { stream?: { session?: object }; nextCall?: unknown } | undefined;
  for (let i = 0; c && !c.stream && i < 8; i++) c = c.nextCall as typeof c;
  return c?.stream?.session ?? undefined;
}

export function peerIdentity(call: CallWithAuth): PeerIdentity | null {
  return identityOfPeerCert(call.getAuthContext?.()?.sslPeerCertificate);
}

/**
 * peerIdentity(), read once per connection. getPeerCertificate() rebuilds the whole certificate
 * as a JS object, three digests included, on every call: ~12% of a manager's CPU under load;
 * a connection's peer certificate cannot change.
 */
export class PeerIdentityCache {
  private readonly bySession = new WeakMap<object, PeerIdentity | null>();

  get(call: CallWithAuth): PeerIdentity | null {
    const session = sessionOf(call);
    if (!session) return peerIdentity(call);
    let id = this.bySession.get(session);
    if (id === undefined) {
      id = peerIdentity(call);
      this.bySession.set(session, id);
    }
    return id;
  }
}

/** The identity a PEM certificate names (our own, read from disk). */
export function identityOfPem(certPem: string): (PeerIdentity & { notBefore: number }) | null {
  let c: X509Certificate;
  try {
    c = new X509Certificate(certPem);
  } catch {
    return null;
  }
  const fields = new Map<string, string>();
  for (const line of c.subject.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0 && !fields.has(line.slice(0, i))) fields.set(line.slice(0, i), line.slice(i + 1));
  }
  const role = roleOfOU(fields.get('OU'));
  const nodeId = fields.get('CN');
  const clusterId = fields.get('O');
  if (!role || !nodeId || !clusterId) return null;
  return { nodeId, role, clusterId, notAfter: Date.parse(c.validTo), notBefore: Date.parse(c.validFrom) };
}
