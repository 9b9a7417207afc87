// Docker's container log format, read back into lines. Without a TTY the engine multiplexes
// stdout and stderr into frames (an 8-byte header: the stream, three zero bytes, the payload's
// length big-endian); with `timestamps`, each line starts with its RFC 3339 time and a space.

import { logTimeKey } from '@shoal/api';

export interface ContainerLogLine {
  /** RFC 3339 with nanoseconds, as the engine stamped it. */
  timestamp: string;
  stream: 'stdout' | 'stderr';
  /** The line without its newline. */
  data: string;
}

const STREAMS: Record<number, 'stdout' | 'stderr' | undefined> = { 1: 'stdout', 2: 'stderr' };

/**
 * The lines of a `logs?timestamps=1` answer (`tty`: the container has a terminal, so the answer
 * is not multiplexed). A frame cut short at the end is ignored; lines without a time are kept
 * with the previous line's time (the engine splits very long lines).
 */
export function parseDockerLogs(buf: Buffer, tty: boolean): ContainerLogLine[] {
  const chunks: { stream: 'stdout' | 'stderr'; text: string }[] = [];
  if (tty) {
    chunks.push({ stream: 'stdout', text: buf.toString('utf8') });
  } else {
    // Consecutive frames of one stream are joined first: a line may span frames.
    let pos = 0;
    while (pos + 8 <= buf.length) {
      const stream = STREAMS[buf[pos]!];
      const size = buf.readUInt32BE(pos + 4);
      if (pos + 8 + size > buf.length) break;
      const text = buf.toString('utf8', pos + 8, pos + 8 + size);
      pos += 8 + size;
      if (!stream) continue;
      const last = chunks[chunks.length - 1];
      if (last && last.stream === stream && !last.text.endsWith('\n')) last.text += text;
      else chunks.push({ stream, text });
    }
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
