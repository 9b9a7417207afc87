// The cluster's key-encryption key (KEK): seals the secrets the replicated store holds (the CA's
// private key; user secrets later) with AES-256-GCM, so the Raft log, the snapshots and the
// LevelDB files of every manager hold only ciphertext (Swarm's model of secrets at rest); and a
// service's registry credentials (`--with-registry-auth`), opened by the leader's dispatcher for
// the node that runs one of its tasks.
//
// The key never enters Raft. Each manager keeps it in DATA_DIR/certificates/kek.json (0600), apart
// from DATA_DIR/raft: `shoald init` creates it, and a node gets it only when it becomes a manager
// (in the answer to a join with the manager token, and in every certificate renewal that issues a
// manager certificate, so a promoted worker has it before its manager starts), over TLS pinned to
// the cluster's CA. Workers never hold it; a demoted node deletes its copy. With autolock on, the
// file holds it wrapped by an unlock key the operator holds (unlock-key.ts, kek-file.ts).

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { type SealedSecret, ShoalError } from '@shoal/api';

const ALG = 'aes-256-gcm';
const KEY_BYTES = 32;
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const ID_RE = /^[0-9a-f]{16}$/;

/** What a sealed value is for (the GCM associated data): one sealed value cannot stand in for another. */
export const sealContext = {
  caKey: (clusterId: string) => `shoal/ca-key/${clusterId}`,
  /** The cluster's unlock key (autolock), which every unlocked manager reads to wrap its kek.json. */
  unlockKey: (clusterId: string) => `shoal/unlock-key/${clusterId}`,
  /** A service's registry credentials (`--with-registry-auth`): opened for that service's tasks only. */
  registryAuth: (clusterId: string, serviceId: string) => `shoal/registry-auth/${clusterId}/${serviceId}`,
  /** A secret's data (`shoal secret create`): opened for the nodes running a task that uses it. */
  secret: (clusterId: string, secretId: string) => `shoal/secret/${clusterId}/${secretId}`,
};

export class KeyEncryptionKey {
  private constructor(
    readonly id: string,
    private readonly key: Buffer,
  ) {}

  static generate(): KeyEncryptionKey {
    return new KeyEncryptionKey(randomBytes(8).toString('hex'), randomBytes(KEY_BYTES));
  }

  /** The serialized form (the file's content, and what a new manager is sent). */
  static parse(text: string, where: string): KeyEncryptionKey {
    let v: { format?: unknown; id?: unknown; key?: unknown };
    try {
      v = JSON.parse(text) as typeof v;
    } catch {
      throw new ShoalError('CORRUPT_DATA', `${where} is not a key-encryption key (not JSON)`);
    }
    const key = typeof v?.key === 'string' ? Buffer.from(v.key, 'base64') : Buffer.alloc(0);
    if (v?.format !== 1 || typeof v.id !== 'string' || !ID_RE.test(v.id) || key.length !== KEY_BYTES) {
      throw new ShoalError('CORRUPT_DATA', `${where} is not a key-encryption key (want format 1, a 16-hex-digit id and a 32-byte key)`);
    }
    return new KeyEncryptionKey(v.id, key);
  }

  serialize(): string {
    return `${JSON.stringify({ format: 1, id: this.id, key: this.key.toString('base64') })}\n`;
  }

  seal(plaintext: string, context: string): SealedSecret {
    const nonce = randomBytes(NONCE_BYTES);
    const c = createCipheriv(ALG, this.key, nonce);
    c.setAAD(Buffer.from(context));
    const data = Buffer.concat([c.update(plaintext, 'utf8'), c.final(), c.getAuthTag()]);
    return { alg: ALG, kekId: this.id, nonce: nonce.toString('base64'), data: data.toString('base64') };
  }

  open(sealed: SealedSecret, context: string): string {
    if (sealed.alg !== ALG) throw new ShoalError('CORRUPT_DATA', `a sealed value uses an unknown cipher ${sealed.alg}`);
    if (sealed.kekId !== this.id) {
      throw new ShoalError('FAILED_PRECONDITION', `the value was sealed with key-encryption key ${sealed.kekId}; this manager holds ${this.id}`);
    }
    const nonce = Buffer.from(sealed.nonce, 'base64');
    const data = Buffer.from(sealed.data, 'base64');
    if (nonce.length !== NONCE_BYTES || data.length < TAG_BYTES) throw new ShoalError('CORRUPT_DATA', 'a sealed value is truncated');
    try {
      const d = createDecipheriv(ALG, this.key, nonce);
      d.setAAD(Buffer.from(context));
      d.setAuthTag(data.subarray(data.length - TAG_BYTES));
      return Buffer.concat([d.update(data.subarray(0, data.length - TAG_BYTES)), d.final()]).toString('utf8');
    } catch {
      throw new ShoalError('CORRUPT_DATA', `a sealed value (${context}) fails its integrity check: damaged, or sealed for something else`);
    }
  }
}
