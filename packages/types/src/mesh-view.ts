// The routing mesh's view (proto/dispatcher.proto MeshViewResponse), as the manager keys its
// entries and the agent reads them back: one rule for both sides.

/**
 * A published ingress port's key in the mesh view: `p:PORT` for TCP (what every release wrote),
 * `p:PORT/udp` for UDP (a port number may be published once per protocol).
 */
export function meshPortKey(port: number, protocol: string): string {
  return protocol === 'udp' ? `p:${port}/udp` : `p:${port}`;
}
