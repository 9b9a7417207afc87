export * from './client.js';
export * from './errors.js';
export * from './proto.js';
export * from './raft.js';
export * from './log-time.js';
export * from './sealed.js';
export * from './retry.js';
export * from './local-socket.js';
