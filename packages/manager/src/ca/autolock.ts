// Autolock on this manager's disk. The cluster object says whether autolock is on and holds the
// unlock key sealed with the key-encryption key; every unlocked manager follows it: kek.json
// wrapped with the current unlock key while autolock is on (so a rotation re-wraps it, and the old
// key stops opening this manager's file), in the clear once it is off. Run at start, on every
// change of the cluster object (or a snapshot restore) and after a certificate renewal (which
// writes a new key-encryption key in the clear).

import { type Logger } from '@shoal/api';
import { UnlockKey, readKekFile, sealContext, writeKek } from '@shoal/pki';
import type { ClusterStore } from '@shoal/store';
import type { CAKeys } from './ca-keys.js';

export class AutolockKeeper {
  private unwatch: (() => void) | undefined;

  constructor(
    private readonly store: ClusterStore,
    private readonly caKeys: CAKeys,
    private readonly dataDir: string,
    private readonly log: Logger,
  ) {}

  start(): void {
    this.unwatch ??= this.store.watch(() => this.sync(), { kinds: ['cluster'] });
    this.sync();
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
  }

  /** Brings kek.json in line with the cluster's setting; never throws (a failure is logged, retried at the next change). */
  sync(): void {
    try {
      this.apply();
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'could not bring kek.json in line with the cluster\'s autolock setting');
    }
  }

  private apply(): void {
    const c = this.store.cluster();
    const kek = this.caKeys.current();
    // Not caught up yet, or not holding the cluster's key (a renewal brings it, then this runs again).
    if (!c || !kek || (c.unlockKey && c.unlockKey.kekId !== kek.id)) return;
    const file = readKekFile(this.dataDir);
    if (!c.unlockKey) {
      if (file.kind !== 'wrapped') return;
      writeKek(this.dataDir, kek);
      this.log.info({}, 'autolock is off: kek.json holds the key-encryption key in the clear again');
      return;
    }
    const key = UnlockKey.parse(kek.open(c.unlockKey, sealContext.unlockKey(c.id)));
    if (file.kind === 'wrapped' && file.id === kek.id && opens(key, file.file)) return;
    writeKek(this.dataDir, kek, key);
    this.log.info({}, 'autolock: kek.json is wrapped with the cluster\'s current unlock key');
  }
}

function opens(key: UnlockKey, file: Parameters<UnlockKey['unwrap']>[0]): boolean {
  try {
    key.unwrap(file, 'kek.json');
    return true;
  } catch {
    return false;
  }
}
