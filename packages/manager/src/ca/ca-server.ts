// The CA component of a manager (SwarmKit's ca/ server): certificate renewal for nodes. A node
// presents its current certificate and a CSR for a new key; it gets a certificate for the role the
// cluster has for it now, so a promoted node comes back a manager and a demoted one a worker.
// Joining (a token instead of a certificate) is in membership.ts, which creates the node.
// A manager's certificate comes with the cluster's key-encryption key (ca-keys.ts): a promoted
// node has it before its manager starts, and a manager that lost it gets it back.

import { ShoalError } from '@shoal/api';
import { type CallWithAuth, signCsr } from '@shoal/pki';
import type { ClusterStore, StoreClient } from '@shoal/store';
import type { Authz } from '../authz.js';
import type { CAKeys } from './ca-keys.js';

export interface RenewResponse {
  cert: string;
  caCert: string;
  role: 'manager' | 'worker';
  /** Managers only: the cluster's key-encryption key (serialized). */
  kek: string;
}

export class CAServer {
  constructor(
    private readonly store: ClusterStore,
    private readonly client: StoreClient,
    private readonly authz: Authz,
    private readonly keys: CAKeys,
  ) {}

  async renew(req: { csr?: string }, call: CallWithAuth): Promise<RenewResponse> {
    // Refused before waiting on the read; checked again after it, against the latest removed list.
    this.authz.node(call);
    // The role must be the cluster's latest word (a promotion just committed on the leader).
    await this.client.read({ timeoutMs: 5_000 });
    const id = this.authz.node(call);
    const cluster = this.store.cluster();
    if (!cluster) throw new ShoalError('UNAVAILABLE', 'the cluster is not initialized yet');
    const node = this.store.get('node', id.nodeId);
    if (!node) throw new ShoalError('UNAUTHENTICATED', `node ${id.nodeId} is not part of this cluster`);
    const role = node.spec.role;
    const cert = await signCsr(this.keys.material(), req.csr ?? '', { nodeId: id.nodeId, role, clusterId: cluster.id }, cluster.spec.certExpiryMs);
    return { cert, caCert: cluster.caCert, role, kek: role === 'manager' ? this.keys.forNewManager() : '' };
  }
}
