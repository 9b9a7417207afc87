// node scripts/bundle-cli.mjs [--out NAME]: bundles the compiled `shoal` CLI (packages/cli/dist/src, run
// `tsc -b` first) into packages/cli/dist/bundle/, so that a start of the CLI reads a handful of
// files instead of some two hundred modules (Node's module loading is most of `shoal --help`).
// What only some commands need (gRPC and the .proto loader, X.509) stays in chunks of their own,
// loaded by those commands' dynamic import(). Each file is CommonJS with a V8 code cache next to
// it (FILE.cache, made by scripts/cli-code-cache.mjs), which bin/load-bundle.js loads it with; and
// control.proto's descriptor is embedded (parsed here, not at each start).
//
// Next to the bundle, inputs.json lists the files it was built from with their mtimes:
// packages/cli/bin/shoal.js runs the bundle only while they all still match, else the unbundled
// dist/src (a `tsc -b` without this step, or an npm update, never runs stale code).
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { build, transform } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const CLI = join(ROOT, 'packages/cli');
// Two levels under packages/cli, as dist/src is: `require('../../package.json')` (the version)
// and the walk up to proto/ find the same files from either.
// `--out NAME`: dist/NAME instead (the tests bundle into a directory of their own).
const { values } = parseArgs({ options: { out: { type: 'string', default: 'bundle' } } });
const OUT = join(CLI, 'dist', values.out);
const MANIFEST = join(OUT, 'inputs.json');

/**
 * Start-up work of dependencies that a run of `shoal` does not need, undone in the bundle (each
 * patch must apply: a dependency that changed fails the bundle rather than going unnoticed).
 * - string-width 7 and 8 (yargs' help layout) make an Intl.Segmenter when loaded: ~20 ms of ICU
 *   set-up on every start, even of a command that prints no help. Made on first use instead.
 * - string-width 7 (cliui's, wrap-ansi's) segments even plain ASCII into graphemes (and so makes
 *   the Segmenter for `--help`): the fast path of string-width 8, printable ASCII being one column
 *   a character, is added.
 * - string-width 4 (cli-table3's) matches every cell against emoji-regex's pattern (~10 kB of
 *   alternatives, compiled on the first `ls`): the same fast path for printable ASCII, which no
 *   emoji sequence is.
 * - string-width 8 (yargs') compiles `/^\p{RGI_Emoji}$/v` when it is loaded: V8 builds the set of
 *   every emoji sequence, 30 to 50 ms of each start. Compiled on first use instead (a non-ASCII
 *   width only: never for shoal's help text).
 * - yargs renders the whole help text of every command it runs, in case its handler fails and
 *   help is to be shown then (tens of ms of layout per `shoal service ls`); shoal never shows help
 *   after a handler fails (one line `Error: ...`, cli.ts), so that text is never made.
 */
const PATCHES = [
  {
    file: /[\\/]string-width[\\/]index\.js$/,
    version: /^[78]\./,
    from: 'new Intl.Segmenter()',
    to: '{ segment: (s) => (__segmenter ??= new Intl.Segmenter()).segment(s) }',
    prelude: 'let __segmenter;\n',
  },
  {
    file: /[\\/]string-width[\\/]index\.js$/,
    version: /^7\./,
    from: '\tlet width = 0;\n\tconst eastAsianWidthOptions',
    to: '\tif (/^[\\u0020-\\u007E]*$/.test(string)) return string.length;\n\tlet width = 0;\n\tconst eastAsianWidthOptions',
    prelude: '',
  },
  {
    file: /[\\/]string-width[\\/]index\.js$/,
    version: /^8\./,
    from: 'const rgiEmojiRegex = /^\\p{RGI_Emoji}$/v;',
    to: 'const rgiEmojiRegex = { test: (s) => (__rgiEmojiRegex ??= /^\\p{RGI_Emoji}$/v).test(s) };',
    prelude: 'let __rgiEmojiRegex;\n',
  },
  {
    file: /[\\/]string-width[\\/]index\.js$/,
    version: /^4\./,
    from: "\tstring = string.replace(emojiRegex(), '  ');",
    to: "\tif (/^[\\u0020-\\u007E]*$/.test(string)) return string.length;\n\tstring = string.replace(emojiRegex(), '  ');",
    prelude: '',
  },
  {
    file: /[\\/]yargs[\\/]build[\\/]lib[\\/]command\.js$/,
    from: 'yargs.getInternalMethods().getUsageInstance().cacheHelpMessage();',
    to: '/* help not cached: see scripts/bundle-cli.mjs */',
    prelude: '',
  },
];
const patched = new Set();

/** The directory of the package in node_modules that `file` belongs to; undefined: Shoal's own. */
function packageDir(file) {
  return /^(.*[\\/]node_modules[\\/](?:@[^\\/]+[\\/])?[^\\/]+)[\\/]/.exec(file)?.[1];
}

