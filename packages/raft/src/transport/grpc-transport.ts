// The Raft network layer over gRPC (service shoal.raft.Raft, proto/raft.proto).
//
// Outgoing: one long-lived client-streaming `Send` call per peer carries every message except
// Snap, in order; a Snap goes through `InstallSnapshot` in chunks. Incoming: the service is added
// to a grpc.Server owned (bound, started, shut down) by the caller; messages are validated and
// handed to `handlers.onMessage`. The client-path RPCs (Propose, ReadBarrier, Status) are served
// by the driver's handlers; `propose` / `readBarrier` / `status` call them on other nodes.

import { constants as bufferConstants } from 'node:buffer';
import { crc32 } from 'node:zlib';
import * as grpc from '@grpc/grpc-js';
import {
  RAFT_SERVICE,
  RaftMethod,
  ShoalError,
  getServiceDefinition,
  type ProposeRequestPb,
  type ProposeResponsePb,
  type RaftBatchPb,
  type ReadBarrierRequestPb,
  type ReadBarrierResponsePb,
  type SendAckPb,
  type SnapshotAckPb,
  type SnapshotChunkPb,
  type StatusRequestPb,
  type StatusResponsePb,
} from '@shoal/api';
import { EMPTY, MessageType, type Message, type NodeId } from '../core/types.js';
import type { Logger } from '@shoal/api';
import { createLogger } from '../logger.js';
import {
  LOCAL_ONLY_TYPES,
  frameMessage,
  messageFromPb,
  messageToPb,
  proposeRequestFromPb,
  proposeResponseFromPb,
  readBarrierResponseFromPb,
  statusResponseFromPb,
} from './codec.js';

export type ProposeRequest = ProposeRequestPb;
export type ProposeResponse = ProposeResponsePb;
export type ReadBarrierRequest = ReadBarrierRequestPb;
export type ReadBarrierResponse = ReadBarrierResponsePb;
export type StatusResponse = StatusResponsePb;

/** Served on behalf of the driver. A thrown ShoalError reaches the caller with its code. */
export interface TransportHandlers {
  /** A validated message from a known peer, addressed to this node. Must not block. */
  onMessage(m: Message): void;
  onPropose(req: ProposeRequest): Promise<ProposeResponse>;
  onReadBarrier(req: ReadBarrierRequest): Promise<ReadBarrierResponse>;
  onStatus(): Promise<StatusResponse>;
}

/** What authorize() sees of an incoming call (every grpc-js server call has these). */
export type RaftServerCall = Pick<grpc.ServerUnaryCall<unknown, unknown>, 'getPeer' | 'getAuthContext' | 'metadata'>;

export interface GrpcTransportOptions {
  id: NodeId;
  /** Owned by the caller (binds, starts, shuts it down); create it with raftServerOptions(). */
  server: grpc.Server;
  handlers: TransportHandlers;
  /** The Send stream to a peer failed (or its queue overflowed): called once per failed stream. */
  onUnreachable(peerId: NodeId): void;
  /** A snapshot sent to `peerId` was delivered (true) or failed (false). */
  onSnapshotStatus(peerId: NodeId, ok: boolean): void;
  /** Largest serialized RaftMessage sent or accepted. Default 16 MiB. */
  maxMessageBytes?: number;
  /** InstallSnapshot data chunk size. Default 1 MiB. */
  snapshotChunkBytes?: number;
  /** Largest snapshot accepted from a peer. Default 1 GiB. */
  maxSnapshotBytes?: number;
  /** Deadline of one snapshot transfer. Default 5 minutes. */
  snapshotTimeoutMs?: number;
  /** Bytes queued per peer (not yet handed to gRPC) beyond which new messages are dropped. Default 64 MiB. */
  maxQueueBytes?: number;
  /** Reconnection backoff after a failed Send stream: doubles from initialMs to maxMs. Default 100 ms / 1 s (a restarted manager is heard again within a second; a dead one costs a connect attempt a second). */
  backoff?: { initialMs: number; maxMs: number };
  /** Default: insecure. */
  credentials?: grpc.ChannelCredentials;
  /**
   * TLS for the channels to peers, read when a channel is made (it changes when the node's
   * certificate is renewed: call refreshCredentials()). Overrides `credentials`.
   */
  security?: () => { credentials: grpc.ChannelCredentials; options?: grpc.ChannelOptions };
  /**
   * Who may call this node's Raft service: returns the caller's node id (from its certificate) or
   * throws a ShoalError. A Send stream may then carry only messages from that node.
   */
  authorize?: (call: RaftServerCall) => NodeId;
  logger?: Logger;
}

