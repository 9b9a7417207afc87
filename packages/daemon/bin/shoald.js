#!/usr/bin/env node
// The `shoald` executable. It lives outside dist/ so that `npm ci` (which runs before the build)
// can link it into node_modules/.bin; the program itself is dist/src/bin.js.
try {
  await import('../dist/src/bin.js');
} catch (err) {
  if (err?.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/src/bin.js')) {
    process.stderr.write('shoald: not built: run `npm run build` in the repository first\n');
    process.exit(1);
  }
  throw err;
}
