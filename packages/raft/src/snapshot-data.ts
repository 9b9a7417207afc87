// The driver's snapshot payload: the client session table (replicated with the log, so it must be
// restored with the state it answers for) in front of the state machine's own bytes:
//   [header length u32][header JSON: {format, sessions}][state machine bytes]

import { ShoalError } from '@shoal/api';
import { SessionTable } from './session.js';

const SNAPSHOT_FORMAT = 1;

/** The state machine's state taken at one applied index, to be encoded later (see captureSnapshot). */
export interface SnapshotCapture {
  /** The captured state's bytes; may take many event-loop turns. */
  encode(): Promise<Uint8Array>;
}

/** The replicated application. Must be deterministic: every member applies the same commands. */
export interface StateMachine {
  /** Apply a committed command and return the answer for its proposer. */
  apply(command: Uint8Array, index: number): Uint8Array;
  snapshot(): Uint8Array;
  restore(data: Uint8Array): void;
  /**
   * Optional, for a large state: take the state at the current index (synchronously, cheaply) and
   * encode it later, off the Ready loop and without holding the event loop for long, while later
   * commands apply. The bytes must be those snapshot() returns at the time of the capture.
   */
  captureSnapshot?(): SnapshotCapture;
  /**
   * Optional, for a large state: restore() in steps that let the event loop turn. The state must
   * look unchanged until the promise resolves and then switch at once; on a corrupt snapshot it
   * rejects and keeps the current state. The driver applies nothing while it runs.
   */
  restoreAsync?(data: Uint8Array): Promise<void>;
}

/**
 * Takes the snapshot payload at the current applied index: the session table now (it is small),
 * the state machine's state now, and the encoding of the latter whenever encode() runs.
 */
export function captureSnapshotData(sessions: SessionTable, sm: StateMachine): SnapshotCapture {
  const head = Buffer.from(JSON.stringify({ format: SNAPSHOT_FORMAT, sessions: sessions.toJSON() }));
  if (sm.captureSnapshot) {
    const captured = sm.captureSnapshot();
    return { encode: async () => frame(head, await captured.encode()) };
  }
  const body = sm.snapshot();
  return { encode: async () => frame(head, body) };
}

/** Bytes copied between two event-loop turns: a copy of 100 MB into fresh memory takes seconds on a busy host. */
const COPY_STEP_BYTES = 4 << 20;

async function frame(head: Buffer, body: Uint8Array): Promise<Uint8Array> {
  // Every byte is written below: no need to zero tens of MB first.
  const out = Buffer.allocUnsafe(4 + head.length + body.length);
  out.writeUInt32BE(head.length, 0);
  head.copy(out, 4);
  const src = Buffer.from(body.buffer, body.byteOffset, body.byteLength);
  for (let off = 0; off < src.length; off += COPY_STEP_BYTES) {
    src.copy(out, 4 + head.length + off, off, Math.min(src.length, off + COPY_STEP_BYTES));
    if (off + COPY_STEP_BYTES < src.length) await new Promise<void>((resolve) => setImmediate(resolve));
  }
  return new Uint8Array(out.buffer, out.byteOffset, out.byteLength);
}

/** Restores the state machine from a payload (asynchronously if it can) and returns its session table. */
export async function restoreSnapshotData(data: Uint8Array, sm: StateMachine): Promise<SessionTable> {
  const buf = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (buf.length < 4) throw new ShoalError('CORRUPT_DATA', 'snapshot data is truncated');
  const n = buf.readUInt32BE(0);
  if (4 + n > buf.length) throw new ShoalError('CORRUPT_DATA', 'snapshot header is truncated');
  let head: { format: number; sessions: unknown };
  try {
    head = JSON.parse(buf.subarray(4, 4 + n).toString('utf8'));
  } catch {
    throw new ShoalError('CORRUPT_DATA', 'snapshot header is not valid JSON');
  }
  if (head.format !== SNAPSHOT_FORMAT) throw new ShoalError('CORRUPT_DATA', `unknown snapshot format ${head.format}`);
  const sessions = SessionTable.fromJSON(head.sessions);
  // A view, not a copy (new Uint8Array(view) would copy it all at once).
  const body = buf.subarray(4 + n);
  if (sm.restoreAsync) await sm.restoreAsync(body);
  else sm.restore(body);
  return sessions;
}
