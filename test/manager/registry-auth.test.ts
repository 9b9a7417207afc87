// Images from a registry that wants a login, through the real CLI (real Docker, a real registry:
// Debian's docker-registry, distribution 2.8, with htpasswd auth, on a 127.0.0.1 port the engine
// reaches over plain HTTP): `--with-registry-auth` sends the Docker client's credentials, sealed
// in the store and handed only to the node that runs a task, never logged; without it the pull is
// refused. docker's image pinning: a tag becomes the registry's digest, `--no-resolve-image` keeps
// it, and an image no registry has keeps its tag with docker's warning.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import http from 'node:http';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';
import { shoalCli } from '../helpers/cli.js';

const BASE = 'shoal/lab-base:12';
const LOCAL = 'shoal/busybox:latest';
const USER = 'alice';
const PASSWORD = `pw-${process.pid}-Zq7x`;
const REGISTRY_CONTAINER = `shoal-test-registry-${process.pid}`;

interface TaskRow {
  task: { id: string; desiredState: string; status: { state: string; err: string } };
}
interface ServiceJson {
  spec: { image: string };
  withRegistryAuth?: boolean;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return filesUnder(p);
    return e.isFile() ? [p] : [];
  });
}

/** The status of a GET (0: no answer); node:http, whose socket keeps the event loop alive while it waits. */
function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = http.get(url, { timeout: 2_000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve(0));
  });
}

const docker = (args: string[], input?: string): string =>
  execFileSync('docker', args, { encoding: 'utf8', stdio: ['pipe', 'pipe', 'pipe'], ...(input === undefined ? {} : { input }) });

/**
 * The registry: Debian's docker-registry with htpasswd auth (a bcrypt line made by the image's own
 * perl/libcrypt), its storage in the container, on a free 127.0.0.1 port.
 */
function startRegistry(): string {
  const script = [
    `perl -e 'my @c=("a".."z","A".."Z",0..9,".","/"); my $s=join("",map{$c[rand @c]}1..22); print "${USER}:".crypt($ARGV[0],"\\$2b\\$05\\$".$s)."\\n"' "$REG_PASSWORD" > /tmp/htpasswd`,
    'mkdir -p /tmp/registry',
    `printf 'version: 0.1\\nstorage:\\n  filesystem:\\n    rootdirectory: /tmp/registry\\nhttp:\\n  addr: :5000\\nauth:\\n  htpasswd:\\n    realm: shoal-test\\n    path: /tmp/htpasswd\\n' > /tmp/config.yml`,
    'exec docker-registry serve /tmp/config.yml',
  ].join(' && ');
  docker(['run', '-d', '--name', REGISTRY_CONTAINER, '-e', `REG_PASSWORD=${PASSWORD}`, '-p', '127.0.0.1::5000', BASE, 'sh', '-c', script]);
  const port = docker(['port', REGISTRY_CONTAINER, '5000/tcp']).trim().split('\n')[0]!.split(':').pop()!;
  return `127.0.0.1:${port}`;
}

