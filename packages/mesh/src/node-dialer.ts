// How this node reaches another node's forwarding listener: what a dialled connection offers its
// user, and the plain TCP dialer (under mutual TLS, `NodeTls.connect` dials). Both forwarding
// transports dial through a `DialNode`: the line protocol for each connection, the link pool for
// each HTTP/2 session.

import type net from 'node:net';
import type tls from 'node:tls';
import type { HostPort } from './addr.js';
import { NOOP, connectSocket } from './sockets.js';

/** A connection under way to a node's forwarding listener. */
export interface NodeConnection {
  readonly sock: net.Socket;
  /** Mutual TLS: connected at 'secureConnect' (plain TCP: at 'connect'). */
  readonly secure: boolean;
  /**
   * Once connected: counts the handshake and gives the listener's certificate, or why it is
   * refused (nothing to say in plain TCP).
   */
  accept(): { cert?: tls.PeerCertificate; err?: Error };
  /** The node failed: its remembered TLS session is not offered again. */
  forget(): void;
}

/**
 * Dials the node whose forwarding address is `peer` (`target` parsed). `h2`: for an HTTP/2
 * session (ALPN `h2` under TLS, no half-open socket), else for one line-protocol connection.
 */
export type DialNode = (target: HostPort, peer: string, h2: boolean) => NodeConnection;

/** Plain TCP connections (under mutual TLS, `NodeTls.connect` dials instead). */
export function plainDialer(keepAliveDelayMs: number): DialNode {
  return (target, _peer, h2) => ({
    sock: connectSocket(target, keepAliveDelayMs, !h2),
    secure: false,
    accept: () => ({}),
    forget: NOOP,
  });
}
