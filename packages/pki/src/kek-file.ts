// A manager's DATA_DIR/certificates/kek.json (0600): the cluster's key-encryption key in the
// clear (format 1, kek.ts), or wrapped by the unlock key when autolock is on (format 2,
// unlock-key.ts). A manager whose file is wrapped is locked: it starts nothing until unlocked.

import { readFileSync, rmSync } from 'node:fs';
import { ShoalError } from '@shoal/api';
import { privateDir, writeFileAtomic } from './files.js';
import { certPaths } from './identity.js';
import { KeyEncryptionKey } from './kek.js';
import { type UnlockKey, type WrappedKekFile, isWrappedKekFile } from './unlock-key.js';

/** What every control call but UnlockManager answers on a locked manager. */
export const MANAGER_LOCKED = 'this manager is locked: run shoal swarm unlock (with the unlock key given when autolock was turned on)';

export type KekFile =
  | { kind: 'absent' }
  | { kind: 'clear'; kek: KeyEncryptionKey }
  | { kind: 'wrapped'; id: string; file: WrappedKekFile };

const kekPath = (dataDir: string) => certPaths(dataDir).kek;

export function readKekFile(dataDir: string): KekFile {
  const path = kekPath(dataDir);
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
    throw new ShoalError('CORRUPT_DATA', `cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    v = undefined;
  }
  if (isWrappedKekFile(v)) return { kind: 'wrapped', id: v.id, file: v };
  return { kind: 'clear', kek: KeyEncryptionKey.parse(text, path) };
}

/** Whether this node's kek.json is wrapped (the manager must be unlocked before it starts). */
export function kekLocked(dataDir: string): boolean {
  return readKekFile(dataDir).kind === 'wrapped';
}

/** This node's KEK, or undefined if it holds none (a worker); a wrapped file: FAILED_PRECONDITION, locked. */
export function readKek(dataDir: string): KeyEncryptionKey | undefined {
  const f = readKekFile(dataDir);
  if (f.kind === 'absent') return undefined;
  if (f.kind === 'wrapped') throw new ShoalError('FAILED_PRECONDITION', MANAGER_LOCKED);
  return f.kek;
}

/** Opens a wrapped kek.json with the operator's key (INVALID_ARGUMENT `invalid unlock key` if it does not). */
export function unlockKek(dataDir: string, key: UnlockKey): KeyEncryptionKey {
  const f = readKekFile(dataDir);
  if (f.kind !== 'wrapped') throw new ShoalError('FAILED_PRECONDITION', 'this manager is not locked');
  return key.unwrap(f.file, kekPath(dataDir));
}

/** Writes kek.json: in the clear, or wrapped by `wrapWith` (autolock). */
export function writeKek(dataDir: string, kek: KeyEncryptionKey, wrapWith?: UnlockKey): void {
  privateDir(certPaths(dataDir).dir);
  writeFileAtomic(kekPath(dataDir), wrapWith ? wrapWith.wrap(kek) : kek.serialize(), 0o600);
}

/**
 * Whether kek.json holds the key `id`, wrapped or not: a renewal that brings the same key leaves
 * a wrapped file as it is rather than writing the key in the clear.
 */
export function holdsKek(dataDir: string, id: string): boolean {
  try {
    const f = readKekFile(dataDir);
    return (f.kind === 'clear' && f.kek.id === id) || (f.kind === 'wrapped' && f.id === id);
  } catch {
    return false;
  }
}

/** A demoted node keeps nothing that opens the CA's key: the KEK, and init's copy of the key. */
export function forgetManagerSecrets(dataDir: string): void {
  for (const p of [kekPath(dataDir), certPaths(dataDir).caKey]) rmSync(p, { force: true });
}
