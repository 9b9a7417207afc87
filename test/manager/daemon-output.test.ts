// What an operator sees from a real `shoald`: its log in both formats (JSON lines for a collector,
// readable lines on request or on a terminal), at the level asked for.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { TestCluster, eventually } from '../helpers/shoald.js';

const INITIALIZED = 'cluster initialized; this node is its first manager';

describe('shoald output', () => {
  const clusters: TestCluster[] = [];
  after(async () => {
    for (const c of clusters) await c.stop();
  });

  async function initWith(flags: string[]) {
    const c = new TestCluster();
    clusters.push(c);
    const d = await c.init('m1', flags);
    // The helper runs daemons at SHOAL_LOG_LEVEL=warn: --log-level info must win for this line to show.
    await eventually('the init log line', async () => d.stderr.includes(INITIALIZED));
    return d;
  }

  test('--log-format json: every line is a JSON object with level, time, component and msg', async () => {
    const d = await initWith(['--log-format', 'json', '--log-level', 'info']);
    const lines = d.stderr.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
    const line = lines.find((l) => l.msg === INITIALIZED);
    assert.ok(line, d.stderr);
    assert.equal(line.level, 30);
    assert.equal(line.component, 'shoald');
    assert.equal(typeof line.time, 'number');
    assert.equal(line.addr, d.addr);
  });

  test('--log-format text: one readable line per event (time, level, component, message, key=value)', async () => {
    const d = await initWith(['--log-format', 'text', '--log-level', 'info']);
    const addr = d.addr.replaceAll('.', '\\.');
    const re = new RegExp(`^\\[\\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d\\.\\d{3}\\] INFO: shoald: ${INITIALIZED} nodeId=\\w+ clusterId=\\w+ addr=${addr}$`, 'm');
    assert.match(d.stderr, re);
    assert.ok(!d.stderr.includes('{"level"'), d.stderr);
  });
});
