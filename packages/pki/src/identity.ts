// A node's own TLS identity: its files in DATA_DIR/certificates, the credentials built from them,
// and their replacement when the certificate is renewed (or reissued for a new role).

import { EventEmitter } from 'node:events';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type ChannelSecurity, ShoalError } from '@shoal/api';
import { issuedBy } from './ca.js';
import { NodeServerCredentials, type TlsMaterial, managerChannel } from './credentials.js';
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
    /** Admin client material, laid out like DOCKER_CERT_PATH (shoal --cert-path DIR). */
    adminDir: join(dataDir, 'admin'),
  };
}

/** Writes a file atomically (a crash leaves the old or the new one, never half of either). */
export function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, data, { mode });
  chmodSync(tmp, mode);
  renameSync(tmp, path);
}

export function writeMaterial(dataDir: string, m: TlsMaterial): void {
  const p = certPaths(dataDir);
  mkdirSync(p.dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(p.ca, m.caPem, 0o644);
  writeFileAtomic(p.key, m.keyPem, 0o600);
  writeFileAtomic(p.cert, m.certPem, 0o644);
}

/** Admin credentials for `shoal --cert-path DIR`: ca.pem, cert.pem, key.pem (Docker's names). */
export function writeAdminMaterial(dir: string, m: TlsMaterial): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  writeFileAtomic(join(dir, 'ca.pem'), m.caPem, 0o644);
  writeFileAtomic(join(dir, 'cert.pem'), m.certPem, 0o644);
  writeFileAtomic(join(dir, 'key.pem'), m.keyPem, 0o600);
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
  return m;
}

export function readMaterial(dataDir: string): TlsMaterial {
  const p = certPaths(dataDir);
  const read = (path: string) => {
    if (!existsSync(path)) throw new ShoalError('CORRUPT_DATA', `${path} is missing: this node has no certificate (re-join it)`);
    return readFileSync(path, 'utf8');
  };
  const m = { caPem: read(p.ca), certPem: read(p.cert), keyPem: read(p.key) };
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