export const DEFAULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024;
export const DEFAULT_SNAPSHOT_CHUNK_BYTES = 1024 * 1024;
/** Bytes of a snapshot checksummed between two event-loop turns. */
const CRC_STEP_BYTES = 4 << 20;
/** Room for framing/headers above maxMessageBytes in the gRPC limits. */
const LIMIT_SLACK = 64 * 1024;

/**
 * Channel options for the grpc.Server the transport is added to, so that messages of up to
 * maxMessageBytes are accepted (gRPC's default receive limit is 4 MiB):
 * `new grpc.Server(raftServerOptions())`.
 */
export function raftServerOptions(maxMessageBytes = DEFAULT_MAX_MESSAGE_BYTES): grpc.ServerOptions {
  return {
    'grpc.max_receive_message_length': maxMessageBytes + LIMIT_SLACK,
    'grpc.max_send_message_length': maxMessageBytes + LIMIT_SLACK,
  };
}

function clientOptions(maxMessageBytes: number, maxBackoffMs: number): grpc.ChannelOptions {
  return {
    'grpc.max_receive_message_length': maxMessageBytes + LIMIT_SLACK,
    'grpc.max_send_message_length': maxMessageBytes + LIMIT_SLACK,
    // Notice a silently dead peer on a long-lived stream within ~15 s.
    'grpc.keepalive_time_ms': 10_000,
    'grpc.keepalive_timeout_ms': 5_000,
    // gRPC's own reconnection backoff (default up to 120 s) must not outlast ours.
    'grpc.initial_reconnect_backoff_ms': 100,
    'grpc.max_reconnect_backoff_ms': maxBackoffMs,
  };
}

const identity = (b: Buffer): Buffer => b;
/** Batches written to a Send stream and not yet flushed to the socket. */
const MAX_INFLIGHT_BATCHES = 2;

interface SendStream {
  call: grpc.ClientWritableStream<Buffer>;
  /** The server accepted the stream (its response headers arrived). */
  confirmed: boolean;
  /** onUnreachable was already called for this stream's failure. */
  reported: boolean;
  /** onUnreachable was already called for this stream's queue overflowing. */
  overflowReported: boolean;
  /** Batches handed to gRPC and not yet written out. */
  inflight: number;
  ended: boolean;
}

class Peer {
  stream: SendStream | undefined;
  queue: Buffer[] = [];
  queueBytes = 0;
  retryAt = 0;
  backoffMs: number;
  snapshotCall: grpc.ClientWritableStream<SnapshotChunkPb> | undefined;
  closed = false;
  dropped = 0;

  constructor(
    readonly id: NodeId,
    readonly addr: string,
    readonly client: grpc.Client,
    initialBackoffMs: number,
  ) {
    this.backoffMs = initialBackoffMs;
  }

  clearQueue(): number {
    const n = this.queue.length;
    this.queue = [];
    this.queueBytes = 0;
    return n;
  }
}

interface ActiveServerCall {
  fail(status: grpc.StatusObject): void;
}

export class GrpcTransport {
  readonly id: NodeId;
  private readonly opts: GrpcTransportOptions;
  private readonly handlers: TransportHandlers;
  private readonly log: Logger;
  private readonly maxMessageBytes: number;
  private readonly chunkBytes: number;
  private readonly maxSnapshotBytes: number;
  private readonly snapshotTimeoutMs: number;
  private readonly maxQueueBytes: number;
  private readonly backoff: { initialMs: number; maxMs: number };
  private credentials: grpc.ChannelCredentials;
  private channelOptions: grpc.ChannelOptions;
  private readonly baseChannelOptions: grpc.ChannelOptions;
  private readonly service = getServiceDefinition(RAFT_SERVICE);
  private readonly peers = new Map<NodeId, Peer>();
  private readonly pendingFlush = new Set<Peer>();
  private readonly serverCalls = new Set<ActiveServerCall>();
  private readonly throttle = new Map<string, { at: number; suppressed: number }>();
  private closed = false;

