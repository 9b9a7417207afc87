// A secret typed or piped into shoal (`swarm unlock`): at a terminal, a prompt and no echo, as
// docker reads an unlock key; otherwise the whole of stdin (a pipe or a file), trimmed.

import type { Output } from './context.js';
import { CliError } from './errors.js';

/** A terminal's input stream as node gives it (tty.ReadStream); a pipe has no setRawMode. */
type Input = NodeJS.ReadableStream & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };

export async function readSecret(input: Input, prompt: string, out: Output): Promise<string> {
  if (input.isTTY === true && typeof input.setRawMode === 'function') return readHidden(input, prompt, out);
  const chunks: Buffer[] = [];
  for await (const c of input) chunks.push(typeof c === 'string' ? Buffer.from(c) : c);
  return Buffer.concat(chunks).toString('utf8').trim();
}

/** One line from a terminal in raw mode: nothing echoed, backspace edits, ^C and ^D give up. */
function readHidden(input: Input, prompt: string, out: Output): Promise<string> {
  // No echo before the prompt shows: a key typed (or pasted) as soon as it appears stays hidden.
  input.setRawMode!(true);
  out.write(prompt);
  input.resume();
  return new Promise((resolve, reject) => {
    let line = '';
    const done = (err?: Error) => {
      input.removeListener('data', onData);
      input.setRawMode!(false);
      input.pause();
      out.write('\n');
      if (err) reject(err);
      else resolve(line.trim());
    };
    const onData = (d: Buffer | string) => {
      for (const ch of d.toString('utf8')) {
        if (ch === '\r' || ch === '\n') return done();
        if (ch === '\u0003') return done(new CliError('interrupted', 130));
        if (ch === '\u0004') return line === '' ? done(new CliError('no unlock key given', 1)) : done();
        if (ch === '\u007f' || ch === '\b') line = line.slice(0, -1);
        else if (ch >= ' ') line += ch;
      }
    };
    input.on('data', onData);
  });
}
