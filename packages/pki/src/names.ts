// What a Shoal certificate says about its holder, and the names TLS checks.
//
// A node certificate's subject is O=<cluster id>, OU=<role>, CN=<node id>, as in SwarmKit; its
// subjectAltName carries fixed DNS names instead of addresses (nodes are reached by IP, and an
// address may change while the certificate stays valid): every node certificate names
// `shoal-node`, a manager's also `shoal-manager`, so a client that wants a manager (a worker's
// agent, the CLI, a Raft peer) asks TLS for `shoal-manager` and a worker cannot pose as one.

export type CertRole = 'manager' | 'worker' | 'admin';

export const ROLE_OU: Readonly<Record<CertRole, string>> = {
  manager: 'shoal-manager',
  worker: 'shoal-worker',
  admin: 'shoal-admin',
};

/** The TLS server name every manager certificate carries. */
export const MANAGER_SERVER_NAME = 'shoal-manager';
/** The TLS server name every node certificate carries (the mesh's node-to-node forwarding). */
export const NODE_SERVER_NAME = 'shoal-node';

/** The authenticated holder of a certificate of this cluster's CA. */
export interface PeerIdentity {
  nodeId: string;
  role: CertRole;
  clusterId: string;
  /** ms since the epoch */
  notAfter: number;
}

export function roleOfOU(ou: string | undefined): CertRole | undefined {
  for (const [role, name] of Object.entries(ROLE_OU)) if (name === ou) return role as CertRole;
  return undefined;
}
