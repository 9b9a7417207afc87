#!/usr/bin/env node
// The `shoal` executable. It lives outside dist/ so that `npm ci` (which runs before the build)
// can link it into node_modules/.bin; the program itself is dist/src/bin.js.
//
// `npm run build` also bundles it into dist/bundle/ (scripts/bundle-cli.mjs): a start then reads
// a few files instead of some two hundred modules. The bundle runs only while every file it was
// made from is unchanged (inputs.json: path → mtime); after a plain `tsc -b`, or with no bundle,
// the unbundled program runs.
import { readFileSync, statSync } from 'node:fs';

function freshBundle() {
  const dir = new URL('../dist/bundle/', import.meta.url);
  let manifest;
  try {
    manifest = JSON.parse(readFileSync(new URL('inputs.json', dir), 'utf8'));
  } catch {
    return undefined;
  }
  for (const [file, mtimeMs] of Object.entries(manifest.inputs)) {
    const st = statSync(file, { throwIfNoEntry: false });
    if (st?.mtimeMs !== mtimeMs) return undefined;
  }
  return new URL(manifest.entry, dir).href;
}

const program = freshBundle() ?? new URL('../dist/src/bin.js', import.meta.url).href;
try {
  await import(program);
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/bin.js')) {
    process.stderr.write('Error: shoal is not built: run `npm run build` in the repository first\n');
    process.exit(1);
  }
  throw err;
}
