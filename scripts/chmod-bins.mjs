#!/usr/bin/env node
// Marks the built entry points executable (tsc does not), so `npx shoald` / `npx shoal` work.
import { chmodSync, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
for (const pkg of readdirSync(join(root, 'packages'))) {
  const manifest = join(root, 'packages', pkg, 'package.json');
  if (!existsSync(manifest)) continue;
  const bin = JSON.parse(readFileSync(manifest, 'utf8')).bin ?? {};
  for (const rel of Object.values(typeof bin === 'string' ? { [pkg]: bin } : bin)) {
    const p = join(root, 'packages', pkg, rel);
    if (existsSync(p)) chmodSync(p, 0o755);
  }
}
