// The mesh on loopback: two nodes (127.0.0.1, 127.0.0.2), fake backends on 127.0.0.3/4. The
// routing, port, stream, PROXY and listener suites run once per forwarding transport.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { Mesh, encodeForwardHeader, FORWARD_ACK, type MeshOptions } from '../src/index.js';
import {
  BACKEND_HOST,
  BACKEND_HOST2,
  HOST_A,
  HOST_B,
  connectOutcome,
  deadAddr,
  exchange,
  freePort,
  get,
  httpBackend,
  listen,
  makeCluster,
  openEcho,
  quietLogger,
  sha256,
  sleep,
  tcpBackend,
  waitFor,
  type Backend,
  type Cluster,
} from './helpers.js';

type Transport = NonNullable<MeshOptions['forwardTransport']>;
const TRANSPORTS: Transport[] = ['h2', 'tcp'];

async function withCluster(transport: Transport, fn: (c: Cluster, cleanup: (b: Backend) => void) => Promise<void>): Promise<void> {
  const c = await makeCluster({ forwardTransport: transport });
  const backends: Backend[] = [];
  try {
    await fn(c, (b) => backends.push(b));
  } finally {
    await c.close();
    await Promise.all(backends.map((b) => b.close()));
  }
}

function count(bodies: string[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const b of bodies) out[b] = (out[b] ?? 0) + 1;
  return out;
}

async function serial(n: number, f: () => Promise<string>): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) out.push(await f());
  return out;
}