  constructor(opts: GrpcTransportOptions) {
    this.opts = opts;
    this.id = opts.id;
    this.handlers = opts.handlers;
    this.log = opts.logger ?? createLogger('raft-transport', { node: opts.id });
    this.maxMessageBytes = opts.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.chunkBytes = Math.max(1024, Math.min(opts.snapshotChunkBytes ?? DEFAULT_SNAPSHOT_CHUNK_BYTES, this.maxMessageBytes));
    this.maxSnapshotBytes = Math.min(opts.maxSnapshotBytes ?? 1024 * 1024 * 1024, bufferConstants.MAX_LENGTH);
    this.snapshotTimeoutMs = opts.snapshotTimeoutMs ?? 5 * 60_000;
    this.maxQueueBytes = opts.maxQueueBytes ?? 64 * 1024 * 1024;
    this.backoff = opts.backoff ?? { initialMs: 100, maxMs: 1_000 };
    this.credentials = opts.credentials ?? grpc.credentials.createInsecure();
    this.baseChannelOptions = clientOptions(this.maxMessageBytes, this.backoff.maxMs);
    this.channelOptions = this.baseChannelOptions;
    this.applySecurity();

    const serverLimit = (opts.server as unknown as { options?: grpc.ServerOptions }).options?.['grpc.max_receive_message_length'];
    const effective = typeof serverLimit === 'number' ? serverLimit : 4 * 1024 * 1024;
    if (effective >= 0 && effective < this.maxMessageBytes) {
      this.log.warn(
        { serverLimit: effective, maxMessageBytes: this.maxMessageBytes },
        'the grpc.Server accepts smaller messages than maxMessageBytes: create it with raftServerOptions()',
      );
    }

    opts.server.addService(this.service, {
      Send: (call: grpc.ServerReadableStream<RaftBatchPb, SendAckPb>, cb: grpc.sendUnaryData<SendAckPb>) =>
        this.serveSend(call, cb),
      InstallSnapshot: (call: grpc.ServerReadableStream<SnapshotChunkPb, SnapshotAckPb>, cb: grpc.sendUnaryData<SnapshotAckPb>) =>
        this.serveInstallSnapshot(call, cb),
      Propose: (call: grpc.ServerUnaryCall<ProposeRequestPb, ProposeResponsePb>, cb: grpc.sendUnaryData<ProposeResponsePb>) =>
        this.authorized(call, cb) !== undefined && this.serveUnary(cb, async () => this.handlers.onPropose(proposeRequestFromPb(call.request))),
      ReadBarrier: (call: grpc.ServerUnaryCall<ReadBarrierRequestPb, ReadBarrierResponsePb>, cb: grpc.sendUnaryData<ReadBarrierResponsePb>) =>
        this.authorized(call, cb) !== undefined &&
        this.serveUnary(cb, async () => this.handlers.onReadBarrier({ from: typeof call.request?.from === 'string' ? call.request.from : '' })),
      Status: (call: grpc.ServerUnaryCall<StatusRequestPb, StatusResponsePb>, cb: grpc.sendUnaryData<StatusResponsePb>) =>
        this.authorized(call, cb) !== undefined && this.serveUnary(cb, async () => this.handlers.onStatus()),
    });
  }

  // ------------------------------------------------------------------------------- peers

  private applySecurity(): void {
    const sec = this.opts.security?.();
    if (!sec) return;
    this.credentials = sec.credentials;
    this.channelOptions = { ...this.baseChannelOptions, ...sec.options };
  }

  /**
   * The node's certificate changed: new channels to every peer (a channel keeps the credentials
   * it was made with, and would reconnect with an expired certificate). Queued messages are
   * dropped; Raft retransmits.
   */
  refreshCredentials(): void {
    this.applySecurity();
    for (const p of [...this.peers.values()]) {
      this.removePeer(p.id);
      this.addPeer(p.id, p.addr);
    }
  }

  /** The caller's node id, or a refusal sent back through `cb` (undefined: refused). */
  private authorized(call: RaftServerCall, cb: (status: Partial<grpc.StatusObject>) => void): NodeId | null | undefined {
    if (!this.opts.authorize) return null;
    try {
      return this.opts.authorize(call);
    } catch (err) {
      const e = ShoalError.from(err);
      this.warnThrottled(`unauthorized:${e.message}`, { peer: call.getPeer(), err: e.message }, 'refused a Raft call');
      cb(e.toGrpcStatus());
      return undefined;
    }
  }

