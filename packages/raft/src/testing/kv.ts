// A small replicated key/value state machine, used by the multi-process tests, the benchmarks
// and the demo cluster. It counts how often each key was written, which lets tests prove that a
// retried command is applied exactly once.

import type { StateMachine } from '../node.js';

export type KvCommand =
  | { op: 'put'; key: string; value: Uint8Array }
  | { op: 'incr'; key: string };

const enc = new TextEncoder();
const dec = new TextDecoder();

export function encodeKv(c: KvCommand): Uint8Array {
  const key = enc.encode(c.key);
  const value = c.op === 'put' ? c.value : new Uint8Array(0);
  const out = new Uint8Array(1 + 2 + key.length + value.length);
  out[0] = c.op === 'put' ? 1 : 2;
  new DataView(out.buffer).setUint16(1, key.length);
  out.set(key, 3);
  out.set(value, 3 + key.length);
  return out;
}

export function decodeKv(b: Uint8Array): KvCommand {
  if (b.length < 3) throw new Error('kv command too short');
  const n = new DataView(b.buffer, b.byteOffset, b.byteLength).getUint16(1);
  if (3 + n > b.length) throw new Error('kv command key truncated');
  const key = dec.decode(b.subarray(3, 3 + n));
  if (b[0] === 1) return { op: 'put', key, value: b.slice(3 + n) };
  if (b[0] === 2) return { op: 'incr', key };
  throw new Error(`unknown kv op ${b[0]}`);
}

export class KvStateMachine implements StateMachine {
  readonly values = new Map<string, Uint8Array>();
  /** How many commands touched each key. */
  readonly writes = new Map<string, number>();
  lastIndex = 0;

  apply(command: Uint8Array, index: number): Uint8Array {
    this.lastIndex = index;
    let c: KvCommand;
    try {
      c = decodeKv(command);
    } catch (err) {
      return enc.encode(`error: ${(err as Error).message}`);
    }
    const n = (this.writes.get(c.key) ?? 0) + 1;
    this.writes.set(c.key, n);
    if (c.op === 'put') this.values.set(c.key, c.value);
    return enc.encode(String(n));
  }

  snapshot(): Uint8Array {
    const rows = [...this.values.keys()].map((k) => [k, Buffer.from(this.values.get(k)!).toString('base64'), this.writes.get(k) ?? 0]);
    for (const [k, n] of this.writes) if (!this.values.has(k)) rows.push([k, null as unknown as string, n]);
    return enc.encode(JSON.stringify({ lastIndex: this.lastIndex, rows }));
  }

  restore(data: Uint8Array): void {
    this.values.clear();
    this.writes.clear();
    if (data.length === 0) return;
    const v = JSON.parse(dec.decode(data)) as { lastIndex: number; rows: [string, string | null, number][] };
    this.lastIndex = v.lastIndex;
    for (const [k, b64, n] of v.rows) {
      if (b64 !== null) this.values.set(k, new Uint8Array(Buffer.from(b64, 'base64')));
      this.writes.set(k, n);
    }
  }
}
