// The store's snapshot format, written and read in steps. A snapshot of tens of thousands of
// objects takes hundreds of milliseconds to encode and more to validate; done in one piece it
// would hold the event loop (and Raft's heartbeats) for longer than an election timeout. So both
// directions are generators that yield every few hundred objects: run them to completion for the
// synchronous API, or with runStepsAsync to let the event loop turn between steps.
//
// Version 2 (written): a header line, then one line per object, kinds in OBJECT_KINDS order, each
// kind sorted by id:
//   {"format":"shoal-store","version":2,"index":42,"counts":{"cluster":1,"node":3,"service":2,"task":9}}
//   {...cluster...}
//   {...node...}
// The counts say which kind each line is and catch a truncated snapshot. JSON never holds a raw
// newline, and 0x0a is never part of a multi-byte UTF-8 sequence, so lines split on bytes.
// Version 1 (still read: snapshots already on disk): one JSON document
//   {"format":"shoal-store","version":1,"index":42,"objects":{"cluster":[...],...}}

import { ShoalError } from '@shoal/api';
import { State } from './state.js';
import type { ObjectKind, Service, StoreObject, Task } from './types.js';
import { shareServiceSpec } from './shared-specs.js';
import { OBJECT_KINDS, isObjectKind, normalize } from './validate.js';

export const SNAPSHOT_FORMAT = 'shoal-store';
export const SNAPSHOT_VERSION = 2;
/** The single-document format of earlier releases: read, never written. */
export const SNAPSHOT_VERSION_V1 = 1;

/** Objects per step: a step stays around ten milliseconds for the typical task. */
const ENCODE_STEP_OBJECTS = 500;
const PARSE_STEP_OBJECTS = 200;
/** Bytes per step, so that a few very large objects cannot make one long step either. */
const STEP_BYTES = 1 << 20;
const JOIN_STEP_BYTES = 4 << 20;

/** Work done in steps: each `yield` is a point where the event loop may run. */
export type Steps<T> = Generator<void, T, void>;

export function runSteps<T>(steps: Steps<T>): T {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
  }
}

/** Runs the steps with an event-loop turn (I/O, timers) between each two. */
export async function runStepsAsync<T>(steps: Steps<T>): Promise<T> {
  for (;;) {
    const r = steps.next();
    if (r.done) return r.value;
    await new Promise<void>((resolve) => setImmediate(resolve));
  }
}

/**
 * The state at one index. Stored objects are frozen and replaced (never changed) by later
 * transactions, so holding the references keeps this exact state while the store moves on.
 */
export interface CapturedState {
  readonly index: number;
  readonly objects: { readonly [K in ObjectKind]: StoreObject[] };
}

export function captureState(state: State): CapturedState {
  const objects = {} as { [K in ObjectKind]: StoreObject[] };
  for (const kind of OBJECT_KINDS) objects[kind] = [...state.objects[kind].values()];
  return { index: state.index, objects };
}

