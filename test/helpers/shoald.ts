// Runs real `shoald` processes for the integration suites, and talks to their control API.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { UnaryClientPool, callUnary } from '@shoal/manager';
import { freePort } from '@shoal/raft/testing';
import { type RootCA, createRootCA } from '@shoal/pki';

export const ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const SHOALD = join(ROOT, 'packages/daemon/dist/src/bin.js');
/** A preload that runs a daemon's wall clock off by SHOAL_TEST_CLOCK_OFFSET_MS (see the file). */
export const CLOCK_SKEW = join(ROOT, 'test/helpers/clock-skew.mjs');

/** How to run one daemon's process beyond its shoald flags. */
export interface ProcessOptions {
  /** Flags for node itself. */
  nodeArgs?: string[];
  env?: Record<string, string>;
}

/** A daemon whose wall clock is `offsetMs` off (its monotonic clock is not). */
export function skewedClock(offsetMs: number): ProcessOptions {
  return { nodeArgs: ['--import', CLOCK_SKEW], env: { SHOAL_TEST_CLOCK_OFFSET_MS: String(offsetMs) } };
}

/** A daemon whose wall clock is off by the number of ms written in `file` (read as it runs). */
export function steppedClock(file: string): ProcessOptions {
  return { nodeArgs: ['--import', CLOCK_SKEW], env: { SHOAL_TEST_CLOCK_OFFSET_FILE: file } };
}

export class Daemon {
  child: ChildProcess | undefined;
  stdout = '';
  stderr = '';
  exitCode: number | null = null;
  /** Used by every start() of this daemon. */
  proc: ProcessOptions = {};

  constructor(
    readonly name: string,
    readonly dataDir: string,
    readonly addr: string,
  ) {}

  get socket(): string {
    return join(this.dataDir, 'control.sock');
  }

  get running(): boolean {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  start(args: string[]): void {
    this.stdout = '';
    this.stderr = '';
    this.exitCode = null;
    // SHOALD_NODE_ARGS passes flags to node itself (e.g. --cpu-prof for profiling a benchmark).
    const nodeArgs = (process.env.SHOALD_NODE_ARGS ?? '').split(' ').filter(Boolean);
    const child = spawn(process.execPath, [...nodeArgs, ...(this.proc.nodeArgs ?? []), SHOALD, ...args], {
      stdio: ['ignore', 'pipe', 'pipe'],
      // SHOAL_SOCKET empty: a test's daemons leave the machine's well-known socket alone.
      env: { ...process.env, SHOAL_SOCKET: '', ...this.proc.env, SHOAL_LOG_LEVEL: process.env.SHOAL_LOG_LEVEL ?? 'warn' },
    });
    child.stdout!.on('data', (d: Buffer) => (this.stdout += d.toString()));
    child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
      if (process.env.SHOAL_TEST_LOGS) process.stderr.write(`[${this.name}] ${d}`);
    });
    child.on('exit', (code) => (this.exitCode = code));
    this.child = child;
  }

  /** Resolves with the exit code (for commands expected to fail). */
  exited(timeoutMs = 20_000): Promise<number | null> {
    const child = this.child!;
    if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms`)), timeoutMs);
      child.once('exit', (code) => {
        clearTimeout(t);
        resolve(code);
      });
    });
  }

  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<void> {
    this.pool?.close();
    this.pool = undefined;
    if (!this.running) return;
    const done = new Promise((r) => this.child!.once('exit', r));
    this.child!.kill(signal);
    await done;
  }

  call<T = any>(method: string, req: unknown = {}, timeoutMs = 10_000): Promise<T> {
    return callUnary<T>('shoal.control.Control', `unix://${this.socket}`, method, req, timeoutMs);
  }

  private pool: UnaryClientPool | undefined;

  /** As call(), over one kept-open channel: for benchmarks that poll (a channel per call costs CPU). */
  callPooled<T = any>(method: string, req: unknown = {}, timeoutMs = 10_000): Promise<T> {
    this.pool ??= new UnaryClientPool();
    return this.pool.call<T>('shoal.control.Control', `unix://${this.socket}`, method, req, timeoutMs);
  }

  /** Waits until the control API answers (a read needs a leader). */
  async ready(timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    while (Date.now() < deadline) {
      if (!this.running) throw new Error(`${this.name} exited (${this.exitCode}): ${this.stderr.trim().split('\n').pop()}`);
      try {
        await this.call('ListNodes', {}, 2_000);
        return;
      } catch (err) {
        last = err;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`${this.name} not ready: ${(last as Error)?.message}`);
  }
}

export class TestCluster {
  readonly baseDir = mkdtempSync(join(tmpdir(), 'shoal-it-'));
  readonly daemons: Daemon[] = [];
  private rootCAs = 0;

