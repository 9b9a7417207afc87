// Many hollow nodes in one process: joined a few at a time (each join makes a key pair and asks
// the CA to sign it, as a real host would), then summed up for whoever watches them.

import { type Logger, ShoalError, retryWithBackoff } from '@shoal/api';
import { HollowNode, type HollowNodeState } from './hollow-node.js';

export interface FleetOptions {
  joinAddr: string;
  token: string;
  /** How many nodes. */
  count: number;
  /** Host names are PREFIX-1 .. PREFIX-count. */
  prefix: string;
  /** Joins in flight at once (default 4). */
  concurrency?: number;
  stepMs?: number;
  logger?: Logger;
}

/** What a fleet's nodes are doing, summed. */
export interface FleetState {
  nodes: number;
  /** Nodes by the manager holding their session ('' : none). */
  sessions: Record<string, number>;
  created: number;
  started: number;
  stopped: number;
  removed: number;
  containers: number;
  running: number;
}

export class HollowFleet {
  readonly nodes: HollowNode[] = [];
  /** Joins that failed, with why. */
  readonly failures: string[] = [];

  constructor(private readonly opts: FleetOptions) {}

  /** Joins every node; resolves once all have joined or failed to. */
  async join(): Promise<void> {
    let next = 1;
    const worker = async () => {
      while (next <= this.opts.count) {
        const i = next++;
        const hostname = `${this.opts.prefix}-${i}`;
        try {
          // Hundreds of hosts booting at once overload the managers for a while; a provisioning
          // script would run a failed join again, and so does the fleet (only when it may work).
          await retryWithBackoff(
            async () => {
              this.nodes.push(await HollowNode.join({ joinAddr: this.opts.joinAddr, token: this.opts.token, hostname, addr: `127.0.0.1:${20_000 + i}`, stepMs: this.opts.stepMs, logger: this.opts.logger }));
            },
            { attempts: 6, initialMs: 500, maxMs: 5_000, while: () => true, retryable: (err) => ['UNAVAILABLE', 'DEADLINE_EXCEEDED'].includes(ShoalError.from(err).code) },
          );
        } catch (err) {
          this.failures.push(`${hostname}: ${(err as Error).message}`);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.max(1, this.opts.concurrency ?? 4) }, worker));
  }

  state(): FleetState {
    const s: FleetState = { nodes: this.nodes.length, sessions: {}, created: 0, started: 0, stopped: 0, removed: 0, containers: 0, running: 0 };
    for (const n of this.nodes) {
      const ns: HollowNodeState = n.state();
      s.sessions[ns.session] = (s.sessions[ns.session] ?? 0) + 1;
      s.created += ns.created;
      s.started += ns.started;
      s.stopped += ns.stopped;
      s.removed += ns.removed;
      s.containers += ns.containers;
      s.running += ns.running;
    }
    return s;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
