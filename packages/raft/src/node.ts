// A Raft member of shoald: the Raft driver (driver.ts) over LevelDB (RaftStorage) and gRPC
// (GrpcTransport), on the process clock.

import type * as grpc from '@grpc/grpc-js';
import { RaftDriver, DEFAULT_MAX_MSG_BYTES, type RaftDriverOptions } from './driver.js';
import { RaftStorage } from './storage/index.js';
import { GrpcTransport, type GrpcTransportOptions } from './transport/index.js';
import { createLogger } from './logger.js';

export {
  DEFAULT_TIMINGS,
  DEFAULT_MAX_MSG_BYTES,
  DEFAULT_SNAPSHOT_BYTES,
  MAX_PROPOSAL_BYTES,
  proposalLimit,
  RaftDriver,
  type StateMachine,
  type RaftTimings,
  type RaftDriverOptions,
  type ProposeOptions,
  type ProposeOutcome,
} from './driver.js';

export interface RaftNodeOptions extends Omit<RaftDriverOptions, 'clock'> {
  dataDir: string;
  /**
   * The gRPC server this node's Raft service is added to; the caller binds and starts it. Create
   * it with raftServerOptions(4 * maxMsgBytes) so it accepts the largest Raft message.
   */
  server: grpc.Server;
  /** TLS to peers (see GrpcTransportOptions.security) and who may call this member. */
  security?: GrpcTransportOptions['security'];
  authorize?: GrpcTransportOptions['authorize'];
}

export class RaftNode extends RaftDriver {
  private grpc!: GrpcTransport;

  /** Opens (or creates) the node's data dir and replays its state. Call start() to run it. */
  static async open(opts: RaftNodeOptions): Promise<RaftNode> {
    const storage = await RaftStorage.open(opts.dataDir);
    try {
      const log = opts.logger ?? createLogger('raft', { node: opts.id });
      const init = await RaftDriver.load(opts, storage);
      let made: GrpcTransport | undefined;
      const node = new RaftNode(
        { ...opts, logger: log },
        storage,
        (hooks) =>
          (made = new GrpcTransport({
            id: opts.id,
            server: opts.server,
            maxMessageBytes: (opts.maxMsgBytes ?? DEFAULT_MAX_MSG_BYTES) * 4,
            security: opts.security,
            authorize: opts.authorize,
            logger: log,
            ...hooks,
          })),
        init,
      );
      node.grpc = made!;
      return node;
    } catch (err) {
      await storage.close().catch(() => undefined);
      throw err;
    }
  }

  /** The node's certificate was renewed: reconnect to peers with it. */
  refreshCredentials(): void {
    this.grpc.refreshCredentials();
  }
}
