// The routing mesh's table and options: what the daemon feeds a node's Mesh.

import type { Logger } from '@shoal/api';

/** One running task that can serve a published port. */
export interface Backend {
  taskId: string;
  /** The node that runs the task. */
  nodeId: string;
  /** True when the task runs on THIS node: the mesh connects to `addr` directly. */
  local: boolean;
  /**
   * `IP:targetPort` (or `[IPv6]:targetPort`) of the task's container. Required for a local
   * backend; informational for a remote one (the remote node resolves the task itself).
   */
  addr?: string;
  /**
   * For a remote task: `HOST:PORT` of the forwarding listener of the node that runs it.
   * Required for a remote backend; ignored for a local one.
   */
  via?: string;
  /** The container port the published port maps to. */
  targetPort: number;
}

/** One published port (ingress mode) and the running tasks that serve it. */
export interface PublishedPort {
  /** The published port: the mesh listens on `bindHost:port` on every node. */
  port: number;
  /**
   * Default tcp. A UDP port is relayed by the userland proxy to this node's local backends only
   * (a socket per client, as docker-proxy), or served by the kernel routes (KernelRoutes).
   */
  protocol?: 'tcp' | 'udp';
  serviceId: string;
  serviceName: string;
  /** Send a PROXY protocol v2 header (the client's real address) to the backend first. */
  proxyProtocol: boolean;
  /** Running tasks only. Empty: the port refuses connections (its listener is closed). */
  backends: Backend[];
  /**
   * Kernel mode (see `KernelRoutes`): the kernel already DNATs this node's share of the port's
   * connections straight to its local backends, so the connections that still reach the
   * listener are the remote backends' share. They go to remote backends first; local ones are
   * tried only when no remote one can be reached (a retry). Default false.
   */
  localInKernel?: boolean;
}

/** A node's whole routing table. `Mesh.update` diffs it against the previous one. */
export interface MeshTable {
  ports: PublishedPort[];
}

/**
 * Mutual TLS on node-to-node forwarding: every node's certificate is signed by the cluster's root
 * CA and carries `subjectAltName=DNS:shoal-node` (not the node's addresses, which change).
 */
export interface MeshTls {
  /** PEM of the cluster's root CA: the only issuer accepted for peers. */
  ca: string | Buffer;
  /** This node's certificate (PEM), presented both as forwarding server and as client. */
  cert: string | Buffer;
  /** Its private key (PEM). */
  key: string | Buffer;
  /**
   * Extra check of an authenticated peer (called after the chain is verified against `ca`):
   * return null to accept, or a reason to refuse (e.g. the node was removed from the cluster).
   * Called for every connection, resumed TLS sessions included; with the h2 transport, when a
   * session starts and again for every stream (forwarded connection) on it, on both sides.
   */
  verifyPeer?: (peer: import('node:tls').PeerCertificate) => string | null;
}

