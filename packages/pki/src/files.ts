// Durable, private files for a node's secrets: a write that survives a power loss once it returns
// (data and directory entry both fsynced), and directories only their owner can enter.

import { chmodSync, closeSync, fsyncSync, mkdirSync, openSync, renameSync, writeSync, fchmodSync } from 'node:fs';
import { dirname } from 'node:path';

/** Writes `data` to `path` (created or truncated) with `mode`, and fsyncs it before returning. */
export function writeFileSynced(path: string, data: string, mode: number): void {
  const fd = openSync(path, 'w', mode);
  try {
    // A leftover file keeps its old mode through open(): set it either way.
    fchmodSync(fd, mode);
    writeSync(fd, data);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Makes a directory's entries (a rename, a new file) durable. */
export function fsyncDir(dir: string): void {
  const fd = openSync(dir, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/** Writes a file atomically and durably: a crash leaves the old or the new one, never half of either. */
export function writeFileAtomic(path: string, data: string, mode: number): void {
  const tmp = `${path}.tmp`;
  writeFileSynced(tmp, data, mode);
  renameSync(tmp, path);
  fsyncDir(dirname(path));
}

/** Creates `dir` if needed and makes it 0700 even if it existed with a wider mode. */
export function privateDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
}
