export * from './types.js';
export { ValidationError, OBJECT_KINDS, isObjectKind, normalize } from './validate.js';
export type { KindMap } from './validate.js';
export * from './tx.js';
export { MAX_TX_BYTES, MAX_SPEC_BYTES, checkTxSize, formatBytes, jsonBytes, txBytes } from './tx-size.js';
export {
  ClusterStore,
  DEFAULT_TASK_HISTORY_LIMIT,
  SNAPSHOT_FORMAT,
  SNAPSHOT_VERSION,
} from './store.js';
export type {
  ChangeAction,
  ChangeEvent,
  KindChangeEvent,
  RestoreEvent,
  StoreEvent,
  WatchFilter,
  WatchListener,
  ClusterStoreOptions,
} from './store.js';
export { fileInUse, fileIdsOf } from './files.js';
export { newId, ID_LENGTH, StoreClient, updateOp, statusOp, deleteOp } from './client.js';
export type { StoreProposer, CommitOptions, UpdateOptions } from './client.js';
