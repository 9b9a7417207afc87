// --with-registry-auth's credentials, read from a Docker client config as docker reads it: the
// registry's key from the image, `auths` entries, and credential helpers (real programs speaking
// the docker-credential protocol, written to a directory on PATH).

import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { CliError } from '../src/errors.js';
import { INDEX_SERVER, registryAuthFor, registryKeyOf } from '../src/registry-auth.js';

const root = mkdtempSync(path.join(os.tmpdir(), 'shoal-regauth-'));
after(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** A DOCKER_CONFIG directory with this config.json (none when undefined), and helpers on PATH. */
function dockerEnv(config: unknown, helpers: Record<string, string> = {}): NodeJS.ProcessEnv {
  const dir = path.join(root, `c${n++}`);
  const bin = path.join(dir, 'bin');
  mkdirSync(bin, { recursive: true });
  if (config !== undefined) writeFileSync(path.join(dir, 'config.json'), typeof config === 'string' ? config : JSON.stringify(config));
  for (const [name, script] of Object.entries(helpers)) {
    const f = path.join(bin, `docker-credential-${name}`);
    writeFileSync(f, `#!/bin/sh\n${script}\n`);
    chmodSync(f, 0o755);
  }
  return { DOCKER_CONFIG: dir, PATH: `${bin}:/usr/bin:/bin`, HOME: dir };
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

function refused(fn: () => unknown, re: RegExp, secret?: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof CliError, String(err));
    assert.ok(!err.message.includes('\n'), err.message);
    if (secret) assert.ok(!err.message.includes(secret), err.message);
    assert.match(err.message, re);
    return true;
  });
}

describe("the registry's key in the Docker config (docker's reference rules)", () => {
  test('docker.io images, however written, are the index server', () => {
    for (const image of ['busybox', 'busybox:1.36', 'library/busybox', 'shoal/busybox:latest', 'docker.io/library/busybox', 'index.docker.io/x/y', 'user/app@sha256:abc']) {
      assert.equal(registryKeyOf(image), INDEX_SERVER, image);
    }
  });
  test('a first component with a dot, a port, localhost or capitals is a registry', () => {
    assert.equal(registryKeyOf('127.0.0.1:5000/app:v1'), '127.0.0.1:5000');
    assert.equal(registryKeyOf('registry.example.com/team/app@sha256:abc'), 'registry.example.com');
    assert.equal(registryKeyOf('localhost/app'), 'localhost');
    assert.equal(registryKeyOf('Reg/app'), 'Reg');
  });
});

describe('credentials from the config file', () => {
  test("auths[registry].auth: base64 user:password (a password may hold ':')", () => {
    const env = dockerEnv({ auths: { '127.0.0.1:5000': { auth: b64('alice:s3:cret') } } });
    assert.deepEqual(registryAuthFor('127.0.0.1:5000/app:v1', { env }), { username: 'alice', password: 's3:cret', serveraddress: '127.0.0.1:5000' });
  });
  test('an identity token; docker.io under its index-server key', () => {
    const env = dockerEnv({ auths: { [INDEX_SERVER]: { identitytoken: 'tok-123' } } });
    assert.deepEqual(registryAuthFor('busybox', { env }), { serveraddress: INDEX_SERVER, identitytoken: 'tok-123' });
  });
  test("an old config's URL key stands for its host", () => {
    const env = dockerEnv({ auths: { 'https://reg.example.com/v1/': { auth: b64('bob:pw') } } });
    assert.deepEqual(registryAuthFor('reg.example.com/app', { env }), { username: 'bob', password: 'pw', serveraddress: 'reg.example.com' });
  });
  test('no entry, or no config at all: an empty login (docker sends it too)', () => {
    assert.deepEqual(registryAuthFor('reg.example.com/app', { env: dockerEnv({ auths: { 'other:5000': { auth: b64('a:b') } } }) }), {
      serveraddress: 'reg.example.com',
    });
    assert.deepEqual(registryAuthFor('busybox', { env: dockerEnv(undefined) }), { serveraddress: INDEX_SERVER });
  });
  test('a malformed auth or file: one line naming the file and registry, never the secret', () => {
    refused(() => registryAuthFor('reg:5000/a', { env: dockerEnv({ auths: { 'reg:5000': { auth: 'not base64!' } } }) }), /malformed auth for reg:5000/);
    // Base64 of something without "user:".
    refused(() => registryAuthFor('reg:5000/a', { env: dockerEnv({ auths: { 'reg:5000': { auth: b64('hunter2-only') } } }) }), /malformed auth/, 'hunter2');
    refused(() => registryAuthFor('reg:5000/a', { env: dockerEnv('{"auths": ') }), /config\.json is not valid JSON/);
  });
});

describe('credential helpers (the docker-credential-NAME get protocol)', () => {
  // Answers for one registry only, as a real store does; checks what docker writes on stdin.
  const store = `read key; if [ "$key" = "reg.example.com" ]; then echo '{"ServerURL":"reg.example.com","Username":"carol","Secret":"pw-from-helper"}'; elif [ "$key" = "tok.example.com" ]; then echo '{"ServerURL":"tok.example.com","Username":"<token>","Secret":"id-token"}'; else echo 'credentials not found in native keychain'; exit 1; fi`;
  test('credsStore answers for every registry; "<token>" is an identity token', () => {
    const env = dockerEnv({ credsStore: 'teststore', auths: { 'reg.example.com': {} } }, { teststore: store });
    assert.deepEqual(registryAuthFor('reg.example.com/app:1', { env }), { username: 'carol', password: 'pw-from-helper', serveraddress: 'reg.example.com' });
    assert.deepEqual(registryAuthFor('tok.example.com/app', { env }), { serveraddress: 'tok.example.com', identitytoken: 'id-token' });
    assert.deepEqual(registryAuthFor('none.example.com/app', { env }), { serveraddress: 'none.example.com' });
  });
  test('credHelpers[registry] comes before credsStore and the file', () => {
    const env = dockerEnv(
      { credsStore: 'broken', credHelpers: { 'reg.example.com': 'teststore' }, auths: { 'reg.example.com': { auth: b64('file:user') } } },
      { teststore: store, broken: 'echo boom >&2; exit 3' },
    );
    assert.equal(registryAuthFor('reg.example.com/app', { env }).username, 'carol');
    refused(() => registryAuthFor('other.example.com/app', { env }), /docker-credential-broken failed for other\.example\.com \(exit 3\): boom/);
  });
  test('a helper that is not installed: one line', () => {
    refused(() => registryAuthFor('busybox', { env: dockerEnv({ credsStore: 'nosuch' }) }), /credential helper docker-credential-nosuch: not found in PATH/);
  });
});
