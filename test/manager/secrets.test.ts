// `shoal secret ...` and `shoal config ...` through the real CLI on three manager processes (each
// a node running tasks on this machine's Docker): the shapes (INTERFACE.md), a secret's data never
// shown, bad input refused in one line with nothing stored, a secret or config in use kept, and a
// task that uses both reading them at /run/secrets/TARGET and TARGET with the owner and mode asked,
// from memory: the secret's text is found nowhere under the engine's data root nor any daemon's
// data dir, and a task's files go with its container.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';
import { CLI, type CliResult, shoalCli } from '../helpers/cli.js';

const IMAGE = 'shoal/busybox:latest';
// Text that appears nowhere else: what the grep looks for.
const SECRET_TEXT = `s3cr3t-${process.pid}-${Date.now().toString(36)}-Qx9`;
const CONFIG_TEXT = 'worker_processes 2;\nlisten 8080;\n';

interface LsRow {
  id: string;
  name: string;
  createdAt: string;
  labels: Record<string, string>;
}

function ok(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  return r.stdout;
}

function oneLineError(r: CliResult, re: RegExp, what: string): void {
  assert.notEqual(r.code, 0, `${what} succeeded: ${r.stdout}`);
  const lines = r.stderr.split('\n').filter((l) => l !== '');
  assert.equal(lines.length, 1, `${what}: one line on stderr: ${r.stderr}`);
  assert.match(r.stderr, re, what);
}

const docker = (args: string[]): string => execFileSync('docker', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });

/** The files under `dir` that hold `text` (grep -r: the engine's data root is large). */
function filesHolding(dir: string, text: string): string[] {
  try {
    return execFileSync('grep', ['-rlF', '--', text, dir], { encoding: 'utf8', maxBuffer: 64 << 20 }).split('\n').filter(Boolean);
  } catch (err) {
    // grep: 1 when nothing matched; 2 with unreadable files (sockets, vanished files) along the way.
    const e = err as { status?: number; stdout?: string };
    if (e.status === 1 || e.status === 2) return String(e.stdout ?? '').split('\n').filter(Boolean);
    throw err;
  }
}

