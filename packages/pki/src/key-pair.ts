// A node's key and certificate on disk, replaced as one. Renewal writes the next pair beside the
// current one (node.key.next, node.crt.next, both fsynced) before renaming either into place, so
// whatever step a crash or power loss stops it at, a complete matching pair is on disk: the old
// one, the next one, or one file of each set named for the other. Loading finds that pair,
// finishes or discards the interrupted replacement, and refuses a key that does not match its
// certificate with a clear error instead of failing every TLS handshake later.

import { X509Certificate, createPrivateKey, createPublicKey } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { ShoalError } from '@shoal/api';
import { fsyncDir, writeFileSynced } from './files.js';

export interface KeyPairPaths {
  key: string;
  cert: string;
}

export interface KeyPair {
  keyPem: string;
  certPem: string;
}

const NEXT = '.next';

/** True if the private key is the one the certificate's public key belongs to. */
export function keyMatchesCert(keyPem: string, certPem: string): boolean {
  try {
    const fromKey = createPublicKey(createPrivateKey(keyPem)).export({ type: 'spki', format: 'der' });
    const fromCert = new X509Certificate(certPem).publicKey.export({ type: 'spki', format: 'der' });
    return fromKey.equals(fromCert);
  } catch {
    return false;
  }
}

/**
 * The steps that replace the pair, in order (writeKeyPair runs them all; a test stops after any
 * one of them to model a crash there).
 */
export function keyPairWriteSteps(paths: KeyPairPaths, pair: KeyPair): (() => void)[] {
  const dir = dirname(paths.key);
  return [
    () => writeFileSynced(paths.key + NEXT, pair.keyPem, 0o600),
    () => writeFileSynced(paths.cert + NEXT, pair.certPem, 0o644),
    () => fsyncDir(dir),
    () => renameSync(paths.key + NEXT, paths.key),
    () => renameSync(paths.cert + NEXT, paths.cert),
    () => fsyncDir(dir),
  ];
}

export function writeKeyPair(paths: KeyPairPaths, pair: KeyPair): void {
  if (!keyMatchesCert(pair.keyPem, pair.certPem)) throw new ShoalError('INTERNAL', 'the new certificate is not for the new key');
  for (const step of keyPairWriteSteps(paths, pair)) step();
}

function readIfThere(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

function notBefore(certPem: string): number {
  return Date.parse(new X509Certificate(certPem).validFrom);
}

/**
 * The node's pair, after an interrupted replacement is finished or undone: of the current and
 * next files, a key and certificate that match, the newest certificate first. The files are then
 * left as a plain current pair again.
 */
export function recoverKeyPair(paths: KeyPairPaths): KeyPair {
  // The next set first: on a tie (certificate times have one-second resolution) it wins.
  const keys = [paths.key + NEXT, paths.key].map((p) => ({ p, pem: readIfThere(p) })).filter((k) => k.pem !== undefined);
  const certs = [paths.cert + NEXT, paths.cert].map((p) => ({ p, pem: readIfThere(p) })).filter((c) => c.pem !== undefined);
  const pairs: { key: (typeof keys)[number]; cert: (typeof certs)[number]; at: number }[] = [];
  for (const cert of certs) {
    for (const key of keys) if (keyMatchesCert(key.pem!, cert.pem!)) pairs.push({ key, cert, at: notBefore(cert.pem!) });
  }
  pairs.sort((a, b) => b.at - a.at); // stable
  const best = pairs[0];
  if (!best) {
    for (const p of [paths.cert, paths.key]) {
      if (!existsSync(p)) throw new ShoalError('CORRUPT_DATA', `${p} is missing: this node has no certificate (re-join it)`);
    }
    throw new ShoalError(
      'CORRUPT_DATA',
      `${paths.key} does not match ${paths.cert} (their public keys differ) and no complete pair is left from an interrupted renewal: this node must join again`,
    );
  }
  let moved = false;
  if (best.key.p !== paths.key) {
    renameSync(best.key.p, paths.key);
    moved = true;
  }
  if (best.cert.p !== paths.cert) {
    renameSync(best.cert.p, paths.cert);
    moved = true;
  }
  for (const p of [paths.key + NEXT, paths.cert + NEXT]) {
    if (existsSync(p)) {
      rmSync(p, { force: true });
      moved = true;
    }
  }
  if (moved) fsyncDir(dirname(paths.key));
  return { keyPem: best.key.pem!, certPem: best.cert.pem! };
}
