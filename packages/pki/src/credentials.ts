// gRPC credentials built from a node's TLS material.
//
// Servers (a manager's TCP port) ask every client for a certificate but accept a connection
// without one: a joining node has no certificate yet and calls only CA.Join, proving itself with
// its token. Every other call is authorized from the verified certificate (see peer.ts), so an
// anonymous or foreign client reaches nothing else. Clients pin the cluster's root CA and ask
// for the `shoal-manager` name, which only manager certificates carry.

import * as grpc from '@grpc/grpc-js';
import type { ChannelSecurity } from '@shoal/api';
import { MANAGER_SERVER_NAME } from './names.js';

export interface TlsMaterial {
  caPem: string;
  certPem: string;
  keyPem: string;
}

function contextOf(m: TlsMaterial) {
  // The root goes with the chain: a joining node compares it with its token's digest (pin.ts).
  return { ca: [m.caPem], cert: `${m.certPem.trim()}\n${m.caPem.trim()}\n`, key: m.keyPem };
}

/** Server credentials whose certificate can be replaced while the server runs (renewal). */
export class NodeServerCredentials extends grpc.ServerCredentials {
  constructor(material: TlsMaterial) {
    // rejectUnauthorized false: a client without a valid certificate still completes the
    // handshake (to join); the handlers decide what an anonymous caller may do.
    super({ requestCert: true, rejectUnauthorized: false, minVersion: 'TLSv1.2' }, contextOf(material));
  }

  /** New connections use the new certificate; open ones keep theirs. */
  update(material: TlsMaterial): void {
    this.updateSecureContextOptions(contextOf(material));
  }

  _equals(other: grpc.ServerCredentials): boolean {
    return other === this;
  }
}

/**
 * How to reach a manager: TLS pinned to the cluster's CA, asking for the manager name, with this
 * node's (or admin's) certificate if it has one.
 */
export function managerChannel(m: { caPem: string; certPem?: string; keyPem?: string }): ChannelSecurity {
  const credentials = grpc.credentials.createSsl(
    Buffer.from(m.caPem),
    m.keyPem ? Buffer.from(m.keyPem) : null,
    m.certPem ? Buffer.from(m.certPem) : null,
  );
  return { credentials, options: { 'grpc.ssl_target_name_override': MANAGER_SERVER_NAME, 'grpc.default_authority': MANAGER_SERVER_NAME } };
}
