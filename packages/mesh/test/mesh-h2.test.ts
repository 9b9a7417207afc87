// The h2 forwarding transport (one HTTP/2 session per peer node, a CONNECT stream per forwarded
// connection) on loopback with real sockets: session sharing and limits, failures (backend,
// session, hung peer), half-close and bulk data over streams, hostile input on the forwarding
// port, and older peers that only speak the line protocol. Nodes a (127.0.0.1) and b
// (127.0.0.2); relays and fake nodes on 127.0.0.5/6; backends on 127.0.0.3/4.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http2 from 'node:http2';
import net from 'node:net';
import type { Backend as TableBackend, MeshOptions, MeshTable } from '../src/index.js';
import {
  BACKEND_HOST,
  BACKEND_HOST2,
  HOST_A,
  HOST_B,
  deadAddr,
  exchange,
  freePort,
  get,
  httpBackend,
  legacyForwarder,
  makeCluster,
  openEcho,
  recordingLogger,
  serialGet,
  sha256,
  sleep,
  tcpBackend,
  tcpRelay,
  waitFor,
  type Cluster,
} from './helpers.js';

const HOST_C = '127.0.0.5';

function targetPort(addr: string): number {
  return Number(addr.slice(addr.lastIndexOf(':') + 1));
}

function local(taskId: string, addr: string): TableBackend {
  return { taskId, nodeId: 'b', local: true, addr, targetPort: targetPort(addr) };
}

function remote(taskId: string, via: string, addr: string): TableBackend {
  return { taskId, nodeId: 'b', local: false, via, targetPort: targetPort(addr) };
}

function tableOf(ports: [number, TableBackend[]][]): MeshTable {
  return { ports: ports.map(([port, backends]) => ({ port, serviceId: `svc-${port}`, serviceName: `web-${port}`, proxyProtocol: false, backends })) };
}

/** A cluster in h2 mode (`perNode` over it); everything handed to `later` is closed at the end. */
async function withH2(
  fn: (c: Cluster, later: <T extends { close(): Promise<void> }>(x: T) => T) => Promise<void>,
  perNode: { a?: Partial<MeshOptions>; b?: Partial<MeshOptions> } = {},
): Promise<void> {
  const c = await makeCluster({ forwardTransport: 'h2' }, perNode);
  const closers: { close(): Promise<void> }[] = [];
  try {
    await fn(c, (x) => (closers.push(x), x));
  } finally {
    await c.close();
    await Promise.all(closers.map((x) => x.close()));
  }
}

/** How a socket ended: its error code, or 'closed' for a clean close. */
function ending(s: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let code: string | undefined;
    s.on('error', (err: NodeJS.ErrnoException) => (code ??= err.code ?? err.message));
    s.once('close', () => resolve(code ?? 'closed'));
  });
}

/** An HTTP/2 client session to b's forwarding port, as a hostile or buggy peer would open one. */
async function rawSession(port: number): Promise<http2.ClientHttp2Session> {
  const s = http2.connect(`http://${HOST_B}:${port}`);
  s.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    s.once('remoteSettings', () => resolve());
    s.once('close', () => reject(new Error('session closed')));
  });
  return s;
}

/** One request on `s`: the response status (or the reset code as `rst <n>`) and the reason header. */
function ask(s: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders): Promise<{ status: number | string; reason?: string }> {
  return new Promise((resolve) => {
    const st = s.request(headers, { endStream: false });
    st.on('error', () => {});
    st.on('response', (h) => {
      resolve({ status: h[':status'] as number, reason: h['shoal-error'] as string | undefined });
      st.close(http2.constants.NGHTTP2_CANCEL);
    });
    st.on('close', () => resolve({ status: `rst ${st.rstCode}` }));
  });
}

