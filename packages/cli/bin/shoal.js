#!/usr/bin/env node
// The `shoal` executable. It lives outside dist/ so that `npm ci` (which runs before the build)
// can link it into node_modules/.bin; the program itself is dist/src/bin.js.
//
// `npm run build` also bundles it into dist/bundle/ (scripts/bundle-cli.mjs): a few files and V8
// code caches of them (load-bundle.js), instead of some two hundred modules to read and compile. The
// bundle runs only while every file it was made from is unchanged (inputs.json: path → mtime);
// after a plain `tsc -b`, or with no bundle, the unbundled program runs.
//
// CommonJS (bin/package.json): Node starts a CommonJS entry faster than an ES module one.
const { readFileSync, statSync } = require('node:fs');
const { join } = require('node:path');
const { pathToFileURL } = require('node:url');

function freshBundle() {
  const dir = join(__dirname, '../dist/bundle');
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8'));
  } catch {
    return undefined;
  }
  for (const [file, mtimeMs] of Object.entries(manifest.inputs)) {
    const st = statSync(file, { throwIfNoEntry: false });
    if (st?.mtimeMs !== mtimeMs) return undefined;
  }
  return join(dir, manifest.entry);
}

const bundle = freshBundle();
if (bundle) {
  const { BundleLoader } = require('./load-bundle.js');
  new BundleLoader().load(bundle);
} else {
  import(pathToFileURL(join(__dirname, '../dist/src/bin.js')).href).catch((err) => {
    if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/bin.js')) {
      process.stderr.write('Error: shoal is not built: run `npm run build` in the repository first\n');
      process.exit(1);
    }
    throw err;
  });
}
