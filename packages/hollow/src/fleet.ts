// Many hollow nodes in one process: joined a few at a time (each join makes a key pair and asks
// the CA to sign it, as a real host would), then summed up for whoever watches them.

import { type Logger, ShoalError, retryWithBackoff } from '@shoal/api';
import type { HollowCounts } from './hollow-executor.js';
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
  /** Each node's logger, by its host name (default: none). */
  loggerFor?: (hostname: string) => Logger;
}

/** What a fleet's nodes are doing, summed. */
export interface FleetState extends HollowCounts {
  nodes: number;
  /** Nodes by the manager holding their session ('' : none). */
  sessions: Record<string, number>;
}

const COUNTS = ['created', 'started', 'stopped', 'removed', 'containers', 'running'] as const;

/** Nothing yet: the start of a sum. */
export function emptyFleetState(): FleetState {
  return { nodes: 0, sessions: {}, created: 0, started: 0, stopped: 0, removed: 0, containers: 0, running: 0 };
}

/** Adds `b` (a fleet's state, or one node's) into `into`. */
export function addFleetState(into: FleetState, b: FleetState): FleetState {
  into.nodes += b.nodes;
  for (const [k, v] of Object.entries(b.sessions)) into.sessions[k] = (into.sessions[k] ?? 0) + v;
  for (const k of COUNTS) into[k] += b[k];
  return into;
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
              this.nodes.push(await HollowNode.join({ joinAddr: this.opts.joinAddr, token: this.opts.token, hostname, addr: `127.0.0.1:${20_000 + i}`, stepMs: this.opts.stepMs, logger: this.opts.loggerFor?.(hostname) }));
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
    const s = emptyFleetState();
    for (const n of this.nodes) {
      const { nodeId: _id, session, ...counts }: HollowNodeState = n.state();
      addFleetState(s, { ...counts, nodes: 1, sessions: { [session]: 1 } });
    }
    return s;
  }

  async stop(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.stop()));
  }
}
