// The routing mesh's table and options: what the daemon feeds a node's Mesh.

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

/** One published TCP port (ingress mode) and the running tasks that serve it. */
export interface PublishedPort {
  /** The published port: the mesh listens on `bindHost:port` on every node. */
  port: number;
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

/** pino-style logger: `(object, message)`. */
export interface MeshLogger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

export interface MeshOptions {
  /** The node's own IP: published ports listen on `bindHost:port` (`0.0.0.0` for all). */
  bindHost: string;
  /** This node's node-to-node forwarding listener port; 0 (default) = ephemeral, see `Mesh.forwardPort`. */
  forwardPort?: number;
  /** Where the forwarding listener binds; defaults to `bindHost`. */
  forwardHost?: string;
  logger?: MeshLogger;
  /**
   * A published port could not be bound (`err`, e.g. EADDRINUSE; the mesh keeps retrying every
   * `bindRetryMs`), or is fine again (`null`: bound, or no longer wanted after an error).
   * `err` is reported on the first failure and whenever its code changes, not on every retry.
   */
  onPortError?: (port: number, err: Error | null) => void;
  /** A backend (or the remote node) that does not answer within this is a failed connect. Default 1000. */
  connectTimeoutMs?: number;
  /**
   * The connect timeout for the last backend left to try (and the forwarder's, for its local
   * task): long enough for the kernel's SYN retry after a full accept queue. Default 5000 ms.
   */
  lastConnectTimeoutMs?: number;
  /** How long a backend whose connect failed is passed over while others are available. Default 2000. */
  failBackoffMs?: number;
  /** Retry period for a port that could not be bound. Default 2000. */
  bindRetryMs?: number;
  /** The forwarding listener drops a connection whose header is not complete within this. Default 2000. */
  forwardHeaderTimeoutMs?: number;
  /** TCP keepalive initial delay on every proxied socket. Default 30000. */
  keepAliveDelayMs?: number;
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
  backendStats: BackendStats[];
}

export interface ForwarderStats {
  /** The bound forwarding port (0 before `start()`). */
  port: number;
  /** Forwarded connections open now. */
  activeConnections: number;
  /** Forwarded connections accepted (header valid, local backend connected). */
  totalConnections: number;
  /** Inbound connections rejected: bad or late header, or a target that is not a local backend. */
  rejected: number;
  /** Valid requests whose local connect failed (the sending node retries elsewhere). */
  failedConnects: number;
}

export interface MeshStats {
  ports: PortStats[];
  forwarder: ForwarderStats;
}
