// The joining side of `shoald join`: pins the cluster's root CA by the token's fingerprint, makes
// a key pair here (the private key never leaves), and asks the CA for a certificate with the token.
// The answer is trusted only if its certificate chains to the pinned root and names the node and
// role the answer says. Shared by the daemon and by hollow nodes, which join exactly as real ones.

import { arch as osArch, platform } from 'node:os';
import { ShoalError, callUnary } from '@shoal/api';
import { caFingerprint, issuedBy, newKeyAndCsr } from './ca.js';
import { managerChannel } from './credentials.js';
import type { TlsMaterial } from './credentials.js';
import { parseJoinToken } from './join-token.js';
import { identityOfPem } from './peer.js';
import { fetchPinnedCA } from './pin.js';

export interface JoinRequest {
  /** A manager's address (host:port). */
  joinAddr: string;
  token: string;
  hostname: string;
  /** This node's advertised address (host:port). */
  addr: string;
  availability?: string;
  timeoutMs?: number;
}

export interface Joined {
  nodeId: string;
  clusterId: string;
  role: 'manager' | 'worker';
  material: TlsMaterial;
  /** The managers to reach first. */
  raftMembers: { id: string; addr: string }[];
  /** The cluster's key-encryption key (a manager only; '' for a worker). */
  kek: string;
}

interface JoinAnswer {
  nodeId?: string;
  clusterId?: string;
  role?: string;
  caCert?: string;
  raftMembers?: { id: string; addr: string }[];
  cert?: string;
  kek?: string;
}

export async function joinCluster(req: JoinRequest): Promise<Joined> {
  const timeoutMs = req.timeoutMs ?? 15_000;
  const { fingerprint } = parseJoinToken(req.token);
  // No trust on first use: the manager's chain must lead to the CA the token names before the
  // token (a secret) is sent, over TLS pinned to that CA.
  const caPem = await fetchPinnedCA(req.joinAddr, fingerprint, timeoutMs);
  const { keyPem, csrPem } = await newKeyAndCsr();
  let res: JoinAnswer;
  try {
    res = await callUnary<JoinAnswer>(
      'shoal.ca.CA',
      req.joinAddr,
      'Join',
      { token: req.token, hostname: req.hostname, addr: req.addr, availability: req.availability ?? '', os: platform(), arch: osArch(), csr: csrPem },
      timeoutMs,
      managerChannel({ caPem }),
    );
  } catch (err) {
    const e = ShoalError.from(err);
    if (e.code === 'UNAVAILABLE') throw new ShoalError('UNAVAILABLE', `cannot join through ${req.joinAddr}: ${e.message}`);
    throw e;
  }
  const certPem = res.cert ?? '';
  const issued = identityOfPem(certPem);
  if (!res.caCert || caFingerprint(res.caCert) !== fingerprint || !issuedBy(certPem, caPem) || !res.nodeId || issued?.nodeId !== res.nodeId || issued.role !== res.role || (res.role !== 'manager' && res.role !== 'worker')) {
    throw new ShoalError('PERMISSION_DENIED', `the manager at ${req.joinAddr} answered with a certificate that is not this cluster's`);
  }
  if (res.role === 'manager' && !res.kek) {
    throw new ShoalError('PERMISSION_DENIED', `the manager at ${req.joinAddr} made this node a manager without the cluster's key-encryption key`);
  }
  return {
    nodeId: res.nodeId,
    clusterId: res.clusterId ?? '',
    role: res.role,
    material: { caPem, certPem, keyPem },
    raftMembers: res.raftMembers ?? [],
    kek: res.kek ?? '',
  };
}
