// Autolock: the unlock key the operator holds, and the key-encryption key file it wraps.
//
// With autolock on, a manager's DATA_DIR/certificates/kek.json holds the cluster's KEK only
// wrapped (AES-256-GCM under a key derived from the unlock key with HKDF-SHA256 and a per-file
// salt), so a disk or a backup alone opens nothing the store seals: the manager starts locked and
// `shoal swarm unlock` brings the key (Swarm's model for its TLS key and raft DEK). The unlock key
// is random (256 bits), so HKDF suffices: there is no password to stretch. The wrapped file keeps
// the KEK's id in the clear (it is in every sealed value the store holds anyway): a renewal that
// brings the same KEK leaves the file wrapped.

import { createCipheriv, createDecipheriv, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import { ShoalError } from '@shoal/api';
import { KeyEncryptionKey } from './kek.js';

/** Docker's form: SWMKEY-1- and the key in unpadded base64. */
export const UNLOCK_KEY_PREFIX = 'SWMKEY-1-';
/** What a wrong, mistyped or damaged unlock key gets: one line, never which part was wrong. */
export const INVALID_UNLOCK_KEY = 'invalid unlock key';

const KEY_BYTES = 32;
const SALT_BYTES = 16;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ALG = 'aes-256-gcm';
const KDF = 'hkdf-sha256';
const WRAPPED_FORMAT = 2;

/** kek.json when wrapped: only the KEK's id is readable. */
export interface WrappedKekFile {
  format: typeof WRAPPED_FORMAT;
  id: string;
  kdf: typeof KDF;
  salt: string;
  alg: typeof ALG;
  nonce: string;
  data: string;
}

export class UnlockKey {
  private constructor(private readonly key: Buffer) {}

  static generate(): UnlockKey {
    return new UnlockKey(randomBytes(KEY_BYTES));
  }

  /** A key as the operator types or pastes it (surrounding white space ignored). */
  static parse(text: string): UnlockKey {
    const t = text.trim();
    if (!t.startsWith(UNLOCK_KEY_PREFIX)) throw new ShoalError('INVALID_ARGUMENT', INVALID_UNLOCK_KEY);
    const b64 = t.slice(UNLOCK_KEY_PREFIX.length);
    const key = Buffer.from(b64, 'base64');
    // Buffer.from skips what is not base64: a round trip catches a mistyped character.
    if (key.length !== KEY_BYTES || key.toString('base64').replace(/=+$/, '') !== b64.replace(/=+$/, '')) {
      throw new ShoalError('INVALID_ARGUMENT', INVALID_UNLOCK_KEY);
    }
    return new UnlockKey(key);
  }

  toString(): string {
    return UNLOCK_KEY_PREFIX + this.key.toString('base64').replace(/=+$/, '');
  }

  equals(other: UnlockKey): boolean {
    return timingSafeEqual(this.key, other.key);
  }

  /** kek.json's content with `kek` wrapped by this key (a new salt and nonce each time). */
  wrap(kek: KeyEncryptionKey): string {
    const salt = randomBytes(SALT_BYTES);
    const nonce = randomBytes(NONCE_BYTES);
    const c = createCipheriv(ALG, this.wrappingKey(salt), nonce);
    c.setAAD(aad(kek.id));
    const data = Buffer.concat([c.update(kek.serialize(), 'utf8'), c.final(), c.getAuthTag()]);
    const file: WrappedKekFile = {
      format: WRAPPED_FORMAT,
      id: kek.id,
      kdf: KDF,
      salt: salt.toString('base64'),
      alg: ALG,
      nonce: nonce.toString('base64'),
      data: data.toString('base64'),
    };
    return `${JSON.stringify(file)}\n`;
  }

  /** The KEK a wrapped file holds; INVALID_ARGUMENT `invalid unlock key` if this key does not open it. */
  unwrap(file: WrappedKekFile, where: string): KeyEncryptionKey {
    const salt = Buffer.from(file.salt, 'base64');
    const nonce = Buffer.from(file.nonce, 'base64');
    const data = Buffer.from(file.data, 'base64');
    if (salt.length !== SALT_BYTES || nonce.length !== NONCE_BYTES || data.length <= TAG_BYTES) {
      throw new ShoalError('CORRUPT_DATA', `${where} is a wrapped key-encryption key that is truncated`);
    }
    let plain: string;
    try {
      const d = createDecipheriv(ALG, this.wrappingKey(salt), nonce);
      d.setAAD(aad(file.id));
      d.setAuthTag(data.subarray(data.length - TAG_BYTES));
      plain = Buffer.concat([d.update(data.subarray(0, data.length - TAG_BYTES)), d.final()]).toString('utf8');
    } catch {
      // A wrong key and a damaged file look the same to GCM: the operator tries the key again first.
      throw new ShoalError('INVALID_ARGUMENT', INVALID_UNLOCK_KEY);
    }
    const kek = KeyEncryptionKey.parse(plain, where);
    if (kek.id !== file.id) throw new ShoalError('CORRUPT_DATA', `${where} names key ${file.id} but holds ${kek.id}`);
    return kek;
  }

  private wrappingKey(salt: Buffer): Buffer {
    return Buffer.from(hkdfSync('sha256', this.key, salt, 'shoal/kek-wrap/v1', KEY_BYTES));
  }
}

/** The wrapped file's id is bound to its ciphertext: the id in the clear cannot be swapped. */
const aad = (id: string) => Buffer.from(`shoal/kek-file/${id}`);

/** Whether parsed JSON is a wrapped kek.json (the checks that matter before unwrapping). */
export function isWrappedKekFile(v: unknown): v is WrappedKekFile {
  const f = v as Partial<WrappedKekFile> | null;
  return (
    typeof f === 'object' &&
    f !== null &&
    f.format === WRAPPED_FORMAT &&
    typeof f.id === 'string' &&
    /^[0-9a-f]{16}$/.test(f.id) &&
    f.kdf === KDF &&
    f.alg === ALG &&
    typeof f.salt === 'string' &&
    typeof f.nonce === 'string' &&
    typeof f.data === 'string'
  );
}
