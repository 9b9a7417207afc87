// The engine's address (--docker-host / DOCKER_HOST) and docker's client environment, mapped to
// docker-modem's options; then each kind of address used for real against the local engine:
// unix (whatever the environment's DOCKER_HOST says), tcp with DOCKER_TLS_VERIFY through a TLS
// front of the engine's socket, and ssh through an SSH server that runs `docker system dial-stdio`.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { ShoalError } from '@shoal/api';
import { DockerExecutor, dockerClientEnv, dockerEndpoint, type DockerClientEnv } from '../src/index.js';

const DOCKER_SOCKET = '/var/run/docker.sock';
const PLAIN: DockerClientEnv = { tlsVerify: false, certPath: '/nonexistent' };
const tmp = mkdtempSync(path.join(os.tmpdir(), 'shoal-docker-endpoint-'));
after(() => rmSync(tmp, { recursive: true, force: true }));

function invalid(fn: () => unknown, msg: RegExp): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(ShoalError.is(err), `not a ShoalError: ${String(err)}`);
    assert.equal(err.code, 'INVALID_ARGUMENT');
    assert.match(err.message, msg);
    assert.ok(!err.message.includes('\n'), 'one line');
    return true;
  });
}

/** Listens on an ephemeral loopback port: which. */
async function listen(server: net.Server): Promise<number> {
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return (server.address() as net.AddressInfo).port;
}

/** Pipes `client` both ways to the real engine's socket. */
function toEngine(client: Duplex): void {
  const engine = net.connect(DOCKER_SOCKET);
  client.pipe(engine).pipe(client);
  const drop = (): void => {
    client.destroy();
    engine.destroy();
  };
  client.on('error', drop).on('close', drop);
  engine.on('error', drop).on('close', drop);
}

