// Loads the CLI's bundle (dist/bundle/*.cjs: scripts/bundle-cli.mjs) with the V8 code cache made
// next to each of its files at build time (FILE.cache): V8 then neither parses the bundle nor
// compiles the functions a command runs, most of what a start of `shoal` costs after Node's own
// start-up. (Node 20 has no compile cache of its own, and ES modules take no cachedData outside
// --experimental-vm-modules: hence CommonJS files, each compiled here as Node compiles a module.)
// bin/shoal.js and the build, which makes the caches by running the same compilation, share this
// file, so that a cache is made for exactly the code that consumes it; V8 rejects a cache made for
// other source or another V8, and the file then compiles as any script does.
const { readFileSync } = require('node:fs');
const { createRequire } = require('node:module');
const { dirname, join } = require('node:path');
const vm = require('node:vm');

/** The bundle's files loaded so far: their exports, and their scripts (for their caches). */
class BundleLoader {
  modules = new Map();
  scripts = new Map();

  /** Runs a file of the bundle (once) and returns its exports. */
  load(file) {
    const known = this.modules.get(file);
    if (known) return known.exports;
    let source = readFileSync(file, 'utf8');
    // The entry's `#!` line, kept for `node bin.cjs`, is not JavaScript inside a function.
    if (source.startsWith('#!')) source = `//${source}`;
    let cachedData;
    try {
      cachedData = readFileSync(`${file}.cache`);
    } catch {
      cachedData = undefined;
    }
    const script = new vm.Script(`(function (exports, require, module, __filename, __dirname) {${source}\n})`, {
      filename: file,
      cachedData,
    });
    this.scripts.set(file, script);
    const module = { exports: {} };
    this.modules.set(file, module);
    const dir = dirname(file);
    const nodeRequire = createRequire(file);
    // The bundle's own chunks (`./chunk-X.cjs`) through this loader, the rest as Node requires it.
    const require = (id) => (id.startsWith('./') && id.endsWith('.cjs') ? this.load(join(dir, id)) : nodeRequire(id));
    require.resolve = nodeRequire.resolve;
    script.runInThisContext()(module.exports, require, module, file, dir);
    return module.exports;
  }
}

module.exports = { BundleLoader };
