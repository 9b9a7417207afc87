export * from './core/types.js';
export { RaftCore, encodeConfChange, decodeConfChange, bootstrapEntries } from './core/raft.js';
export type { ProposeResult, ProposeRefusal, RaftStatus, ProgressStatus } from './core/raft.js';
export { RaftInvariantError } from './core/log.js';
export { ProgressState } from './core/progress.js';
