export {
  GrpcTransport,
  raftServerOptions,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_SNAPSHOT_CHUNK_BYTES,
  type GrpcTransportOptions,
  type TransportHandlers,
  type ProposeRequest,
  type ProposeResponse,
  type ReadBarrierRequest,
  type ReadBarrierResponse,
  type StatusResponse,
} from './grpc-transport.js';
export * from './codec.js';