  /** Adds (or re-addresses) a peer. Connections are made lazily, on the first send. */
  addPeer(id: NodeId, addr: string): void {
    if (this.closed || id === this.id) return;
    const old = this.peers.get(id);
    if (old?.addr === addr) return;
    if (old) this.closePeer(old);
    const client = new grpc.Client(addr, this.credentials, this.channelOptions);
    this.peers.set(id, new Peer(id, addr, client, this.backoff.initialMs));
    this.log.debug({ peer: id, addr }, old ? 'peer address changed' : 'peer added');
  }

  /** Forgets a peer: its streams are cancelled, its queue dropped; no callbacks follow. */
  removePeer(id: NodeId): void {
    const p = this.peers.get(id);
    if (!p) return;
    this.peers.delete(id);
    this.closePeer(p);
    this.log.debug({ peer: id }, 'peer removed');
  }

  hasPeer(id: NodeId): boolean {
    return this.peers.has(id);
  }

  private closePeer(p: Peer): void {
    p.closed = true;
    p.clearQueue();
    this.pendingFlush.delete(p);
    if (p.stream) {
      p.stream.ended = true;
      p.stream.call.cancel();
      p.stream = undefined;
    }
    p.snapshotCall?.cancel();
    p.snapshotCall = undefined;
    p.client.close();
  }

  /** Cancels every outgoing call, fails the incoming ones, and removes the service from the server. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const p of this.peers.values()) this.closePeer(p);
    this.peers.clear();
    const status = new ShoalError('UNAVAILABLE', 'raft transport closed').toGrpcStatus();
    for (const c of [...this.serverCalls]) c.fail(status);
    this.serverCalls.clear();
    try {
      this.opts.server.removeService(this.service);
    } catch {
      // An already shut down server.
    }
  }

  // ------------------------------------------------------------------------------- sending

  /**
   * Queues messages for their peers and returns at once. Per peer, order is kept. Messages to an
   * unknown peer, or while its stream is backing off after a failure, are dropped (Raft resends).
   */
  send(msgs: Message[]): void {
    if (this.closed) return;
    for (const m of msgs) {
      if (m.to === this.id) {
        this.warnThrottled(`self:${m.type}`, { type: MessageType[m.type] }, 'not sending a message to self');
        continue;
      }
      if (LOCAL_ONLY_TYPES.has(m.type)) {
        this.warnThrottled(`local:${m.type}`, { type: MessageType[m.type] }, 'not sending a local-only message');
        continue;
      }
      const peer = this.peers.get(m.to);
      if (!peer) {
        this.warnThrottled(`unknown:${m.to}`, { peer: m.to, type: MessageType[m.type] }, 'dropping a message to an unknown peer');
        continue;
      }
      if (m.type === MessageType.Snap) {
        this.sendSnapshot(peer, m);
        continue;
      }
      for (const buf of this.encode(peer, m)) this.enqueue(peer, buf);
    }
    for (const p of this.pendingFlush) this.flush(p);
    this.pendingFlush.clear();
  }

  /**
   * Serializes a message; one over maxMessageBytes is split if it is an App with several entries
   * (into Apps each valid on its own), otherwise dropped and the peer reported unreachable.
   */
  private encode(peer: Peer, m: Message): Buffer[] {
    const buf = frameMessage(m);
    if (buf.length <= this.maxMessageBytes) return [buf];
    if (m.type === MessageType.App && m.entries.length > 1) {
      const half = m.entries.length >> 1;
      const head = m.entries.slice(0, half);
      const last = head[head.length - 1]!;
      return [
        ...this.encode(peer, { ...m, entries: head }),
        ...this.encode(peer, { ...m, index: last.index, logTerm: last.term, entries: m.entries.slice(half) }),
      ];
    }
    this.log.error(
      { peer: peer.id, type: MessageType[m.type], bytes: buf.length, limit: this.maxMessageBytes },
      'message larger than maxMessageBytes cannot be sent (cap proposal sizes below it)',
    );
    this.reportUnreachable(peer, undefined);
    return [];
  }

