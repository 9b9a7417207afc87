// What every control API handler shares: the manager's parts it works with, and the three ways it
// touches the store (a linearizable read, a commit, an optimistic read-modify-write), each turning
// a lost quorum into one plain UNAVAILABLE. Every failure is a ShoalError with a code.

import { ShoalError } from '@shoal/api';
import type { KeyEncryptionKey } from '@shoal/pki';
import type { RaftNode } from '@shoal/raft';
import type { ClusterStore, StoreClient } from '@shoal/store';
import type { MembershipManager } from '../membership.js';
import type { RegistryAuthVault } from '../registry-auth.js';
import type { SecretVault } from '../secret-vault.js';
import type { ImageResolver } from './image-pin.js';
import type { UiLogin } from './ui.js';

const WRITE_TIMEOUT_MS = 5_000;
export const READ_TIMEOUT_MS = 5_000;

export interface ControlContext {
  raft: RaftNode;
  store: ClusterStore;
  client: StoreClient;
  membership: MembershipManager;
  /** The CA's certificate and (unsealed) key, to sign with. */
  ca(): { certPem: string; keyPem: string };
  /** This manager's key-encryption key (autolock seals the unlock key with it). */
  kek(): KeyEncryptionKey;
  /** Seals a service's registry credentials (and opens them to pin its image on an update). */
  registryAuth: RegistryAuthVault;
  /** Seals secrets' data (`shoal secret create`). */
  secrets: SecretVault;
  /** This manager's engine pins images to digests (absent: no engine, images stay as given). */
  resolveImage?: ImageResolver;
  /** A one-time login to this manager's dashboard; undefined: it serves none (no --ui-addr). */
  uiLogin?: () => UiLogin | undefined;
  now(): number;
}

/**
 * The store after a read barrier. UNAVAILABLE (worth a retry) until the cluster object is in
 * it: `shoald init` serves this socket a moment before its first commit lands, and a joining
 * manager before it has caught up; an empty answer then would be a wrong one.
 */
export async function read(ctx: ControlContext, timeoutMs = READ_TIMEOUT_MS): Promise<ClusterStore> {
  try {
    await ctx.client.read({ timeoutMs });
  } catch (err) {
    throw quorumError(err);
  }
  if (!ctx.store.cluster()) throw new ShoalError('UNAVAILABLE', 'the cluster is still being initialized: try again in a moment');
  return ctx.store;
}

export async function commit(ctx: ControlContext, ops: Parameters<StoreClient['commit']>[0]): Promise<void> {
  try {
    await ctx.client.commit(ops, { timeoutMs: WRITE_TIMEOUT_MS });
  } catch (err) {
    throw quorumError(err);
  }
}

/** An optimistic read-modify-write (ops carry expectVersion), retried on a version conflict. */
export async function update(ctx: ControlContext, fn: Parameters<StoreClient['update']>[0]): Promise<void> {
  try {
    await ctx.client.update(fn, { retries: 5, timeoutMs: WRITE_TIMEOUT_MS, optimistic: true });
  } catch (err) {
    throw quorumError(err);
  }
}

export function required(v: string | undefined, what: string): string {
  if (!v) throw new ShoalError('INVALID_ARGUMENT', `a ${what} name or id is required`);
  return v;
}

/** A timeout while proposing or reading means no leader could be reached: say so plainly. */
export function quorumError(err: unknown): Error {
  if (err instanceof ShoalError && (err.code === 'UNAVAILABLE' || err.code === 'NOT_LEADER')) {
    return new ShoalError('UNAVAILABLE', `no quorum: the managers cannot elect a leader or reach it (${err.message})`);
  }
  return err as Error;
}
