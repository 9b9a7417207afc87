// One published port's listener on its own (real sockets on loopback, no Mesh): connections
// arrive paused; a port in use is reported once (not at every retry), retried, and reported fine
// once bound; not wanted any more, it refuses connections and clears a reported error.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { PortListener } from '../src/port-listener.js';
import { HOST_A, connectOutcome, freePort, listen, recordingLogger, sleep, waitFor, type LogEntry } from './helpers.js';

interface Reported {
  port: number;
  code: string | null;
}

/** Bind attempts that failed, from the log. */
function failedBinds(log: LogEntry[]): number {
  return log.filter((e) => e.msg === 'mesh: cannot bind published port; retrying').length;
}

function listener(port: number, reports: Reported[], onConnection: (s: net.Socket) => void = (s) => s.destroy(), rec = recordingLogger()): PortListener {
  return new PortListener({
    port,
    host: HOST_A,
    bindRetryMs: 50,
    keepAliveDelayMs: 30_000,
    onConnection,
    onError: (p, err) => reports.push({ port: p, code: err ? String((err as NodeJS.ErrnoException).code) : null }),
    service: () => 'web',
    log: rec.logger,
  });
}

describe('PortListener', () => {
  test('bound while wanted, connections arrive paused; not wanted, connections are refused', async () => {
    const port = await freePort([HOST_A]);
    const reports: Reported[] = [];
    const clients: net.Socket[] = [];
    const l = listener(port, reports, (s) => clients.push(s));
    try {
      await l.want(true);
      assert.equal(l.listening, true);
      assert.deepEqual(reports, [{ port, code: null }]);
      // Wanted again: nothing new happens.
      assert.equal(l.want(true), undefined);
      const c = net.connect({ host: HOST_A, port });
      await waitFor(() => clients.length === 1, 5000, 'a connection');
      assert.equal(clients[0]!.isPaused(), true);
      c.destroy();
      clients[0]!.destroy();
      assert.equal(l.want(false), undefined);
      assert.equal(l.listening, false);
      assert.equal((await connectOutcome(HOST_A, port)).outcome, 'refused');
      assert.equal(reports.length, 1);
    } finally {
      l.close(false);
    }
  });

  test('a port in use: reported once, retried, reported fine once freed', async () => {
    const squatter = net.createServer();
    const port = await listen(squatter, HOST_A);
    const reports: Reported[] = [];
    const rec = recordingLogger();
    const log = rec.entries;
    const l = listener(port, reports, undefined, rec);
    try {
      await l.want(true);
      assert.equal(l.listening, false);
      assert.equal(l.bindError, 'EADDRINUSE');
      await waitFor(() => failedBinds(log) >= 3, 5000, 'retries');
      assert.deepEqual(reports, [{ port, code: 'EADDRINUSE' }]);
      await new Promise<void>((r) => squatter.close(() => r()));
      await waitFor(() => l.listening, 5000, 'bound after the port was freed');
      assert.equal(l.bindError, undefined);
      assert.deepEqual(reports, [
        { port, code: 'EADDRINUSE' },
        { port, code: null },
      ]);
    } finally {
      l.close(false);
      squatter.close();
    }
  });

  test('no longer wanted while in error: the error is cleared, retries stop', async () => {
    const squatter = net.createServer();
    const port = await listen(squatter, HOST_A);
    const reports: Reported[] = [];
    const l = listener(port, reports);
    try {
      await l.want(true);
      assert.deepEqual(reports, [{ port, code: 'EADDRINUSE' }]);
      l.want(false);
      assert.deepEqual(reports, [
        { port, code: 'EADDRINUSE' },
        { port, code: null },
      ]);
      await new Promise<void>((r) => squatter.close(() => r()));
      await sleep(200);
      assert.equal(l.listening, false);
      assert.equal((await connectOutcome(HOST_A, port)).outcome, 'refused');
      assert.equal(reports.length, 2);
    } finally {
      l.close(false);
      squatter.close();
    }
  });
});
