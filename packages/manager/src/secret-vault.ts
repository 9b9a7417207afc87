// A secret's data (`shoal secret create`) as the store holds it: sealed with the cluster's
// key-encryption key, bound to the cluster and to the secret's id (a sealed value copied into
// another secret, or another cluster, does not open). The control API seals it once; the leader's
// dispatcher opens it for a node that runs a task using it. Never logged, never in an error.

import type { SealedSecret } from '@shoal/api';
import { type KeyEncryptionKey, sealContext } from '@shoal/pki';

export class SecretVault {
  constructor(
    private readonly kek: () => KeyEncryptionKey,
    private readonly clusterId: () => string,
  ) {}

  // Sealed as base64: the KEK seals text, and a secret may be any bytes.
  seal(secretId: string, data: Uint8Array): SealedSecret {
    return this.kek().seal(Buffer.from(data).toString('base64'), sealContext.secret(this.clusterId(), secretId));
  }

  open(secretId: string, sealed: SealedSecret): Buffer {
    return Buffer.from(this.kek().open(sealed, sealContext.secret(this.clusterId(), secretId)), 'base64');
  }
}
