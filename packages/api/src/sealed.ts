// The stored form of a secret sealed with the cluster's key-encryption key (@shoal/pki kek.ts):
// what the replicated store holds instead of the secret itself (the CA key today, secrets later).

export interface SealedSecret {
  /** The cipher; the only one so far. */
  alg: 'aes-256-gcm';
  /** Which key-encryption key sealed it (a key rotation or an autolock key names another). */
  kekId: string;
  /** 12 random bytes, base64. */
  nonce: string;
  /** Ciphertext followed by the 16-byte GCM tag, base64. */
  data: string;
}