describe('docker host mapping', () => {
  test('unix sockets: unix://PATH, a bare path, empty (the local socket)', () => {
    for (const [addr, socketPath] of [
      ['unix:///run/x/docker.sock', '/run/x/docker.sock'],
      ['/run/x/docker.sock', '/run/x/docker.sock'],
      ['', DOCKER_SOCKET],
      ['  ', DOCKER_SOCKET],
      ['unix://', DOCKER_SOCKET],
    ] as const) {
      const ep = dockerEndpoint(addr, PLAIN);
      assert.equal(ep.display, `unix://${socketPath}`, addr);
      assert.equal(ep.modem.socketPath, socketPath);
      assert.equal(ep.tls, false);
      // Set, to nothing: docker-modem would otherwise take a host from the environment's DOCKER_HOST.
      assert.ok('host' in ep.modem && ep.modem.host === undefined);
    }
  });

  test('tcp: plain HTTP on 2375 by default; a bare HOST:PORT is tcp; IPv6 literals', () => {
    let ep = dockerEndpoint('tcp://10.0.0.5', PLAIN);
    assert.deepEqual([ep.display, ep.modem.host, ep.modem.port, ep.modem.protocol, ep.tls], ['tcp://10.0.0.5:2375', '10.0.0.5', '2375', 'http', false]);
    assert.equal(ep.modem.socketPath, undefined);
    ep = dockerEndpoint('docker.example:2380', PLAIN);
    assert.deepEqual([ep.display, ep.modem.host, ep.modem.port, ep.modem.protocol], ['tcp://docker.example:2380', 'docker.example', '2380', 'http']);
    ep = dockerEndpoint('tcp://[::1]:2375', PLAIN);
    assert.deepEqual([ep.display, ep.modem.host], ['tcp://[::1]:2375', '::1']);
    ep = dockerEndpoint('https://docker.example', PLAIN);
    assert.deepEqual([ep.display, ep.modem.port, ep.modem.protocol, ep.tls, ep.modem.cert], ['https://docker.example:2376', '2376', 'https', true, undefined]);
  });

  test('tcp with DOCKER_TLS_VERIFY: HTTPS on 2376 with DOCKER_CERT_PATH\'s ca.pem, cert.pem, key.pem', () => {
    const dir = mkdtempSync(path.join(tmp, 'certs-'));
    const env: DockerClientEnv = { tlsVerify: true, certPath: dir };
    invalid(() => dockerEndpoint('tcp://10.0.0.5', env), new RegExp(`^DOCKER_TLS_VERIFY is set but ${dir}/ca.pem cannot be read \\(ENOENT\\)`));
    makeCerts(dir);
    const ep = dockerEndpoint('tcp://10.0.0.5', env);
    assert.deepEqual([ep.display, ep.modem.port, ep.modem.protocol, ep.tls], ['tcp://10.0.0.5:2376', '2376', 'https', true]);
    assert.match(String(ep.modem.ca), /BEGIN CERTIFICATE/);
    assert.match(String(ep.modem.cert), /BEGIN CERTIFICATE/);
    assert.match(String(ep.modem.key), /PRIVATE KEY/);
    // A unix socket needs no certificates.
    assert.equal(dockerEndpoint('unix:///x.sock', { tlsVerify: true, certPath: '/nonexistent' }).tls, false);
  });

  test('ssh: user, host, port 22 by default, the ssh agent', () => {
    let ep = dockerEndpoint('ssh://deploy@docker.example', { ...PLAIN, sshAuthSock: '/tmp/agent.sock' });
    assert.deepEqual(
      [ep.display, ep.modem.protocol, ep.modem.host, ep.modem.port, ep.modem.username, ep.modem.sshOptions],
      ['ssh://deploy@docker.example:22', 'ssh', 'docker.example', '22', 'deploy', { agent: '/tmp/agent.sock' }],
    );
    ep = dockerEndpoint('ssh://docker.example:2222', PLAIN);
    assert.equal(ep.display, `ssh://${os.userInfo().username}@docker.example:2222`);
    assert.deepEqual(ep.modem.sshOptions, {});
  });

  test('docker\'s client environment', () => {
    assert.deepEqual(dockerClientEnv({}), { tlsVerify: false, certPath: path.join(os.homedir(), '.docker') });
    assert.deepEqual(dockerClientEnv({ DOCKER_TLS_VERIFY: '1', DOCKER_CERT_PATH: '/c', SSH_AUTH_SOCK: '/a' }), { tlsVerify: true, certPath: '/c', sshAuthSock: '/a' });
  });

  test('a bad address: one clear line', () => {
    invalid(() => dockerEndpoint('ftp://docker.example', PLAIN), /^unsupported docker host "ftp:\/\/docker.example": use unix:\/\/\/path\/to\/docker.sock, tcp:\/\/host:port or ssh:\/\/user@host$/);
    invalid(() => dockerEndpoint('tcp://', PLAIN), /^invalid docker host "tcp:\/\/"/);
    invalid(() => dockerEndpoint('tcp://[::1', PLAIN), /^invalid docker host "tcp:\/\/\[::1"/);
    invalid(() => dockerEndpoint('ssh://', PLAIN), /^invalid docker host "ssh:\/\/"/);
    invalid(() => new DockerExecutor({ nodeId: 'n1', dockerHost: 'npipe:////./pipe/docker_engine' }), /^unsupported docker host/);
  });
});

