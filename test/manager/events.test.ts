// `shoal events` against three real shoald managers: the CLI follows one manager's stream (JSON,
// one event a line) while a service is created, scaled and removed, and prints the events in
// order; when that manager is killed the CLI resumes on the next of --host after the last version
// it printed, and what it printed equals, version for version, what a surviving manager holds:
// nothing missed, nothing twice. Bad flags are one-line usage errors.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';
import { CLI, shoalCli } from '../helpers/cli.js';

interface JsonEvent {
  Type: string;
  Action: string;
  Actor: { ID: string; Attributes: Record<string, string> };
  time: number;
  version: string;
}

const vkey = (v: string): [number, number] => v.split('.').map(Number) as [number, number];
const before_ = (a: string, b: string): boolean => {
  const [ai, ap] = vkey(a);
  const [bi, bp] = vkey(b);
  return ai < bi || (ai === bi && ap < bp);
};
/** An event as every manager has it (times and leader changes are each manager's own). */
const same = (e: JsonEvent): string => `${e.version} ${e.Type} ${e.Action} ${e.Actor.ID}`;

describe('shoal events (3 managers)', () => {
  const c = new TestCluster();
  let m: Daemon[];
  let follower: ChildProcess | undefined;
  let out = '';
  let err = '';
  const shoal = (d: Daemon, ...args: string[]) => shoalCli(d, args);
  const printed = (): JsonEvent[] =>
    out
      .split('\n')
      .slice(0, -1)
      .map((l) => JSON.parse(l) as JsonEvent);

  before(async () => {
    m = await c.managers(3);
  });
  after(async () => {
    follower?.kill('SIGKILL');
    await c.stop();
  });

  test('follows create, scale and remove in order; resumes on another manager with no gap and no repeat', async () => {
    const t0 = new Date(Date.now() - 1000).toISOString();
    // m2 first: the one killed later; then m3 and m1.
    const hosts = [m[1]!, m[2]!, m[0]!].map((d) => `unix://${d.socket}`).join(',');
    follower = spawn(process.execPath, [CLI, '--host', hosts, 'events', '--format', 'json', '--since', t0, '--filter', 'type=service', '--filter', 'type=task', '--filter', 'type=cluster'], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    follower.stdout!.on('data', (d: Buffer) => (out += d.toString()));
    follower.stderr!.on('data', (d: Buffer) => (err += d.toString()));

    let r = await shoal(m[0]!, 'service', 'create', '-d', '--name', 'web', '--replicas', '2', '--stop-grace-period', '200ms', 'shoal/busybox:latest', 'sleep', '3600');
    assert.equal(r.code, 0, r.stderr);
    const id = r.stdout.trim();
    await eventually('the service and its 2 tasks created', async () => {
      const evs = printed();
      return evs.some((e) => e.Type === 'service' && e.Action === 'create') && evs.filter((e) => e.Type === 'task' && e.Action === 'create').length >= 2;
    }, 30_000);
    r = await shoal(m[0]!, 'service', 'scale', '-d', 'web=3');
    assert.equal(r.code, 0, r.stderr);
    await eventually('the scale and the third task', async () => printed().some((e) => e.Type === 'task' && e.Action === 'create' && e.Actor.Attributes['slot'] === '3'), 30_000);

    const beforeKill = printed();
    const create = beforeKill.findIndex((e) => e.Type === 'service' && e.Action === 'create' && e.Actor.ID === id);
    assert.ok(create >= 0, `the service's create: ${out}`);
    assert.equal(beforeKill[create]!.Actor.Attributes['name'], 'web');
    const scale = beforeKill.findIndex((e) => e.Type === 'service' && e.Action === 'update' && e.Actor.Attributes['replicas.new'] === '3');
    assert.ok(scale > create, 'the scale comes after the create');
    assert.equal(beforeKill[scale]!.Actor.Attributes['replicas.old'], '2');
    const slot3 = beforeKill.findIndex((e) => e.Type === 'task' && e.Action === 'create' && e.Actor.Attributes['slot'] === '3');
    assert.ok(slot3 > scale, "the third task comes after the scale that asked for it");
    for (const e of beforeKill.filter((x) => x.Type === 'task')) assert.equal(e.Actor.Attributes['service.name'], 'web');

    // The manager the CLI follows goes away; the cluster goes on with the other two.
    await m[1]!.kill('SIGKILL');
    r = await shoal(m[0]!, 'service', 'rm', 'web');
    assert.equal(r.code, 0, r.stderr);
    await eventually('the remove, followed on another manager', async () => printed().some((e) => e.Type === 'service' && e.Action === 'remove'), 30_000);
    assert.match(err, /resuming after \d+(\.\d+)?/, 'the CLI said it resumed');

    const all = printed();
    for (let i = 1; i < all.length; i++) assert.ok(before_(all[i - 1]!.version, all[i]!.version), `versions increase: ${all[i - 1]!.version} then ${all[i]!.version}`);
    const last = all[all.length - 1]!.version;
    // What m3 holds from t0 up to the last version printed, leader changes left aside (each manager sees its own).
    const held = await shoal(m[2]!, 'events', '--format', 'json', '--since', t0, '--until', new Date(Date.now() + 1000).toISOString(), '--filter', 'type=service', '--filter', 'type=task');
    assert.equal(held.code, 0, held.stderr);
    const want = held.stdout
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l) as JsonEvent)
      .filter((e) => !before_(last, e.version))
      .map(same);
    assert.deepEqual(all.filter((e) => e.Type !== 'cluster').map(same), want);
    assert.ok(follower.exitCode === null, `the CLI still follows: ${err}`);
  });

  test('bad flags: one line each, exit 2', async () => {
    const d = m[0]!;
    for (const [args, msg] of [
      [['--filter', 'colour=red'], /^Error: invalid --filter "colour=red": the key must be one of type, service, node, event/],
      [['--filter', 'type=volume'], /^Error: invalid --filter "type=volume": the type must be one of/],
      [['--since', 'yesterday'], /^Error: invalid --since "yesterday": expected a duration/],
      [['--until', 'soon'], /^Error: invalid --until "soon": expected a duration/],
      [['--format', 'yaml'], /^Error: --format "yaml": this command prints table or json only/],
    ] as const) {
      const r = await shoal(d, 'events', ...args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
      assert.match(r.stderr, msg);
    }
  });

  test('--until in the past: the held events of the window, then the command ends', async () => {
    const r = await shoal(m[0]!, 'events', '--since', '10m', '--until', '0s', '--filter', 'type=node');
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.length >= 3, `the three managers' node events: ${r.stdout}`);
    for (const l of lines) assert.match(l, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z node (create|update) [0-9a-z]+ \(.*name=m\d.*\)$/);
  });

  test('over TCP with the admin certificate, as over the socket; the events a follower holds too', async () => {
    const { execFile } = await import('node:child_process');
    const { join } = await import('node:path');
    const r = await new Promise<{ code: number; stdout: string; stderr: string }>((res) =>
      execFile(process.execPath, [CLI, '--host', m[2]!.addr, '--cert-path', join(m[0]!.dataDir, 'admin'), 'events', '--since', '10m', '--until', '0s', '--filter', 'type=node'], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
        res({ code: err ? (typeof err.code === 'number' ? err.code : -1) : 0, stdout, stderr }),
      ),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, / node (create|update) /);
  });

  test('leader changes: each manager records the ones it saw, with the leader named', async () => {
    const r = await shoal(m[0]!, 'events', '--since', '10m', '--until', '0s', '--filter', 'event=leader', '--format', 'json');
    assert.equal(r.code, 0, r.stderr);
    const evs = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as JsonEvent);
    assert.ok(evs.length >= 1, 'the election m1 won at init');
    const nodes = await m[0]!.call<{ nodes: { node: { id: string; description: { hostname: string } } }[] }>('ListNodes');
    const m1 = nodes.nodes.find((n) => n.node.description.hostname === 'm1')!.node.id;
    assert.deepEqual([evs[0]!.Type, evs[0]!.Action, evs[0]!.Actor.ID], ['cluster', 'leader', m1]);
    // Named once its node is in the store (the first election of a new cluster comes before that).
    assert.ok([undefined, 'm1'].includes(evs[0]!.Actor.Attributes['name']));
    assert.match(evs[0]!.Actor.Attributes['term']!, /^\d+$/);
  });
});
