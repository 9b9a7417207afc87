// Work that only the Raft leader does (the dispatcher's sessions and liveness checks, the
// orchestrator's passes): begun once this manager leads *and* has applied an entry of its own term
// (its read barrier: the local store then holds everything earlier leaders committed), ended when
// it stops leading or the owner stops, and never begun again after that. Begun any earlier, a new
// leader would act on a store that lacks the last committed entries (tasks already created and
// running) and undo them.

import type { RaftNode } from '@shoal/raft';

export interface LeaderHooks {
  /** This manager leads, with a store as current as any earlier leader's. */
  begin(): void;
  /** It no longer is (or the owner stopped). */
  end(): void;
}

export class LeaderDuty {
  private active = false;
  private stopped = false;
  private readonly onChange = (): void => this.sync();

  constructor(
    private readonly raft: RaftNode,
    private readonly hooks: LeaderHooks,
  ) {
    raft.on('leader', this.onChange);
    raft.on('leader-ready', this.onChange);
  }

  /** Whether the duty is on (this manager leads past its read barrier, and the owner has not stopped). */
  get leading(): boolean {
    return this.active;
  }

  /** Looks at the current leadership now (owners call it once they are fully built). */
  sync(): void {
    const leading = this.raft.isLeaderReady() && !this.stopped;
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
    this.raft.off('leader', this.onChange);
    this.raft.off('leader-ready', this.onChange);
    this.sync();
  }
}
