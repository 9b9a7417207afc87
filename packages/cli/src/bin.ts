#!/usr/bin/env node
// `shoal`: the command-line client of a Shoal cluster (see INTERFACE.md).

import { main } from './cli.js';

// For the bundle's code cache (scripts/cli-code-cache.mjs runs commands through it).
export { main };

// A closed pipe (`shoal service ls | head -1`) is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
});

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
    // Nothing should keep the loop alive once the client is closed; never hang if something does.
    setTimeout(() => process.exit(code), 2000).unref();
  },
  (err: unknown) => {
    process.stderr.write(`Error: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
