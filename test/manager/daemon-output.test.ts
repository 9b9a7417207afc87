// What an operator sees from a real `shoald`: its log in both formats (JSON lines for a collector,
// readable lines on request or on a terminal), at the level asked for; what `init` prints (as
// `docker swarm init` does); --version and --help.
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, SHOALD, TestCluster, eventually } from '../helpers/shoald.js';

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

describe('shoald init, --version, --help', () => {
  const c = new TestCluster();
  after(() => c.stop());

  test('init prints the node id and the commands that join a worker and a manager, and the printed worker command works', async () => {
    const m1 = await c.init('m1');
    const [self] = (await m1.call<{ nodes: { node: { id: string } }[] }>('ListNodes')).nodes;
    const token = async (role: string) => (await m1.call<{ token: string }>('GetJoinToken', { role })).token;
    const command = (t: string) => `    shoald join --data-dir DIR --listen-addr HOST:PORT --join-addr ${m1.addr} --token ${t}`;
    const managerToken = await token('manager');
    const out = await eventually('the init banner', async () => (m1.stdout.endsWith(`${managerToken}\n`) ? m1.stdout : undefined));
    assert.equal(
      out,
      [
        `Cluster initialized: current node (${self!.node.id}) is now a manager.`,
        '',
        'To add a worker to this cluster, run the following command on the new node:',
        '',
        command(await token('worker')),
        '',
        'To add a manager to this cluster, run the following command on the new node:',
        '',
        command(managerToken),
        '',
      ].join('\n'),
    );

    // The worker line as an operator would use it: fill in DIR and HOST:PORT, run the rest.
    const w1 = await c.newDaemon('w1');
    const workerToken = await token('worker');
    const line = out.split('\n').find((l) => l.includes('shoald join') && l.includes(`--token ${workerToken}`))!;
    const args = line.trim().split(/\s+/).slice(1).map((x) => (x === 'DIR' ? w1.dataDir : x === 'HOST:PORT' ? w1.addr : x));
    w1.start([...args, '--hostname', 'w1']);
    await eventually('w1 to join as a worker', async () => {
      const r = await m1.call<{ nodes: { node: { spec: { role: string }; description: { hostname: string } } }[] }>('ListNodes');
      return r.nodes.some((n) => n.node.description.hostname === 'w1' && n.node.spec.role === 'worker');
    });
  });

  test('--version prints the version; --help shows every command with examples', () => {
    const version = (JSON.parse(readFileSync(join(ROOT, 'packages/daemon/package.json'), 'utf8')) as { version: string }).version;
    assert.equal(execFileSync(process.execPath, [SHOALD, '--version'], { encoding: 'utf8' }).trim(), version);
    for (const cmd of [[], ['init'], ['join'], ['run']]) {
      const help = execFileSync(process.execPath, [SHOALD, ...cmd, '--help'], { encoding: 'utf8' });
      assert.match(help, /\nExamples:\n {2}shoald /, help);
      // Every option line carries a description (yargs prints a bare flag when none is given).
      for (const l of help.split('\n').filter((x) => /^ {2}--/.test(x))) assert.match(l, /^ {2}--[\w-]+ +[^\s[]/, `${cmd.join(' ')}: ${l}`);
    }
  });
});
