// The cluster CA's private key as a manager uses it. The cluster object holds it sealed with the
// cluster's key-encryption key (@shoal/pki kek.ts); this manager's copy of that key lives in
// DATA_DIR/certificates/kek.json, never in Raft, and the CA key is unsealed only to sign.

import { ShoalError, type SealedSecret } from '@shoal/api';
import { type KeyEncryptionKey, certPaths, readKek, sealContext } from '@shoal/pki';
import type { ClusterStore } from '@shoal/store';

export class CAKeys {
  private kek: KeyEncryptionKey | undefined;

  constructor(
    private readonly store: ClusterStore,
    private readonly dataDir: string,
  ) {
    this.reload();
  }

  /** Reads the key-encryption key again (a renewal as a manager may have brought it). */
  reload(): void {
    this.kek = readKek(this.dataDir);
  }

  private key(): KeyEncryptionKey {
    if (!this.kek) {
      throw new ShoalError(
        'FAILED_PRECONDITION',
        `this manager holds no key-encryption key (${certPaths(this.dataDir).kek}), so it cannot use the cluster's CA: restart it to have its certificate renewed by another manager`,
      );
    }
    return this.kek;
  }

  /** The CA key in its stored form, for a new cluster object (shoald init). */
  seal(clusterId: string, keyPem: string): SealedSecret {
    return this.key().seal(keyPem, sealContext.caKey(clusterId));
  }

  /** The CA's certificate and key, to sign with. */
  material(): { certPem: string; keyPem: string } {
    const c = this.store.cluster();
    if (!c) throw new ShoalError('UNAVAILABLE', 'the cluster is not initialized yet');
    if (!c.caKey) throw new ShoalError('FAILED_PRECONDITION', 'this cluster has no CA key in its store: it cannot issue certificates');
    return { certPem: c.caCert, keyPem: this.key().open(c.caKey, sealContext.caKey(c.id)) };
  }

  /** The key-encryption key, serialized, for a node that becomes a manager (and only for one). */
  forNewManager(): string {
    return this.key().serialize();
  }
}