for (const transport of TRANSPORTS) {
  describe(`mesh: routing (${transport})`, () => {
    test('every node answers; 40 requests spread over a local and a remote replica', async () => {
      await withCluster(transport, async (c, keep) => {
        const r1 = await httpBackend('r1', BACKEND_HOST);
        const r2 = await httpBackend('r2', BACKEND_HOST2);
        keep(r1);
        keep(r2);
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 't1', node: 'a', addr: r1.addr }, { taskId: 't2', node: 'b', addr: r2.addr }] }]);
        for (const host of [HOST_A, HOST_B]) {
          const counts = count(await serial(40, () => get(host, port)));
          assert.deepEqual(Object.keys(counts).sort(), ['r1', 'r2'], `via ${host}: ${JSON.stringify(counts)}`);
          assert.ok(counts.r1! >= 10 && counts.r2! >= 10, JSON.stringify(counts));
        }
        // 40 concurrent requests too.
        const counts = count(await Promise.all(Array.from({ length: 40 }, () => get(HOST_A, port))));
        assert.ok(counts.r1! > 0 && counts.r2! > 0, JSON.stringify(counts));
        const st = c.a.stats().ports[0]!;
        assert.equal(st.port, port);
        assert.equal(st.listening, true);
        assert.equal(st.backends, 2);
        assert.equal(st.totalConnections, 80);
        assert.equal(st.failedConnects, 0);
        await waitFor(() => c.a.stats().ports[0]!.activeConnections === 0, 2000, 'connections to end');
        assert.ok(c.b.stats().forwarder.totalConnections >= 20);
        // Every request line in, every status line out (bytes counted as connections close).
        const bytes = c.a.stats().ports[0]!;
        assert.ok(bytes.bytesFromClients >= 80 * 'GET / HTTP/1.1\r\n'.length, `in: ${bytes.bytesFromClients}`);
        assert.ok(bytes.bytesToClients >= 80 * 'HTTP/1.1 200 OK\r\n'.length, `out: ${bytes.bytesToClients}`);
      });
    });

    test('least connections: a long-lived connection on one replica sends new ones to the other', async () => {
      await withCluster(transport, async (c, keep) => {
        const r1 = await httpBackend('r1');
        const r2 = await httpBackend('r2', BACKEND_HOST2);
        keep(r1);
        keep(r2);
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 't1', node: 'a', addr: r1.addr }, { taskId: 't2', node: 'a', addr: r2.addr }] }]);
        const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
        try {
          const first = await new Promise<string>((resolve, reject) => {
            http
              .get({ host: HOST_A, port, agent }, (res) => {
                let body = '';
                res.on('data', (d) => (body += d));
                res.on('end', () => resolve(body));
              })
              .on('error', reject);
          });
          const other = first === 'r1' ? 'r2' : 'r1';
          // Each request waits for the previous one's connection to be gone from the mesh.
          const bodies = await serial(10, async () => {
            await waitFor(() => c.a.stats().ports[0]!.backendStats.reduce((n, b) => n + b.active, 0) === 1, 2000, 'settle');
            return get(HOST_A, port);
          });
          assert.deepEqual(count(bodies), { [other]: 10 });
        } finally {
          agent.destroy();
        }
      });
    });

    test('failed connects are retried on other replicas; the client never sees them', async () => {
      await withCluster(transport, async (c, keep) => {
        const live1 = await httpBackend('live1');
        const live2 = await httpBackend('live2', BACKEND_HOST2);
        keep(live1);
        keep(live2);
        // A node that accepts forwarding connections but never answers (the ACK never comes).
        const silent = net.createServer((s) => s.on('error', () => {}));
        const silentPort = await listen(silent, '127.0.0.5');
        const silentSocks: net.Socket[] = [];
        silent.on('connection', (s) => silentSocks.push(s));
        const port = await freePort();
        const tasks = [
          { taskId: 'dead-local', node: 'a' as const, addr: await deadAddr() },
          { taskId: 'live-local', node: 'a' as const, addr: live1.addr },
          { taskId: 'dead-remote', node: 'b' as const, addr: await deadAddr(BACKEND_HOST2) },
          { taskId: 'live-remote', node: 'b' as const, addr: live2.addr },
        ];
        await c.apply([{ port, tasks }]);
        // A replica on a node that is down, and one on a node that hangs.
        const tableA = c.tableFor('a', [{ port, tasks }]);
        const downNode = await deadAddr('127.0.0.6');
        tableA.ports[0]!.backends.push(
          { taskId: 'on-down-node', nodeId: 'c', local: false, via: downNode, targetPort: 80 },
          { taskId: 'on-silent-node', nodeId: 'd', local: false, via: `127.0.0.5:${silentPort}`, targetPort: 80 },
        );
        await c.a.update(tableA);
        try {
          const t0 = Date.now();
          const bodies = await serial(30, () => get(HOST_A, port));
          const counts = count(bodies);
          assert.deepEqual(Object.keys(counts).sort(), ['live1', 'live2'], JSON.stringify(counts));
          const st = c.a.stats().ports[0]!;
          assert.ok(st.failedConnects >= 4, `failedConnects ${st.failedConnects}`);
          assert.equal(st.droppedConnections, 0);
          const byTask = Object.fromEntries(st.backendStats.map((b) => [b.taskId, b]));
          assert.equal(byTask['dead-local']!.total, 0);
          assert.ok(byTask['dead-local']!.failed >= 1);
          assert.ok(byTask['dead-remote']!.failed >= 1);
          assert.ok(byTask['on-down-node']!.failed >= 1);
          assert.ok(byTask['on-silent-node']!.failed >= 1);
          assert.ok(c.b.stats().forwarder.failedConnects >= 1);
          assert.ok(Date.now() - t0 < 20_000);
        } finally {
          for (const s of silentSocks) s.destroy();
          await new Promise<void>((r) => silent.close(() => r()));
        }
      });
    });

    test('a removed replica gets no new connections; its open ones go on', async () => {
      await withCluster(transport, async (c, keep) => {
        const e1 = await tcpBackend('e1', 'echo');
        const e2 = await tcpBackend('e2', 'echo', BACKEND_HOST2);
        keep(e1);
        keep(e2);
        const port = await freePort();
        const both = [{ taskId: 't1', node: 'a' as const, addr: e1.addr }, { taskId: 't2', node: 'b' as const, addr: e2.addr }];
        await c.apply([{ port, tasks: both }]);
        const conns = [await openEcho(HOST_A, port), await openEcho(HOST_A, port)];
        await waitFor(() => e1.connections === 1 && e2.connections === 1, 2000, 'one connection on each');
        await c.apply([{ port, tasks: [both[0]!] }]);
        for (let i = 0; i < 10; i++) {
          const x = await openEcho(HOST_A, port);
          assert.equal(await x.ping(`hi${i}`), `hi${i}`);
          x.s.destroy();
        }
        assert.equal(e2.connections, 1);
        assert.equal(e1.connections, 11);
        for (const x of conns) assert.equal(await x.ping('still'), 'still');
        for (const x of conns) x.s.destroy();
      });
    });
  });

  describe(`mesh: ports (${transport})`, () => {
    test('no replica: connections refused at once; served again when replicas come back', async () => {
      await withCluster(transport, async (c, keep) => {
        const r1 = await httpBackend('r1');
        keep(r1);
        const port = await freePort();
        await c.apply([{ port, tasks: [] }]);
        for (const host of [HOST_A, HOST_B]) {
          const o = await connectOutcome(host, port);
          assert.equal(o.outcome, 'refused');
          assert.ok(o.ms < 2000);
        }
        assert.equal(c.a.stats().ports[0]!.listening, false);
        await c.apply([{ port, tasks: [{ taskId: 't1', node: 'b', addr: r1.addr }] }]);
        assert.equal(await get(HOST_A, port), 'r1');
        assert.equal(await get(HOST_B, port), 'r1');
        // Scale to 0 again.
        await c.apply([{ port, tasks: [] }]);
        assert.equal((await connectOutcome(HOST_A, port)).outcome, 'refused');
      });
    });

    test('every replica unreachable: the connection ends at once', async () => {
      await withCluster(transport, async (c) => {
        const port = await freePort();
        await c.apply([
          {
            port,
            tasks: [
              { taskId: 'd1', node: 'a', addr: await deadAddr() },
              { taskId: 'd2', node: 'b', addr: await deadAddr(BACKEND_HOST2) },
            ],
          },
        ]);
        for (const host of [HOST_A, HOST_B]) {
          const o = await connectOutcome(host, port);
          assert.ok(o.outcome === 'reset' || o.outcome === 'closed', o.outcome);
          assert.ok(o.ms < 2000, `${o.ms} ms`);
        }
        assert.ok(c.a.stats().ports[0]!.droppedConnections >= 1);
      });
    });

    test('removing a port closes it on every node; open connections finish', async () => {
      await withCluster(transport, async (c, keep) => {
        const e1 = await tcpBackend('e1', 'echo');
        keep(e1);
        const port = await freePort();
        const port2 = await freePort();
        await c.apply([
          { port, tasks: [{ taskId: 't1', node: 'a', addr: e1.addr }] },
          { port: port2, tasks: [{ taskId: 't1', node: 'a', addr: e1.addr }] },
        ]);
        const open = await openEcho(HOST_B, port);
        assert.equal(await open.ping('a'), 'a');
        await c.apply([{ port: port2, tasks: [{ taskId: 't1', node: 'a', addr: e1.addr }] }]);
        for (const host of [HOST_A, HOST_B]) {
          await waitFor(async () => (await connectOutcome(host, port)).outcome === 'refused', 1000, `${host}:${port} closed`);
        }
        assert.deepEqual(
          c.a.stats().ports.map((p) => p.port),
          [port2],
        );
        assert.equal(await open.ping('b'), 'b');
        open.s.destroy();
        // The other port is untouched.
        const x = await openEcho(HOST_B, port2);
        assert.equal(await x.ping('c'), 'c');
        x.s.destroy();
      });
    });

    test('update is idempotent', async () => {
      await withCluster(transport, async (c, keep) => {
        const r1 = await httpBackend('r1');
        keep(r1);
        const port = await freePort();
        const spec = [{ port, tasks: [{ taskId: 't1', node: 'a' as const, addr: r1.addr }] }];
        await c.apply(spec);
        await get(HOST_A, port);
        await c.apply(spec);
        await c.apply(spec);
        const st = c.a.stats().ports[0]!;
        assert.equal(st.totalConnections, 1);
        assert.equal(st.backendStats[0]!.total, 1);
        assert.equal(st.listening, true);
        assert.deepEqual(
          c.portErrors.filter((p) => p.port === port),
          [
            { node: 'a', port, err: null },
            { node: 'b', port, err: null },
          ].sort((x, y) => (x.node < y.node ? -1 : 1)),
        );
        assert.equal(await get(HOST_A, port), 'r1');
      });
    });

    test('port in use: onPortError, retried, recovers when freed', async () => {
      await withCluster(transport, async (c, keep) => {
        const r1 = await httpBackend('r1');
        keep(r1);
        const port = await freePort();
        const squatter = net.createServer((s) => s.end('squatter'));
        await listen(squatter, HOST_A, port);
        await c.apply([{ port, tasks: [{ taskId: 't1', node: 'b', addr: r1.addr }] }]);
        const errA = c.portErrors.filter((p) => p.node === 'a' && p.port === port);
        assert.deepEqual(errA, [{ node: 'a', port, err: 'EADDRINUSE' }]);
        assert.equal(c.a.stats().ports[0]!.listening, false);
        assert.equal(c.a.stats().ports[0]!.bindError, 'EADDRINUSE');
        // Node b serves meanwhile.
        assert.equal(await get(HOST_B, port), 'r1');
        await sleep(800); // a few retries: the error is not reported again
        assert.equal(c.portErrors.filter((p) => p.node === 'a' && p.port === port).length, 1);
        await new Promise<void>((r) => squatter.close(() => r()));
        await waitFor(() => c.portErrors.filter((p) => p.node === 'a' && p.port === port).length === 2, 3000, 'recovery');
        assert.deepEqual(c.portErrors.filter((p) => p.node === 'a' && p.port === port)[1], { node: 'a', port, err: null });
        assert.equal(c.a.stats().ports[0]!.listening, true);
        assert.equal(await get(HOST_A, port), 'r1');
      });
    });

    test('a port removed while it cannot be bound: retries stop, error cleared', async () => {
      await withCluster(transport, async (c, keep) => {
        const r1 = await httpBackend('r1');
        keep(r1);
        const port = await freePort();
        const squatter = net.createServer((s) => s.end('squatter'));
        await listen(squatter, HOST_A, port);
        try {
          await c.apply([{ port, tasks: [{ taskId: 't1', node: 'a', addr: r1.addr }] }]);
          await c.apply([]);
          const errA = c.portErrors.filter((p) => p.node === 'a' && p.port === port).map((p) => p.err);
          assert.deepEqual(errA, ['EADDRINUSE', null]);
          await sleep(700);
          assert.equal(c.portErrors.filter((p) => p.node === 'a' && p.port === port).length, 2);
          assert.deepEqual(c.a.stats().ports, []);
        } finally {
          await new Promise<void>((r) => squatter.close(() => r()));
        }
      });
    });

    test('close() closes listeners, the forwarding port and open connections', async () => {
      const c = await makeCluster({ forwardTransport: transport });
      const e1 = await tcpBackend('e1', 'echo');
      try {
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 't1', node: 'b', addr: e1.addr }] }]);
        const open = await openEcho(HOST_A, port);
        assert.equal(await open.ping('x'), 'x');
        const fwdPort = c.b.forwardPort;
        const closed = new Promise<void>((r) => open.s.once('close', () => r()));
        await c.close();
        await closed;
        assert.equal((await connectOutcome(HOST_A, port)).outcome, 'refused');
        assert.equal((await connectOutcome(HOST_B, port)).outcome, 'refused');
        assert.equal((await connectOutcome(HOST_B, fwdPort)).outcome, 'refused');
      } finally {
        await c.close();
        await e1.close();
      }
    });
  });

  describe(`mesh: streams (${transport})`, () => {
    test('half-close: the client ends its side and still gets the answer (local and remote)', async () => {
      await withCluster(transport, async (c, keep) => {
        const h = await tcpBackend('h', 'halfclose');
        keep(h);
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 't1', node: 'a', addr: h.addr }] }]);
        assert.equal((await exchange(HOST_A, port, 'hello')).toString(), 'h got 5 bytes');
        assert.equal((await exchange(HOST_B, port, 'hello world')).toString(), 'h got 11 bytes');
        assert.equal((await exchange(HOST_B, port, '')).toString(), 'h got 0 bytes');
      });
    });

    test('idle connection stays open (no idle timeout)', async () => {
      await withCluster(transport, async (c, keep) => {
        const e1 = await tcpBackend('e1', 'echo');
        keep(e1);
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 't1', node: 'b', addr: e1.addr }] }]);
        const local = await openEcho(HOST_B, port);
        const remote = await openEcho(HOST_A, port);
        assert.equal(await local.ping('one'), 'one');
        assert.equal(await remote.ping('one'), 'one');
        await sleep(3000);
        assert.equal(await local.ping('two'), 'two');
        assert.equal(await remote.ping('two'), 'two');
        local.s.destroy();
        remote.s.destroy();
      });
    });

    test('20 MB each way, intact, through one hop and through two', async () => {
      await withCluster(transport, async (c, keep) => {
        const data = randomBytes(20 * 1024 * 1024);
        const sink = await tcpBackend('sink', 'sinkhash');
        const source = await tcpBackend('source', 'source', BACKEND_HOST2, data);
        keep(sink);
        keep(source);
        const up = await freePort();
        const down = await freePort();
        await c.apply([
          { port: up, tasks: [{ taskId: 'sink', node: 'b', addr: sink.addr }] },
          { port: down, tasks: [{ taskId: 'source', node: 'b', addr: source.addr }] },
        ]);
        const want = sha256(data);
        for (const host of [HOST_B, HOST_A]) {
          assert.equal((await exchange(host, up, data)).toString(), want, `upload via ${host}`);
          const got = await exchange(host, down, '');
          assert.equal(got.length, data.length, `download via ${host}`);
          assert.equal(sha256(got), want);
        }
      });
    });

    test('a backend that sends first (a banner) through two hops', async () => {
      await withCluster(transport, async (c, keep) => {
        const banner = await tcpBackend('banner', 'source', BACKEND_HOST, Buffer.from('220 hello\r\n'));
        keep(banner);
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 't1', node: 'b', addr: banner.addr }] }]);
        assert.equal((await exchange(HOST_A, port, '')).toString(), '220 hello\r\n');
      });
    });
  });

  describe(`mesh: PROXY protocol v2 (${transport})`, () => {
    test('local and remote replicas get the real client address and the destination', async () => {
      await withCluster(transport, async (c, keep) => {
        const pa = await tcpBackend('pa', 'proxy');
        const pb = await tcpBackend('pb', 'proxy', BACKEND_HOST2);
        keep(pa);
        keep(pb);
        const pLocal = await freePort();
        const pRemote = await freePort();
        await c.apply([
          { port: pLocal, proxyProtocol: true, tasks: [{ taskId: 'pa', node: 'a', addr: pa.addr }] },
          { port: pRemote, proxyProtocol: true, tasks: [{ taskId: 'pb', node: 'b', addr: pb.addr }] },
        ]);
        for (const [port, name] of [
          [pLocal, 'pa'],
          [pRemote, 'pb'],
        ] as const) {
          const clientPort = await freePort(['127.0.0.9']);
          const out = await new Promise<string>((resolve, reject) => {
            const s = net.connect({ host: HOST_A, port, localAddress: '127.0.0.9', localPort: clientPort, allowHalfOpen: true });
            let got = '';
            s.on('connect', () => s.end('payload'));
            s.on('data', (d) => (got += d));
            s.on('end', () => resolve(got));
            s.on('error', reject);
          });
          const r = JSON.parse(out);
          assert.equal(r.name, name);
          assert.equal(r.err, undefined);
          assert.equal(r.payload, 'payload');
          assert.deepEqual(r.header, {
            command: 'PROXY',
            family: 'INET',
            transport: 'STREAM',
            srcAddr: '127.0.0.9',
            srcPort: clientPort,
            dstAddr: HOST_A,
            dstPort: port,
            length: 28,
          });
          const hex = (n: number, w: number) => n.toString(16).padStart(w, '0');
          assert.equal(r.raw, '0d0a0d0a000d0a515549540a' + '2111000c' + '7f000009' + '7f000001' + hex(clientPort, 4) + hex(port, 4));
        }
      });
    });

    test('without the option no header is sent', async () => {
      await withCluster(transport, async (c, keep) => {
        const pb = await tcpBackend('pb', 'proxy');
        keep(pb);
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 'pb', node: 'b', addr: pb.addr }] }]);
        const r = JSON.parse((await exchange(HOST_A, port, 'plain')).toString());
        assert.equal(r.payload, 'plain');
        assert.ok(r.err, 'no PROXY signature');
      });
    });
  });

  describe(`mesh: forwarding listener (${transport})`, () => {
    test('refuses a target that is not one of its local replicas, and bad headers', async () => {
      await withCluster(transport, async (c, keep) => {
        const onA = await tcpBackend('onA', 'echo');
        const onB = await tcpBackend('onB', 'echo', BACKEND_HOST2);
        keep(onA);
        keep(onB);
        const port = await freePort();
        await c.apply([{ port, tasks: [{ taskId: 'ta', node: 'a', addr: onA.addr }, { taskId: 'tb', node: 'b', addr: onB.addr }] }]);
        const fwd = c.b.forwardPort;
        const ask = (bytes: string) => exchange(HOST_B, fwd, bytes);
        const cases = [
          encodeForwardHeader({ taskId: 'ta', targetPort: onA.port, proxyProtocol: false }), // a task of node a
          encodeForwardHeader({ taskId: 'tb', targetPort: onB.port + 1, proxyProtocol: false }), // wrong port
          encodeForwardHeader({ taskId: 'nope', targetPort: 22, proxyProtocol: false }),
          `SHOALFWD1 tb ${onB.port} 0 - - ${onA.addr}\n`,
          `CONNECT ${onA.addr} HTTP/1.1\r\n\r\n`,
          'x'.repeat(2000),
        ];
        for (const bytes of cases) {
          const out = await ask(bytes);
          assert.ok(out.length === 0 || out[0] !== FORWARD_ACK, `acked: ${bytes.slice(0, 60)}`);
          assert.match(out.toString(), /^ERR /);
        }
        // A header that never ends: dropped after the header timeout (500 ms in these tests).
        const t0 = Date.now();
        const slow = await new Promise<string>((resolve) => {
          const s = net.connect({ host: HOST_B, port: fwd });
          let got = '';
          s.on('connect', () => s.write('SHOALFWD1 tb'));
          s.on('data', (d) => (got += d));
          s.on('error', () => {});
          s.on('close', () => resolve(got));
        });
        assert.match(slow, /^ERR header timeout/);
        assert.ok(Date.now() - t0 < 3000);
        assert.equal(onA.connections, 0);
        assert.equal(onB.connections, 0);
        assert.equal(c.b.stats().forwarder.rejected, cases.length + 1);
        // The valid request is served.
        const ok = await exchange(HOST_B, fwd, encodeForwardHeader({ taskId: 'tb', targetPort: onB.port, proxyProtocol: false }) + 'echo me');
        assert.equal(ok[0], FORWARD_ACK);
        assert.equal(ok.subarray(1).toString(), 'echo me');
      });
    });
  });
}

describe('mesh: options', () => {
  test('forwardPort and forwardAddress', async () => {
    const port = await freePort(['127.0.0.7']);
    const m = new Mesh({ bindHost: '127.0.0.7', forwardPort: port, logger: quietLogger });
    assert.equal(m.forwardPort, 0);
    await m.start();
    try {
      assert.equal(m.forwardPort, port);
      assert.equal(m.forwardAddress, `127.0.0.7:${port}`);
      // A second mesh on the same forwarding port cannot start.
      const m2 = new Mesh({ bindHost: '127.0.0.7', forwardPort: port });
      await assert.rejects(m2.start(), /EADDRINUSE/);
      await m2.close();
    } finally {
      await m.close();
    }
  });
});
