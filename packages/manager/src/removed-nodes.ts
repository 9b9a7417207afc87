// The cluster's list of removed nodes, kept bounded. Every manager refuses a removed node's
// certificate while it is in date (authz.ts), and agents drop its mesh connections; once every
// certificate issued to it has expired, TLS refuses it anyway and its id may go. Without this the
// list (in the cluster object, rewritten whole on each change) grows with every `node rm` forever.

import type { Cluster } from '@shoal/store';

/**
 * Margin for the clocks of the managers that signed the node's certificates and the one that
 * prunes: an id stays this long past the computed expiry.
 */
export const CLOCK_MARGIN_MS = 24 * 3600_000;

/**
 * The longest validity a certificate of this cluster may have now: the current setting, or a
 * longer one in force before it was lowered (its certificates are still out there).
 */
export function longestCertValidityMs(c: Cluster): number {
  return Math.max(c.spec.certExpiryMs, c.longestCertExpiryMs);
}

/**
 * The cluster with `nodeId` removed as of `now`: the id listed until every certificate issued to
 * it can have expired, and the ids whose certificates all have expired dropped.
 */
export function withRemovedNode(c: Cluster, nodeId: string, now: number): Cluster {
  const until = now + longestCertValidityMs(c) + CLOCK_MARGIN_MS;
  const removedNodes: string[] = [];
  const removedNodeExpiry: Record<string, number> = {};
  for (const id of c.removedNodes) {
    // Ids listed before expiries were kept: counted from now, as a new one.
    const at = c.removedNodeExpiry[id] ?? until;
    if (at <= now || id === nodeId) continue;
    removedNodes.push(id);
    removedNodeExpiry[id] = at;
  }
  removedNodes.push(nodeId);
  removedNodeExpiry[nodeId] = until;
  return { ...c, removedNodes, removedNodeExpiry };
}
