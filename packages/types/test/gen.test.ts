// The checked-in generated types (src/gen/) are what scripts/gen-types.mjs makes from proto/ today:
// a .proto edited without `npm run gen:types` fails here (and so in CI).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';

const ROOT = fileURLToPath(new URL('../../../../', import.meta.url)); // packages/types/dist/test → repository root
const CHECKED_IN = path.join(ROOT, 'packages/types/src/gen');

/** Every file under dir, by its path relative to dir, with its text. */
function tree(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else out.set(path.relative(dir, p), fs.readFileSync(p, 'utf8'));
    }
  };
  walk(dir);
  return out;
}

test('packages/types/src/gen is up to date with proto/ (else: npm run gen:types)', (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-gen-types-'));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const r = spawnSync(process.execPath, [path.join(ROOT, 'scripts/gen-types.mjs'), tmp], { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `gen-types failed: ${r.stderr}`);
  const fresh = tree(tmp);
  const stored = tree(CHECKED_IN);
  assert.ok(fresh.size > 0, 'gen-types wrote nothing');
  assert.deepEqual([...stored.keys()].sort(), [...fresh.keys()].sort(), 'generated files added or removed: run npm run gen:types');
  for (const [name, text] of fresh) {
    assert.equal(stored.get(name), text, `packages/types/src/gen/${name} is out of date with proto/: run npm run gen:types`);
  }
});
