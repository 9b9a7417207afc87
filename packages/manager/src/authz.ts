// Who may call what on a manager's TCP port. TLS has already checked the caller's certificate
// against the cluster CA and its dates; here the certificate's identity meets the cluster's
// current state: a removed node is refused although its certificate is still in date, a worker
// acts only for itself, only managers that are Raft members speak Raft, and only an admin (or a
// manager passing a call on to the leader) uses the control API.

import { ShoalError } from '@shoal/api';
import { type CallWithAuth, type PeerIdentity, PeerIdentityCache } from '@shoal/pki';
import type { RaftNode } from '@shoal/raft';
import type { ClusterStore } from '@shoal/store';

const NO_CERT =
  'this call needs a certificate of this cluster: none was presented, or it is expired or not issued by this cluster\'s CA';

export class Authz {
  private readonly peers = new PeerIdentityCache();

  constructor(
    private readonly store: ClusterStore,
    private readonly raft: RaftNode,
  ) {}

  /** The caller's verified identity, if it is still welcome in this cluster. */
  identify(call: CallWithAuth): PeerIdentity {
    const id = this.peers.get(call);
    if (!id) throw new ShoalError('UNAUTHENTICATED', NO_CERT);
    // TLS checked the dates at the handshake; a connection may outlive its certificate.
    if (id.notAfter < Date.now()) {
      throw new ShoalError('UNAUTHENTICATED', `the certificate of ${id.nodeId} expired at ${new Date(id.notAfter).toISOString()}: reconnect with a renewed one`);
    }
    const cluster = this.store.cluster();
    if (cluster && id.clusterId !== cluster.id) {
      throw new ShoalError('UNAUTHENTICATED', `the certificate is for cluster ${id.clusterId}, not this one (${cluster.id})`);
    }
    if (cluster?.removedNodes.includes(id.nodeId)) {
      throw new ShoalError('UNAUTHENTICATED', `node ${id.nodeId} was removed from the cluster: its certificate is no longer accepted`);
    }
    return id;
  }

  /** A node's agent (dispatcher, certificate renewal): a node certificate, acting for itself. */
  node(call: CallWithAuth, req?: { nodeId?: unknown }): PeerIdentity {
    const id = this.identify(call);
    if (id.role !== 'worker' && id.role !== 'manager') {
      throw new ShoalError('PERMISSION_DENIED', `a ${id.role} certificate is not a node's: only nodes talk to the dispatcher and the CA`);
    }
    if (req && req.nodeId !== id.nodeId) {
      throw new ShoalError('PERMISSION_DENIED', `node ${id.nodeId} may act only for itself, not for node ${String(req.nodeId || '(empty)')}`);
    }
    return id;
  }

  /** The control API over TCP: admins, and managers passing a call on to the leader. */
  admin(call: CallWithAuth): PeerIdentity {
    const id = this.identify(call);
    if (id.role !== 'admin' && id.role !== 'manager') {
      throw new ShoalError('PERMISSION_DENIED', `the control API needs an admin certificate; a ${id.role} certificate may not use it`);
    }
    // A demoted manager keeps its manager certificate until it renews: the store has the last word.
    if (id.role === 'manager' && this.store.get('node', id.nodeId)?.spec.role !== 'manager') {
      throw new ShoalError('PERMISSION_DENIED', `node ${id.nodeId} is not (or no longer) a manager of this cluster`);
    }
    return id;
  }

  /** Raft: managers that are members of the configuration (any manager before this one knows it). */
  raftPeer(call: CallWithAuth): string {
    const id = this.identify(call);
    if (id.role !== 'manager') throw new ShoalError('PERMISSION_DENIED', `Raft is for managers, not ${id.role} certificates`);
    const conf = this.raft.status().conf;
    // A manager that has just joined knows no configuration until the leader's first entries
    // reach it: it accepts any manager of the cluster until then.
    if (conf.voters.length > 0 && ![...conf.voters, ...conf.learners].some((m) => m.id === id.nodeId)) {
      throw new ShoalError('PERMISSION_DENIED', `node ${id.nodeId} is not a Raft member of this cluster`);
    }
    return id.nodeId;
  }
}