describe('mesh: h2 transport', () => {
  test('many concurrent connections share one session', async () => {
    await withH2(async (c, later) => {
      const web = later(await httpBackend('web'));
      const relay = later(await tcpRelay(HOST_C, c.b.forwardAddress));
      const port = await freePort();
      await c.b.update(tableOf([[port, [local('w1', web.addr)]]]));
      await c.a.update(tableOf([[port, [remote('w1', relay.addr, web.addr)]]]));
      const bodies = await Promise.all(Array.from({ length: 200 }, () => get(HOST_A, port)));
      assert.deepEqual(bodies, Array(200).fill('web'));
      assert.equal(relay.connections, 1, 'one TCP connection between the nodes');
      const [fa, fb] = [c.a.stats().forwarder, c.b.stats().forwarder];
      assert.deepEqual([fa.h2SessionsOpened, fa.h2SessionsOut, fb.h2SessionsIn], [1, 1, 1]);
      assert.equal(fb.totalConnections, 200);
      assert.equal(c.a.stats().ports[0]!.failedConnects, 0);
      await waitFor(() => c.b.stats().forwarder.activeConnections === 0 && c.a.stats().ports[0]!.activeConnections === 0, 2000, 'streams to end');
    });
  });

  test('beyond the peer’s stream limit another session opens; extra sessions close once idle', async () => {
    // b allows 2 streams per session; a (1000 of its own) learns it from b's SETTINGS.
    await withH2(
      async (c, later) => {
        const echo = later(await tcpBackend('echo', 'echo'));
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 'e1', node: 'b', addr: echo.addr }] }]);
        const conns = await Promise.all(Array.from({ length: 5 }, () => openEcho(HOST_A, port)));
        for (const [i, x] of conns.entries()) assert.equal(await x.ping(`hi ${i}`), `hi ${i}`);
        assert.equal(c.a.stats().forwarder.h2SessionsOpened, 3);
        assert.equal(c.b.stats().forwarder.h2SessionsIn, 3);
        assert.equal(c.b.stats().forwarder.activeConnections, 5);
        for (const x of conns) x.s.destroy();
        await waitFor(() => c.a.stats().forwarder.h2SessionsOut === 1 && c.b.stats().forwarder.h2SessionsIn === 1, 3000, 'extra sessions to close');
        // The session kept serves the next connections.
        const again = await openEcho(HOST_A, port);
        assert.equal(await again.ping('again'), 'again');
        again.s.destroy();
        assert.equal(c.a.stats().forwarder.h2SessionsOpened, 3);
      },
      { b: { forwardMaxStreams: 2 } },
    );
  });

  test('a stream whose backend cannot be reached falls back to another backend; the session stays', async () => {
    await withH2(async (c, later) => {
      const live = later(await httpBackend('live', BACKEND_HOST2));
      const dead = await deadAddr();
      const port = await freePort();
      await c.b.update(tableOf([[port, [local('dead', dead), local('live', live.addr)]]]));
      // 'ghost' is on b in a's table, not in b's own: b answers 404 for it.
      await c.a.update(
        tableOf([
          [port, [remote('dead', c.b.forwardAddress, dead), remote('ghost', c.b.forwardAddress, dead), remote('live', c.b.forwardAddress, live.addr)]],
        ]),
      );
      assert.deepEqual(await serialGet(12, HOST_A, port), Array(12).fill('live'));
      const st = c.a.stats().ports[0]!;
      const byTask = Object.fromEntries(st.backendStats.map((b) => [b.taskId, b]));
      assert.ok(byTask.dead!.failed >= 1 && byTask.dead!.total === 0, JSON.stringify(byTask.dead));
      assert.ok(byTask.ghost!.failed >= 1 && byTask.ghost!.total === 0, JSON.stringify(byTask.ghost));
      assert.equal(byTask.live!.total, 12);
      assert.equal(st.droppedConnections, 0);
      const fb = c.b.stats().forwarder;
      assert.ok(fb.failedConnects >= 1, JSON.stringify(fb));
      assert.ok(fb.rejected >= 1, JSON.stringify(fb));
      assert.equal(c.a.stats().forwarder.h2SessionsOpened, 1, 'refused streams do not cost the session');
    });
  });

  for (const transport of ['h2', 'tcp'] as const) {
    test(`${transport}: a new replica its node does not know yet is passed over briefly, not for the failure backoff`, async () => {
      // Each node learns of a replacement on its own path: a's table may name it before b's does.
      const c = await makeCluster({ forwardTransport: transport, failBackoffMs: 60_000, unknownTaskBackoffMs: 200 });
      const one = await httpBackend('one');
      const two = await httpBackend('two', BACKEND_HOST2);
      try {
        const port = await freePort();
        await c.b.update(tableOf([[port, [local('one', one.addr)]]]));
        await c.a.update(tableOf([[port, [remote('one', c.b.forwardAddress, one.addr), remote('two', c.b.forwardAddress, two.addr)]]]));
        // b answers "not a local backend" for 'two'; the client is served by 'one'.
        assert.deepEqual(await serialGet(4, HOST_A, port), Array(4).fill('one'));
        const ghost = c.a.stats().ports[0]!.backendStats.find((b) => b.taskId === 'two')!;
        assert.ok(ghost.failed >= 1 && ghost.failing, JSON.stringify(ghost));
        await c.b.update(tableOf([[port, [local('one', one.addr), local('two', two.addr)]]]));
        // Once its short backoff ends, 'two' is tried again (and now served).
        await waitFor(async () => (await serialGet(2, HOST_A, port)).includes('two'), 5000, "'two' back in rotation");
        const seen = new Set(await serialGet(10, HOST_A, port));
        assert.deepEqual([...seen].sort(), ['one', 'two'], 'the new replica is in rotation within the short backoff');
      } finally {
        await c.close();
        await Promise.all([one.close(), two.close()]);
      }
    });
  }

  test('a session that dies mid-stream resets only its own connections; the next ones open a new session', async () => {
    await withH2(async (c, later) => {
      const echo = later(await tcpBackend('echo', 'echo'));
      const echo2 = later(await tcpBackend('echo2', 'echo', BACKEND_HOST2));
      const relay = later(await tcpRelay(HOST_C, c.b.forwardAddress));
      const [p1, p2] = [await freePort(), await freePort()];
      await c.b.update(tableOf([[p1, [local('e1', echo.addr)]], [p2, [local('e2', echo2.addr)]]]));
      // Port 1 reaches b through the relay, port 2 directly: two sessions (one per forwarding address).
      await c.a.update(tableOf([[p1, [remote('e1', relay.addr, echo.addr)]], [p2, [remote('e2', c.b.forwardAddress, echo2.addr)]]]));
      const viaRelay = await Promise.all([1, 2, 3].map(() => openEcho(HOST_A, p1)));
      const direct = await openEcho(HOST_A, p2);
      for (const x of [...viaRelay, direct]) assert.equal(await x.ping('before'), 'before');
      assert.equal(c.a.stats().forwarder.h2SessionsOut, 2);
      const endings = viaRelay.map((x) => ending(x.s));
      relay.cutAll();
      assert.deepEqual(await Promise.all(endings), ['ECONNRESET', 'ECONNRESET', 'ECONNRESET'], 'reset, not a clean end');
      assert.equal(await direct.ping('still here'), 'still here');
      await waitFor(() => c.a.stats().forwarder.h2SessionsOut === 1 && c.b.stats().forwarder.activeConnections === 1, 2000, 'the dead session to go');
      const fresh = await openEcho(HOST_A, p1);
      assert.equal(await fresh.ping('after'), 'after');
      assert.equal(relay.connections, 2);
      assert.equal(c.a.stats().forwarder.h2SessionsOpened, 3);
      assert.equal(c.b.stats().forwarder.activeConnections, 2);
      for (const x of [direct, fresh]) x.s.destroy();
    });
  });

  test('a session whose peer hangs is found by a PING after a stream timeout, and replaced', async () => {
    await withH2(
      async (c, later) => {
        const web = later(await httpBackend('web'));
        const relay = later(await tcpRelay(HOST_C, c.b.forwardAddress));
        const port = await freePort();
        await c.b.update(tableOf([[port, [local('w1', web.addr)]]]));
        await c.a.update(tableOf([[port, [remote('w1', relay.addr, web.addr)]]]));
        assert.equal(await get(HOST_A, port), 'web');
        relay.freeze();
        const t0 = Date.now();
        await assert.rejects(get(HOST_A, port), /ECONNRESET|socket hang up/);
        assert.ok(Date.now() - t0 < 3000, `${Date.now() - t0} ms`);
        await waitFor(() => c.a.stats().forwarder.h2SessionsOut === 0, 2000, 'the hung session to be closed');
        assert.equal(await get(HOST_A, port), 'web');
        assert.equal(relay.connections, 2);
      },
      { a: { connectTimeoutMs: 300, lastConnectTimeoutMs: 300 } },
    );
  });

  test('half-close over a stream, either side first; streams end cleanly', async () => {
    await withH2(async (c, later) => {
      const half = later(await tcpBackend('h', 'halfclose'));
      const banner = later(await tcpBackend('banner', 'source', BACKEND_HOST2, Buffer.from('220 hello\r\n')));
      const [p1, p2] = [await freePort(), await freePort()];
      await c.apply([
        { port: p1, tasks: [{ taskId: 'h1', node: 'b', addr: half.addr }] },
        { port: p2, tasks: [{ taskId: 'b1', node: 'b', addr: banner.addr }] },
      ]);
      // The client ends first and still gets the answer.
      assert.equal((await exchange(HOST_A, p1, 'hello')).toString(), 'h got 5 bytes');
      assert.equal((await exchange(HOST_A, p1, '')).toString(), 'h got 0 bytes');
      // The backend ends first; the client reads to the end, then still sends and ends its side.
      const outcome = await new Promise<{ got: string; err?: string }>((resolve) => {
        const s = net.connect({ host: HOST_A, port: p2, allowHalfOpen: true });
        let got = '';
        let err: string | undefined;
        s.on('data', (d) => (got += d));
        s.on('end', () => setTimeout(() => s.end('late words'), 50));
        s.on('error', (e: NodeJS.ErrnoException) => (err = e.code));
        s.on('close', () => resolve(err ? { got, err } : { got }));
      });
      assert.deepEqual(outcome, { got: '220 hello\r\n' });
      await waitFor(
        () => c.b.stats().forwarder.activeConnections === 0 && c.a.stats().ports.every((p) => p.activeConnections === 0),
        2000,
        'every stream to end',
      );
      assert.equal(c.a.stats().forwarder.h2SessionsOpened, 1);
    });
  });

  test('20 MB both ways at once through one stream (an echo backend), intact', async () => {
    await withH2(async (c, later) => {
      const echo = later(await tcpBackend('echo', 'echo'));
      const port = await freePort();
      await c.apply([{ port, tasks: [{ taskId: 'e1', node: 'b', addr: echo.addr }] }]);
      const data = randomBytes(20 * 1024 * 1024);
      const t0 = Date.now();
      const got = await exchange(HOST_A, port, data);
      assert.equal(got.length, data.length);
      assert.equal(sha256(got), sha256(data));
      assert.ok(Date.now() - t0 < 10_000, `${Date.now() - t0} ms`);
      assert.equal(c.a.stats().forwarder.h2SessionsOpened, 1);
    });
  });
});

