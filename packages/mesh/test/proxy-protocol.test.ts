// PROXY v2 header bytes, the forwarding header (line protocol and h2 request headers), address parsing.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  encodeForwardH2,
  encodeForwardHeader,
  encodeProxyV2,
  parseForwardH2,
  parseForwardHeader,
  parseHostPort,
  parseProxyV2,
  PROXY_V2_SIGNATURE,
} from '../src/index.js';

const SIG = '0d0a0d0a000d0a515549540a';

describe('PROXY protocol v2', () => {
  test('IPv4 TCP header bytes', () => {
    const b = encodeProxyV2({ srcAddr: '127.0.0.9', srcPort: 40000, dstAddr: '127.0.0.1', dstPort: 8080 });
    assert.equal(b.toString('hex'), SIG + '21' + '11' + '000c' + '7f000009' + '7f000001' + '9c40' + '1f90');
    assert.deepEqual(parseProxyV2(b), {
      command: 'PROXY',
      family: 'INET',
      transport: 'STREAM',
      srcAddr: '127.0.0.9',
      srcPort: 40000,
      dstAddr: '127.0.0.1',
      dstPort: 8080,
      length: 28,
    });
  });

  test('IPv4-mapped IPv6 addresses become IPv4', () => {
    const b = encodeProxyV2({ srcAddr: '::ffff:10.1.2.3', srcPort: 1, dstAddr: '::FFFF:10.0.0.1', dstPort: 2 });
    assert.equal(b.length, 28);
    assert.equal(b.toString('hex'), SIG + '2111000c' + '0a010203' + '0a000001' + '0001' + '0002');
  });

  test('IPv6 TCP header bytes', () => {
    const b = encodeProxyV2({ srcAddr: '2001:db8::1', srcPort: 1, dstAddr: '::1', dstPort: 443 });
    assert.equal(
      b.toString('hex'),
      SIG + '21' + '21' + '0024' + '20010db8000000000000000000000001' + '00000000000000000000000000000001' + '0001' + '01bb',
    );
    const h = parseProxyV2(b)!;
    assert.equal(h.family, 'INET6');
    assert.equal(h.srcAddr, '2001:db8::1');
    assert.equal(h.dstAddr, '::1');
    assert.equal(h.length, 52);
  });

  test('mixed families: IPv4 end mapped into IPv6; IPv4 tail and zone parsed', () => {
    const b = encodeProxyV2({ srcAddr: '10.0.0.1', srcPort: 5, dstAddr: 'fe80::1%eth0', dstPort: 6 });
    const h = parseProxyV2(b)!;
    assert.equal(h.family, 'INET6');
    assert.equal(h.srcAddr, '::ffff:a00:1');
    assert.equal(h.dstAddr, 'fe80::1');
    const c = encodeProxyV2({ srcAddr: '64:ff9b::192.0.2.33', srcPort: 5, dstAddr: '1:2:3:4:5:6:7:8', dstPort: 6 });
    assert.equal(c.subarray(16, 32).toString('hex'), '0064ff9b0000000000000000c0000221');
    assert.equal(parseProxyV2(c)!.dstAddr, '1:2:3:4:5:6:7:8');
  });

  test('unknown addresses: LOCAL command, UNSPEC family', () => {
    const b = encodeProxyV2({});
    assert.equal(b.toString('hex'), SIG + '20' + '00' + '0000');
    assert.equal(parseProxyV2(b)!.command, 'LOCAL');
  });

  test('parse: incomplete → undefined, wrong signature → throws', () => {
    const b = encodeProxyV2({ srcAddr: '1.2.3.4', srcPort: 1, dstAddr: '5.6.7.8', dstPort: 2 });
    assert.equal(parseProxyV2(b.subarray(0, 5)), undefined);
    assert.equal(parseProxyV2(b.subarray(0, 20)), undefined);
    assert.throws(() => parseProxyV2(Buffer.from('GET / HTTP/1.1\r\n\r\n')));
    assert.equal(PROXY_V2_SIGNATURE.length, 12);
  });
});