  private enqueue(peer: Peer, buf: Buffer): void {
    if (!peer.stream && Date.now() < peer.retryAt) {
      peer.dropped++;
      return;
    }
    if (peer.queueBytes + buf.length > this.maxQueueBytes) {
      peer.dropped++;
      this.warnThrottled(`overflow:${peer.id}`, { peer: peer.id, queued: peer.queueBytes }, 'send queue full, dropping messages');
      if (peer.stream && !peer.stream.overflowReported) {
        peer.stream.overflowReported = true;
        this.reportUnreachable(peer, undefined);
      }
      return;
    }
    peer.queue.push(buf);
    peer.queueBytes += buf.length;
    this.pendingFlush.add(peer);
  }

  private flush(peer: Peer): void {
    if (peer.closed || peer.queue.length === 0) return;
    let s = peer.stream;
    if (!s) {
      if (Date.now() < peer.retryAt) {
        peer.dropped += peer.clearQueue();
        return;
      }
      s = this.openStream(peer);
    }
    // Whatever queued up while the previous batch was being written goes out as the next one:
    // batches grow with the load, and an idle peer gets its message at once.
    while (peer.queue.length > 0 && s.inflight < MAX_INFLIGHT_BATCHES && !s.ended) {
      let n = 0;
      let bytes = 0;
      while (n < peer.queue.length && (n === 0 || bytes + peer.queue[n]!.length <= this.maxMessageBytes)) {
        bytes += peer.queue[n]!.length;
        n++;
      }
      const parts = peer.queue.splice(0, n);
      peer.queueBytes -= bytes;
      const stream = s;
      stream.inflight++;
      stream.call.write(n === 1 ? parts[0] : Buffer.concat(parts, bytes), () => {
        stream.inflight--;
        if (peer.stream === stream) this.flush(peer);
      });
    }
  }

  private openStream(peer: Peer): SendStream {
    const md = new grpc.Metadata();
    md.set('shoal-from', this.id);
    const s: SendStream = { call: undefined as never, confirmed: false, reported: false, overflowReported: false, inflight: 0, ended: false };
    s.call = peer.client.makeClientStreamRequest<Buffer, SendAckPb>(
      RaftMethod.Send,
      identity,
      this.service.Send!.responseDeserialize as (b: Buffer) => SendAckPb,
      md,
      {},
      (err) => this.onStreamEnd(peer, s, err),
    );
    s.call.on('metadata', () => {
      s.confirmed = true;
      peer.backoffMs = this.backoff.initialMs;
      if (peer.dropped > 0) {
        this.log.debug({ peer: peer.id, dropped: peer.dropped }, 'stream re-established; messages were dropped meanwhile');
        peer.dropped = 0;
      }
    });
    s.call.on('error', () => undefined); // reported through the callback
    peer.stream = s;
    this.log.debug({ peer: peer.id, addr: peer.addr }, 'opening send stream');
    return s;
  }

  private onStreamEnd(peer: Peer, s: SendStream, err: grpc.ServiceError | null): void {
    s.ended = true;
    if (peer.stream !== s || peer.closed) return;
    peer.stream = undefined;
    const lost = peer.clearQueue();
    if (!err) return; // the server ended the call cleanly: reconnect on the next send
    if (s.confirmed) peer.backoffMs = this.backoff.initialMs;
    peer.retryAt = Date.now() + peer.backoffMs;
    const level = err.code === grpc.status.RESOURCE_EXHAUSTED ? 'error' : 'warn';
    this.log[level](
      { peer: peer.id, addr: peer.addr, code: grpc.status[err.code], err: err.details, lost, retryInMs: peer.backoffMs },
      err.code === grpc.status.RESOURCE_EXHAUSTED
        ? 'send stream rejected for size: is the peer server created with raftServerOptions()?'
        : 'send stream failed',
    );
    peer.backoffMs = Math.min(this.backoff.maxMs, peer.backoffMs * 2);
    this.reportUnreachable(peer, s);
  }

  private reportUnreachable(peer: Peer, s: SendStream | undefined): void {
    if (s) {
      if (s.reported) return;
      s.reported = true;
    }
    try {
      this.opts.onUnreachable(peer.id);
    } catch (err) {
      this.log.error({ err, peer: peer.id }, 'onUnreachable threw');
    }
  }

