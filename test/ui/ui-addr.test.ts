// `shoald --ui-addr` on a port that is taken: the daemon stops before it makes a cluster, in one
// line, and leaves its data directory without a node (a later init there starts clean).

import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { TestCluster } from '../helpers/shoald.js';

const c = new TestCluster();
after(() => c.stop());

test('a taken --ui-addr stops shoald init before anything is made', async () => {
  const taken = createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', () => r()));
  try {
    const port = (taken.address() as { port: number }).port;
    const d = await c.newDaemon('m1');
    d.start(['init', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--ui-addr', `127.0.0.1:${port}`]);
    assert.equal(await d.exited(), 1);
    assert.match(d.stderr, new RegExp(`^shoald: cannot listen on --ui-addr 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`, 'm'));
    assert.equal(existsSync(join(d.dataDir, 'node.json')), false);
  } finally {
    taken.close();
  }
});

test('a malformed --ui-addr is refused as --listen-addr is', async () => {
  const d = await c.newDaemon('m2');
  d.start(['init', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--ui-addr', 'nowhere']);
  assert.equal(await d.exited(), 1);
  assert.match(d.stderr, /--ui-addr must be HOST:PORT/);
});
