// The cluster CA's private key as a manager uses it. The cluster object holds it sealed with the
// cluster's key-encryption key (@shoal/pki kek.ts); this manager's copy of that key lives in
// DATA_DIR/certificates/kek.json, never in Raft, and the CA key is unsealed only to sign. A
// cluster made by a release before sealing holds the key in the clear until its leader seals it
// (ca-key-migration.ts); meanwhile the CA works with the plaintext one.

import { existsSync, rmSync } from 'node:fs';
import { ShoalError, type SealedSecret } from '@shoal/api';
import { KeyEncryptionKey, MANAGER_LOCKED, certPaths, readKekFile, sealContext, writeKek } from '@shoal/pki';
import { type ClusterStore, isLegacyCaKey } from '@shoal/store';

export class CAKeys {
  private kek: KeyEncryptionKey | undefined;

  /** `unlocked`: the key `shoal swarm unlock` opened (kek.json is wrapped: autolock). */
  constructor(
    private readonly store: ClusterStore,
    private readonly dataDir: string,
    unlocked?: KeyEncryptionKey,
  ) {
    const f = readKekFile(dataDir);
    if (f.kind === 'wrapped' && unlocked?.id !== f.id) throw new ShoalError('FAILED_PRECONDITION', MANAGER_LOCKED);
    this.kek = unlocked;
    this.reload();
  }

  /**
   * Reads the key-encryption key again (a renewal as a manager may have brought it). A wrapped
   * file (autolock) cannot be read without the unlock key: the key in memory stays.
   */
  reload(): void {
    const f = readKekFile(this.dataDir);
    if (f.kind === 'clear') this.kek = f.kek;
    else if (f.kind === 'absent') this.kek = undefined;
  }

  /** The key this manager holds, if any (autolock re-wraps kek.json with it). */
  current(): KeyEncryptionKey | undefined {
    return this.kek;
  }

  /** The cluster's key-encryption key, as this manager holds it (it seals registry credentials too). */
  key(): KeyEncryptionKey {
    if (!this.kek) {
      throw new ShoalError(
        'FAILED_PRECONDITION',
        `this manager holds no key-encryption key (${certPaths(this.dataDir).kek}), so it cannot use the cluster's CA or sealed values: restart it to have its certificate renewed by another manager`,
      );
    }
    return this.kek;
  }

  /** The CA key in its stored form, for a new cluster object (shoald init). */
  seal(clusterId: string, keyPem: string): SealedSecret {
    return this.key().seal(keyPem, sealContext.caKey(clusterId));
  }

  /**
   * The key-encryption key to seal an old release's plaintext CA key with: this manager's, or a
   * new one, kept durably before anything is sealed with it (a sealed key whose KEK was lost in a
   * crash could never be opened). Should another leader's seal win, this one's is replaced by the
   * cluster's at the next renewal (lacksClusterKek).
   */
  kekForSealing(): KeyEncryptionKey {
    if (!this.kek) {
      const kek = KeyEncryptionKey.generate();
      writeKek(this.dataDir, kek);
      this.kek = kek;
    }
    return this.kek;
  }

  /**
   * Removes the plaintext copy of the CA key an older `shoald init` left in
   * DATA_DIR/certificates/ca.key, once the store holds the key sealed (until then the store's
   * plaintext key is the one in use anyway). True if a file was removed.
   */
  dropPlaintextCopy(): boolean {
    const k = this.store.cluster()?.caKey;
    const file = certPaths(this.dataDir).caKey;
    if (!k || isLegacyCaKey(k) || !existsSync(file)) return false;
    rmSync(file, { force: true });
    return true;
  }

  /** The CA's certificate and key, to sign with. */
  material(): { certPem: string; keyPem: string } {
    const c = this.store.cluster();
    if (!c) throw new ShoalError('UNAVAILABLE', 'the cluster is not initialized yet');
    if (!c.caKey) throw new ShoalError('FAILED_PRECONDITION', 'this cluster has no CA key in its store: it cannot issue certificates');
    if (isLegacyCaKey(c.caKey)) return { certPem: c.caCert, keyPem: c.caKey };
    return { certPem: c.caCert, keyPem: this.key().open(c.caKey, sealContext.caKey(c.id)) };
  }

  /**
   * True when the store's CA key is sealed with a key-encryption key this manager does not hold
   * (an upgraded cluster's leader sealed it, or another leader's seal won): a renewal brings it.
   */
  lacksClusterKek(): boolean {
    const k = this.store.cluster()?.caKey;
    if (!k || isLegacyCaKey(k)) return false;
    return this.kek?.id !== k.kekId;
  }

  /**
   * The key-encryption key, serialized, for a node that becomes a manager (and only for one): the
   * one the store's CA key is sealed with. Before an old release's key is sealed, the one this
   * manager will seal it with, if it has one yet.
   */
  forNewManager(): string {
    const k = this.store.cluster()?.caKey;
    if (k && !isLegacyCaKey(k) && this.kek?.id !== k.kekId) {
      throw new ShoalError('FAILED_PRECONDITION', `this manager does not hold the key-encryption key ${k.kekId} the CA key is sealed with: ask another manager`);
    }
    return this.key().serialize();
  }
}
