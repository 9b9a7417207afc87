// node scripts/cli-code-cache.mjs BUNDLE: writes the V8 code cache of each file of the CLI's bundle
// (FILE.cache; scripts/bundle-cli.mjs runs it, in a process of its own). The bundle is loaded as bin/shoal.js
// loads it (bin/load-bundle.js), then runs commands that cover what a start of `shoal` compiles:
// yargs' parsing and help, the commands, and the gRPC client (its load, and a call to a manager
// that is not there). V8 caches the functions compiled so far: a later start compiles none of them.
import { writeFileSync } from 'node:fs';
import { BundleLoader } from '../packages/cli/bin/load-bundle.js';

const [bundle] = process.argv.slice(2);
if (!bundle) throw new Error('usage: node scripts/cli-code-cache.mjs BUNDLE');

// Loading the bundle runs `shoal` with process.argv (bin.ts): `--version`, whose line goes to the
// build's /dev/null. bin.ts ends the process 2 s after a command: not before the cache is written.
const exit = process.exit;
process.exit = () => undefined;
process.argv = [process.argv[0], bundle, '--version'];
const loader = new BundleLoader();
const { main } = loader.load(bundle);

const sink = { write: () => true };
const nowhere = 'unix:///nonexistent/shoal-code-cache.sock';
const runs = [
  ['--help'],
  ['service', '--help'],
  ['service', 'create', '--help'],
  ['servce', 'ls'],
  ['service', 'scale', 'web'],
  ['--get-yargs-completions', 'shoal', 'service', 'ins'],
  ['--host', nowhere, 'service', 'ls'],
  ['--host', nowhere, 'service', 'ps', 'web'],
  ['--host', nowhere, 'node', 'ls'],
];
for (const args of runs) await main(args, { stdout: sink, stderr: sink });

// A file none of these loaded (the X.509 code of `swarm join-token`) compiles at run time.
for (const [file, script] of loader.scripts) writeFileSync(`${file}.cache`, script.createCachedData());
exit(0);
