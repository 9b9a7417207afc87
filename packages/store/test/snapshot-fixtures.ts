// Reading snapshots in tests: the objects of a current-version snapshot, and the same state in the
// version-1 form (one JSON document) that earlier releases wrote.

import { OBJECT_KINDS, type ObjectKind, type StoreObject } from '../src/types.js';

export interface SnapshotContents {
  header: { format: string; version: number; index: number; counts: Record<ObjectKind, number> };
  objects: Record<ObjectKind, StoreObject[]>;
}

export function readSnapshot(data: Uint8Array): SnapshotContents {
  const lines = Buffer.from(data).toString('utf8').split('\n');
  assertEnd(lines.pop());
  const header = JSON.parse(lines.shift()!) as SnapshotContents['header'];
  const objects = {} as SnapshotContents['objects'];
  for (const kind of OBJECT_KINDS) {
    objects[kind] = lines.splice(0, header.counts[kind]).map((l) => JSON.parse(l) as StoreObject);
  }
  if (lines.length > 0) throw new Error(`${lines.length} lines past the counts`);
  return { header, objects };
}

function assertEnd(last: string | undefined): void {
  if (last !== '') throw new Error('a snapshot ends with a newline');
}

/** The version-1 document of the same state, as an earlier release wrote it. */
export function toV1(data: Uint8Array): string {
  const { header, objects } = readSnapshot(data);
  return JSON.stringify({ format: header.format, version: 1, index: header.index, objects });
}
