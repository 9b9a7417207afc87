// A node's own TLS identity: its files in DATA_DIR/certificates, the credentials built from them,
// and their replacement when the certificate is renewed (or reissued for a new role).

import { EventEmitter } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ChannelSecurity, ShoalError } from '@shoal/api';
import { issuedBy } from './ca.js';
import { NodeServerCredentials, type TlsMaterial, managerChannel } from './credentials.js';
import { privateDir, writeFileAtomic } from './files.js';
import { keyMatchesCert, recoverKeyPair, writeKeyPair } from './key-pair.js';
import type { PeerIdentity } from './names.js';
import { identityOfPem } from './peer.js';

export function certPaths(dataDir: string) {
  const dir = join(dataDir, 'certificates');
  return {
    dir,
    ca: join(dir, 'ca.crt'),
    caKey: join(dir, 'ca.key'),
    cert: join(dir, 'node.crt'),
    key: join(dir, 'node.key'),
    /** Managers only: the cluster's key-encryption key (kek.ts). */
    kek: join(dir, 'kek.json'),
    /** Admin client material, laid out like DOCKER_CERT_PATH (shoal --cert-path DIR). */
    adminDir: join(dataDir, 'admin'),
  };
}

/** The CA certificate, then the key and certificate as one pair (key-pair.ts). */
export function writeMaterial(dataDir: string, m: TlsMaterial): void {
  const p = certPaths(dataDir);
  privateDir(p.dir);
  if (!existsSync(p.ca) || readFileSync(p.ca, 'utf8') !== m.caPem) writeFileAtomic(p.ca, m.caPem, 0o644);
  writeKeyPair(p, { keyPem: m.keyPem, certPem: m.certPem });
}

export function readAdminMaterial(dir: string): TlsMaterial {
  const read = (name: string) => {
    const p = join(dir, name);
    try {
      return readFileSync(p, 'utf8');
    } catch {
      throw new ShoalError('INVALID_ARGUMENT', `--cert-path ${dir}: cannot read ${name} (want ca.pem, cert.pem and key.pem, as \`shoald init\` writes in DATA_DIR/admin)`);
    }
  };
  const m = { caPem: read('ca.pem'), certPem: read('cert.pem'), keyPem: read('key.pem') };
  if (!issuedBy(m.certPem, m.caPem)) throw new ShoalError('INVALID_ARGUMENT', `--cert-path ${dir}: cert.pem is not signed by ca.pem`);
  if (!keyMatchesCert(m.keyPem, m.certPem)) throw new ShoalError('INVALID_ARGUMENT', `--cert-path ${dir}: key.pem is not the key of cert.pem`);
  return m;
}

/**
 * The node's material, checked: an interrupted renewal finished or undone, the key matching the
 * certificate, the certificate this CA's and a node's. The directory is made private again.
 */
export function readMaterial(dataDir: string): TlsMaterial {
  const p = certPaths(dataDir);
  if (!existsSync(p.ca)) throw new ShoalError('CORRUPT_DATA', `${p.ca} is missing: this node has no certificate (re-join it)`);
  privateDir(p.dir);
  const m = { caPem: readFileSync(p.ca, 'utf8'), ...recoverKeyPair(p) };
  if (!issuedBy(m.certPem, m.caPem)) throw new ShoalError('CORRUPT_DATA', `${p.cert} is not signed by ${p.ca}`);
  if (!identityOfPem(m.certPem)) throw new ShoalError('CORRUPT_DATA', `${p.cert} is not a Shoal node certificate`);
  return m;
}

/**
 * The node's current certificate and what is built from it. `replace()` writes the new material
 * and tells listeners ('renewed'), so servers switch certificates and client pools open new
 * channels with it; connections already open carry on.
 */
export class NodeIdentity extends EventEmitter {
  private m: TlsMaterial;
  private id: PeerIdentity & { notBefore: number };
  private server?: NodeServerCredentials;
  private channel?: ChannelSecurity;

  constructor(
    readonly dataDir: string | undefined,
    material: TlsMaterial,
  ) {
    super();
    this.m = material;
    this.id = NodeIdentity.parse(material);
  }

  static load(dataDir: string): NodeIdentity {
    return new NodeIdentity(dataDir, readMaterial(dataDir));
  }

  private static parse(m: TlsMaterial): PeerIdentity & { notBefore: number } {
    const id = identityOfPem(m.certPem);
    if (!id) throw new ShoalError('CORRUPT_DATA', 'not a Shoal node certificate');
    return id;
  }

  get material(): TlsMaterial {
    return this.m;
  }
  get identity(): PeerIdentity & { notBefore: number } {
    return this.id;
  }

  serverCredentials(): NodeServerCredentials {
    this.server ??= new NodeServerCredentials(this.m);
    return this.server;
  }

  /** The security to reach managers with; a new object after every renewal. */
  managerChannel(): ChannelSecurity {
    this.channel ??= managerChannel(this.m);
    return this.channel;
  }

  replace(m: TlsMaterial): void {
    const id = NodeIdentity.parse(m);
    if (!issuedBy(m.certPem, m.caPem)) throw new ShoalError('INTERNAL', 'the new certificate is not signed by the cluster CA');
    if (!keyMatchesCert(m.keyPem, m.certPem)) throw new ShoalError('INTERNAL', 'the new certificate is not for the new key');
    if (this.dataDir) writeMaterial(this.dataDir, m);
    this.m = m;
    this.id = id;
    this.channel = undefined;
    this.server?.update(m);
    this.emit('renewed', id);
  }

  /**
   * When to renew: at a random point between 50% and 80% of the certificate's life (SwarmKit's
   * rule), so a cluster's nodes do not all come to the CA at once.
   */
  renewAt(random = Math.random): number {
    const life = this.id.notAfter - this.id.notBefore;
    return this.id.notBefore + life * (0.5 + 0.3 * random());
  }
}
