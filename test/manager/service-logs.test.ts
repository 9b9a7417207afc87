// `shoal service logs` on real containers: a manager and a worker each run a replica that writes
// to stdout and stderr; the CLI gets every task's lines through the leader, which asks each node
// (their agents long-poll for log requests). Tail, timestamps, follow, a node that is down, and a
// service that does not exist.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';
import { CLI, shoalCli } from '../helpers/cli.js';

const LINE = /^(talk\.\d\.[0-9a-z]+)@(m1|w1)\s+\| (.*)$/;

/** The lines of a `service logs` output, split into their task, node and text. */
function parse(out: string): { task: string; node: string; text: string }[] {
  return out
    .split('\n')
    .filter(Boolean)
    .map((l) => {
      const m = LINE.exec(l);
      assert.ok(m, `a log line: ${JSON.stringify(l)}`);
      return { task: m[1]!, node: m[2]!, text: m[3]! };
    });
}

describe('service logs (real containers)', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let w1: Daemon;
  const shoal = (...args: string[]) => shoalCli(m1, args);

  before(async () => {
    m1 = await c.init('m1');
    w1 = await c.join('w1', m1, 'worker');
    await eventually('two ready nodes', async () => {
      const r = await m1.call<{ nodes: { node: { status: { state: string } } }[] }>('ListNodes');
      return r.nodes.length === 2 && r.nodes.every((n) => n.node.status.state === 'ready') ? true : undefined;
    });
    const r = await shoal(
      'service', 'create', '--name', 'talk', '--replicas', '2', '--stop-grace-period', '500ms', 'shoal/busybox:latest',
      'sh', '-c', 'echo "hello from $(hostname)"; echo "to stderr" >&2; i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 0.2; done',
    );
    assert.equal(r.code, 0, r.stderr);
  });
  after(() => c.stop());

  test("every task's lines, prefixed with task and node; stderr lines on stderr", async () => {
    const r = await eventually('both replicas have said hello', async () => {
      const x = await shoal('service', 'logs', 'talk');
      return x.code === 0 && parse(x.stdout).filter((l) => l.text.startsWith('hello from')).length === 2 ? x : undefined;
    });
    const out = parse(r.stdout);
    const tasks = new Set(out.map((l) => l.task));
    assert.equal(tasks.size, 2);
    assert.deepEqual([...new Set(out.map((l) => l.node))].sort(), ['m1', 'w1'], 'one replica on each node');
    const err = parse(r.stderr);
    assert.equal(err.filter((l) => l.text === 'to stderr').length, 2);
    // Each task's ticks come in order, none twice.
    for (const t of tasks) {
      const ticks = out.filter((l) => l.task === t && l.text.startsWith('tick ')).map((l) => Number(l.text.slice(5)));
      assert.deepEqual(ticks, ticks.map((_, i) => i + 1), `${t}: ${ticks.join(',')}`);
    }
  });

  test('--tail and --timestamps', async () => {
    const r = await shoal('service', 'logs', '--tail', '1', '-t', 'talk');
    assert.equal(r.code, 0, r.stderr);
    const out = [...parse(r.stdout), ...parse(r.stderr)];
    assert.equal(out.length, 2, 'the last line of each task');
    assert.equal(new Set(out.map((l) => l.task)).size, 2);
    for (const l of out) assert.match(l.text, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z tick \d+$/);
  });

  test('-f follows new lines, in order, none twice', async () => {
    const child = spawn(process.execPath, [CLI, '--host', `unix://${m1.socket}`, 'service', 'logs', '-f', '--tail', '2', 'talk'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    const followed = () => parse(stdout.split('\n').slice(0, -1).join('\n'));
    // New lines keep coming: follow until each task has shown 8.
    await eventually('8 followed lines of each task', async () => {
      const per = new Map<string, number>();
      for (const l of followed()) per.set(l.task, (per.get(l.task) ?? 0) + 1);
      return per.size === 2 && [...per.values()].every((n) => n >= 8);
    }, 30_000);
    child.kill('SIGINT');
    await new Promise((r) => child.once('exit', r));
    const out = followed();
    for (const t of new Set(out.map((l) => l.task))) {
      const ticks = out.filter((l) => l.task === t).map((l) => Number(l.text.slice(5)));
      for (let i = 1; i < ticks.length; i++) assert.equal(ticks[i], ticks[i - 1]! + 1, `${t}: ${ticks.join(',')}`);
    }
  });

  test('a node that is down: its tasks are named in a warning, the others are shown', async () => {
    await w1.kill();
    await eventually('w1 down', async () => {
      const r = await m1.call<{ nodes: { node: { description: { hostname: string }; status: { state: string } } }[] }>('ListNodes');
      return r.nodes.find((n) => n.node.description.hostname === 'w1')?.node.status.state === 'down' ? true : undefined;
    });
    const r = await shoal('service', 'logs', '--tail', '1', 'talk');
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /^warning: node w1 is down: the logs of its \d+ task\(s\) are not available$/m);
    assert.ok(parse(r.stdout).every((l) => l.node === 'm1'));
  });

  test('a service that does not exist: one line, exit 1 (-f too, whose stream ends at once)', async () => {
    for (const args of [['nope'], ['-f', 'nope']]) {
      const r = await shoal('service', 'logs', ...args);
      assert.equal(r.code, 1);
      assert.equal(r.stderr.trim(), 'Error: no such service: nope');
    }
  });
});
