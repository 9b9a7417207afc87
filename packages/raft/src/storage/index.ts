export { RaftStorage, type LoadedState, type SaveParams, type RaftStorageOptions } from './raft-storage.js';
export {
  FORMAT_VERSION,
  RECORD_VERSION,
  RecordKind,
  KEY_FORMAT,
  KEY_HARD_STATE,
  KEY_BOOTSTRAP,
  KEY_SNAPSHOT_META,
  KEY_SNAPSHOT_DATA,
  SNAPSHOT_CHUNK_BYTES,
  snapshotChunkKey,
  entryKey,
  entryKeyIndex,
  describeKey,
} from './records.js';