describe('mesh: h2 forwarding listener, hostile input', () => {
  test('garbage, a wrong preface, protocol errors: refused and logged; the node keeps serving', async () => {
    const { logger, entries } = recordingLogger();
    await withH2(
      async (c, later) => {
        const echo = later(await tcpBackend('echo', 'echo'));
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 'e1', node: 'b', addr: echo.addr }] }]);
        const fwd = c.b.forwardPort;
        assert.match((await exchange(HOST_B, fwd, 'hello world\n')).toString(), /^ERR bad header/);
        assert.match((await exchange(HOST_B, fwd, 'PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n')).toString(), /^ERR bad header/);
        assert.match((await exchange(HOST_B, fwd, 'PRI * HTTP/2.')).toString(), /^ERR closed before header/);
        // The preface, then bytes that are no HTTP/2 frame: the session ends with a GOAWAY.
        const before = c.b.stats().forwarder.rejected;
        const out = await exchange(HOST_B, fwd, Buffer.concat([Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'), Buffer.alloc(64, 0xff)]));
        assert.ok(out.length > 0 && !out.includes('ERR'), out.toString('hex'));
        await waitFor(() => c.b.stats().forwarder.h2SessionsIn === 0, 2000, 'the session to close');
        assert.equal(c.b.stats().forwarder.rejected, before + 1);
        assert.ok(entries.some((e) => e.msg === 'mesh: inbound h2 session error'), JSON.stringify(entries.map((e) => e.msg)));
        assert.equal(echo.connections, 0);
        // Still serving.
        const conn = await openEcho(HOST_A, port);
        assert.equal(await conn.ping('fine'), 'fine');
        conn.s.destroy();
      },
      { b: { logger } },
    );
  });

  test('requests it cannot serve: not CONNECT, bad target, bad headers, a task that is not local, oversized headers', async () => {
    const { logger, entries } = recordingLogger();
    await withH2(
      async (c, later) => {
        const onA = later(await tcpBackend('onA', 'echo'));
        const onB = later(await tcpBackend('onB', 'echo', BACKEND_HOST2));
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 'ta', node: 'a', addr: onA.addr }, { taskId: 'tb', node: 'b', addr: onB.addr }] }]);
        const s = await rawSession(c.b.forwardPort);
        try {
          const connect = (authority: string, extra: http2.OutgoingHttpHeaders = {}) => ask(s, { ':method': 'CONNECT', ':authority': authority, ...extra });
          const many: http2.OutgoingHttpHeaders = {};
          for (let i = 0; i < 20; i++) many[`x-h${i}`] = 'v';
          const cases: [string, () => Promise<{ status: number | string; reason?: string }>, number][] = [
            ['GET', () => ask(s, { ':method': 'GET', ':path': '/' }), 405],
            ['a task of node a', () => connect(`ta:${onA.port}`), 404],
            ['a wrong port', () => connect(`tb:${onB.port + 1}`), 404],
            ['an unknown task', () => connect('nope:22'), 404],
            ['a port out of range', () => connect('tb:99999'), 400],
            ['no port', () => connect('tb'), 400],
            ['a bad PROXY flag', () => connect(`tb:${onB.port}`, { 'shoal-proxy': 'yes' }), 400],
            ['a bad client address', () => connect(`tb:${onB.port}`, { 'shoal-proxy': '1', 'shoal-client': 'not an address' }), 400],
            ['20 headers', () => connect(`tb:${onB.port}`, many), 431],
            ['a 10 KB header', () => connect(`tb:${onB.port}`, { 'x-pad': 'a'.repeat(10_000) }), 431],
          ];
          for (const [what, run, want] of cases) {
            const r = await run();
            assert.equal(r.status, want, `${what}: ${JSON.stringify(r)}`);
            assert.ok(r.reason, `${what}: a reason`);
          }
          assert.equal(onA.connections + onB.connections, 0);
          const refusals = entries.filter((e) => e.msg === 'mesh: forwarded stream refused').map((e) => e.obj.status);
          assert.deepEqual(refusals.sort(), [400, 400, 400, 400, 404, 404, 404, 405, 431, 431]);
          // The same session still serves a valid request.
          const st = s.request({ ':method': 'CONNECT', ':authority': `tb:${onB.port}` }, { endStream: false });
          const echoed = await new Promise<string>((resolve, reject) => {
            let got = '';
            st.on('response', (h) => (h[':status'] === 200 ? st.end('echo me') : reject(new Error(`status ${h[':status']}`))));
            st.on('data', (d: Buffer) => (got += d));
            st.on('end', () => resolve(got));
            st.on('error', reject);
          });
          assert.equal(echoed, 'echo me');
          // Beyond Node's own header limits the session itself is refused (GOAWAY), before the mesh sees it.
          const huge = await ask(s, { ':method': 'CONNECT', ':authority': `tb:${onB.port}`, 'x-pad': 'a'.repeat(100_000) });
          assert.match(String(huge.status), /^rst /);
        } finally {
          s.destroy();
        }
        // And so does the node.
        const conn = await openEcho(HOST_A, port);
        assert.equal(await conn.ping('fine'), 'fine');
        conn.s.destroy();
      },
      { b: { logger } },
    );
  });
});

