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

  // Binary: [lastIndex f64][count u32] then per key [keyLen u16][key][writes u32][hasValue u8][valueLen u32][value].
  snapshot(): Uint8Array {
    const parts: Buffer[] = [];
    const head = Buffer.alloc(12);
    head.writeDoubleBE(this.lastIndex, 0);
    head.writeUInt32BE(this.writes.size, 8);
    parts.push(head);
    for (const [k, n] of this.writes) {
      const key = Buffer.from(k);
      const v = this.values.get(k);
      const h = Buffer.alloc(2 + key.length + 9);
      h.writeUInt16BE(key.length, 0);
      key.copy(h, 2);
      h.writeUInt32BE(n, 2 + key.length);
      h[6 + key.length] = v ? 1 : 0;
      h.writeUInt32BE(v ? v.length : 0, 7 + key.length);
      parts.push(h);
      if (v) parts.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    }
    return Buffer.concat(parts);
  }

  restore(data: Uint8Array): void {
    this.values.clear();
    this.writes.clear();
    if (data.length === 0) return;
    const b = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.lastIndex = b.readDoubleBE(0);
    const count = b.readUInt32BE(8);
    let o = 12;
    for (let i = 0; i < count; i++) {
      const kl = b.readUInt16BE(o);
      const k = b.toString('utf8', o + 2, o + 2 + kl);
      o += 2 + kl;
      const n = b.readUInt32BE(o);
      const has = b[o + 4] === 1;
      const vl = b.readUInt32BE(o + 5);
      o += 9;
      this.writes.set(k, n);
      if (has) this.values.set(k, new Uint8Array(b.subarray(o, o + vl)));
      o += vl;
    }
  }
}
