// The `shoal` CLI as a user runs it, against one daemon's control socket (suites that go through
// the CLI rather than the API).
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { ROOT, type Daemon } from './shoald.js';

// bin/shoal.js, as a user runs it: the bundle when it is fresh (npm run build), else dist/src.
export const CLI = join(ROOT, 'packages/cli/bin/shoal.js');

export interface CliResult {
  /** The exit code; null if the command was killed (its timeout). */
  code: number | null;
  stdout: string;
  stderr: string;
}

/** A row of `shoal service ps --format json`. */
export interface PsRow {
  id: string;
  slot: number;
  desiredState: string;
  currentState: string;
  error: string;
}

/** `env`: variables added to the test's environment (e.g. DOCKER_CONFIG). */
export function shoalCli(d: Daemon, args: string[], opts: { timeoutMs?: number; env?: Record<string, string> } = {}): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, '--host', `unix://${d.socket}`, ...args],
      { encoding: 'utf8', maxBuffer: 64 << 20, timeout: opts.timeoutMs ?? 60_000, ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}) },
      (err, stdout, stderr) => resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
  });
}
