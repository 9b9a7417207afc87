// A lab as a test drives it: `shoal lab` through the real CLI (packages/cli/bin/shoal.js) with a
// state directory of the test's own, `shoal` commands from the host as after `eval "$(shoal lab
// env)"`, and the host's `docker` for what only the host sees (the node containers, the lab
// network). Synchronous on purpose: every call is a process the test waits for, as a user's shell.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import assert from 'node:assert/strict';
import { CLI } from './cli.js';
import { ROOT } from './shoald.js';

export interface Result { code: number | null; stdout: string; stderr: string }

export const LAB_IMAGE = process.env.LAB_IMAGE ?? 'shoal/lab-node:dev';
export const lines = (s: string) => s.split('\n').filter(Boolean);

export function ok(r: Result): string {
  assert.equal(r.code, 0, `exit ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** A task of `service ps --format json`, as much of it as the lab suites read. */
export interface PsTask { id: string; name: string; node: string; desiredState: string; currentState: string; error: string }

export class TestLab {
  readonly name: string;
  /** XDG_STATE_HOME of the lab's commands (where `lab up` keeps the admin certificate). */
  readonly state = mkdtempSync(join(tmpdir(), 'shoal-lab-state-'));

  constructor(prefix: string) {
    this.name = `${prefix}-${randomBytes(3).toString('hex')}`;
  }

  /** The label filter of everything the lab is made of. */
  get filter(): string {
    return `label=org.shoal.lab=${this.name}`;
  }

  /** A command with the lab's state directory and none of the caller's SHOAL_HOST. */
  sh(cmd: string, args: string[], timeoutMs = 120_000, input?: string): Result {
    const env: NodeJS.ProcessEnv = { ...process.env, XDG_STATE_HOME: this.state };
    delete env['SHOAL_HOST'];
    delete env['SHOAL_CERT_PATH'];
    const r = spawnSync(cmd, args, { encoding: 'utf8', env, timeout: timeoutMs, maxBuffer: 64 << 20, input });
    if (r.error) throw r.error;
    return { code: r.status, stdout: r.stdout, stderr: r.stderr };
  }

  /** `shoal lab SUB --name LAB ARGS`. */
  lab(sub: string, ...args: string[]): Result {
    return this.sh(process.execPath, [CLI, 'lab', sub, '--name', this.name, ...args], 300_000);
  }

  /** `shoal lab SUB --name LAB ARGS` with `input` on its stdin. */
  labWithInput(input: string, sub: string, ...args: string[]): Result {
    return this.sh(process.execPath, [CLI, 'lab', sub, '--name', this.name, ...args], 300_000, input);
  }

  /** `shoal ARGS` from the host, as after `eval "$(shoal lab env)"` in a shell. */
  shoal(...args: string[]): Result {
    return this.sh('sh', ['-c', 'node=$0 cli=$1 name=$2; shift 2; eval "$("$node" "$cli" lab env --name "$name")" && exec "$node" "$cli" "$@"', process.execPath, CLI, this.name, ...args]);
  }

  docker(...args: string[]): string {
    return ok(this.sh('docker', args));
  }

  /** A command on a lab host (`shoal lab exec NODE -- ...`), its output. */
  exec(node: string, ...cmd: string[]): string {
    return ok(this.lab('exec', node, '--', ...cmd));
  }

  /** Builds the node image (once per run: unchanged inputs take seconds) and brings the lab up. */
  up(managers: number, workers: number): string {
    const b = this.sh('bash', [`${ROOT}/scripts/build-lab-image.sh`], 840_000);
    assert.equal(b.code, 0, b.stderr);
    return ok(this.lab('up', '--managers', String(managers), '--workers', String(workers), '--image', LAB_IMAGE));
  }

  down(): void {
    this.lab('down');
    rmSync(this.state, { recursive: true, force: true });
  }

  /** The host's name for a node's container. */
  container(node: string): string {
    return `shoal-${this.name}-${node}`;
  }

  /** A node's address on the lab network (`lab ls`). */
  addr(node: string): string {
    const n = (JSON.parse(ok(this.lab('ls', '--format', 'json'))) as { name: string; addr: string }[]).find((x) => x.name === node);
    assert.ok(n, `lab ${this.name} has no node ${node}`);
    return n.addr.replace(/:\d+$/, '');
  }

  /** `node ls` as hostname → status ('ready', 'down'), or undefined while no manager answers. */
  nodeStatus(): Record<string, string> | undefined {
    const r = this.shoal('node', 'ls', '--format', 'json');
    if (r.code !== 0) return undefined;
    return Object.fromEntries((JSON.parse(r.stdout) as { hostname: string; status: string }[]).map((n) => [n.hostname, n.status]));
  }

  /** `service ps SERVICE --format json`, or undefined while no manager answers. */
  ps(service: string): PsTask[] | undefined {
    const r = this.shoal('service', 'ps', service, '--format', 'json');
    if (r.code !== 0) return undefined;
    return JSON.parse(r.stdout) as PsTask[];
  }

  /** Pushes a host image into the lab's registry (`lab load`); returns the reference every node pulls. */
  loadImage(image: string): string {
    const out = lines(ok(this.lab('load', image)));
    assert.equal(out.length, 1, out.join('\n'));
    return out[0]!;
  }

  /** Ids of a node's containers of `service` (running ones unless `all`), from the node's own engine. */
  containers(node: string, service: string, all = false): string[] {
    return lines(this.exec(node, 'docker', 'ps', ...(all ? ['-a'] : []), '-q', '--no-trunc', '--filter', `label=shoal.service.name=${service}`));
  }
}
