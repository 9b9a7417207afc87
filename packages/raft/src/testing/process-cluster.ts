// Spawns and drives a cluster of node-process members (see node-process.ts) on loopback. Used by
// the multi-process tests, the benchmarks and the demo cluster script.

import { type ChildProcess, fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NodeEvent, NodeRequest } from './node-process.js';

const ENTRY = join(fileURLToPath(new URL('.', import.meta.url)), 'node-process.js');

type Req = NodeRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

export class ProcessError extends Error {
  constructor(message: string, readonly code?: string) {
    super(message);
  }
}

/** A free TCP port on 127.0.0.1 (bound briefly by the OS, then released). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class MemberProcess {
  private child: ChildProcess | undefined;
  private nextReq = 1;
  private pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  /** Leadership changes this member observed, with the wall-clock time it saw them. */
  readonly leaderEvents: { leader: string; term: number; at: number }[] = [];
  private listeners: ((e: NodeEvent) => void)[] = [];

  constructor(
    readonly id: string,
    readonly addr: string,
    readonly dataDir: string,
    private readonly args: string[],
    /** The member's program: node-process.js, or another that speaks its IPC protocol. */
    private readonly entry = ENTRY,
  ) {}

  get running(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  async start(extraArgs: string[] = []): Promise<void> {
    const child = fork(this.entry, ['--id', this.id, '--addr', this.addr, '--data-dir', this.dataDir, ...this.args, ...extraArgs], {
      stdio: ['ignore', 'inherit', process.env.SHOAL_TEST_LOGS ? 'inherit' : 'ignore', 'ipc'],
      env: { ...process.env, SHOAL_LOG_LEVEL: process.env.SHOAL_LOG_LEVEL ?? 'warn' },
    });
    this.child = child;
    child.on('message', (e: NodeEvent) => {
      if (e.ev === 'reply') {
        const p = this.pending.get(e.id);
        if (!p) return;
        this.pending.delete(e.id);
        if (e.ok) p.resolve(e.value);
        else p.reject(new ProcessError(e.error, e.code));
      } else if (e.ev === 'leader') {
        this.leaderEvents.push({ leader: e.leader, term: e.term, at: e.at });
      }
      for (const l of this.listeners) l(e);
    });
    child.on('exit', () => {
      for (const p of this.pending.values()) p.reject(new ProcessError(`member ${this.id} exited`, 'UNAVAILABLE'));
      this.pending.clear();
    });
    await new Promise<void>((resolve, reject) => {
      const onEv = (e: NodeEvent) => {
        if (e.ev === 'ready') {
          this.off(onEv);
          resolve();
        }
      };
      this.on(onEv);
      child.once('exit', (code) => reject(new Error(`member ${this.id} exited with ${code} before it was ready`)));
    });
  }

  on(l: (e: NodeEvent) => void): void {
    this.listeners.push(l);
  }

  off(l: (e: NodeEvent) => void): void {
    this.listeners = this.listeners.filter((x) => x !== l);
  }

  /** A request of node-process.js's protocol (or, for another entry, of its own: `cmd` and fields). */
  request<T = unknown>(req: Req | { cmd: string; [field: string]: unknown }): Promise<T> {
    const child = this.child;
    if (!child || !this.running) return Promise.reject(new ProcessError(`member ${this.id} is not running`, 'UNAVAILABLE'));
    const id = this.nextReq++;
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject });
      child.send({ ...req, id });
    });
  }

  /** SIGKILL: no chance to flush or hand over anything. */
  async kill(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
  }

  async terminate(): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGTERM');
    await exited;
  }
}

export interface ClusterOptions {
  size: number;
  tickMs?: number;
  electionTicks?: number;
  snapshotEntries?: number;
  snapshotBytes?: number;
  baseDir?: string;
  /** The members' program (default node-process.js): another must speak the same IPC protocol. */
  entry?: string;
}

export class ProcessCluster {
  readonly members: MemberProcess[];
  readonly baseDir: string;
  private readonly ownsDir: boolean;

  private constructor(members: MemberProcess[], baseDir: string, ownsDir: boolean, private readonly entry = ENTRY) {
    this.members = members;
    this.baseDir = baseDir;
    this.ownsDir = ownsDir;
  }

  static async start(opts: ClusterOptions): Promise<ProcessCluster> {
    const baseDir = opts.baseDir ?? mkdtempSync(join(tmpdir(), 'shoal-raft-'));
    const founders: { id: string; addr: string }[] = [];
    for (let i = 1; i <= opts.size; i++) founders.push({ id: `n${i}`, addr: `127.0.0.1:${await freePort()}` });
    const common: string[] = [];
    if (opts.tickMs) common.push('--tick-ms', String(opts.tickMs));
    if (opts.electionTicks) common.push('--election-ticks', String(opts.electionTicks));
    if (opts.snapshotEntries) common.push('--snapshot-entries', String(opts.snapshotEntries));
    if (opts.snapshotBytes) common.push('--snapshot-bytes', String(opts.snapshotBytes));
    const boot = founders.map((f) => `${f.id}=${f.addr}`).join(',');
    const members = founders.map((f) => new MemberProcess(f.id, f.addr, join(baseDir, f.id), ['--bootstrap', boot, ...common], opts.entry));
    const c = new ProcessCluster(members, baseDir, opts.baseDir === undefined, opts.entry);
    await Promise.all(members.map((m) => m.start()));
    return c;
  }

  /** A new member process that will join an existing cluster (as a learner, once added). */
  async spawnJoiner(id: string, opts: { tickMs?: number; electionTicks?: number; args?: string[] } = {}): Promise<MemberProcess> {
    const addr = `127.0.0.1:${await freePort()}`;
    const peers = this.members.map((m) => `${m.id}=${m.addr}`).join(',');
    const args = ['--peers', peers];
    if (opts.tickMs) args.push('--tick-ms', String(opts.tickMs));
    if (opts.electionTicks) args.push('--election-ticks', String(opts.electionTicks));
    if (opts.args) args.push(...opts.args);
    const m = new MemberProcess(id, addr, join(this.baseDir, id), args, this.entry);
    await m.start();
    this.members.push(m);
    return m;
  }

  member(id: string): MemberProcess {
    const m = this.members.find((x) => x.id === id);
    if (!m) throw new Error(`no member ${id}`);
    return m;
  }

  /** Waits until every running member agrees on one leader; returns it. */
  async waitLeader(timeoutMs = 10_000, exclude: string[] = []): Promise<MemberProcess> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const running = this.members.filter((m) => m.running && !exclude.includes(m.id));
      const sts = await Promise.all(
        running.map((m) => m.request<{ leader: string; role: string; term: number }>({ cmd: 'status' }).catch(() => undefined)),
      );
      const leaders = new Set(sts.map((s) => s?.leader ?? ''));
      const leaderId = [...leaders][0];
      if (leaders.size === 1 && leaderId && sts.every((s) => s !== undefined)) {
        const lm = this.members.find((m) => m.id === leaderId);
        if (lm && lm.running) return lm;
      }
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`no agreed leader within ${timeoutMs} ms`);
  }

  async stop(): Promise<void> {
    await Promise.all(this.members.map((m) => m.kill()));
    if (this.ownsDir) rmSync(this.baseDir, { recursive: true, force: true });
  }
}
