// Binding a daemon's unix sockets (control.sock, the well-known socket, a worker's stub): a socket
// a live process serves is never taken over, a stale one (its daemon is gone) is replaced, and a
// file that is not a socket is never removed.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ShoalError, type Logger } from '@shoal/api';
import { bindUnixSocket, serveLocalSocket } from '../src/index.js';

const dir = mkdtempSync(path.join(os.tmpdir(), 'shoal-local-socket-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A live process on `sock`: a server that counts the connections it takes. */
async function liveServer(sock: string): Promise<{ conns: () => number; close: () => Promise<void> }> {
  let n = 0;
  const srv = net.createServer((c) => {
    n++;
    c.destroy();
  });
  await new Promise<void>((r) => srv.listen(sock, r));
  return { conns: () => n, close: () => new Promise((r) => srv.close(() => r())) };
}

function connect(sock: string): Promise<void> {
  return new Promise((resolve, reject) => net.createConnection(sock).once('connect', function (this: net.Socket) {
    this.destroy();
    resolve();
  }).once('error', reject));
}

/** A socket file no process listens on any more (its daemon was killed). */
function staleSocket(sock: string): void {
  const code = `require('net').createServer().listen(${JSON.stringify(sock)}, () => process.kill(process.pid, 'SIGKILL'))`;
  try {
    execFileSync(process.execPath, ['-e', code], { stdio: 'ignore' });
  } catch {
    // killed, as meant
  }
  assert.ok(statSync(sock).isSocket());
}

function oneLineError(err: unknown, re: RegExp): true {
  assert.ok(ShoalError.is(err), String(err));
  assert.equal(err.code, 'FAILED_PRECONDITION');
  assert.match(err.message, re);
  assert.ok(!err.message.includes('\n'));
  return true;
}

describe('bindUnixSocket', () => {
  test('a socket another process serves: refused in one line, and that process keeps it', async () => {
    const sock = path.join(dir, 'live.sock');
    const live = await liveServer(sock);
    const server = new grpc.Server();
    try {
      await assert.rejects(bindUnixSocket(server, sock), (err) =>
        oneLineError(err, new RegExp(`^${sock} is served by another running process \\(another shoald\\?\\): not taking it over$`)),
      );
      const before = live.conns();
      await connect(sock);
      assert.equal(live.conns(), before + 1, 'the live process still takes the connections');
    } finally {
      server.forceShutdown();
      await live.close();
    }
  });

  test('a stale socket file is replaced: the new server is the one that answers, owner-only', async () => {
    const sock = path.join(dir, 'stale.sock');
    staleSocket(sock);
    await assert.rejects(connect(sock), /ECONNREFUSED/);
    const server = new grpc.Server();
    try {
      await bindUnixSocket(server, sock);
      await connect(sock);
      assert.equal(statSync(sock).mode & 0o777, 0o600);
    } finally {
      server.forceShutdown();
    }
  });

  test('a file that is not a socket is left alone', async () => {
    const file = path.join(dir, 'precious');
    writeFileSync(file, 'keep me');
    const server = new grpc.Server();
    await assert.rejects(bindUnixSocket(server, file), (err) => oneLineError(err, new RegExp(`^${file} exists and is not a socket: not replacing it$`)));
    assert.equal(readFileSync(file, 'utf8'), 'keep me');
    server.forceShutdown();
  });
});

describe('serveLocalSocket', () => {
  test('served by another daemon: a warning, not served, the other keeps it', async () => {
    const warnings: string[] = [];
    const log = { warn: (o: { err?: string }, msg: string) => warnings.push(`${msg}: ${o.err}`) } as unknown as Logger;
    const sock = path.join(dir, 'well-known', 'shoal.sock');
    const server = new grpc.Server();
    try {
      // The directory is made; the first daemon takes the socket.
      assert.equal(await serveLocalSocket(server, sock, log), sock);
      // A second one finds it served: a warning, nothing taken.
      const second = new grpc.Server();
      assert.equal(await serveLocalSocket(second, sock, log), undefined);
      assert.deepEqual(warnings, [`not serving the local control socket: ${sock} is served by another running process (another shoald?): not taking it over`]);
      second.forceShutdown();
      await connect(sock);
    } finally {
      server.forceShutdown();
    }
  });
});
