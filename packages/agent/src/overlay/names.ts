// Names of a network's devices on a node, derived from the desired state alone so that a
// restarted agent finds what it made before (Linux allows 15 characters in a device name).

import { createHash } from 'node:crypto';

/** Prefix shared by every device Shoal makes for overlays; nothing else uses it. */
export const DEVICE_PREFIX = 'sh';

/** The network's bridge: one per network per node; the VNI is unique in the cluster. */
export const bridgeName = (vni: number): string => `${DEVICE_PREFIX}br${vni}`;

/** The network's VXLAN device, attached to its bridge. */
export const vxlanName = (vni: number): string => `${DEVICE_PREFIX}vx${vni}`;

/** Host side of a local endpoint's veth: a digest of the endpoint's id (ids are longer than 15). */
export const hostVethName = (endpointId: string): string =>
  `${DEVICE_PREFIX}ve${createHash('sha256').update(endpointId).digest('hex').slice(0, 10)}`;

/** True for a host-side veth this module made (whatever endpoint it was for). */
export const isHostVeth = (ifname: string): boolean => /^shve[0-9a-f]{10}$/.test(ifname);
