// Mutual TLS 1.3 on the forwarding hop between nodes: the material in force (replaced as a whole on
// renewal), the forwarding listener's options, the checks of a peer's certificate, and this
// node's TLS connections to other nodes' listeners, resuming the last session with each.
// Published ports and the connections to containers stay plain TCP: they never leave the node.

import { X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import type { HostPort } from './addr.js';
import type { NodeConnection } from './node-dialer.js';
import type { Logger } from '@shoal/api';
import type { MeshTls } from './types.js';

/**
 * The DNS name every node certificate carries: nodes are reached by IP addresses that are not in
 * their certificates (they change, and one certificate serves every address of a node).
 */
export const NODE_SERVER_NAME = 'shoal-node';
const TLS_MIN_VERSION = 'TLSv1.3';
/** Bound on remembered TLS sessions (one per peer forwarding address, so normally the node count). */
const MAX_TLS_SESSIONS = 4096;

/** The TLS material in force; replaced as a whole, so a connection uses one consistent set. */
interface TlsState {
  readonly opts: MeshTls;
  /** Client side: built once per material, not per connection (building one parses the PEMs). */
  readonly client: tls.SecureContext;
}

interface TlsSession {
  readonly session: Buffer;
  /** The peer's certificate from the full handshake the session began with (a resumed connection has none). */
  readonly cert: tls.PeerCertificate;
}

export interface NodeTlsOptions {
  material: MeshTls;
  /** Resume TLS sessions (tickets) on connections to other nodes. */
  sessionReuse: boolean;
  keepAliveDelayMs: number;
  log: Logger;
}

export class NodeTls {
  private state: TlsState;
  /** The last TLS session (ticket) per peer forwarding address, for abbreviated handshakes. */
  private readonly sessions = new Map<string, TlsSession>();
  private readonly sessionReuse: boolean;
  private readonly keepAliveDelayMs: number;
  private readonly log: Logger;
  private closed = false;
  /** Handshakes with other nodes' listeners that completed, and of those the resumed ones. */
  readonly counts = { tlsConnects: 0, tlsResumed: 0 };

  /** Throws on invalid material. */
  constructor(opts: NodeTlsOptions) {
    this.state = { opts: opts.material, client: clientContext(opts.material) };
    this.sessionReuse = opts.sessionReuse;
    this.keepAliveDelayMs = opts.keepAliveDelayMs;
    this.log = opts.log;
  }

  /**
   * New connections use `material` from now on; remembered sessions are dropped, so this node
   * presents its new certificate on its next connection to every peer. Throws, and changes
   * nothing, if the material is invalid.
   */
  replace(material: MeshTls): void {
    const client = clientContext(material);
    this.state = { opts: material, client };
    this.sessions.clear();
  }

  /** The forwarding listener's context options for the material in force. */
  serverOptions(): tls.SecureContextOptions {
    return serverContextOptions(this.state.opts);
  }

  /** A `verifyPeer` is set: the listener must check every peer's certificate. */
  get verifiesPeers(): boolean {
    return this.state.opts.verifyPeer !== undefined;
  }

  /** verifyPeer's verdict: null to accept, else the reason (a throwing verifyPeer refuses). */
  peerRefusal(cert: tls.PeerCertificate): string | null {
    const verify = this.state.opts.verifyPeer;
    if (!verify) return null;
    try {
      return verify(cert);
    } catch (err) {
      this.log.error({ err, peer: cert.subject?.CN }, 'mesh: verifyPeer threw; peer refused');
      return `verifyPeer threw: ${(err as Error)?.message ?? String(err)}`;
    }
  }

  /**
   * A mutual-TLS connection to another node's forwarding listener, offering the peer's last TLS
   * session. Once it is connected, `accept()` counts the handshake and gives the listener's
   * certificate, or why it is refused: a resumed session skips `checkServerIdentity`, so the
   * certificate remembered from the session's full handshake is checked again (verifyPeer may
   * refuse the node now, e.g. removed from the cluster since).
   */
  connect(target: HostPort, peer: string, h2: boolean): NodeConnection {
    const t = this.state;
    const cached = this.sessionReuse ? this.sessions.get(peer) : undefined;
    /** The forwarding server's certificate, from this handshake or from the resumed session's. */
    let peerCert: tls.PeerCertificate | undefined;
    // allowHalfOpen is honoured by tls.connect (it goes to the TLSSocket) but missing from its types.
    const opts: tls.ConnectionOptions & { allowHalfOpen: boolean } = {
      host: target.host,
      port: target.port,
      allowHalfOpen: !h2,
      secureContext: t.client,
      servername: NODE_SERVER_NAME,
      checkServerIdentity: (_host, cert) => {
        const err = this.checkForwardServer(cert);
        // Taken from here: getPeerCertificate() would convert it again, a visible share of a
        // handshake's CPU (OpenSSL 3 decodes the public key each time).
        if (!err) peerCert = cert;
        return err;
      },
    };
    if (cached) opts.session = cached.session;
    // Only for sessions: a line-protocol connection offers no ALPN, as older nodes do.
    if (h2) opts.ALPNProtocols = ['h2'];
    const sock = tls.connect(opts);
    sock.setNoDelay(true);
    sock.setKeepAlive(true, this.keepAliveDelayMs);
    if (this.sessionReuse) {
      sock.on('session', (session: Buffer) => {
        // A session made with replaced material would present this node's old certificate again.
        if (peerCert && this.state === t && !this.closed) this.rememberSession(peer, { session, cert: peerCert });
      });
    }
    return {
      sock,
      secure: true,
      accept: () => {
        this.counts.tlsConnects++;
        if (!sock.isSessionReused()) return { cert: peerCert };
        this.counts.tlsResumed++;
        peerCert = cached?.cert;
        const err = peerCert ? this.checkForwardServer(peerCert) : new Error('resumed an unknown TLS session');
        return err ? { err } : { cert: peerCert };
      },
      forget: () => this.sessions.delete(peer),
    };
  }

  /** No session is remembered from now on. */
  close(): void {
    this.closed = true;
    this.sessions.clear();
  }

  private rememberSession(peer: string, entry: TlsSession): void {
    this.sessions.delete(peer);
    if (this.sessions.size >= MAX_TLS_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!);
    this.sessions.set(peer, entry);
  }

  /** The forwarding server's certificate (its chain already verified against the CA): its name, then verifyPeer. */
  private checkForwardServer(cert: tls.PeerCertificate): Error | undefined {
    const names = (cert.subjectaltname ?? '').split(', ');
    if (!names.includes(`DNS:${NODE_SERVER_NAME}`)) {
      return Object.assign(new Error(`peer certificate is not a node's (no DNS:${NODE_SERVER_NAME})`), { code: 'ERR_TLS_CERT_ALTNAME_INVALID' });
    }
    const reason = this.peerRefusal(cert);
    return reason === null ? undefined : Object.assign(new Error(`peer refused: ${reason}`), { code: 'PEER_REFUSED' });
  }
}

function serverContextOptions(m: MeshTls): tls.SecureContextOptions {
  return { ca: m.ca, cert: m.cert, key: m.key, minVersion: TLS_MIN_VERSION };
}

/** Throws on invalid material (unparsable PEM, a key that does not match the certificate). */
function clientContext(m: MeshTls): tls.SecureContext {
  return tls.createSecureContext(serverContextOptions(m));
}

export function certSubject(pem: string | Buffer): string | undefined {
  try {
    return new X509Certificate(pem).subject.replace(/\n/g, ', ');
  } catch {
    return undefined;
  }
}

export function isTlsError(err: Error): boolean {
  const code = (err as NodeJS.ErrnoException).code;
  return typeof code === 'string' && (code.startsWith('ERR_SSL_') || code.startsWith('ERR_TLS_'));
}
