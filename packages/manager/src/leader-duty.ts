// The one place a manager follows leadership (SwarmKit's manager does the same on its leadership
// channel): its leader-only components (the membership reconciler, the dispatcher's sessions and
// liveness checks, the orchestrator's passes, the CA key migration) are begun together once this
// manager leads *and* has applied an entry of its own term (its read barrier: the local store then
// holds everything earlier leaders committed), ended together when it stops leading or the manager
// stops, and never begun again after that. Begun any earlier, a new leader would act on a store
// that lacks the last committed entries (tasks already created and running) and undo them.
// The components themselves know nothing of Raft's leadership: a test begins and ends them directly.

import type { RaftNode } from '@shoal/raft';

/** Work only the leader does. */
export interface LeaderComponent {
  /** This manager leads, with a store as current as any earlier leader's. */
  begin(): void;
  /** It no longer does (or the manager stops): stop acting, drop the leadership's memory. */
  end(): void;
}

/** What LeaderDuty needs of Raft: leadership changes and whether this node leads past its barrier. */
export type LeadershipSource = Pick<RaftNode, 'on' | 'off' | 'isLeaderReady'>;

export class LeaderDuty {
  private active = false;
  private stopped = false;
  private readonly components: LeaderComponent[] = [];
  private readonly onChange = (): void => this.sync();

  constructor(
    private readonly raft: LeadershipSource,
    components: LeaderComponent[] = [],
  ) {
    this.components.push(...components);
    raft.on('leader', this.onChange);
    raft.on('leader-ready', this.onChange);
  }

  /** Whether the components are on (this manager leads past its read barrier, and has not stopped). */
  get leading(): boolean {
    return this.active;
  }

  /** One more component (begun at once if the duty is on): for one that may only start later. */
  add(c: LeaderComponent): void {
    if (this.components.includes(c) || this.stopped) return;
    this.components.push(c);
    if (this.active) c.begin();
  }

  /** Looks at the current leadership now (the owner calls it once everything is built). */
  sync(): void {
    const leading = this.raft.isLeaderReady() && !this.stopped;
    if (leading && !this.active) {
      this.active = true;
      for (const c of this.components) c.begin();
    } else if (!leading && this.active) {
      this.active = false;
      // In reverse: a component begun later may rely on one begun before it.
      for (const c of [...this.components].reverse()) c.end();
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