describe('secrets and configs through the CLI', () => {
  const c = new TestCluster();
  let managers: Daemon[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'shoal-secrets-'));
  const secretFile = join(dir, 'secret.txt');
  const configFile = join(dir, 'nginx.conf');

  async function ls(kind: 'secret' | 'config', d = managers[0]!): Promise<LsRow[]> {
    return JSON.parse(ok(await shoalCli(d, [kind, 'ls', '--format', 'json']), `${kind} ls`)) as LsRow[];
  }

  before(async () => {
    writeFileSync(secretFile, SECRET_TEXT);
    writeFileSync(configFile, CONFIG_TEXT);
    managers = await c.managers(3);
  });
  after(async () => {
    await c.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test('create, ls, inspect: a secret\'s data never comes back, a config\'s does', async () => {
    const [m1, m2, m3] = managers as [Daemon, Daemon, Daemon];
    const secretId = ok(await shoalCli(m1, ['secret', 'create', '--label', 'env=prod', 'db_password', secretFile]), 'secret create').trim();
    const configId = ok(await shoalCli(m2, ['config', 'create', '-l', 'tier=web', 'nginx.conf', configFile]), 'config create').trim();
    assert.match(secretId, /^[a-z0-9]{25}$/);
    const secrets = await ls('secret', m3);
    assert.equal(secrets.length, 1);
    assert.deepEqual({ ...secrets[0]!, createdAt: '' }, { id: secretId, name: 'db_password', createdAt: '', labels: { env: 'prod' } });
    assert.ok(!Number.isNaN(Date.parse(secrets[0]!.createdAt)));
    assert.deepEqual((await ls('config', m3)).map((x) => [x.id, x.name, x.labels]), [[configId, 'nginx.conf', { tier: 'web' }]]);
    const table = ok(await shoalCli(m3, ['secret', 'ls']), 'secret ls').split('\n');
    assert.match(table[0]!, /^ID\s+NAME\s+CREATED\s+UPDATED$/);
    assert.match(table[1]!, new RegExp(`^${secretId}\\s+db_password\\s+.* ago\\s+.* ago$`));
    assert.equal(ok(await shoalCli(m3, ['secret', 'ls', '-q']), 'ls -q').trim(), secretId);

    const json = ok(await shoalCli(m3, ['secret', 'inspect', '--format', 'json', secretId.slice(0, 6)]), 'secret inspect');
    const [shown] = JSON.parse(json) as { id: string; spec: { name: string }; size: number }[];
    assert.equal(shown!.id, secretId);
    assert.equal(shown!.size, Buffer.byteLength(SECRET_TEXT));
    const text = ok(await shoalCli(m3, ['secret', 'inspect', 'db_password']), 'secret inspect text');
    assert.match(text, /^Name:\s+db_password$/m);
    for (const out of [json, text]) {
      assert.ok(!out.includes(SECRET_TEXT) && !out.includes(Buffer.from(SECRET_TEXT).toString('base64')), 'inspect shows no data');
    }
    // The API's answer holds no data either (only what the CLI is sent).
    const raw = await m1.call<{ secret: Record<string, unknown> }>('GetSecret', { secret: secretId });
    assert.deepEqual(Object.keys(raw.secret).sort(), ['createdAt', 'id', 'size', 'spec', 'updatedAt', 'version']);

    const configText = ok(await shoalCli(m1, ['config', 'inspect', 'nginx.conf']), 'config inspect');
    assert.match(configText, /^Data:\nworker_processes 2;\nlisten 8080;$/m);
    const [cj] = JSON.parse(ok(await shoalCli(m1, ['config', 'inspect', '--format', 'json', configId]), 'config inspect json')) as { spec: { data: string } }[];
    assert.equal(Buffer.from(cj!.spec.data, 'base64').toString(), CONFIG_TEXT);

    // From stdin.
    const piped = execFileSync(process.execPath, [CLI, '--host', `unix://${m1.socket}`, 'secret', 'create', 'from_stdin', '-'], { input: 'piped in' }).toString().trim();
    assert.equal((await m2.call<{ secret: { size: number } }>('GetSecret', { secret: 'from_stdin' })).secret.size, 8);
    ok(await shoalCli(m2, ['secret', 'rm', piped]), 'rm from_stdin');
  });

  test('bad input: one line saying why, and nothing stored', async () => {
    const m2 = managers[1]!;
    const before = [await ls('secret'), await ls('config')];
    const big = join(dir, 'big');
    writeFileSync(big, Buffer.alloc(500 * 1024 + 1, 'x'));
    const empty = join(dir, 'empty');
    writeFileSync(empty, '');
    const cases: [string[], RegExp][] = [
      [['secret', 'create', 'db_password', secretFile], /secret name "db_password" is already taken/],
      [['secret', 'create', '-bad', secretFile], /invalid secret name "-bad"|Unknown argument|Not enough/],
      [['secret', 'create', 'a/b', secretFile], /invalid secret name "a\/b"/],
      [['secret', 'create', 'x'.repeat(65), secretFile], /at most 64 characters/],
      [['secret', 'create', 'missing', join(dir, 'nope')], /cannot read secret file .*nope: ENOENT/],
      [['secret', 'create', 'huge', big], /at most 512000 bytes/],
      [['secret', 'create', 'hollow', empty], /secret "hollow" has no data/],
      [['secret', 'create', '--label', '=v', 'lbl', secretFile], /label/],
      [['config', 'create', 'nginx.conf', configFile], /config name "nginx.conf" is already taken/],
      [['config', 'create', 'huge', big], /at most 512000 bytes/],
      [['secret', 'rm', 'nope'], /no such secret: nope/],
      [['config', 'inspect', 'nope'], /no such config: nope/],
      [['service', 'create', '-d', '--name', 'bad1', '--secret', 'nope', IMAGE], /unknown secret "nope"/],
      [['service', 'create', '-d', '--name', 'bad2', '--config', 'source=nope,target=/etc/x', IMAGE], /unknown config "nope"/],
      [['service', 'create', '-d', '--name', 'bad3', '--secret', 'source=db_password,mode=0999', IMAGE], /mode must be octal/],
      [['service', 'create', '-d', '--name', 'bad4', '--secret', 'source=db_password,target=../etc/passwd', IMAGE], /may not hold '\.' or '\.\.' components/],
      [['service', 'create', '-d', '--name', 'bad5', '--secret', 'source=db_password,colour=red', IMAGE], /unknown field "colour"/],
      [['service', 'create', '-d', '--name', 'bad6', '--secret', 'db_password', '--config', 'source=nginx.conf,target=/run/secrets/db_password', IMAGE], /both given the file \/run\/secrets\/db_password/],
    ];
    for (const [args, re] of cases) oneLineError(await shoalCli(m2, args), re, args.join(' '));
    assert.deepEqual([await ls('secret'), await ls('config')], before);
    assert.deepEqual(JSON.parse(ok(await shoalCli(m2, ['service', 'ls', '--format', 'json']), 'service ls')), []);
  });

  test('a task reads its secret and config from memory with the owner and mode asked; in use, they stay; its files go with it', async () => {
    const [m1, m2] = managers as [Daemon, Daemon];
    const create = await shoalCli(m1, [
      'service', 'create', '--name', 'app', '--replicas', '1',
      '--secret', 'source=db_password,target=db.pw,uid=1000,gid=2000,mode=0400',
      '--config', 'source=nginx.conf,target=/etc/app/nginx.conf,mode=0440',
      IMAGE, 'sleep', '3600',
    ]);
    ok(create, 'service create');
    ok(await shoalCli(m1, ['service', 'create', '--name', 'other', '--secret', 'db_password', IMAGE, 'sleep', '3600']), 'service create other');
    const containerOf = (service: string) =>
      eventually(`${service}'s container`, async () => docker(['ps', '-q', '--filter', `label=shoal.service.name=${service}`]).trim().split('\n')[0] || undefined);
    const app = await containerOf('app');
    assert.equal(docker(['exec', app, 'cat', '/run/secrets/db.pw']), SECRET_TEXT);
    assert.equal(docker(['exec', app, 'stat', '-c', '%u %g %a', '/run/secrets/db.pw']).trim(), '1000 2000 400');
    assert.equal(docker(['exec', app, 'cat', '/etc/app/nginx.conf']), CONFIG_TEXT);
    assert.equal(docker(['exec', app, 'stat', '-c', '%u %g %a', '/etc/app/nginx.conf']).trim(), '0 0 440');
    // Read-only, from a tmpfs.
    assert.throws(() => docker(['exec', app, 'sh', '-c', 'echo x > /run/secrets/db.pw']));
    const other = await containerOf('other');
    assert.equal(docker(['exec', other, 'cat', '/run/secrets/db_password']), SECRET_TEXT);
    assert.equal(docker(['exec', other, 'stat', '-c', '%u %g %a', '/run/secrets/db_password']).trim(), '0 0 444');
    const mounts = JSON.parse(docker(['inspect', '--format', '{{json .Mounts}}', app])) as { Source: string; Destination: string; RW: boolean }[];
    const secretMount = mounts.find((m) => m.Destination === '/run/secrets/db.pw')!;
    assert.ok(secretMount.Source.startsWith('/dev/shm/'), secretMount.Source);
    assert.equal(secretMount.RW, false);

    oneLineError(await shoalCli(m2, ['secret', 'rm', 'db_password']), /^Error: secret "db_password" is in use by services app, other$/m, 'rm in use');
    oneLineError(await shoalCli(m2, ['config', 'rm', 'nginx.conf']), /config "nginx.conf" is in use by service app$/m, 'config rm in use');

    // Nowhere in the clear but in memory: not in the engine's data root, not in any daemon's data dir.
    for (const root of ['/var/lib/docker', ...managers.map((d) => d.dataDir)]) {
      assert.deepEqual(filesHolding(root, SECRET_TEXT), [], `the secret's text under ${root}`);
      assert.deepEqual(filesHolding(root, Buffer.from(SECRET_TEXT).toString('base64')), [], `the secret's base64 under ${root}`);
    }
    for (const d of managers) assert.ok(!(d.stdout + d.stderr).includes(SECRET_TEXT), `${d.name}'s output holds the secret`);

    // The files go with the containers.
    const secretDir = secretMount.Source.replace(/\/[^/]+$/, '');
    assert.ok(existsSync(secretDir));
    ok(await shoalCli(m1, ['service', 'update', '--secret-rm', 'db_password', 'other']), 'update --secret-rm');
    ok(await shoalCli(m1, ['service', 'rm', 'app']), 'service rm app');
    await eventually("app's files removed", async () => (existsSync(secretDir) ? undefined : true), 30_000);
    // "other" no longer names it, but its previous spec does (a rollback returns to it).
    oneLineError(await shoalCli(m2, ['secret', 'rm', 'db_password']), /in use by service other$/m, 'rm in use by a previous spec');
    ok(await shoalCli(m1, ['service', 'rm', 'other']), 'service rm other');
    ok(await shoalCli(m2, ['secret', 'rm', 'db_password']), 'secret rm');
    ok(await shoalCli(m2, ['config', 'rm', 'nginx.conf']), 'config rm');
    assert.deepEqual([await ls('secret'), await ls('config')], [[], []]);
    const nodes = (await m1.call<{ nodes: { node: { id: string } }[] }>('ListNodes')).nodes.map((n) => join('/dev/shm/shoal-task-files', n.node.id));
    await eventually('no task files left', async () => (nodes.flatMap((n) => (existsSync(n) ? readdirSync(n) : [])).length === 0 ? true : undefined), 30_000);
  });
});