  private sendSnapshot(peer: Peer, m: Message): void {
    const snap = m.snapshot;
    if (!snap) {
      this.log.error({ peer: peer.id }, 'Snap message without a snapshot');
      return;
    }
    if (peer.snapshotCall) {
      this.log.warn({ peer: peer.id, index: snap.meta.index }, 'a snapshot is already being sent to this peer; dropping this one');
      return;
    }
    const data = snap.data;
    const started = Date.now();
    let finished = false;
    let wake: (() => void) | undefined;
    const call = peer.client.makeClientStreamRequest<SnapshotChunkPb, SnapshotAckPb>(
      RaftMethod.InstallSnapshot,
      this.service.InstallSnapshot!.requestSerialize as (c: SnapshotChunkPb) => Buffer,
      this.service.InstallSnapshot!.responseDeserialize as (b: Buffer) => SnapshotAckPb,
      new grpc.Metadata(),
      { deadline: Date.now() + this.snapshotTimeoutMs },
      (err, ack) => {
        finished = true;
        wake?.();
        if (peer.snapshotCall === call) peer.snapshotCall = undefined;
        if (peer.closed || this.closed) return;
        const ok = !err && ack?.ok === true;
        if (ok) {
          this.log.info({ peer: peer.id, index: snap.meta.index, bytes: data.length, ms: Date.now() - started }, 'snapshot sent');
        } else {
          this.log.warn({ peer: peer.id, index: snap.meta.index, code: err ? grpc.status[err.code] : 'NOT_OK', err: err?.details }, 'snapshot send failed');
        }
        try {
          this.opts.onSnapshotStatus(peer.id, ok);
        } catch (e) {
          this.log.error({ err: e, peer: peer.id }, 'onSnapshotStatus threw');
        }
      },
    );
    call.on('error', () => undefined); // reported through the callback
    peer.snapshotCall = call;
    this.log.info({ peer: peer.id, index: snap.meta.index, term: snap.meta.term, bytes: data.length }, 'sending snapshot');

    const pump = async () => {
      const write = async (chunk: SnapshotChunkPb) => {
        if (call.write(chunk) || finished) return;
        await new Promise<void>((resolve) => {
          wake = resolve;
          call.once('drain', resolve);
        });
        wake = undefined;
      };
      // The checksum in steps: over a 100 MB snapshot it holds the loop for tens of milliseconds.
      let crc = 0;
      for (let off = 0; off < data.length && !finished; off += CRC_STEP_BYTES) {
        crc = crc32(data.subarray(off, off + CRC_STEP_BYTES), crc);
        await new Promise<void>((resolve) => setImmediate(resolve));
      }
      await write({ message: messageToPb(m, true), total_size: data.length, crc32: crc, data: EMPTY });
      for (let off = 0; off < data.length && !finished; off += this.chunkBytes) {
        await write({ message: null, total_size: 0, crc32: 0, data: data.subarray(off, off + this.chunkBytes) });
      }
      if (!finished) call.end();
    };
    pump().catch((err: unknown) => {
      this.log.error({ err, peer: peer.id }, 'snapshot send aborted');
      call.cancel();
    });
  }

  // ------------------------------------------------------------------------------- serving

  /** Why a received message is refused, or undefined if it may be delivered. */
  private refusal(m: Message): string | undefined {
    if (m.to !== this.id) return `addressed to ${m.to}`;
    if (!this.peers.has(m.from)) return 'from an unknown member';
    return undefined;
  }