describe('forwarding header', () => {
  test('round trip, IPv4 and IPv6, unknown endpoints', () => {
    const line = encodeForwardHeader({
      taskId: 'abc123',
      targetPort: 8080,
      proxyProtocol: true,
      client: { host: '10.0.0.9', port: 5000 },
      dst: { host: '::1', port: 80 },
    });
    assert.equal(line, 'SHOALFWD1 abc123 8080 1 10.0.0.9:5000 [::1]:80\n');
    assert.deepEqual(parseForwardHeader(line.trimEnd()), {
      taskId: 'abc123',
      targetPort: 8080,
      proxyProtocol: true,
      client: { host: '10.0.0.9', port: 5000 },
      dst: { host: '::1', port: 80 },
    });
    const plain = encodeForwardHeader({ taskId: 't1', targetPort: 80, proxyProtocol: false });
    assert.equal(plain, 'SHOALFWD1 t1 80 0 - -\n');
    assert.deepEqual(parseForwardHeader(plain.trimEnd()), { taskId: 't1', targetPort: 80, proxyProtocol: false });
  });

  test('malformed headers are rejected', () => {
    for (const bad of [
      '',
      'GET / HTTP/1.1',
      'SHOALFWD1 t1 80 0 -',
      'SHOALFWD1 t1 80 0 - - extra',
      'SHOALFWD2 t1 80 0 - -',
      'SHOALFWD1 t1 0 0 - -',
      'SHOALFWD1 t1 70000 0 - -',
      'SHOALFWD1 t1 80 2 - -',
      'SHOALFWD1 t/1 80 0 - -',
      'SHOALFWD1 t1 80 0 1.2.3.4 -',
      'SHOALFWD1 t1 80 0 - 1.2.3.4:99999',
    ]) {
      assert.equal(parseForwardHeader(bad), undefined, bad);
    }
  });

  test('h2 CONNECT request headers: round trip, task ids with colons, IPv6', () => {
    const req = { taskId: 'svc.1:abc', targetPort: 8080, proxyProtocol: true, client: { host: '10.0.0.9', port: 5000 }, dst: { host: '::1', port: 80 } };
    const h = encodeForwardH2(req);
    assert.deepEqual(h, {
      ':method': 'CONNECT',
      ':authority': 'svc.1:abc:8080',
      'shoal-proxy': '1',
      'shoal-client': '10.0.0.9:5000',
      'shoal-dst': '[::1]:80',
    });
    assert.deepEqual(parseForwardH2(h), { req });
    const plain = encodeForwardH2({ taskId: 't1', targetPort: 80, proxyProtocol: false });
    assert.deepEqual(plain, { ':method': 'CONNECT', ':authority': 't1:80' });
    assert.deepEqual(parseForwardH2({ ...plain, 'x-future': 'ignored' }), { req: { taskId: 't1', targetPort: 80, proxyProtocol: false } });
  });

  test('h2 CONNECT requests that are refused, with their status', () => {
    const cases: [Record<string, string>, number][] = [
      [{ ':method': 'GET', ':path': '/', ':authority': 't1:80' }, 405],
      [{ ':method': 'CONNECT', ':authority': 't1:80', ':protocol': 'websocket', ':path': '/' }, 400],
      [{ ':method': 'CONNECT' }, 400],
      [{ ':method': 'CONNECT', ':authority': 't1' }, 400],
      [{ ':method': 'CONNECT', ':authority': ':80' }, 400],
      [{ ':method': 'CONNECT', ':authority': 't/1:80' }, 400],
      [{ ':method': 'CONNECT', ':authority': 't1:0' }, 400],
      [{ ':method': 'CONNECT', ':authority': 't1:123456' }, 400],
      [{ ':method': 'CONNECT', ':authority': 't1:80', 'shoal-proxy': '2' }, 400],
      [{ ':method': 'CONNECT', ':authority': 't1:80', 'shoal-proxy': '1', 'shoal-client': '1.2.3.4' }, 400],
      [{ ':method': 'CONNECT', ':authority': 't1:80', 'shoal-proxy': '1', 'shoal-dst': '1.2.3.4:99999' }, 400],
    ];
    for (const [h, status] of cases) {
      const r = parseForwardH2(h);
      assert.ok('status' in r && r.status === status, `${JSON.stringify(h)}: ${JSON.stringify(r)}`);
    }
  });

  test('parseHostPort', () => {
    assert.deepEqual(parseHostPort('127.0.0.1:80'), { host: '127.0.0.1', port: 80 });
    assert.deepEqual(parseHostPort('[::1]:443'), { host: '::1', port: 443 });
    assert.deepEqual(parseHostPort('node-1.example:7946'), { host: 'node-1.example', port: 7946 });
    for (const bad of ['127.0.0.1', ':80', '127.0.0.1:', '127.0.0.1:0', '127.0.0.1:65536', '[::1]80', 'a b:80']) {
      assert.equal(parseHostPort(bad), undefined, bad);
    }
  });
});
