// The size bound of a transaction: one Raft entry each, so one must never come near what the
// Raft transport can carry (4 MiB a message): an entry too large for a follower wedges the
// cluster for good. Every proposer goes through StoreClient.commit, which checks this before
// proposing; writers of many ops (the orchestrator) split their work to stay under it.

import { ShoalError } from '@shoal/api';
import { MAX_PROPOSAL_BYTES } from '@shoal/raft';
import type { Op } from './tx.js';

/**
 * The largest transaction (encoded bytes) the store client proposes: Raft's own proposal bound,
 * so a transaction this check lets through is never refused by the driver.
 */
export const MAX_TX_BYTES = MAX_PROPOSAL_BYTES;

/**
 * The largest service spec (encoded bytes). A quarter of a transaction: a service object holds
 * its spec and its previous one, and the orchestrator replaces a task (the old task's spec and
 * the new one's) in one transaction; both must fit with room to spare.
 */
export const MAX_SPEC_BYTES = MAX_TX_BYTES / 4;

const enc = new TextEncoder();

/** The UTF-8 length of a value's JSON. */
export function jsonBytes(v: unknown): number {
  const s = JSON.stringify(v) ?? '';
  // Byte length without materializing the bytes (ASCII JSON is the common case).
  return Buffer.byteLength(s, 'utf8');
}

/** A size for people: 812 B, 300.0 KiB, 5.0 MiB. */
export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1 << 20) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / (1 << 20)).toFixed(1)} MiB`;
}

/** What an op writes, in words: `service "web"`, `node "host1"`, `task abc...`. */
function nameOf(op: Op): string {
  if (op.op === 'delete' || op.op === 'status') return `${op.kind} ${op.id}`;
  const o = op.object as { id?: string; spec?: { name?: unknown }; description?: { hostname?: unknown } };
  if (op.kind === 'service' && typeof o.spec?.name === 'string') return `service "${o.spec.name}"`;
  if (op.kind === 'node' && typeof o.description?.hostname === 'string' && o.description.hostname) return `node "${o.description.hostname}"`;
  return `${op.kind} ${o.id ?? '(no id)'}`;
}

/**
 * Throws ShoalError RESOURCE_EXHAUSTED if `ops` (whose encoding is `encodedBytes` long) may not
 * be proposed: a service spec over MAX_SPEC_BYTES, or the whole over MAX_TX_BYTES. The message
 * names the object at fault and the sizes.
 */
export function checkTxSize(ops: readonly Op[], encodedBytes: number): void {
  for (const op of ops) {
    if (op.kind !== 'service' || op.op === 'delete') continue;
    const spec = (op.object as { spec?: unknown }).spec;
    // Cheap first: only a large op can hold a large spec.
    if (spec === undefined || encodedBytes <= MAX_SPEC_BYTES) continue;
    const n = jsonBytes(spec);
    if (n > MAX_SPEC_BYTES) {
      throw new ShoalError(
        'RESOURCE_EXHAUSTED',
        `${nameOf(op)} is too large: its spec is ${formatBytes(n)} encoded, over the ${formatBytes(MAX_SPEC_BYTES)} a service spec may take (env, labels, args...)`,
      );
    }
  }
  if (encodedBytes <= MAX_TX_BYTES) return;
  let largest = ops[0]!;
  let largestBytes = 0;
  for (const op of ops) {
    const n = jsonBytes(op);
    if (n > largestBytes) [largest, largestBytes] = [op, n];
  }
  if (largestBytes > MAX_TX_BYTES / 2 || ops.length === 1) {
    throw new ShoalError(
      'RESOURCE_EXHAUSTED',
      `${nameOf(largest)} is too large: ${formatBytes(largestBytes)} encoded, and a transaction may take at most ${formatBytes(MAX_TX_BYTES)}`,
    );
  }
  throw new ShoalError(
    'RESOURCE_EXHAUSTED',
    `a transaction of ${ops.length} ops is ${formatBytes(encodedBytes)} encoded, over the ${formatBytes(MAX_TX_BYTES)} limit: it must be split`,
  );
}

/** The encoded size of a transaction of ops whose own encodings take `opBytes` in all. */
export function txBytes(opCount: number, opBytes: number): number {
  // {"ops":[ ... ]} and the commas between ops.
  return enc.encode('{"ops":[]}').length + opBytes + Math.max(0, opCount - 1);
}