  private serveSend(call: grpc.ServerReadableStream<RaftBatchPb, SendAckPb>, cb: grpc.sendUnaryData<SendAckPb>): void {
    if (this.closed) {
      cb(new ShoalError('UNAVAILABLE', 'raft transport closed').toGrpcStatus());
      return;
    }
    const peer = this.authorized(call, cb);
    if (peer === undefined) return;
    let done = false;
    const entry: ActiveServerCall = {
      fail: (status) => {
        if (done) return;
        done = true;
        cb(status);
      },
    };
    this.serverCalls.add(entry);
    const finish = () => {
      this.serverCalls.delete(entry);
      if (!done) {
        done = true;
        cb(null, {});
      }
    };
    call.sendMetadata(new grpc.Metadata()); // tells the sender the stream is up
    const claimed = call.metadata.get('shoal-from')[0];
    call.on('data', (batch: RaftBatchPb) => {
      for (const pb of batch.messages ?? []) {
        if (done) return;
        let m: Message;
        try {
          m = messageFromPb(pb);
        } catch (err) {
          this.warnThrottled(`bad:${String(claimed)}`, { claimedFrom: claimed, err: (err as Error).message }, 'rejected an invalid message');
          continue;
        }
        const why =
          peer !== null && m.from !== peer
            ? `sent by ${peer} in the name of ${m.from}`
            : m.type === MessageType.Snap
              ? 'a Snap outside InstallSnapshot'
              : this.refusal(m);
        if (why) {
          this.warnThrottled(`refused:${m.from}:${why}`, { from: m.from, to: m.to, type: MessageType[m.type] }, `rejected a message: ${why}`);
          continue;
        }
        this.deliver(m);
      }
    });
    call.on('end', finish);
    call.on('error', () => {
      // The sender went away or cancelled; nothing to answer.
      this.serverCalls.delete(entry);
      done = true;
    });
  }

  private deliver(m: Message): void {
    try {
      this.handlers.onMessage(m);
    } catch (err) {
      this.log.error({ err, from: m.from, type: MessageType[m.type] }, 'onMessage threw');
    }
  }

  private serveInstallSnapshot(
    call: grpc.ServerReadableStream<SnapshotChunkPb, SnapshotAckPb>,
    cb: grpc.sendUnaryData<SnapshotAckPb>,
  ): void {
    if (this.closed) {
      cb(new ShoalError('UNAVAILABLE', 'raft transport closed').toGrpcStatus());
      return;
    }
    const peer = this.authorized(call, cb);
    if (peer === undefined) return;
    let done = false;
    let header: Message | undefined;
    let buf: Buffer = Buffer.alloc(0);
    let received = 0;
    let expectedCrc = 0;
    let crc = 0;
    const entry: ActiveServerCall = {
      fail: (status) => {
        if (done) return;
        done = true;
        this.serverCalls.delete(entry);
        cb(status);
      },
    };
    this.serverCalls.add(entry);
    const fail = (err: ShoalError) => {
      this.warnThrottled(`snap:${header?.from}:${err.code}`, { from: header?.from, err: err.message }, 'rejected a snapshot');
      entry.fail(err.toGrpcStatus());
    };

    call.on('data', (chunk: SnapshotChunkPb) => {
      if (done) return;
      try {
        if (!header) {
          if (!chunk.message) throw new ShoalError('INVALID_ARGUMENT', 'the first snapshot chunk has no message');
          const m = messageFromPb(chunk.message);
          if (m.type !== MessageType.Snap) throw new ShoalError('INVALID_ARGUMENT', `InstallSnapshot carries a ${MessageType[m.type]}`);
          const why = peer !== null && m.from !== peer ? `sent by ${peer} in the name of ${m.from}` : this.refusal(m);
          if (why) throw new ShoalError('INVALID_ARGUMENT', `snapshot refused: ${why}`);
          const total = chunk.total_size;
          if (!Number.isSafeInteger(total) || total < 0) throw new ShoalError('INVALID_ARGUMENT', 'bad snapshot total_size');
          if (total > this.maxSnapshotBytes) {
            throw new ShoalError('RESOURCE_EXHAUSTED', `snapshot of ${total} bytes exceeds the limit of ${this.maxSnapshotBytes}`);
          }
          buf = Buffer.allocUnsafe(total);
          expectedCrc = chunk.crc32 >>> 0;
          header = m;
        } else if (chunk.message) {
          throw new ShoalError('INVALID_ARGUMENT', 'a message in a later snapshot chunk');
        }
        const d = chunk.data ?? EMPTY;
        if (received + d.length > buf.length) {
          throw new ShoalError('INVALID_ARGUMENT', `snapshot data exceeds the announced ${buf.length} bytes`);
        }
        buf.set(d, received);
        received += d.length;
        crc = crc32(d, crc);
      } catch (err) {
        fail(ShoalError.is(err) ? err : new ShoalError('INVALID_ARGUMENT', (err as Error).message));
      }
    });
    call.on('end', () => {
      if (done) return;
      if (!header) return fail(new ShoalError('INVALID_ARGUMENT', 'empty snapshot stream'));
      if (received !== buf.length) {
        return fail(new ShoalError('CORRUPT_DATA', `snapshot truncated: ${received} of ${buf.length} bytes`));
      }
      if (crc !== expectedCrc) return fail(new ShoalError('CORRUPT_DATA', 'snapshot checksum mismatch'));
      done = true;
      this.serverCalls.delete(entry);
      this.log.info({ from: header.from, index: header.snapshot!.meta.index, bytes: received }, 'snapshot received');
      this.deliver({ ...header, snapshot: { meta: header.snapshot!.meta, data: buf } });
      cb(null, { ok: true });
    });
    call.on('error', () => {
      done = true;
      this.serverCalls.delete(entry);
    });
  }