const byId = (a: StoreObject, b: StoreObject) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Canonical bytes (equal states give equal bytes on every member), in the current version. */
export function* encodeSnapshot(c: CapturedState): Steps<Uint8Array> {
  const counts = {} as Record<ObjectKind, number>;
  for (const kind of OBJECT_KINDS) counts[kind] = c.objects[kind].length;
  const parts: Buffer[] = [
    Buffer.from(JSON.stringify({ format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, index: c.index, counts }) + '\n'),
  ];
  let chunk = '';
  let n = 0;
  for (const kind of OBJECT_KINDS) {
    // Sorting the captured list (ours alone) in place: a second encode finds it sorted.
    const list = c.objects[kind].sort(byId);
    yield;
    for (const obj of list) {
      chunk += JSON.stringify(obj) + '\n';
      if (++n >= ENCODE_STEP_OBJECTS || chunk.length >= STEP_BYTES) {
        parts.push(Buffer.from(chunk));
        chunk = '';
        n = 0;
        yield;
      }
    }
  }
  parts.push(Buffer.from(chunk));
  // Joined in steps too: one copy of tens of MB into fresh memory can take tens of milliseconds.
  let total = 0;
  for (const p of parts) total += p.length;
  const out = Buffer.allocUnsafe(total);
  let off = 0;
  let copied = 0;
  for (const p of parts) {
    p.copy(out, off);
    off += p.length;
    copied += p.length;
    if (copied >= JOIN_STEP_BYTES) {
      copied = 0;
      yield;
    }
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

function corrupt(message: string): ShoalError {
  return new ShoalError('CORRUPT_DATA', `store snapshot: ${message}`);
}

const utf8 = new TextDecoder('utf-8', { fatal: true });

function parseJson(bytes: Uint8Array, what: string): unknown {
  try {
    return JSON.parse(utf8.decode(bytes));
  } catch (err) {
    throw corrupt(`${what} is not valid UTF-8 JSON (${(err as Error).message})`);
  }
}

interface Header {
  format?: unknown;
  version?: unknown;
  index?: unknown;
  counts?: unknown;
  objects?: unknown;
}

function checkHeader(v: unknown, version: number): { h: Header; index: number } {
  const h = v as Header | null;
  if (typeof h !== 'object' || h === null || Array.isArray(h)) throw corrupt('not an object');
  if (h.format !== SNAPSHOT_FORMAT) throw corrupt(`unknown format ${JSON.stringify(h.format)}`);
  if (h.version !== version) throw corrupt(`unsupported version ${JSON.stringify(h.version)}`);
  const index = h.index;
  if (typeof index !== 'number' || !Number.isSafeInteger(index) || index < 0) throw corrupt('bad index');
  return { h, index };
}

/** Kinds added after a snapshot format's version: a snapshot written before them has none. */
const ADDED_KINDS: ReadonlySet<ObjectKind> = new Set(['network', 'secret', 'config']);

/** A kind-keyed record holding exactly the known kinds. */
function checkKinds(v: unknown, what: string): Record<ObjectKind, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw corrupt(`missing ${what}`);
  for (const k of Object.keys(v)) if (!isObjectKind(k)) throw corrupt(`unknown object kind ${JSON.stringify(k)}`);
  return v as Record<ObjectKind, unknown>;
}

/**
 * Parses and validates a snapshot (either version) into a fresh State, nothing shared with the
 * caller's: the caller swaps it in whole, so the store is never seen half restored. Throws
 * ShoalError CORRUPT_DATA on anything wrong.
 */
export function* parseSnapshot(data: Uint8Array): Steps<State> {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  const nl = buf.indexOf(0x0a);
  if (nl < 0) return yield* parseV1(buf);
  const { h, index } = checkHeader(parseJson(buf.subarray(0, nl), 'the header'), SNAPSHOT_VERSION);
  const counts = checkKinds(h.counts, 'counts');
  const state = new State();
  state.index = index;
  let pos = nl + 1;
  let n = 0;
  let bytes = 0;
  for (const kind of OBJECT_KINDS) {
    const count = counts[kind] ?? (ADDED_KINDS.has(kind) ? 0 : undefined);
    if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) throw corrupt(`bad count of ${kind}`);
    for (let i = 0; i < count; i++) {
      const end = buf.indexOf(0x0a, pos);
      if (end < 0) throw corrupt(`truncated: ${kind} ${i + 1} of ${count} is missing`);
      addObject(state, kind, parseJson(buf.subarray(pos, end), `${kind} ${i + 1}`));
      bytes += end + 1 - pos;
      pos = end + 1;
      if (++n >= PARSE_STEP_OBJECTS || bytes >= STEP_BYTES) {
        n = 0;
        bytes = 0;
        yield;
      }
    }
  }
  if (pos !== buf.length) throw corrupt('data after the last object');
  return state;
}

/** The earlier single-document form: parsed in one piece (it is one JSON value), validated in steps. */
function* parseV1(buf: Buffer): Steps<State> {
  const { h, index } = checkHeader(parseJson(buf, 'the snapshot'), SNAPSHOT_VERSION_V1);
  const objects = checkKinds(h.objects, 'objects');
  const state = new State();
  state.index = index;
  let n = 0;
  for (const kind of OBJECT_KINDS) {
    const list = objects[kind] ?? (ADDED_KINDS.has(kind) ? [] : undefined);
    if (!Array.isArray(list)) throw corrupt(`objects.${kind} must be an array`);
    for (const raw of list) {
      addObject(state, kind, raw);
      if (++n >= PARSE_STEP_OBJECTS) {
        n = 0;
        yield;
      }
    }
  }
  return state;
}

function addObject(state: State, kind: ObjectKind, raw: unknown): void {
  let obj: StoreObject;
  try {
    obj = normalize(kind, raw);
  } catch (err) {
    throw corrupt(`bad ${kind}: ${(err as Error).message}`);
  }
  // Services come before tasks in a snapshot.
  if (kind === 'task') obj = shareServiceSpec(obj as Task, state.get('service', (obj as Task).serviceId));
  if (obj.version > state.index) throw corrupt(`${kind} ${obj.id} has version ${obj.version}, past the snapshot index ${state.index}`);
  if (state.get(kind, obj.id)) throw corrupt(`duplicate ${kind} ${obj.id}`);
  if (kind === 'cluster' && state.objects.cluster.size > 0) throw corrupt('more than one cluster object');
  if (kind === 'service') {
    const owner = state.serviceByName.get((obj as Service).spec.name);
    if (owner !== undefined) throw corrupt(`services ${owner} and ${obj.id} share the name "${(obj as Service).spec.name}"`);
  }
  state.put(kind, obj);
}