describe('images from a registry that wants a login: --with-registry-auth, resolve-image', () => {
  const c = new TestCluster();
  let m1: Daemon;
  let registry = '';
  let ref = '';
  let digest = '';
  /** DOCKER_CONFIG directories: one logged in to the registry, one with no credentials, one broken. */
  let loggedIn = '';
  let anonymous = '';
  let broken = '';
  const outputs: string[] = [];

  const cli = async (args: string[], dockerConfig: string) => {
    const r = await shoalCli(m1, args, { env: { DOCKER_CONFIG: dockerConfig } });
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const inspect = async (name: string): Promise<ServiceJson> => {
    const r = await cli(['service', 'inspect', '--format', 'json', name], anonymous);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as ServiceJson;
  };
  const taskWith = (service: string, ok: (t: TaskRow['task']) => boolean, timeoutMs = 90_000) =>
    eventually(`a task of ${service} as expected`, async () => {
      const r = await m1.call<{ tasks: TaskRow[] }>('ListTasks', { service });
      return r.tasks.map((t) => t.task).find(ok);
    }, timeoutMs);

  before(async () => {
    docker(['image', 'inspect', BASE]);
    docker(['image', 'inspect', LOCAL]);
    registry = startRegistry();
    await eventually('the registry answering (401 without a login)', async () => (await httpStatus(`http://${registry}/v2/`)) === 401);
    const dir = mkdtempSync(join(tmpdir(), 'shoal-regauth-'));
    loggedIn = join(dir, 'logged-in');
    anonymous = join(dir, 'anonymous');
    broken = join(dir, 'broken');
    docker(['--config', loggedIn, 'login', registry, '-u', USER, '--password-stdin'], PASSWORD);
    assert.ok(JSON.parse(readFileSync(join(loggedIn, 'config.json'), 'utf8')).auths[registry]?.auth, 'docker login wrote an auth entry');
    execFileSync('mkdir', ['-p', anonymous, broken]);
    writeFileSync(join(broken, 'config.json'), JSON.stringify({ auths: { [registry]: { auth: 'bm90LWEtbG9naW4=' } } }));
    // The image only the registry has: pushed under a new name, the local tag removed.
    ref = `${registry}/shoal-test/busybox-${process.pid}:v1`;
    docker(['tag', LOCAL, ref]);
    const pushed = docker(['--config', loggedIn, 'push', ref]);
    digest = /digest: (sha256:[0-9a-f]{64})/.exec(pushed)?.[1] ?? '';
    assert.ok(digest, pushed);
    docker(['rmi', ref]);
    // Debug logs: every line the daemon might write about a pull or a spec.
    [m1] = [await c.init('m1', ['--log-level', 'debug'])];
  });

  after(async () => {
    await c.stop();
    try {
      docker(['rm', '-f', '-v', REGISTRY_CONTAINER]);
    } catch {
      // already gone
    }
    for (const image of [ref, `${ref}@${digest}`]) {
      try {
        docker(['rmi', '-f', image]);
      } catch {
        // never pulled
      }
    }
    if (loggedIn) rmSync(join(loggedIn, '..'), { recursive: true, force: true });
  });

  test('without --with-registry-auth: the image cannot be pinned (warning) and the pull is refused as unauthorized', async () => {
    const r = await cli(['service', 'create', '-d', '--name', 'noauth', '--restart-condition', 'none', ref, 'sleep', '300'], loggedIn);
    assert.equal(r.code, 0, r.stderr);
    assert.ok(r.stderr.includes(`image ${ref} could not be accessed on a registry to record\nits digest.`), r.stderr);
    assert.equal((await inspect('noauth')).spec.image, ref);
    const t = await taskWith('noauth', (x) => x.status.err !== '');
    assert.match(t.status.err, /unauthorized|authentication required|no basic auth credentials/i);
  });

  test('--with-registry-auth: the tag is pinned to the registry digest and the task runs, its image pulled with the login', async () => {
    const r = await cli(['service', 'create', '-d', '--name', 'withauth', '--with-registry-auth', ref, 'sleep', '300'], loggedIn);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '', 'no warning: the image was pinned');
    const svc = await inspect('withauth');
    assert.equal(svc.spec.image, `${ref}@${digest}`);
    assert.equal(svc.withRegistryAuth, true);
    await taskWith('withauth', (x) => x.status.state === 'running');
    docker(['image', 'inspect', `${ref}@${digest}`]); // pulled from the registry
    // ls shows the image as docker does: the tag, not the digest it was pinned to.
    const ls = await cli(['service', 'ls', '--format', 'json'], anonymous);
    assert.equal((JSON.parse(ls.stdout) as { name: string; image: string }[]).find((s) => s.name === 'withauth')?.image, ref);
    const text = await cli(['service', 'inspect', 'withauth'], anonymous);
    assert.match(text.stdout, /Registry auth: +set/);
  });

  test("at rest: the login is in no file under the manager's data directory (Raft log, snapshots, store)", () => {
    // As the manager seals it (the CLI's field order), in the clear and in base64.
    const login = JSON.stringify({ username: USER, password: PASSWORD, serveraddress: registry });
    const needles = [PASSWORD, Buffer.from(login).toString('base64')].map((x) => Buffer.from(x));
    const hits = filesUnder(m1.dataDir).filter((f) => {
      const data = readFileSync(f);
      return needles.some((n) => data.includes(n));
    });
    assert.deepEqual(hits, []);
  });

  test('--no-resolve-image keeps the tag; an image already given with a digest is left as it is', async () => {
    let r = await cli(['service', 'create', '-d', '--name', 'tagged', '--with-registry-auth', '--no-resolve-image', ref, 'sleep', '300'], loggedIn);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal((await inspect('tagged')).spec.image, ref);
    r = await cli(['service', 'create', '-d', '--name', 'pinned', `${ref}@${digest}`, 'sleep', '300'], anonymous);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.equal((await inspect('pinned')).spec.image, `${ref}@${digest}`);
  });

  test("an image no registry has keeps its tag, with docker's warning", async () => {
    const r = await cli(['service', 'create', '-d', '--name', 'localonly', LOCAL, 'sleep', '300'], anonymous);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(
      r.stderr,
      `image ${LOCAL} could not be accessed on a registry to record\nits digest. Each node will access ${LOCAL} independently,\npossibly leading to different nodes running different\nversions of the image.\n\n`,
    );
    assert.equal((await inspect('localonly')).spec.image, LOCAL);
    await taskWith('localonly', (x) => x.status.state === 'running');
  });

  test('update (and scale) without the flag keep the sealed login; an update with it replaces it (by none when the config has none)', async () => {
    let r = await cli(['service', 'update', '-d', '--env-add', 'A=1', 'withauth'], anonymous);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await inspect('withauth')).withRegistryAuth, true);
    r = await cli(['service', 'scale', '-d', 'withauth=2'], anonymous);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await inspect('withauth')).withRegistryAuth, true);
    r = await cli(['service', 'update', '-d', '--with-registry-auth', 'withauth'], anonymous);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await inspect('withauth')).withRegistryAuth, undefined);
    r = await cli(['service', 'update', '-d', '--with-registry-auth', 'withauth'], loggedIn);
    assert.equal(r.code, 0, r.stderr);
    assert.equal((await inspect('withauth')).withRegistryAuth, true);
  });

  test('a malformed auth in the Docker config: one line, nothing created or changed', async () => {
    let r = await cli(['service', 'create', '-d', '--name', 'badauth', '--with-registry-auth', ref], broken);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: the Docker config .*config\.json has a malformed auth for 127\.0\.0\.1:\d+ .*\n$/);
    const ls = await cli(['service', 'ls', '--format', 'json'], anonymous);
    assert.ok(!(JSON.parse(ls.stdout) as { name: string }[]).some((s) => s.name === 'badauth'));
    // (The service object itself may still change meanwhile: the orchestrator ends the last update.)
    const before = await m1.call<{ service: { spec: unknown; specVersion: number } }>('GetService', { service: 'withauth' });
    r = await cli(['service', 'update', '-d', '--with-registry-auth', '--env-add', 'B=2', 'withauth'], broken);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /malformed auth/);
    const now = await m1.call<{ service: { spec: unknown; specVersion: number }; withRegistryAuth: boolean }>('GetService', { service: 'withauth' });
    assert.deepEqual([now.service.spec, now.service.specVersion], [before.service.spec, before.service.specVersion]);
    assert.equal(now.withRegistryAuth, true);
  });

  test('the password is in no log line and no output (the daemon logged at debug level throughout)', async () => {
    const secrets = [PASSWORD, Buffer.from(`${USER}:${PASSWORD}`).toString('base64')];
    const everything = [m1.stdout, m1.stderr, ...outputs].join('\n');
    assert.ok(m1.stderr.length > 0, 'the daemon logged something');
    for (const s of secrets) assert.ok(!everything.includes(s), `a secret appears in the logs or outputs`);
  });
});
