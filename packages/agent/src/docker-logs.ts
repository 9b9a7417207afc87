// Docker's container log format, read back into lines. Without a TTY the engine multiplexes
// stdout and stderr into frames, which docker-modem's demuxer takes apart; with `timestamps`,
// each line starts with its RFC 3339 time and a space.

import { Readable, Writable } from 'node:stream';
import { finished } from 'node:stream/promises';
import { logTimeKey } from '@shoal/api';

export interface ContainerLogLine {
  /** RFC 3339 with nanoseconds, as the engine stamped it. */
  timestamp: string;
  stream: 'stdout' | 'stderr';
  /** The line without its newline. */
  data: string;
}

/** docker-modem's `demuxStream`: each frame's payload to stdout or stderr, in order. */
export type Demuxer = (source: NodeJS.ReadableStream, stdout: NodeJS.WritableStream, stderr: NodeJS.WritableStream) => void;

/**
 * The lines of a `logs?timestamps=1` answer (`tty`: the container has a terminal, so the answer
 * is not multiplexed). A frame cut short at the end is ignored; lines without a time are kept
 * with the previous line's time (the engine splits very long lines).
 */
export async function parseDockerLogs(buf: Buffer, tty: boolean, demux: Demuxer): Promise<ContainerLogLine[]> {
  const chunks: { stream: 'stdout' | 'stderr'; text: string }[] = [];
  if (tty) {
    chunks.push({ stream: 'stdout', text: buf.toString('utf8') });
  } else {
    // Consecutive frames of one stream are joined first: a line may span frames.
    const sink = (stream: 'stdout' | 'stderr') =>
      new Writable({
        write(payload: Buffer, _enc, done) {
          const text = payload.toString('utf8');
          const last = chunks[chunks.length - 1];
          if (last && last.stream === stream && !last.text.endsWith('\n')) last.text += text;
          else chunks.push({ stream, text });
          done();
        },
      });
    const source = Readable.from([buf]);
    demux(source, sink('stdout'), sink('stderr'));
    await finished(source);
  }
  const out: ContainerLogLine[] = [];
  let lastTime = '';
  for (const { stream, text } of chunks) {
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    for (const line of lines) {
      const sp = line.indexOf(' ');
      const ts = sp > 0 ? line.slice(0, sp) : line;
      if (logTimeKey(ts) !== undefined) {
        lastTime = ts;
        out.push({ timestamp: ts, stream, data: sp > 0 ? line.slice(sp + 1).replace(/\r$/, '') : '' });
      } else {
        out.push({ timestamp: lastTime, stream, data: line.replace(/\r$/, '') });
      }
    }
  }
  return out;
}
