// UDP published ports in the userland mesh: datagrams relayed to local backends (a flow per
// client, spread round robin), answers back from the published port, flows closed when idle or
// when their backend leaves, a port with no local backend refused with its reason, a TCP port of
// the same number untouched.

import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import net from 'node:net';
import { Mesh, type MeshTable } from '../src/index.js';
import { UdpRelay } from '../src/udp-relay.js';
import { freePort, quietLogger } from './helpers.js';

/** The first defined value of `f`, polled (rejects after timeoutMs). */
async function waitFor<T>(f: () => Promise<T | undefined> | T | undefined, timeoutMs: number): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** A UDP echo server on loopback that answers `NAME:datagram`. */
async function echo(name: string): Promise<{ addr: string; close: () => void; seen: number }> {
  const s = dgram.createSocket('udp4');
  const out = { addr: '', close: () => s.close(), seen: 0 };
  s.on('message', (m, r) => {
    out.seen++;
    s.send(`${name}:${m.toString()}`, r.port, r.address);
  });
  await new Promise<void>((resolve) => s.bind(0, '127.0.0.1', resolve));
  out.addr = `127.0.0.1:${s.address().port}`;
  return out;
}

/** One datagram to host:port and its first answer (rejects after timeoutMs). */
async function ask(port: number, text: string, sock?: dgram.Socket, timeoutMs = 2000): Promise<string> {
  const s = sock ?? dgram.createSocket('udp4');
  try {
    return await new Promise<string>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error('no answer')), timeoutMs);
      s.once('message', (m) => {
        clearTimeout(t);
        resolve(m.toString());
      });
      s.send(text, port, '127.0.0.1');
    });
  } finally {
    if (!sock) s.close();
  }
}

const local = (taskId: string, addr: string) => ({ taskId, nodeId: 'me', local: true, addr, targetPort: Number(addr.split(':')[1]) });
const udpPort = (port: number, backends: MeshTable['ports'][number]['backends']) => ({ port, protocol: 'udp' as const, serviceId: 's', serviceName: 'dns', proxyProtocol: false, backends });

describe('UDP published ports (userland relay)', () => {
  const closers: (() => unknown)[] = [];
  after(async () => {
    for (const c of closers.reverse()) await c();
  });

  test('relayed to local backends, a flow per client spread round robin, answers from the published port', async () => {
    const errors: string[] = [];
    const mesh = new Mesh({ bindHost: '127.0.0.1', logger: quietLogger, onPortError: (p, e, proto) => errors.push(`${p}/${proto}: ${e?.message ?? 'ok'}`) });
    closers.push(() => mesh.close());
    const [a, b] = [await echo('a'), await echo('b')];
    closers.push(a.close, b.close);
    const port = await freePort(['127.0.0.1']);
    await mesh.update({ ports: [udpPort(port, [local('t1', a.addr), local('t2', b.addr)])] });
    const c1 = dgram.createSocket('udp4');
    const c2 = dgram.createSocket('udp4');
    closers.push(() => c1.close(), () => c2.close());
    const r1 = await waitFor(() => ask(port, 'hello', c1, 500).catch(() => undefined), 5000);
    // The same client stays on its backend; another client gets the other one.
    assert.equal(await ask(port, 'again', c1), `${r1.split(':')[0]}:again`);
    const r2 = await ask(port, 'hi', c2);
    assert.notEqual(r1.split(':')[0], r2.split(':')[0], `${r1} / ${r2}`);
    assert.deepEqual(errors, []);
  });

  test('no local backend: not bound, and the reason reported; a backend that leaves takes its flows with it', async () => {
    const errors: string[] = [];
    const relay = new UdpRelay({ bindHost: '127.0.0.1', bindRetryMs: 100, onPortError: (p, e) => errors.push(`${p}: ${e?.message ?? 'ok'}`), log: quietLogger });
    closers.push(() => relay.close());
    const a = await echo('a');
    closers.push(a.close);
    const port = await freePort(['127.0.0.1']);
    relay.update([udpPort(port, [{ taskId: 'r', nodeId: 'other', local: false, via: '127.0.0.9:1', targetPort: 53 }])]);
    assert.deepEqual(errors, [`${port}: no replica on this node to relay UDP to (the userland proxy forwards no UDP to other nodes)`]);
    await assert.rejects(ask(port, 'x', undefined, 300), /no answer/);
    relay.update([udpPort(port, [local('t1', a.addr)])]);
    assert.equal(await waitFor(() => ask(port, 'x', undefined, 300).catch(() => undefined), 5000), 'a:x');
    assert.equal(errors.at(-1), `${port}: ok`);
    assert.equal(relay.flows().get(port), 1);
    relay.update([udpPort(port, [])]);
    assert.equal(relay.flows().get(port), 0, 'the flow went with its backend');
    relay.update([]);
    assert.equal(errors.at(-1), `${port}: ok`, 'a port no longer wanted has nothing to report');
  });

  test('an idle flow is closed; the client\'s next datagram opens a new one', async () => {
    const relay = new UdpRelay({ bindHost: '127.0.0.1', idleMs: 200, bindRetryMs: 100, onPortError: () => {}, log: quietLogger });
    closers.push(() => relay.close());
    const a = await echo('a');
    closers.push(a.close);
    const port = await freePort(['127.0.0.1']);
    relay.update([udpPort(port, [local('t1', a.addr)])]);
    const c = dgram.createSocket('udp4');
    closers.push(() => c.close());
    await waitFor(() => ask(port, 'x', c, 300).catch(() => undefined), 5000);
    assert.equal(relay.flows().get(port), 1);
    await waitFor(() => (relay.flows().get(port) === 0 ? true : undefined), 5000);
    assert.equal(await ask(port, 'y', c), 'a:y');
  });

  test('a TCP port of the same number is the TCP listener\'s (both served)', async () => {
    const mesh = new Mesh({ bindHost: '127.0.0.1', logger: quietLogger });
    closers.push(() => mesh.close());
    const a = await echo('a');
    closers.push(a.close);
    const tcp = net.createServer((s) => s.end('tcp\n'));
    await new Promise<void>((r) => tcp.listen(0, '127.0.0.1', r));
    closers.push(() => tcp.close());
    const port = await freePort(['127.0.0.1']);
    const tcpAddr = `127.0.0.1:${(tcp.address() as net.AddressInfo).port}`;
    await mesh.update({
      ports: [udpPort(port, [local('t1', a.addr)]), { port, serviceId: 's2', serviceName: 'web', proxyProtocol: false, backends: [local('t2', tcpAddr)] }],
    });
    assert.equal(await waitFor(() => ask(port, 'u', undefined, 300).catch(() => undefined), 5000), 'a:u');
    const got = await new Promise<string>((resolve, reject) => {
      const s = net.connect(port, '127.0.0.1');
      let d = '';
      s.on('data', (c) => (d += c));
      s.on('end', () => resolve(d.trim()));
      s.on('error', reject);
    });
    assert.equal(got, 'tcp');
  });
});