  async newDaemon(name: string, host = '127.0.0.1'): Promise<Daemon> {
    const d = new Daemon(name, join(this.baseDir, name), `${host}:${await freePort()}`);
    this.daemons.push(d);
    return d;
  }

  /**
   * A root CA of the test's own and the flags that give it to `shoald init`: shoald keeps no copy
   * of the CA key on disk, so a test that forges certificates brings its CA.
   */
  async rootCA(): Promise<RootCA & { flags: string[] }> {
    const ca = await createRootCA('test');
    const n = (this.rootCAs += 1);
    const cert = join(this.baseDir, `test-ca-${n}.crt`);
    const key = join(this.baseDir, `test-ca-${n}.key`);
    writeFileSync(cert, ca.certPem);
    writeFileSync(key, ca.keyPem, { mode: 0o600 });
    return { ...ca, flags: ['--ca-cert', cert, '--ca-key', key] };
  }

  /** `shoald init`; `extra`: more flags (e.g. --dispatcher-heartbeat 3s). */
  async init(name = 'm1', extra: string[] = [], proc: ProcessOptions = {}): Promise<Daemon> {
    const d = await this.newDaemon(name);
    d.proc = proc;
    d.start(['init', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--hostname', name, ...extra]);
    await d.ready();
    return d;
  }

  async join(name: string, via: Daemon, role: 'manager' | 'worker', host = '127.0.0.1', proc: ProcessOptions = {}, extra: string[] = []): Promise<Daemon> {
    const { token } = await via.call<{ token: string }>('GetJoinToken', { role });
    const d = await this.newDaemon(name, host);
    d.proc = proc;
    d.start(['join', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--join-addr', via.addr, '--token', token, '--hostname', name, ...extra]);
    return d;
  }

  /** n managers: `init` on the first (with `extra` flags), the others join with the manager token; all voters. */
  async managers(n: number, extra: string[] = []): Promise<Daemon[]> {
    const first = await this.init('m1', extra);
    const all = [first];
    for (let i = 2; i <= n; i++) {
      const d = await this.join(`m${i}`, first, 'manager');
      await d.ready();
      all.push(d);
    }
    await eventually(`${n} voters`, async () => {
      const st = await first.call<{ members: { raftRole: string }[] }>('ClusterStatus');
      return st.members.length === n && st.members.every((m) => m.raftRole !== 'learner') ? true : undefined;
    });
    return all;
  }

  /** Stops every daemon, then removes the containers their nodes left on this Docker engine. */
  async stop(): Promise<void> {
    const ids = new Set<string>();
    for (const d of this.daemons.filter((x) => x.running)) {
      try {
        const r = await d.call<{ nodes: { node: { id: string } }[] }>('ListNodes', {}, 2_000);
        for (const n of r.nodes) ids.add(n.node.id);
      } catch {
        // not a manager, or no quorum: another daemon may answer
      }
    }
    // A profiled daemon must exit normally to write its profile.
    await Promise.all(this.daemons.map((d) => d.kill(process.env.SHOALD_NODE_ARGS ? 'SIGTERM' : 'SIGKILL')));
    removeContainersOf([...ids]);
    rmSync(this.baseDir, { recursive: true, force: true });
  }
}

/** Force-removes the containers labelled with these node ids (no-op without Docker). */
export function removeContainersOf(nodeIds: string[]): void {
  for (const id of nodeIds) {
    try {
      const out = execFileSync('docker', ['ps', '-aq', '--filter', `label=shoal.node.id=${id}`], { encoding: 'utf8' }).trim();
      if (out) execFileSync('docker', ['rm', '-f', ...out.split('\n')], { stdio: 'ignore' });
    } catch {
      return; // Docker is not there: nothing to clean
    }
  }
}

export async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined && v !== false) return v;
    } catch (err) {
      last = err;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/** The running manager that leads (by its hostname, which TestCluster makes its name). */
export async function leaderOf(c: TestCluster): Promise<Daemon> {
  return eventually('a leader', async () => {
    for (const d of c.daemons.filter((x) => x.running)) {
      const st = await d.call<{ leader: string; members: { nodeId: string }[] }>('ClusterStatus', {}, 3_000).catch(() => undefined);
      if (!st?.leader) continue;
      const nodes = await d.call<{ nodes: { node: { id: string; description: { hostname: string } } }[] }>('ListNodes', {}, 3_000);
      const host = nodes.nodes.find((n) => n.node.id === st.leader)?.node.description.hostname;
      const lead = c.daemons.find((x) => x.name === host && x.running);
      if (lead) return lead;
    }
    return undefined;
  });
}
