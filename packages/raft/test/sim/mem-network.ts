// The simulated network of the driver simulation: a DriverTransport per process life over one
// in-memory network with random latency (so reordering), loss, duplication, partitions and one-way
// cuts. Forwarded proposals and read barriers are calls to the peer's handlers that can time out,
// be lost either way, or find the peer dead, like gRPC calls.

import { ShoalError } from '@shoal/api';
import { MessageType, type Message, type NodeId } from '../../src/core/types.js';
import type { DriverTransport, DriverTransportHooks } from '../../src/driver-io.js';
import type { ProposeRequest, ProposeResponse, ReadBarrierRequest, ReadBarrierResponse, StatusResponse } from '../../src/transport/index.js';
import type { EventQueue, Life } from './event-queue.js';
import type { Rng } from './prng.js';

export interface NetParams {
  /** Probability that a message (or a call, or its answer) is lost. */
  drop: number;
  dup: number;
  /** Latency in virtual ms: uniform in [min, max]. */
  minLatency: number;
  maxLatency: number;
  /** Probability that a message lost on a down link is reported unreachable to its sender. */
  reportUnreachable: number;
}

interface Endpoint {
  life: Life;
  hooks: DriverTransportHooks;
  /** Fault check hook: called with every message the node sends. */
  onSend: (m: Message) => void;
}

export class MemNetwork {
  private readonly endpoints = new Map<NodeId, Endpoint>();
  readonly isolated = new Set<NodeId>();
  groups: Map<NodeId, number> | null = null;
  /** Directed links that are cut: `${from}>${to}`. */
  readonly cut = new Set<string>();
  stats = { sent: 0, delivered: 0, dropped: 0, snaps: 0, calls: 0 };

  constructor(
    private readonly queue: EventQueue,
    private readonly rng: Rng,
    public params: NetParams,
  ) {}

  connected(a: NodeId, b: NodeId): boolean {
    if (this.isolated.has(a) || this.isolated.has(b)) return false;
    if (this.groups && (this.groups.get(a) ?? 0) !== (this.groups.get(b) ?? 0)) return false;
    return !this.cut.has(`${a}>${b}`);
  }

  heal(): void {
    this.isolated.clear();
    this.groups = null;
    this.cut.clear();
  }

  get partitioned(): boolean {
    return this.groups !== null || this.isolated.size > 0 || this.cut.size > 0;
  }

  private latency(): number {
    const p = this.params;
    return p.minLatency + this.rng.int(p.maxLatency - p.minLatency + 1);
  }

  /** The live endpoint of `id`, if its process runs. */
  private live(id: NodeId): Endpoint | undefined {
    const e = this.endpoints.get(id);
    return e && !e.life.dead ? e : undefined;
  }

  /** The transport of one process life of node `id`. */
  attach(id: NodeId, life: Life, hooks: DriverTransportHooks, onSend: (m: Message) => void): DriverTransport {
    this.endpoints.set(id, { life, hooks, onSend });
    const net = this;
    let closed = false;
    return {
      send(msgs: Message[]) {
        if (closed || life.dead) return;
        for (const m of msgs) {
          onSend(m);
          net.transmit(id, life, m);
        }
      },
      addPeer() {},
      removePeer() {},
      propose: (peer, req, timeoutMs) => net.call(id, life, peer, timeoutMs, (h) => h.onPropose(req as ProposeRequest)),
      readBarrier: (peer, req, timeoutMs) =>
        net.call(id, life, peer, timeoutMs, (h) => h.onReadBarrier(req as ReadBarrierRequest)) as Promise<ReadBarrierResponse>,
      status: (addr, timeoutMs) =>
        net.call(id, life, addr.replace(/^sim:\/\//, ''), timeoutMs, (h) => h.onStatus()) as Promise<StatusResponse>,
      close() {
        closed = true;
      },
    } satisfies DriverTransport as DriverTransport & { propose: (p: NodeId, r: ProposeRequest, t: number) => Promise<ProposeResponse> };
  }

  private transmit(from: NodeId, life: Life, m: Message): void {
    this.stats.sent++;
    const copies = this.rng.chance(this.params.dup) && m.type !== MessageType.Snap ? 2 : 1;
    for (let c = 0; c < copies; c++) {
      this.queue.after(this.latency(), () => {
        const to = this.live(m.to);
        const lost = this.rng.chance(this.params.drop);
        if (!to || lost || !this.connected(from, m.to)) {
          this.stats.dropped++;
          const sender = this.live(from);
          if (!sender || sender.life !== life) return;
          if (m.type === MessageType.Snap) sender.hooks.onSnapshotStatus(m.to, false);
          else if (!lost && this.rng.chance(this.params.reportUnreachable)) sender.hooks.onUnreachable(m.to);
          return;
        }
        this.stats.delivered++;
        to.hooks.handlers.onMessage(m);
        if (m.type === MessageType.Snap) {
          this.stats.snaps++;
          const sender = this.live(from);
          if (sender && sender.life === life) sender.hooks.onSnapshotStatus(m.to, true);
        }
      });
    }
  }

  /**
   * A unary call from `from` to `to`: the request and the answer each take a latency and may be
   * lost; the caller gives up at its deadline (the call may still take effect: an unknown outcome).
   */
  private call<T>(
    from: NodeId,
    life: Life,
    to: NodeId,
    timeoutMs: number,
    fn: (h: DriverTransportHooks['handlers']) => Promise<T>,
  ): Promise<T> {
    this.stats.calls++;
    return new Promise<T>((resolve, reject) => {
      let done = false;
      const finish = (f: () => void) => {
        if (done || life.dead) return;
        done = true;
        f();
      };
      this.queue.after(Math.max(1, timeoutMs), () => finish(() => reject(new ShoalError('UNAVAILABLE', 'deadline exceeded'))), life);
      this.queue.after(this.latency(), () => {
        const target = this.live(to);
        if (!target || !this.connected(from, to) || this.rng.chance(this.params.drop)) {
          // A refused connection answers fast; a lost packet waits for the deadline.
          if (!target) this.queue.after(this.latency(), () => finish(() => reject(new ShoalError('UNAVAILABLE', `${to} is down`))), life);
          return;
        }
        const answer = (f: () => void) =>
          this.queue.after(this.latency(), () => {
            if (!this.connected(to, from) || this.rng.chance(this.params.drop)) return;
            finish(f);
          });
        fn(target.hooks.handlers).then(
          (v) => answer(() => resolve(v)),
          (e: unknown) => answer(() => reject(ShoalError.from(e))),
        );
      });
    });
  }
}