describe('mesh: h2 and older nodes', () => {
  test('an h2 node forwards to a node that only speaks the line protocol', async () => {
    const { logger, entries } = recordingLogger();
    await withH2(
      async (c, later) => {
        const echo = later(await tcpBackend('echo', 'echo'));
        const old = later(await legacyForwarder(HOST_C, { old1: echo.addr }));
        const port = await freePort();
        await c.a.update(tableOf([[port, [remote('old1', old.addr, echo.addr)]]]));
        for (let i = 0; i < 3; i++) {
          const x = await openEcho(HOST_A, port);
          assert.equal(await x.ping(`hello ${i}`), `hello ${i}`);
          x.s.destroy();
        }
        // One h2c attempt (refused: not a header), then the line protocol for this peer.
        assert.deepEqual([old.refused, old.served], [1, 3]);
        assert.equal(c.a.stats().ports[0]!.failedConnects, 0);
        assert.equal(c.a.stats().forwarder.h2SessionsOpened, 0);
        assert.equal(entries.filter((e) => e.msg === 'mesh: peer does not speak h2; forwarding to it with the line protocol').length, 1);
      },
      { a: { logger } },
    );
  });

  test('a node on the tcp transport forwards to an h2 node, and the other way round', async () => {
    await withH2(
      async (c, later) => {
        const onA = later(await httpBackend('onA'));
        const onB = later(await httpBackend('onB', BACKEND_HOST2));
        const [pa, pb] = [await freePort(), await freePort()];
        await c.apply([
          { port: pa, tasks: [{ taskId: 'ta', node: 'a', addr: onA.addr }] },
          { port: pb, tasks: [{ taskId: 'tb', node: 'b', addr: onB.addr }] },
        ]);
        assert.deepEqual(await serialGet(3, HOST_A, pb), ['onB', 'onB', 'onB']); // tcp → h2 node's listener
        assert.deepEqual(await serialGet(3, HOST_B, pa), ['onA', 'onA', 'onA']); // h2 → a's listener
        assert.equal(c.a.stats().forwarder.h2SessionsOpened, 0);
        assert.equal(c.b.stats().forwarder.h2SessionsOpened, 1);
        assert.equal(c.a.stats().forwarder.h2SessionsIn, 1);
        await sleep(10);
      },
      { a: { forwardTransport: 'tcp' } },
    );
  });
});
