// The desired state of one overlay network on one node, as the agent hands it to this module.

export interface OverlayNetwork {
  readonly id: string;
  /** VXLAN network identifier, unique in the cluster (1..16777215). */
  readonly vni: number;
  /** IPv4 CIDR of the network's addresses. */
  readonly subnet: string;
  /**
   * An address of the subnet that the network's bridge carries on every node (the same on each):
   * the tasks' DNS server (the node's DNS listens there). ARP for it is answered by the task's own
   * node's bridge only. Absent: the bridges carry no IPv4 address. The way out of a non-internal
   * network is still to come.
   */
  readonly gateway?: string;
  /**
   * The bridge's MAC, when other nodes must know it: on the ingress network each node's bridge
   * carries the node's own address, reached from the others as an endpoint (MAC macOfIp of it).
   * Absent: a random one, fixed when the bridge is made.
   */
  readonly bridgeMac?: string;
  /** MTU of the underlay; the overlay's devices get 50 bytes less (VXLAN's encapsulation). */
  readonly mtu: number;
  readonly internal: boolean;
}

/** Another node's VTEP. */
export interface RemotePeer {
  readonly underlay: string;
}

/** An endpoint (a task's address on the network) on another node. */
export interface RemoteEndpoint {
  readonly ip: string;
  /** Derived from the IP when absent (macOfIp). */
  readonly mac?: string;
  /** Underlay address of the node it lives on. */
  readonly peer: string;
}

/** An endpoint on this node: a network namespace joined to the network's bridge. */
export interface LocalEndpoint {
  readonly id: string;
  readonly ip: string;
  readonly mac?: string;
  /** Named network namespace (ip netns) the endpoint's interface goes into. */
  readonly netns: string;
  /** Interface name inside the namespace. */
  readonly ifname: string;
}

/** Bytes VXLAN adds to every frame (outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8). */
export const VXLAN_OVERHEAD = 50;
/** IANA's VXLAN port (the kernel's default is Linux's historical 8472). */
export const VXLAN_PORT = 4789;
