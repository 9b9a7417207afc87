// The host's Docker engine as a lab uses it: its failures as one-line ShoalErrors, and a command
// run in a container (`docker exec`) with its output and exit code.

import { Readable, Writable } from 'node:stream';
import type Docker from 'dockerode';
import { ShoalError } from '@shoal/api';

/** Where a command's output goes (process.stdout does). */
export interface Sink {
  write(chunk: Uint8Array | string): unknown;
}

interface EngineFailure {
  statusCode?: number;
  code?: string;
  reason?: string;
  json?: { message?: string } | null;
  message?: string;
}

/** The engine's own words for a failure, on one line. */
export function engineMessage(err: unknown): string {
  const e = (err ?? {}) as EngineFailure;
  const msg = (typeof e.json?.message === 'string' && e.json.message) || e.reason || e.message || String(err);
  return msg.split('\n')[0]!.trim();
}

export const statusOf = (err: unknown) => (err as EngineFailure | undefined)?.statusCode;

/** A failure of the engine doing `what` as a ShoalError (the engine not there at all said so). */
export function engineError(what: string, err: unknown): ShoalError {
  if (err instanceof ShoalError) return err;
  const code = (err as EngineFailure | undefined)?.code;
  if (code === 'ENOENT' || code === 'ECONNREFUSED' || code === 'EACCES' || code === 'EHOSTUNREACH' || code === 'ETIMEDOUT') {
    return new ShoalError('UNAVAILABLE', `cannot reach the Docker engine (${code}): is it running, and may this user use it? (DOCKER_HOST says where it is)`, { cause: err });
  }
  const status = statusOf(err);
  const shoalCode = status === 404 ? 'NOT_FOUND' : status === 409 ? 'ALREADY_EXISTS' : status === 400 ? 'INVALID_ARGUMENT' : 'INTERNAL';
  return new ShoalError(shoalCode, `${what}: ${engineMessage(err)}`, { cause: err });
}

/** Runs `fn`, its engine failures made ShoalErrors about `what`. */
export async function engine<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    throw engineError(what, err);
  }
}

export interface ExecResult {
  exitCode: number;
  /** What the command wrote, when no sink was given for it. */
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Where its stdout goes as it comes (else it is collected into the result). */
  stdout?: Sink;
  stderr?: Sink;
  /** Piped to the command's stdin (`docker exec -i`); its end closes the command's stdin. */
  stdin?: NodeJS.ReadableStream;
}

/** A sink, or a stream whose text is collected. */
function output(sink: Sink | undefined): { stream: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  // Handled as written (synchronously): all of it is in by the time the exec's stream ends.
  const stream = new Writable({
    write(c: Buffer, _encoding, done) {
      if (sink) sink.write(c);
      else chunks.push(c);
      done();
    },
  });
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

/** `cmd` run in a running container, as `docker exec [-i]` does (no terminal). */
export async function execIn(container: Docker.Container, cmd: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const stdin = opts.stdin;
  const exec = await container.exec({ Cmd: [...cmd], AttachStdin: !!stdin, AttachStdout: true, AttachStderr: true, Tty: false });
  const stream = await exec.start({ hijack: true, stdin: !!stdin });
  // pipe() ends the connection's write half when stdin ends: the engine then closes the command's
  // stdin, so `cat`/`docker load` see their end of input and finish.
  if (stdin) stdin.pipe(stream);
  const out = output(opts.stdout);
  const err = output(opts.stderr);
  await new Promise<void>((resolve, reject) => {
    container.modem.demuxStream(stream, out.stream, err.stream);
    stream.on('end', resolve);
    stream.on('close', resolve);
    stream.on('error', reject);
  });
  // The stream ends as the process does; the engine may take a moment more to record its exit code.
  for (;;) {
    const info = await exec.inspect();
    if (!info.Running && info.ExitCode !== null) return { exitCode: info.ExitCode, stdout: out.text(), stderr: err.text() };
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * The last non-empty line of a container's log as the engine sends it without a terminal (both
 * streams multiplexed), taken apart by docker-modem's own `demuxStream`.
 */
export async function lastLine(log: Buffer, modem: Pick<Docker['modem'], 'demuxStream'>): Promise<string> {
  const out = output(undefined);
  const source = Readable.from([log]);
  const done = new Promise<void>((resolve, reject) => {
    source.on('end', resolve);
    source.on('error', reject);
  });
  modem.demuxStream(source, out.stream, out.stream);
  await done;
  return out.text().split('\n').map((l) => l.trim()).filter(Boolean).pop() ?? '';
}
