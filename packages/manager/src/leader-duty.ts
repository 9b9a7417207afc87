// Work that only the Raft leader does (the dispatcher's liveness checks, the orchestrator's
// passes): begun when this manager becomes leader, ended when it stops being one or the owner
// stops, and never begun again after that.

import type { RaftNode } from '@shoal/raft';

export interface LeaderHooks {
  /** This manager just became leader. */
  begin(): void;
  /** It no longer is (or the owner stopped). */
  end(): void;
}

export class LeaderDuty {
  private active = false;
  private stopped = false;
  private readonly onLeader = (): void => this.sync();

  constructor(
    private readonly raft: RaftNode,
    private readonly hooks: LeaderHooks,
  ) {
    raft.on('leader', this.onLeader);
  }

  /** Whether the duty is on (this manager leads, and the owner has not stopped). */
  get leading(): boolean {
    return this.active;
  }

  /** Looks at the current leadership now (owners call it once they are fully built). */
  sync(): void {
    const leading = this.raft.isLeader() && !this.stopped;
    if (leading && !this.active) {
      this.active = true;
      this.hooks.begin();
    } else if (!leading && this.active) {
      this.active = false;
      this.hooks.end();
    }
  }

  /** Ends the duty for good: later leadership changes no longer begin it. */
  stop(): void {
    this.stopped = true;
    this.raft.off('leader', this.onLeader);
    this.sync();
  }
}