/** A CA, a server certificate for 127.0.0.1 and a client certificate, laid out as DOCKER_CERT_PATH. */
function makeCerts(dir: string): void {
  const sh = (...args: string[]): void => void execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  sh('req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=test-ca');
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth'],
    ['', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    const base = name ? `${name}-` : '';
    sh('req', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-keyout', `${base}key.pem`, '-out', `${base}csr.pem`, '-subj', `/CN=${name || 'client'}`);
    execFileSync('sh', ['-c', `printf '${ext}\\n' > ${base}ext.cnf`], { cwd: dir });
    sh('x509', '-req', '-in', `${base}csr.pem`, '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', `${base}cert.pem`, '-days', '2', '-extfile', `${base}ext.cnf`);
  }
}

describe('docker hosts used against the real engine', () => {
  test('the address given is the one used, whatever the environment\'s DOCKER_HOST says', async () => {
    const saved = process.env['DOCKER_HOST'];
    // docker-modem merges the environment's DOCKER_HOST under the options it is given.
    process.env['DOCKER_HOST'] = 'tcp://127.0.0.1:1';
    const ex = new DockerExecutor({ nodeId: 'n1', dockerHost: `unix://${DOCKER_SOCKET}`, pingTimeoutMs: 10_000 });
    try {
      await ex.ping();
      // One it cannot even parse stops docker-modem's constructor: said in one line.
      process.env['DOCKER_HOST'] = 'tcp://[nonsense';
      invalid(() => new DockerExecutor({ nodeId: 'n1', dockerHost: `unix://${DOCKER_SOCKET}` }), /^the Docker client cannot start: DOCKER_HOST env variable should be something like tcp:\/\/localhost:1234 \(check DOCKER_HOST and DOCKER_CERT_PATH\)$/);
    } finally {
      if (saved === undefined) delete process.env['DOCKER_HOST'];
      else process.env['DOCKER_HOST'] = saved;
      await ex.close();
    }
  });

  test('tcp with DOCKER_TLS_VERIFY: mutual TLS to the engine', async () => {
    const dir = mkdtempSync(path.join(tmp, 'tls-'));
    makeCerts(dir);
    const read = (f: string): Buffer => readFileSync(path.join(dir, f));
    // The engine's socket behind TLS that wants a client certificate of the same CA, like dockerd --tlsverify.
    const front = tls.createServer({ key: read('server-key.pem'), cert: read('server-cert.pem'), ca: read('ca.pem'), requestCert: true, rejectUnauthorized: true }, toEngine);
    const port = await listen(front);
    const ex = new DockerExecutor({ nodeId: 'n1', dockerHost: `tcp://127.0.0.1:${port}`, dockerEnv: { tlsVerify: true, certPath: dir }, pingTimeoutMs: 10_000 });
    const plain = new DockerExecutor({ nodeId: 'n1', dockerHost: `tcp://127.0.0.1:${port}`, dockerEnv: PLAIN, pingTimeoutMs: 2000 });
    try {
      assert.equal(ex.dockerHost, `tcp://127.0.0.1:${port}`);
      await ex.ping();
      assert.ok((await ex.info()).engineVersion);
      // Without DOCKER_TLS_VERIFY, plain HTTP: the engine's TLS front does not answer it.
      await assert.rejects(plain.ping(), (err: ShoalError) => err.code === 'UNAVAILABLE');
    } finally {
      await ex.close();
      await plain.close();
      await new Promise((r) => front.close(r));
    }
  });

  test('ssh: `docker system dial-stdio` on the remote end, as docker does', async () => {
    // A real SSH server (ssh2's, which docker-modem's ssh client is), with any login let in.
    const { Server } = createRequire(import.meta.url)('ssh2') as { Server: SshServerCtor };
    const hostKey = generateKeyPairSync('rsa', { modulusLength: 2048, privateKeyEncoding: { type: 'pkcs1', format: 'pem' }, publicKeyEncoding: { type: 'spki', format: 'pem' } }).privateKey;
    const commands: string[] = [];
    const users: string[] = [];
    const server = new Server({ hostKeys: [hostKey] }, (client) => {
      client.on('authentication', (ctx) => {
        users.push(ctx.username);
        ctx.accept();
      });
      client.on('session', (accept) => {
        accept().on('exec', (acceptExec, reject, info) => {
          commands.push(info.command);
          if (info.command !== 'docker system dial-stdio') return reject();
          toEngine(acceptExec());
        });
      });
      client.on('error', () => undefined);
    });
    const port = await listen(server as unknown as net.Server);
    let ex: DockerExecutor | undefined;
    try {
      ex = new DockerExecutor({ nodeId: 'n1', dockerHost: `ssh://deploy@127.0.0.1:${port}`, dockerEnv: PLAIN, pingTimeoutMs: 10_000 });
      assert.equal(ex.dockerHost, `ssh://deploy@127.0.0.1:${port}`);
      await ex.ping();
      assert.ok((await ex.info()).engineVersion);
      assert.ok(users.length > 0 && users.every((u) => u === 'deploy'), users.join());
      assert.ok(commands.length > 0 && commands.every((c) => c === 'docker system dial-stdio'), commands.join());
    } finally {
      await ex?.close();
      await new Promise((r) => (server as unknown as net.Server).close(r));
    }
  });
});

// The few parts of ssh2's server this suite uses (ssh2 ships no types; it comes with docker-modem).
interface SshExecInfo {
  command: string;
}
interface SshSession {
  on(ev: 'exec', fn: (accept: () => Duplex, reject: () => void, info: SshExecInfo) => void): SshSession;
}
interface SshClient {
  on(ev: 'authentication', fn: (ctx: { username: string; accept(): void }) => void): SshClient;
  on(ev: 'session', fn: (accept: () => SshSession) => void): SshClient;
  on(ev: 'error', fn: (err: Error) => void): SshClient;
}
type SshServerCtor = new (opts: { hostKeys: string[] }, onClient: (client: SshClient) => void) => { listen: net.Server['listen'] };
