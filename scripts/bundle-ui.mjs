// node scripts/bundle-ui.mjs: bundles the web dashboard's page (packages/daemon/web, preact + htm)
// into packages/daemon/dist/web/app.js and app.css, which shoald serves on --ui-addr. Everything
// the page runs is in those two files: a manager's dashboard reaches nothing outside it. The
// page's TypeScript is type-checked first (esbuild strips types without looking at them).
import { spawnSync } from 'node:child_process';
import { mkdirSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const WEB = join(ROOT, 'packages/daemon/web');
const OUT = join(ROOT, 'packages/daemon/dist/web');

const tsc = spawnSync(process.execPath, [join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', join(WEB, 'tsconfig.json')], { stdio: 'inherit' });
if (tsc.status !== 0) throw new Error(`the dashboard's page does not type-check (tsc -p ${WEB})`);

mkdirSync(OUT, { recursive: true });
await build({
  absWorkingDir: ROOT,
  entryPoints: { app: join(WEB, 'app.ts') },
  outdir: OUT,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['chrome111', 'firefox115', 'safari16'],
  minify: true,
  legalComments: 'none',
  logLevel: 'warning',
});
await build({
  absWorkingDir: ROOT,
  entryPoints: { app: join(WEB, 'app.css') },
  outdir: OUT,
  bundle: true,
  minify: true,
  logLevel: 'warning',
});
const size = (f) => statSync(join(OUT, f)).size;
console.log(`bundled the dashboard into ${OUT} (app.js ${size('app.js')} B, app.css ${size('app.css')} B)`);