  private serveUnary<T>(cb: grpc.sendUnaryData<T>, fn: () => Promise<T>): void {
    if (this.closed) {
      cb(new ShoalError('UNAVAILABLE', 'raft transport closed').toGrpcStatus());
      return;
    }
    fn().then(
      (res) => cb(null, res),
      (err: unknown) => {
        if (!ShoalError.is(err)) this.log.error({ err }, 'RPC handler failed');
        cb(ShoalError.from(err).toGrpcStatus());
      },
    );
  }

  // ------------------------------------------------------------------------------- client path

  /** Forwards a proposal to a peer (normally the leader). Errors are ShoalErrors. */
  propose(peerId: NodeId, req: ProposeRequest, timeoutMs: number): Promise<ProposeResponse> {
    return this.unary(this.peerClient(peerId), 'Propose', req, timeoutMs, proposeResponseFromPb);
  }

  /** Asks a peer (normally the leader) for a read index. Errors are ShoalErrors. */
  readBarrier(peerId: NodeId, req: ReadBarrierRequest, timeoutMs: number): Promise<ReadBarrierResponse> {
    return this.unary(this.peerClient(peerId), 'ReadBarrier', req, timeoutMs, readBarrierResponseFromPb);
  }

  /** The Status of the node at `addr` (need not be a peer). Errors are ShoalErrors. */
  async status(addr: string, timeoutMs = 5_000): Promise<StatusResponse> {
    const client = new grpc.Client(addr, this.credentials, this.channelOptions);
    try {
      return await this.unary(client, 'Status', {}, timeoutMs, statusResponseFromPb);
    } finally {
      client.close();
    }
  }

  private peerClient(peerId: NodeId): grpc.Client | ShoalError {
    if (this.closed) return new ShoalError('UNAVAILABLE', 'raft transport closed');
    const p = this.peers.get(peerId);
    return p ? p.client : new ShoalError('UNAVAILABLE', `no address known for node ${peerId}`, { details: { node: peerId } });
  }

  private unary<Req, Res>(
    client: grpc.Client | ShoalError,
    method: 'Propose' | 'ReadBarrier' | 'Status',
    req: Req,
    timeoutMs: number,
    check: (r: Res) => Res,
  ): Promise<Res> {
    if (client instanceof ShoalError) return Promise.reject(client);
    const def = this.service[method]!;
    return new Promise<Res>((resolve, reject) => {
      client.makeUnaryRequest<Req, Res>(
        def.path,
        def.requestSerialize as (r: Req) => Buffer,
        def.responseDeserialize as (b: Buffer) => Res,
        req,
        new grpc.Metadata(),
        { deadline: Date.now() + Math.max(1, timeoutMs) },
        (err, res) => {
          if (err) return reject(ShoalError.fromGrpcError(err));
          try {
            resolve(check(res as Res));
          } catch (e) {
            reject(ShoalError.from(e, `malformed ${method} response`));
          }
        },
      );
    });
  }

  // ------------------------------------------------------------------------------- logging

  /** Warns at most once per 5 s per key, counting what was suppressed in between. */
  private warnThrottled(key: string, obj: Record<string, unknown>, msg: string): void {
    const now = Date.now();
    const t = this.throttle.get(key);
    if (t && now - t.at < 5_000) {
      t.suppressed++;
      return;
    }
    if (this.throttle.size > 1000) this.throttle.clear();
    this.throttle.set(key, { at: now, suppressed: 0 });
    this.log.warn({ ...obj, suppressed: t?.suppressed ?? 0 }, msg);
  }
}
