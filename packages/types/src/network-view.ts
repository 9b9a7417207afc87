// The overlay networks' view the dispatcher sends every node (proto/dispatcher.proto NetworkView),
// as the manager builds it and the agent reads it: one set of types for both.

import type { WireMessage } from './from-wire.js';
import type { IngressNode__Output } from './gen/shoal/dispatcher/IngressNode.js';
import type { NetworkEndpoint__Output } from './gen/shoal/dispatcher/NetworkEndpoint.js';
import type { NetworkService__Output } from './gen/shoal/dispatcher/NetworkService.js';
import type { NetworkViewResponse__Output } from './gen/shoal/dispatcher/NetworkViewResponse.js';
import type { OverlayNetwork__Output } from './gen/shoal/dispatcher/OverlayNetwork.js';

/** A network's allocation, as nodes need it. */
export type OverlayNetworkInfo = WireMessage<OverlayNetwork__Output>;
/** A service on its networks: names and virtual IPs. */
export type NetworkService = WireMessage<NetworkService__Output>;
/** A running task's addresses and the underlay address of its node. */
export type NetworkEndpoint = WireMessage<NetworkEndpoint__Output>;
/** A node's address on the ingress network (where other nodes send it published ports' connections). */
export type IngressNode = WireMessage<IngressNode__Output>;
/** One diff page of the view. */
export type NetworkViewPage = WireMessage<NetworkViewResponse__Output>;

/** The whole view, as a node's feed assembles it from the pages. */
export interface NetworkView {
  readonly token: string;
  readonly networks: readonly OverlayNetworkInfo[];
  readonly services: readonly NetworkService[];
  readonly endpoints: readonly NetworkEndpoint[];
  readonly ingressNodes: readonly IngressNode[];
}
