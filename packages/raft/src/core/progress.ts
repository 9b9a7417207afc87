/** How the leader currently replicates to one follower (as in etcd's raft). */
export enum ProgressState {
  /** We don't know where the follower's log matches ours: one App at a time. */
  Probe = 'probe',
  /** The follower matches at `match`: stream entries optimistically, bounded by the window. */
  Replicate = 'replicate',
  /** The follower needs a snapshot; nothing else is sent until it lands or fails. */
  Snapshot = 'snapshot',
}

export class Progress {
  match = 0;
  next: number;
  state = ProgressState.Probe;
  /** Probe: an App is out and unanswered, so don't send another until a response or heartbeat. */
  probeSent = false;
  pendingSnapshot = 0;
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Last index of each App in flight (Replicate), oldest first. */
  private inflight: number[] = [];

  constructor(next: number, public isLearner: boolean, private readonly maxInflight: number) {
    this.next = next;
  }

  private reset(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflight = [];
  }

  becomeProbe(): void {
    if (this.state === ProgressState.Snapshot) {
      const pending = this.pendingSnapshot;
      this.reset(ProgressState.Probe);
      this.next = Math.max(this.match + 1, pending + 1);
    } else {
      this.reset(ProgressState.Probe);
      this.next = this.match + 1;
    }
  }

  becomeReplicate(): void {
    this.reset(ProgressState.Replicate);
    this.next = this.match + 1;
  }

  becomeSnapshot(index: number): void {
    this.reset(ProgressState.Snapshot);
    this.pendingSnapshot = index;
  }

  /** A successful AppResp for index n. Returns whether it told us anything new. */
  maybeUpdate(n: number): boolean {
    let updated = false;
    if (this.match < n) {
      this.match = n;
      updated = true;
      this.probeSent = false;
    }
    this.next = Math.max(this.next, n + 1);
    return updated;
  }

  /**
   * A rejected App at `rejected`; `hint` is where the follower thinks we may match.
   * Returns false when the rejection is stale (answers an App we already moved past).
   */
  maybeDecrTo(rejected: number, hint: number): boolean {
    if (this.state === ProgressState.Replicate) {
      if (rejected <= this.match) return false;
      this.next = this.match + 1;
      return true;
    }
    if (this.next - 1 !== rejected) return false;
    this.next = Math.max(Math.min(rejected, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** Record an App carrying entries through `last`. */
  sentEntries(last: number, count: number): void {
    if (this.state === ProgressState.Replicate) {
      if (count > 0) {
        this.next = last + 1;
        this.inflight.push(last);
      }
    } else if (this.state === ProgressState.Probe) {
      this.probeSent = true;
    }
  }

  freeInflightUpTo(n: number): void {
    let k = 0;
    while (k < this.inflight.length && this.inflight[k] <= n) k++;
    if (k > 0) this.inflight.splice(0, k);
  }

  inflightFull(): boolean {
    return this.inflight.length >= this.maxInflight;
  }

  isPaused(): boolean {
    switch (this.state) {
      case ProgressState.Probe:
        return this.probeSent;
      case ProgressState.Replicate:
        return this.inflightFull();
      case ProgressState.Snapshot:
        return true;
    }
  }
}
