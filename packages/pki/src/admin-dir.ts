// An admin certificate directory (shoal --cert-path DIR: ca.pem, cert.pem, key.pem, Docker's
// names) written as one: the three files go into a fresh sibling directory, each fsynced, which is
// then renamed into place, so a crash or a full disk leaves no directory or a complete one, never
// a key without its certificate. A rename replaces only an empty directory, so DIR must be new or
// empty (an existing certificate is never overwritten).

import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ShoalError } from '@shoal/api';
import type { TlsMaterial } from './credentials.js';
import { fsyncDir, privateDir, writeFileSynced } from './files.js';

export const ADMIN_FILES = ['ca.pem', 'cert.pem', 'key.pem'] as const;

/** Why an admin certificate cannot be written to `dir`, or undefined if it can (new or empty). */
export function adminDirProblem(dir: string): string | undefined {
  if (!existsSync(dir)) return undefined;
  if (!statSync(dir).isDirectory()) return `${dir} is not a directory`;
  const entries = readdirSync(dir);
  if (entries.length === 0) return undefined;
  const taken = entries.filter((f) => (ADMIN_FILES as readonly string[]).includes(f));
  if (taken.length > 0) return `${dir} already holds ${taken.join(', ')}: choose an empty directory`;
  return `${dir} is not empty: choose an empty directory`;
}

/** The steps that write the directory, in order (a test stops after any one to model a crash). */
export function adminDirWriteSteps(dir: string, m: TlsMaterial): { tmp: string; steps: (() => void)[] } {
  const parent = dirname(dir);
  // Beside DIR (same file system, so the rename is atomic), hidden, unique per attempt.
  const tmp = join(parent, `.${basename(dir)}.tmp-${randomBytes(6).toString('hex')}`);
  const steps = [
    () => privateDir(tmp),
    () => writeFileSynced(join(tmp, 'ca.pem'), m.caPem, 0o644),
    () => writeFileSynced(join(tmp, 'cert.pem'), m.certPem, 0o644),
    () => writeFileSynced(join(tmp, 'key.pem'), m.keyPem, 0o600),
    () => fsyncDir(tmp),
    () => renameSync(tmp, dir),
    () => fsyncDir(parent),
  ];
  return { tmp, steps };
}

/** Admin credentials for `shoal --cert-path DIR`; DIR must be new or empty (adminDirProblem). */
export function writeAdminMaterial(dir: string, m: TlsMaterial): void {
  const problem = adminDirProblem(dir);
  if (problem) throw new ShoalError('ALREADY_EXISTS', problem);
  // The parent keeps its mode (a user's --out may be under any directory); a new one is private.
  mkdirSync(dirname(dir), { recursive: true, mode: 0o700 });
  const { tmp, steps } = adminDirWriteSteps(dir, m);
  try {
    for (const step of steps) step();
  } catch (err) {
    // A failed attempt leaves nothing of itself behind.
    rmSync(tmp, { recursive: true, force: true });
    throw new ShoalError('INTERNAL', `cannot write the admin certificate to ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
