// Seals the CA key of a cluster made by a release before keys were sealed: that release stored
// the key's PEM in the cluster object, in the clear. Whichever manager leads seals it once with
// the cluster's key-encryption key (making one if this cluster has none yet: CAKeys.kekForSealing)
// and writes the sealed form; the other managers, finding the key sealed with a key-encryption key
// they lack, get it with a certificate renewal as a promoted node does (the daemon's watch on
// CAKeys.lacksClusterKek). Until then the CA works with the plaintext key, so an upgrade never
// stops a cluster from issuing certificates.

import { retryWithBackoff } from '@shoal/api';
import { sealContext } from '@shoal/pki';
import type { Logger } from '@shoal/api';
import { type ClusterStore, type StoreClient, isLegacyCaKey, updateOp } from '@shoal/store';
import type { LeaderComponent } from '../leader-duty.js';
import type { CAKeys } from './ca-keys.js';

export class CAKeyMigration implements LeaderComponent {
  private leading = false;
  private readonly unwatch: () => void;
  private running = false;

  constructor(
    private readonly store: ClusterStore,
    private readonly client: StoreClient,
    private readonly keys: CAKeys,
    private readonly log: Logger,
  ) {
    // A new leader may apply the cluster object (or a snapshot) after it took office.
    this.unwatch = store.watch(() => this.onCluster(), { kinds: ['cluster'] });
    this.onCluster();
  }

  begin(): void {
    this.leading = true;
    this.kick();
  }

  end(): void {
    this.leading = false;
  }

  private onCluster(): void {
    // Every manager, leader or not: the sealed key in the store makes an old plaintext file moot.
    if (this.keys.dropPlaintextCopy()) this.log.warn({}, "removed the plaintext copy of the CA key an older release kept in certificates/ca.key: the store holds it sealed");
    this.kick();
  }

  private kick(): void {
    if (this.running || !this.leading) return;
    const c = this.store.cluster();
    if (!c || !isLegacyCaKey(c.caKey)) return;
    this.running = true;
    void this.seal().finally(() => {
      this.running = false;
    });
  }

  /** Retried while this manager leads: a failed seal leaves the plaintext key, which still works. */
  private async seal(): Promise<void> {
    await retryWithBackoff(
      async () => {
        const r = await this.client.update(
          (store) => {
            const c = store.cluster();
            if (!c || !isLegacyCaKey(c.caKey)) return [];
            const caKey = this.keys.kekForSealing().seal(c.caKey, sealContext.caKey(c.id));
            return [updateOp('cluster', { ...c, caKey, updatedAt: Date.now() })];
          },
          // This leader's decision, with its own key-encryption key: never passed to another leader.
          { retries: 5, timeoutMs: 5_000, leaderOnly: true },
        );
        if (r.ids.length > 0) this.log.warn({ cluster: r.ids[0] }, "sealed the cluster's CA key, stored in the clear by an older release, with the key-encryption key");
      },
      {
        initialMs: 500,
        maxMs: 10_000,
        while: () => this.leading,
        onError: (err) => this.log.warn({ err: (err as Error).message }, "could not seal the cluster's CA key yet; retrying"),
      },
    );
  }

  stop(): void {
    this.unwatch();
  }
}
