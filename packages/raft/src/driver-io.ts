// What the Raft driver (driver.ts) needs from the world, as small interfaces: a disk, a network and
// a clock. Production plugs in RaftStorage (LevelDB), GrpcTransport and the process clock; the
// randomized simulation (test/sim) plugs in an in-memory disk that models fsync and power loss, an
// in-memory network and a virtual clock, so that it checks the very driver that runs in shoald.

import type { Message, NodeId, Snapshot } from './core/types.js';
import type { LoadedState, SaveParams } from './storage/index.js';
import type {
  ProposeRequest,
  ProposeResponse,
  ReadBarrierRequest,
  ReadBarrierResponse,
  StatusResponse,
  TransportHandlers,
} from './transport/index.js';

/** The durable Raft state. A rejected promise is fatal: the driver stops (see RaftDriver 'fatal'). */
export interface DriverStorage {
  load(): Promise<LoadedState | null>;
  /** Resolves once written (durable unless p.sync is false); writes complete in call order. */
  save(p: SaveParams): Promise<void>;
  /** A snapshot taken locally (durable when it resolves); entries at or below it may be dropped. */
  saveSnapshot(snap: Snapshot): Promise<void>;
  close(): Promise<void>;
}

/** The network to the other members. Errors of the client calls are ShoalErrors. */
export interface DriverTransport {
  /** Queues messages and returns at once; losing some is fine (Raft resends). */
  send(msgs: Message[]): void;
  addPeer(id: NodeId, addr: string): void;
  removePeer(id: NodeId): void;
  /** Forwards a proposal to a peer (normally the leader). */
  propose(peer: NodeId, req: ProposeRequest, timeoutMs: number): Promise<ProposeResponse>;
  readBarrier(peer: NodeId, req: ReadBarrierRequest, timeoutMs: number): Promise<ReadBarrierResponse>;
  /** The status of the node at `addr` (need not be a peer). */
  status(addr: string, timeoutMs: number): Promise<StatusResponse>;
  close(): void;
}

/** What the driver gives the transport it is built with. */
export interface DriverTransportHooks {
  handlers: TransportHandlers;
  /** Messages to `peer` were lost (its stream failed): probe it instead of streaming. */
  onUnreachable(peer: NodeId): void;
  onSnapshotStatus(peer: NodeId, ok: boolean): void;
}

export type TimerHandle = unknown;

/** Time as the driver sees it: every deadline, timer and deferred step goes through here. */
export interface RaftClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** `background`: the timer alone must not keep the process alive. */
  setTimeout(fn: () => void, ms: number, background?: boolean): TimerHandle;
  clearTimeout(h: TimerHandle): void;
  /** Runs fn after the current task and its microtasks (setImmediate). */
  defer(fn: () => void): void;
}

/** The process's monotonic clock and timers. */
export const systemClock: RaftClock = {
  now: () => performance.now(),
  setTimeout(fn, ms, background) {
    const t = setTimeout(fn, Math.max(0, ms));
    if (background) t.unref();
    return t;
  },
  clearTimeout: (h) => clearTimeout(h as NodeJS.Timeout),
  defer: (fn) => {
    setImmediate(fn);
  },
};
