// A manager demoted while it was down never hears of it: Raft's other members dropped it from the
// configuration and no longer talk to it, so its Raft node sees no removal, only silence. While
// this manager finds no leader for a while, this asks the other managers it knows what the store
// says about it (the CA's answer to a renewal carries the node's role), and reports a demotion so
// the daemon ends as a live demotion ends: a worker. A manager the store still calls a manager
// keeps waiting (a quorum loss, a partition), asking again less and less often.

import { performance } from 'node:perf_hooks';
import { Backoff, ShoalError, type Logger } from '@shoal/api';
import type { IssuedCertificate } from './cert-renewer.js';

export interface LeaderlessRoleCheckOptions {
  /** The leader this manager's Raft node knows ('' for none). */
  leader: () => string;
  /** The other managers' addresses this manager knows. */
  peers: () => string[];
  /** Asks those managers for a certificate (CertRenewer.fetch): nothing is installed yet. */
  ask: (addrs: string[]) => Promise<IssuedCertificate>;
  /** The store calls this node something else than a manager: called once, then the check stops. */
  onDemoted: (c: IssuedCertificate) => void;
  log: Logger;
  /** How long without a leader before asking (ms); then the wait between asks doubles up to maxBackoffMs. */
  leaderlessMs?: number;
  maxBackoffMs?: number;
  intervalMs?: number;
  /** A monotonic clock (ms). */
  monotonic?: () => number;
}

/** A few election timeouts: a restart of the whole cluster elects a leader well within it. */
const DEFAULT_LEADERLESS_MS = 5_000;
const DEFAULT_MAX_BACKOFF_MS = 60_000;
const DEFAULT_INTERVAL_MS = 500;

export class LeaderlessRoleCheck {
  private timer: NodeJS.Timeout | undefined;
  private leaderlessSince: number | undefined;
  private nextAskAt = 0;
  private readonly backoff: Backoff;
  private asking = false;
  private stopped = false;
  private readonly leaderlessMs: number;
  private readonly maxBackoffMs: number;
  private readonly intervalMs: number;
  private readonly monotonic: () => number;

  constructor(private readonly opts: LeaderlessRoleCheckOptions) {
    this.leaderlessMs = opts.leaderlessMs ?? DEFAULT_LEADERLESS_MS;
    this.maxBackoffMs = opts.maxBackoffMs ?? DEFAULT_MAX_BACKOFF_MS;
    this.intervalMs = opts.intervalMs ?? DEFAULT_INTERVAL_MS;
    this.monotonic = opts.monotonic ?? (() => performance.now());
    this.backoff = new Backoff(this.leaderlessMs, this.maxBackoffMs);
  }

  start(): void {
    if (this.timer || this.stopped) return;
    this.timer = setInterval(() => void this.tick(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One look (exposed for tests): asks when leaderless long enough and not asked too recently. */
  async tick(): Promise<void> {
    if (this.stopped || this.asking) return;
    const now = this.monotonic();
    if (this.opts.leader()) {
      this.leaderlessSince = undefined;
      this.backoff.reset();
      this.nextAskAt = 0;
      return;
    }
    this.leaderlessSince ??= now;
    if (now - this.leaderlessSince < this.leaderlessMs || now < this.nextAskAt) return;
    const peers = this.opts.peers();
    if (peers.length === 0) return;
    this.asking = true;
    try {
      const c = await this.opts.ask(peers);
      if (this.stopped) return;
      if (c.role !== 'manager') {
        this.stop();
        this.opts.onDemoted(c);
        return;
      }
      this.opts.log.info({ manager: c.manager }, 'no leader found yet; the store still calls this node a manager: waiting');
    } catch (err) {
      this.opts.log.info({ err: ShoalError.from(err).message }, 'no leader found yet, and no other manager could say what this node is: waiting');
    } finally {
      this.asking = false;
    }
    this.nextAskAt = this.monotonic() + this.backoff.next();
  }
}