export interface MeshOptions {
  /** The node's own IP: published ports listen on `bindHost:port` (`0.0.0.0` for all). */
  bindHost: string;
  /** This node's node-to-node forwarding listener port; 0 (default) = ephemeral, see `Mesh.forwardPort`. */
  forwardPort?: number;
  /** Where the forwarding listener binds; defaults to `bindHost`. */
  forwardHost?: string;
  logger?: Logger;
  /**
   * A published port could not be bound (`err`, e.g. EADDRINUSE; the mesh keeps retrying every
   * `bindRetryMs`), or is fine again (`null`: bound, or no longer wanted after an error).
   * `err` is reported on the first failure and whenever its code changes, not on every retry.
   * `protocol`: udp for a UDP port (which is also refused while it has no local replica).
   */
  onPortError?: (port: number, err: Error | null, protocol?: 'tcp' | 'udp') => void;
  /** A UDP client silent for this long loses its flow (its socket to the backend). Default 30000. */
  udpIdleMs?: number;
  /** A backend (or the remote node) that does not answer within this is a failed connect. Default 1000. */
  connectTimeoutMs?: number;
  /**
   * The connect timeout for the last backend left to try (and the forwarder's, for its local
   * task): long enough for the kernel's SYN retry after a full accept queue. Default 5000 ms.
   */
  lastConnectTimeoutMs?: number;
  /** How long a backend whose connect failed is passed over while others are available. Default 2000. */
  failBackoffMs?: number;
  /**
   * The same for a remote backend its node does not know (yet): the node's table and ours disagree
   * for a moment when a replacement starts, since each learns of it on its own path; a full
   * failure backoff would keep a new replica out of rotation for seconds. Default 250.
   */
  unknownTaskBackoffMs?: number;
  /** Retry period for a port that could not be bound. Default 2000. */
  bindRetryMs?: number;
  /** The forwarding listener drops a connection whose header is not complete within this. Default 2000. */
  forwardHeaderTimeoutMs?: number;
  /** TCP keepalive initial delay on every proxied socket. Default 30000. */
  keepAliveDelayMs?: number;
  /**
   * Mutual TLS on the forwarding listener and on this node's connections to other nodes'
   * listeners; without it both are plain TCP. Renew with `Mesh.setTls`.
   */
  tls?: MeshTls;
  /**
   * Resume TLS sessions (TLS 1.3 tickets) on connections to other nodes: an abbreviated handshake
   * instead of a full one with certificate signatures. Default true; false is for benchmarks.
   */
  tlsSessionReuse?: boolean;
  /**
   * How this node carries forwarded connections to other nodes. `h2`: one long-lived HTTP/2
   * session per peer node (TLS with ALPN `h2` under `tls`, else h2c), each connection a CONNECT
   * stream, so no TCP or TLS handshake per client connection. `tcp`: one connection (and TLS
   * handshake) per client connection with the `SHOALFWD1` header. Default: `h2` with `tls` (about
   * 3x the connections/s of `tcp` there), `tcp` without (as cheap as `h2` in plain TCP, and what
   * older nodes speak). The listener accepts both whatever this is; an h2 node falls back to
   * `tcp` for a peer that does not speak HTTP/2.
   */
  forwardTransport?: 'h2' | 'tcp';
  /**
   * h2: streams (forwarded connections) per session, announced to peers as
   * SETTINGS_MAX_CONCURRENT_STREAMS and obeyed when opening streams; beyond it (or the peer's own
   * limit), another session to the same peer is opened. Default 1000.
   */
  forwardMaxStreams?: number;
}

export interface BackendStats {
  taskId: string;
  nodeId: string;
  local: boolean;
  /** Open connections through this mesh to the backend (and, for a local one, forwarded to it). */
  active: number;
  /** Successful connections since the backend appeared in the table. */
  total: number;
  /** Failed connects since the backend appeared in the table. */
  failed: number;
  /** Passed over for new connections until its backoff ends. */
  failing: boolean;
}

export interface PortStats {
  port: number;
  serviceId: string;
  serviceName: string;
  proxyProtocol: boolean;
  listening: boolean;
  /** The last bind error while the port is not bound (e.g. `EADDRINUSE`). */
  bindError?: string;
  /** Number of backends in the table. */
  backends: number;
  /** Client connections open now. */
  activeConnections: number;
  /** Client connections accepted since the port appeared. */
  totalConnections: number;
  /** Connect attempts to a backend that failed (each retried elsewhere when possible). */
  failedConnects: number;
  /** Client connections closed at once because no backend could be reached. */
  droppedConnections: number;
  /** Bytes received from clients and sent to them, counted as each connection closes. */
  bytesFromClients: number;
  bytesToClients: number;
  backendStats: BackendStats[];
}

export interface ForwarderStats {
  /** The bound forwarding port (0 before `start()`). */
  port: number;
  /** Forwarded connections open now. */
  activeConnections: number;
  /** Forwarded connections (or h2 streams) accepted (request valid, local backend connected). */
  totalConnections: number;
  /**
   * Inbound connections or h2 streams rejected: TLS handshake failed or peer refused by
   * `verifyPeer`, bad or late header (or bad CONNECT request, or an h2 protocol error), or a
   * target that is not a local backend.
   */
  rejected: number;
  /** Valid requests whose local connect failed (the sending node retries elsewhere). */
  failedConnects: number;
  /** Outgoing TLS connections to other nodes' forwarding listeners that completed their handshake. */
  tlsConnects: number;
  /** Of those, the ones that resumed a TLS session (abbreviated handshake). */
  tlsResumed: number;
  /** h2 transport: sessions to other nodes' forwarding listeners open now (ready or draining). */
  h2SessionsOut: number;
  /** h2 transport: sessions to other nodes established (peer's SETTINGS received) since start. */
  h2SessionsOpened: number;
  /** h2 sessions from other nodes open now on this node's forwarding listener. */
  h2SessionsIn: number;
}

export interface MeshStats {
  ports: PortStats[];
  forwarder: ForwarderStats;
}