/** The version of the package a file of node_modules belongs to (a patch may be for one version only). */
async function packageVersion(file) {
  const dir = packageDir(file);
  if (!dir) throw new Error(`${file}: not in node_modules`);
  return JSON.parse(await readFile(join(dir, 'package.json'), 'utf8')).version;
}
const patchDependencies = {
  name: 'patch-dependencies',
  setup(b) {
    // One onLoad for all: esbuild takes the contents of the first callback that gives some.
    b.onLoad({ filter: new RegExp(PATCHES.map((p) => p.file.source).join('|')) }, async (args) => {
      let text = await readFile(args.path, 'utf8');
      const version = PATCHES.some((p) => p.version) ? await packageVersion(args.path) : undefined;
      for (const p of PATCHES.filter((x) => x.file.test(args.path) && (!x.version || x.version.test(version)))) {
        if (!text.includes(p.from)) throw new Error(`${args.path}: no \`${p.from}\` to patch (see PATCHES)`);
        text = `${p.prelude}${text.replaceAll(p.from, p.to)}`;
        patched.add(p);
      }
      return { contents: text, loader: 'js' };
    });
  },
};

// control.proto (and what it imports) parsed now, as the client would parse it at run time: the
// bundle embeds the descriptor (client.ts) and watches the .proto files it was made from.
const { serviceDescriptor } = await import(join(ROOT, 'packages/api/dist/src/index.js'));
const control = serviceDescriptor('shoal.control.Control');

rmSync(OUT, { recursive: true, force: true });
const ENTRY = 'bin.cjs'; // dist/src/bin.js, with outExtension
const result = await build({
  absWorkingDir: ROOT,
  entryPoints: [join(CLI, 'dist/src/bin.js')],
  outdir: OUT,
  outExtension: { '.js': '.cjs' },
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // Whitespace and syntax only: names stay as they are in error messages and stacks.
  minifyWhitespace: true,
  minifySyntax: true,
  metafile: true,
  write: false,
  plugins: [patchDependencies],
  // Native addons stay out (`shoal lab`'s dockerode reaches ssh2 and cpu-features, both of which
  // load theirs in a try and fall back to JavaScript): the bundle's require() of one fails, as if
  // it had not been built.
  external: ['*.node'],
  logLevel: 'warning',
  define: {
    // import.meta of the ES modules bundled: the URL of the bundle's file (they find package.json
    // and proto/ from it: dist/bundle lies two levels under packages/cli, as dist/src does).
    'import.meta.url': '__shoalBundleUrl',
    SHOAL_BUNDLED_CONTROL_DESCRIPTOR: JSON.stringify(control.json),
  },
});

// Each file made CommonJS: V8 takes a code cache only for a script (bin/load-bundle.js), and
// Node 20 compiles ES modules without one. The chunks stay apart: what only some commands need
// (gRPC and the .proto loader, X.509) is read, and its cache loaded, by those commands only.
mkdirSync(OUT, { recursive: true });
for (const f of result.outputFiles) {
  const cjs = await transform(f.text, {
    format: 'cjs',
    platform: 'node',
    target: 'node20',
    // import() of a chunk made require() (in a promise), which the loader serves.
    supported: { 'dynamic-import': false },
    minifyWhitespace: true,
    minifySyntax: true,
    banner: "var __shoalBundleUrl = require('node:url').pathToFileURL(__filename).href;",
    logLevel: 'warning',
    // asn1 (ssh2's, in `shoal lab`'s chunk) writes `!x instanceof Array`: its bug, harmless there.
    logOverride: { 'suspicious-boolean-not': 'silent' },
  });
  writeFileSync(f.path, cjs.code);
}

/**
 * The file whose mtime stands for an input: the input itself for Shoal's own code; for a
 * dependency, its package.json (an install or update of the package rewrites it), so that the
 * start of the CLI checks a few dozen files rather than four hundred.
 */
function watched(file) {
  const dir = packageDir(file);
  return dir ? join(dir, 'package.json') : file;
}

for (const p of PATCHES) if (!patched.has(p)) throw new Error(`no file to patch matched ${p.file} (see PATCHES)`);

const inputs = {};
for (const file of [...Object.keys(result.metafile.inputs).filter((rel) => !rel.startsWith('<define:')).map((rel) => watched(resolve(ROOT, rel))), ...control.files]) {
  inputs[file] ??= statSync(file).mtimeMs;
}

// The V8 code caches (FILE.cache), made by runs of the bundle in a process of its own (only the
// CLI's code compiled in it). The manifest, written last, lets bin/shoal.js run the bundle.
const made = spawnSync(process.execPath, [join(ROOT, 'scripts/cli-code-cache.mjs'), join(OUT, ENTRY)], {
  stdio: ['ignore', 'ignore', 'inherit'],
});
if (made.status !== 0) throw new Error(`scripts/cli-code-cache.mjs exited ${made.status ?? made.signal}`);
writeFileSync(MANIFEST, `${JSON.stringify({ entry: ENTRY, inputs })}\n`);
console.log(`bundled the CLI into ${OUT} (${Object.keys(inputs).length} inputs)`);
