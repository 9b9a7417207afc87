// A service's registry credentials (`--with-registry-auth`): what the control API takes from a
// request (Docker's AuthConfig JSON, as the CLI read it from the Docker client's config), how it
// is sealed into the service spec with the cluster's key-encryption key (the store, the Raft log
// and the snapshots hold only ciphertext), and how the leader's dispatcher opens it for the node
// that runs one of the service's tasks. The credentials never go into a log line or an error
// message: a bad one is refused by naming the field, never by quoting it.

import { ShoalError, type SealedSecret } from '@shoal/api';
import { type KeyEncryptionKey, sealContext } from '@shoal/pki';

/** Docker's AuthConfig, the fields a registry login has (the X-Registry-Auth header's JSON). */
export type RegistryAuth = {
  username?: string;
  password?: string;
  serveraddress?: string;
  identitytoken?: string;
  registrytoken?: string;
};

const FIELDS: readonly (keyof RegistryAuth)[] = ['username', 'password', 'serveraddress', 'identitytoken', 'registrytoken'];
/** Bytes of a request's registry_auth at most (a registry token is a JWT: a few KiB). */
const MAX_BYTES = 64 * 1024;

const bad = (why: string) => new ShoalError('INVALID_ARGUMENT', `registry_auth ${why}`);

/**
 * A request's registry_auth: undefined when the request has none (an update keeps the service's),
 * null for an empty login ("{}": docker's client sends that when its config has no credentials
 * for the registry; the service then pulls anonymously), else the login with its fields checked.
 */
export function parseRegistryAuth(text: string | undefined): RegistryAuth | null | undefined {
  if (!text) return undefined;
  if (Buffer.byteLength(text) > MAX_BYTES) throw bad(`is larger than ${MAX_BYTES} bytes`);
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw bad("is not JSON (want Docker's AuthConfig: username, password, serveraddress, identitytoken)");
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw bad("is not a JSON object (want Docker's AuthConfig)");
  const out: RegistryAuth = {};
  for (const [k, x] of Object.entries(v)) {
    if (!(FIELDS as readonly string[]).includes(k)) throw bad(`has an unknown field ${JSON.stringify(k.slice(0, 40))} (known: ${FIELDS.join(', ')})`);
    if (typeof x !== 'string') throw bad(`field ${k} is not a string`);
    if (x !== '') out[k as keyof RegistryAuth] = x;
  }
  if (!out.username && !out.password && !out.identitytoken && !out.registrytoken) return null;
  if (out.password && !out.username) throw bad('has a password without a username');
  return out;
}

/** Seals and opens registry credentials with the cluster's key-encryption key, bound to their service. */
export class RegistryAuthVault {
  constructor(
    private readonly kek: () => KeyEncryptionKey,
    private readonly clusterId: () => string,
  ) {}

  seal(serviceId: string, auth: RegistryAuth): SealedSecret {
    return this.kek().seal(JSON.stringify(auth), sealContext.registryAuth(this.clusterId(), serviceId));
  }

  /** The credentials as Docker's AuthConfig JSON (what the agent hands its engine). */
  open(serviceId: string, sealed: SealedSecret): string {
    return this.kek().open(sealed, sealContext.registryAuth(this.clusterId(), serviceId));
  }
}
