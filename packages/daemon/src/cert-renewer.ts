// Keeps the node's certificate fresh: renews it at 50-80% of its life (SwarmKit's rule) through
// any manager, and at once when the cluster gives the node a new role (promotion, demotion).
// A renewal that fails is retried with a backoff; an expired certificate cannot be renewed (the
// node must join again), which is logged plainly. A manager certificate comes with the cluster's
// key-encryption key, kept before the certificate is (a promoted node's manager needs it to use
// the CA); a worker certificate means the node keeps no manager secret.

import { ShoalError, callUnary, retryWithBackoff } from '@shoal/api';
import { KeyEncryptionKey, type NodeIdentity, forgetManagerSecrets, holdsKek, identityOfPem, issuedBy, newKeyAndCsr, writeKek } from '@shoal/pki';
import type { Logger } from '@shoal/api';

/** A certificate a manager issued, not yet installed. */
export interface IssuedCertificate {
  role: string;
  notAfter: number;
  certPem: string;
  keyPem: string;
  kek?: KeyEncryptionKey;
  /** The manager that answered. */
  manager: string;
}

/** setTimeout's ceiling (~24.8 days): longer waits are taken in steps. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export class CertRenewer {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private inflight: Promise<void> | undefined;

  constructor(
    private readonly identity: NodeIdentity,
    /** Manager addresses to ask, best first. */
    private readonly managers: () => string[],
    private readonly log: Logger,
  ) {}

  start(): void {
    this.stopped = false;
    this.schedule(this.identity.renewAt() - Date.now());
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  private schedule(ms: number): void {
    clearTimeout(this.timer);
    if (this.stopped) return;
    const wait = Math.max(0, Math.min(ms, MAX_TIMER_MS));
    this.timer = setTimeout(() => {
      if (wait < ms) this.schedule(ms - wait);
      else void this.renew('scheduled').catch(() => undefined);
    }, wait);
    this.timer.unref();
  }

  /** Renews now (once at a time), retrying until it works or the renewer stops. */
  renew(reason: string): Promise<void> {
    this.inflight ??= this.loop(reason).finally(() => (this.inflight = undefined));
    return this.inflight;
  }

  private async loop(reason: string): Promise<void> {
    await retryWithBackoff(
      async () => {
        await this.once(reason);
        this.schedule(this.identity.renewAt() - Date.now());
      },
      {
        initialMs: 1_000,
        maxMs: 30_000,
        while: () => !this.stopped,
        onError: (err) => {
          const expired = this.identity.identity.notAfter < Date.now();
          this.log.warn(
            { err: ShoalError.from(err).message, reason, expired },
            expired ? 'the node certificate expired and cannot be renewed: join the node again' : 'certificate renewal failed; retrying',
          );
        },
      },
    );
  }

  private async once(reason: string): Promise<void> {
    this.install(await this.fetch(this.managers()), reason);
  }

  /**
   * Asks the managers at `addrs` in turn for a certificate (the first that answers): the store's
   * word on this node's role comes with it. Nothing is written: see install().
   */
  async fetch(addrs: string[]): Promise<IssuedCertificate> {
    const { keyPem, csrPem } = await newKeyAndCsr();
    let last: unknown = new ShoalError('UNAVAILABLE', 'no manager known');
    for (const addr of [...new Set(addrs)]) {
      try {
        const res = await callUnary<{ cert: string; caCert: string; role: string; kek?: string }>(
          'shoal.ca.CA',
          addr,
          'RenewCertificate',
          { csr: csrPem },
          10_000,
          this.identity.managerChannel(),
        );
        const id = identityOfPem(res.cert);
        const mine = this.identity.identity;
        if (!id || id.nodeId !== mine.nodeId || id.clusterId !== mine.clusterId || !issuedBy(res.cert, this.identity.material.caPem)) {
          throw new ShoalError('INTERNAL', `manager ${addr} returned a certificate that is not this node's`);
        }
        let kek: KeyEncryptionKey | undefined;
        if (id.role === 'manager') {
          if (!res.kek) throw new ShoalError('INTERNAL', `manager ${addr} issued a manager certificate without the cluster's key-encryption key`);
          kek = KeyEncryptionKey.parse(res.kek, `the key-encryption key from ${addr}`);
        }
        return { role: id.role, notAfter: id.notAfter, certPem: res.cert, keyPem, kek, manager: addr };
      } catch (err) {
        last = err;
      }
    }
    throw last;
  }

  /** Makes a fetched certificate the node's (with the key-encryption key for a manager; none kept for a worker). */
  install(c: IssuedCertificate, reason: string): void {
    const dataDir = this.identity.dataDir;
    // The same key already held (wrapped, if autolock is on) is left as it is.
    if (c.kek && dataDir && !holdsKek(dataDir, c.kek.id)) writeKek(dataDir, c.kek);
    this.identity.replace({ caPem: this.identity.material.caPem, certPem: c.certPem, keyPem: c.keyPem });
    if (c.role !== 'manager' && dataDir) forgetManagerSecrets(dataDir);
    this.log.info({ reason, role: c.role, notAfter: new Date(c.notAfter).toISOString(), manager: c.manager }, 'node certificate renewed');
  }
}
