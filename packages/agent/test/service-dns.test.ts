// The node's service DNS: the name table's rules on their own, then a real ServiceDns on
// loopback addresses (127.0.0.0/8 is all local, so every address stands for a gateway, a task
// or a resolver) asked by real clients: dns-packet queries over UDP and TCP, and Node's c-ares
// Resolver, each bound to a task's address, since the source address picks the names. The
// upstream is a small real DNS server on another loopback address.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as dgram from 'node:dgram';
import * as net from 'node:net';
import { promises as dnsp } from 'node:dns';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as dnsPacket from 'dns-packet';
import type { Answer, DecodedPacket, RecordType } from 'dns-packet';
import { ShoalError } from '@shoal/api';
import { type DnsClient, type DnsNetwork, NameTable, ServiceDns, parseResolvConf, parseUpstream } from '../src/service-dns/index.js';

// ------------------------------------------------------------------ the cluster in these tests

const NET_A: DnsNetwork = {
  id: 'neta',
  services: [
    {
      id: 'svc-web',
      name: 'web',
      aliases: ['www'],
      endpointMode: 'vip',
      vip: '10.0.1.2',
      tasks: [
        { id: 'tw1', slot: 1, ip: '10.0.1.3' },
        { id: 'tw2', slot: 2, ip: '10.0.1.4' },
        { id: 'tw3', slot: 3, ip: '10.0.1.5' },
      ],
    },
    {
      id: 'svc-db',
      name: 'db',
      aliases: ['database'],
      endpointMode: 'dnsrr',
      tasks: [
        { id: 'td1', slot: 1, ip: '10.0.1.10' },
        { id: 'td2', slot: 2, ip: '10.0.1.11' },
      ],
    },
    { id: 'svc-idle', name: 'idle', aliases: [], endpointMode: 'dnsrr', tasks: [] },
    { id: 'svc-cold', name: 'cold', aliases: [], endpointMode: 'vip', vip: '10.0.1.20', tasks: [] },
    // A global service's task names itself SERVICE.NODEID.TASKID.
    { id: 'svc-agent', name: 'agent', aliases: [], endpointMode: 'vip', vip: '10.0.1.30', tasks: [{ id: 'ta1', slot: 0, ip: '10.0.1.31', name: 'agent.node7.ta1' }] },
  ],
};

const NET_B: DnsNetwork = {
  id: 'netb',
  services: [
    // web is on both networks: another VIP and other task addresses on B.
    { id: 'svc-web', name: 'web', aliases: ['www'], endpointMode: 'vip', vip: '10.0.2.5', tasks: [{ id: 'tw1', slot: 1, ip: '10.0.2.6' }] },
    { id: 'svc-api', name: 'api', aliases: [], endpointMode: 'vip', vip: '10.0.2.2', tasks: [{ id: 'tap1', slot: 1, ip: '10.0.2.3' }] },
  ],
};

// Loopback addresses of this run (another suite's run may use others).
const BASE = `127.53.${(process.pid % 200) + 20}`;
const GW_A = `${BASE}.1`;
const GW_B = `${BASE}.2`;
const ON_A = `${BASE}.10`; // a task on network A only
const ON_BA = `${BASE}.11`; // a task on B and A, B first
const ON_B = `${BASE}.12`; // a task on B only
const STRANGER = `${BASE}.13`; // no task of this node
const UPSTREAM = `${BASE}.100`;
const SILENT = `${BASE}.101`; // takes datagrams, never answers
const NOBODY = `${BASE}.102`; // nothing listens
const PORT = 20000 + Math.floor(Math.random() * 40000);

const CLIENTS: DnsClient[] = [
  { ip: ON_A, networks: ['neta'] },
  { ip: ON_BA, networks: ['netb', 'neta'] },
  { ip: ON_B, networks: ['netb'] },
];

const table = (): NameTable => new NameTable([NET_A, NET_B], CLIENTS);

// ------------------------------------------------------------------ the name table alone

describe('NameTable', () => {
  const t = table();
  const sorted = (ips: string[] | undefined): string[] | undefined => ips && [...ips].sort();

  test('a vip service and its aliases answer the VIP; tasks.NAME the running tasks', () => {
    assert.deepEqual(t.resolve(ON_A, 'web'), ['10.0.1.2']);
    assert.deepEqual(t.resolve(ON_A, 'www'), ['10.0.1.2']);
    assert.deepEqual(sorted(t.resolve(ON_A, 'tasks.web')), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
    assert.deepEqual(sorted(t.resolve(ON_A, 'tasks.www')), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
  });

  test('a dnsrr service and its aliases answer the tasks', () => {
    assert.deepEqual(sorted(t.resolve(ON_A, 'db')), ['10.0.1.10', '10.0.1.11']);
    assert.deepEqual(sorted(t.resolve(ON_A, 'database')), ['10.0.1.10', '10.0.1.11']);
    assert.deepEqual(sorted(t.resolve(ON_A, 'tasks.db')), ['10.0.1.10', '10.0.1.11']);
  });

  test("a task's container name answers that task", () => {
    assert.deepEqual(t.resolve(ON_A, 'web.2.tw2'), ['10.0.1.4']);
    assert.deepEqual(t.resolve(ON_A, 'db.1.td1'), ['10.0.1.10']);
    assert.deepEqual(t.resolve(ON_A, 'agent.node7.ta1'), ['10.0.1.31']);
    assert.equal(t.resolve(ON_A, 'agent.0.ta1'), undefined);
  });

  test('no running task: dnsrr and tasks. names are no names (upstream, as Docker); a vip name keeps its VIP', () => {
    assert.equal(t.resolve(ON_A, 'idle'), undefined);
    assert.equal(t.resolve(ON_A, 'tasks.idle'), undefined);
    assert.equal(t.resolve(ON_A, 'tasks.cold'), undefined);
    assert.deepEqual(t.resolve(ON_A, 'cold'), ['10.0.1.20']);
  });

  test("a client sees its networks only, the first of them that has a name answering", () => {
    assert.equal(t.resolve(ON_A, 'api'), undefined);
    assert.deepEqual(t.resolve(ON_B, 'api'), ['10.0.2.2']);
    assert.deepEqual(t.resolve(ON_BA, 'web'), ['10.0.2.5']);
    assert.deepEqual(t.resolve(ON_BA, 'tasks.web'), ['10.0.2.6']);
    assert.deepEqual(sorted(t.resolve(ON_BA, 'db')), ['10.0.1.10', '10.0.1.11']); // not on B: A's
    assert.equal(t.resolve(ON_B, 'db'), undefined);
  });

  test('an unknown client gets no cluster name at all', () => {
    assert.equal(t.knows(STRANGER), false);
    assert.equal(t.resolve(STRANGER, 'web'), undefined);
    assert.equal(t.reverse(STRANGER, '10.0.1.3'), undefined);
  });

  test('names are case-insensitive and a trailing dot is ignored', () => {
    assert.deepEqual(t.resolve(ON_A, 'WEB.'), ['10.0.1.2']);
    assert.deepEqual(sorted(t.resolve(ON_A, 'Tasks.DB.')), ['10.0.1.10', '10.0.1.11']);
    assert.deepEqual(t.resolve(ON_A, 'Web.2.TW2'), ['10.0.1.4']);
  });

  test('two services claiming one name on a network answer both (the union)', () => {
    const both = new NameTable(
      [
        {
          id: 'n',
          services: [
            { id: 's1', name: 'one', aliases: ['shared'], endpointMode: 'vip', vip: '10.9.0.2', tasks: [{ id: 'a', slot: 1, ip: '10.9.0.3' }] },
            { id: 's2', name: 'two', aliases: ['Shared'], endpointMode: 'vip', vip: '10.9.0.4', tasks: [{ id: 'b', slot: 1, ip: '10.9.0.5' }] },
          ],
        },
      ],
      [{ ip: '10.9.0.3', networks: ['n'] }],
    );
    assert.deepEqual(sorted(both.resolve('10.9.0.3', 'shared')), ['10.9.0.2', '10.9.0.4']);
    assert.deepEqual(sorted(both.resolve('10.9.0.3', 'tasks.shared')), ['10.9.0.3', '10.9.0.5']);
  });

  test('vip mode without a VIP falls back to the tasks, as Docker does', () => {
    const t2 = new NameTable([{ id: 'n', services: [{ id: 's', name: 'x', aliases: [], endpointMode: 'vip', tasks: [{ id: 'a', slot: 1, ip: '10.9.0.3' }] }] }], [{ ip: '10.9.0.3', networks: ['n'] }]);
    assert.deepEqual(t2.resolve('10.9.0.3', 'x'), ['10.9.0.3']);
  });

  test('reverse: a task address names its container, a VIP its service, on the networks the client is on', () => {
    assert.equal(t.reverse(ON_A, '10.0.1.4'), 'web.2.tw2');
    assert.equal(t.reverse(ON_A, '10.0.1.2'), 'web');
    assert.equal(t.reverse(ON_A, '10.0.1.31'), 'agent.node7.ta1');
    assert.equal(t.reverse(ON_A, '10.0.2.2'), undefined);
    assert.equal(t.reverse(ON_B, '10.0.2.2'), 'api');
    assert.equal(t.reverse(ON_A, '10.0.1.99'), undefined);
  });

  test('each answer is a fresh shuffle: every task comes first sometimes, and the table is not changed by its callers', () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 50; i++) {
      const ips = t.resolve(ON_A, 'tasks.web')!;
      firsts.add(ips[0]!);
      ips.length = 0; // a caller's own array
    }
    assert.deepEqual([...firsts].sort(), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
    assert.equal(t.resolve(ON_A, 'tasks.web')!.length, 3);
  });

  test('an address that is no IPv4 address is refused when the table is built', () => {
    const bad = (ip: string): NameTable => new NameTable([{ id: 'n', services: [{ id: 's', name: 'x', aliases: [], endpointMode: 'dnsrr', tasks: [{ id: 'a', slot: 1, ip }] }] }], []);
    assert.throws(() => bad('10.0.1'), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT'));
    assert.throws(() => bad('fd00::1'), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT'));
    assert.throws(() => new NameTable([], [{ ip: 'x', networks: [] }]), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT'));
  });

  test('the empty table knows nobody', () => {
    assert.equal(NameTable.EMPTY.resolve(ON_A, 'web'), undefined);
  });
});

describe('upstream addresses', () => {
  test('parseUpstream takes an address with or without a port', () => {
    assert.deepEqual(parseUpstream('10.1.2.3'), { host: '10.1.2.3', port: 53, family: 4 });
    assert.deepEqual(parseUpstream('10.1.2.3:5353'), { host: '10.1.2.3', port: 5353, family: 4 });
    assert.deepEqual(parseUpstream('fd00::53'), { host: 'fd00::53', port: 53, family: 6 });
    assert.deepEqual(parseUpstream('[fd00::53]:5353'), { host: 'fd00::53', port: 5353, family: 6 });
    assert.throws(() => parseUpstream('dns.example'), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT'));
    assert.throws(() => parseUpstream('10.1.2.3:0'), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT'));
  });

  test('parseResolvConf reads the nameserver lines, three at most', () => {
    const text = ['# generated', 'search example.org', 'nameserver 10.255.255.53 # the VPC', 'nameserver fd00::53', 'nameserver bogus', 'options ndots:2', 'nameserver 1.1.1.1', 'nameserver 8.8.8.8'].join('\n');
    assert.deepEqual(
      parseResolvConf(text).map((u) => `${u.host}:${u.port}`),
      ['10.255.255.53:53', 'fd00::53:53', '1.1.1.1:53'],
    );
    assert.deepEqual(parseResolvConf(''), []);
  });
});

// ------------------------------------------------------------------ a real server

/** A small authoritative DNS server (UDP and TCP) for the upstream, recording what it is asked. */
class FakeUpstream {
  readonly asked: { name: string; type: string; id: number; tcp: boolean; from: string }[] = [];
  readonly zone = new Map<string, string>([
    ['example.test', '192.0.2.7'],
    ['web', '192.0.2.99'], // what the world says "web" is: not the cluster's
    ['api', '192.0.2.98'],
  ]);
  #udp = dgram.createSocket('udp4');
  #tcp = net.createServer();

  async start(address: string, port: number): Promise<void> {
    this.#udp.on('message', (msg, rinfo) => {
      const res = this.#answer(msg, false, rinfo.address);
      if (res) this.#udp.send(res, rinfo.port, rinfo.address);
    });
    this.#tcp.on('connection', (sock) => {
      sock.on('error', () => undefined);
      let buf: Buffer = Buffer.alloc(0);
      sock.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
          const msg = buf.subarray(2, 2 + buf.readUInt16BE(0));
          buf = buf.subarray(2 + msg.length);
          const res = this.#answer(msg, true, sock.remoteAddress ?? '');
          if (res) sock.write(Buffer.concat([u16(res.length), res]));
        }
      });
    });
    await new Promise<void>((resolve) => this.#udp.bind(port, address, resolve));
    await new Promise<void>((resolve) => this.#tcp.listen(port, address, resolve));
  }

  #answer(msg: Buffer, tcp: boolean, from: string): Buffer | undefined {
    const q = dnsPacket.decode(msg);
    const question = q.questions![0]!;
    this.asked.push({ name: question.name, type: question.type, id: q.id!, tcp, from });
    const ip = this.zone.get(question.name.toLowerCase());
    return dnsPacket.encode({
      id: q.id,
      type: 'response',
      flags: dnsPacket.AUTHORITATIVE_ANSWER | (ip === undefined ? 3 : 0), // NXDOMAIN when not in the zone
      questions: [question],
      answers: ip !== undefined && question.type === 'A' ? [{ name: question.name, type: 'A', ttl: 0, data: ip }] : [],
    });
  }

  async stop(): Promise<void> {
    await new Promise<void>((resolve) => this.#udp.close(() => resolve()));
    await new Promise<void>((resolve) => this.#tcp.close(() => resolve()));
  }
}

function u16(n: number): Buffer {
  const b = Buffer.alloc(2);
  b.writeUInt16BE(n);
  return b;
}

const WAIT_MS = 10_000; // a generous wait, never a timing assertion

/** One datagram to server:port from `client`, the first reply back (rejects on ICMP unreachable). */
function udpExchange(server: string, client: string, bytes: Buffer, port = PORT): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const sock = dgram.createSocket('udp4');
    const timer = setTimeout(() => done(new Error('no reply')), WAIT_MS);
    const done = (r: Buffer | Error): void => {
      clearTimeout(timer);
      sock.close();
      if (r instanceof Error) reject(r);
      else resolve(r);
    };
    sock.on('error', (err) => done(err));
    sock.on('message', (msg) => done(msg));
    sock.bind({ address: client, port: 0 }, () => sock.connect(port, server, () => sock.send(bytes)));
  });
}

/** Queries over one TCP connection from `client`, their replies in the order they came. */
function tcpExchange(server: string, client: string, queries: Buffer[], port = PORT): Promise<Buffer[]> {
  return new Promise((resolve, reject) => {
    const sock = net.connect({ host: server, port, localAddress: client });
    const out: Buffer[] = [];
    let buf: Buffer = Buffer.alloc(0);
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error('no reply'));
    }, WAIT_MS);
    sock.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    sock.on('connect', () => sock.write(Buffer.concat(queries.flatMap((q) => [u16(q.length), q]))));
    sock.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        out.push(buf.subarray(2, 2 + buf.readUInt16BE(0)));
        buf = buf.subarray(2 + out[out.length - 1]!.length);
      }
      if (out.length === queries.length) {
        clearTimeout(timer);
        sock.end();
        resolve(out);
      }
    });
  });
}

let nextId = 1;
function query(name: string, type: RecordType = 'A', opts: { edns?: number } = {}): Buffer {
  return dnsPacket.encode({
    id: nextId++ & 0xffff,
    type: 'query',
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ name, type, class: 'IN' }],
    additionals: opts.edns === undefined ? [] : [{ name: '.', type: 'OPT', udpPayloadSize: opts.edns, extendedRcode: 0, ednsVersion: 0, flags: 0, flag_do: false, options: [] }],
  });
}

interface Reply {
  id: number;
  rcode: string;
  tc: boolean;
  answers: Answer[];
  data: string[];
  raw: DecodedPacket;
}

function reply(buf: Buffer): Reply {
  const p = dnsPacket.decode(buf) as DecodedPacket & { rcode: string };
  return { id: p.id!, rcode: p.rcode, tc: p.flag_tc, answers: p.answers!, data: p.answers!.map((a) => String((a as { data: unknown }).data)), raw: p };
}

async function ask(server: string, client: string, name: string, type: RecordType = 'A', opts: { tcp?: boolean; edns?: number; port?: number } = {}): Promise<Reply> {
  const q = query(name, type, opts);
  const res = opts.tcp ? (await tcpExchange(server, client, [q], opts.port))[0]! : await udpExchange(server, client, q, opts.port);
  const r = reply(res);
  assert.equal(r.id, q.readUInt16BE(0), 'the reply carries the query id');
  return r;
}

function resolver(client: string, server = GW_A): dnsp.Resolver {
  const r = new dnsp.Resolver({ timeout: WAIT_MS, tries: 1 });
  r.setLocalAddress(client);
  r.setServers([`${server}:${PORT}`]);
  return r;
}

const sorted = (xs: string[]): string[] => [...xs].sort();

describe('ServiceDns on loopback', () => {
  const upstream = new FakeUpstream();
  const silent = dgram.createSocket('udp4');
  const dns = new ServiceDns({ upstreams: [`${UPSTREAM}:${PORT}`] });

  before(async () => {
    await upstream.start(UPSTREAM, PORT);
    await new Promise<void>((resolve) => silent.bind(PORT, SILENT, resolve));
    dns.setTable(table());
    await dns.listen(GW_A, PORT);
    await dns.listen(GW_B, PORT);
  });

  after(async () => {
    await dns.close();
    await upstream.stop();
    silent.close();
  });

  test('listen is idempotent and listening() names the addresses', async () => {
    await Promise.all([dns.listen(GW_A, PORT), dns.listen(GW_A, PORT)]);
    assert.deepEqual(sorted(dns.listening()), sorted([GW_A, GW_B]));
  });

  test('through c-ares: VIP, dnsrr, tasks., alias, container name, TTL 0', async () => {
    const r = resolver(ON_A);
    assert.deepEqual(await r.resolve4('web', { ttl: true }), [{ address: '10.0.1.2', ttl: 0 }]);
    assert.deepEqual(await r.resolve4('www'), ['10.0.1.2']);
    assert.deepEqual(sorted(await r.resolve4('db')), ['10.0.1.10', '10.0.1.11']);
    assert.deepEqual(sorted(await r.resolve4('database')), ['10.0.1.10', '10.0.1.11']);
    assert.deepEqual(sorted(await r.resolve4('tasks.web')), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
    assert.deepEqual(sorted(await r.resolve4('tasks.www')), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
    assert.deepEqual(await r.resolve4('web.3.tw3'), ['10.0.1.5']);
    assert.deepEqual(await r.reverse('10.0.1.4'), ['web.2.tw2']);
    assert.deepEqual(await r.reverse('10.0.1.2'), ['web']);
  });

  test('the same over raw UDP and TCP, with NOERROR and the question echoed', async () => {
    for (const tcp of [false, true]) {
      const r = await ask(GW_A, ON_A, 'tasks.db', 'A', { tcp });
      assert.equal(r.rcode, 'NOERROR');
      assert.deepEqual(r.raw.questions, [{ name: 'tasks.db', type: 'A', class: 'IN' }]);
      assert.deepEqual(sorted(r.data), ['10.0.1.10', '10.0.1.11']);
      assert.ok(r.answers.every((a) => a.type === 'A' && a.ttl === 0 && a.name === 'tasks.db'));
    }
  });

  test('several queries pipelined on one TCP connection are all answered', async () => {
    const qs = [query('web'), query('db.2.td2'), query('example.test')];
    const res = (await tcpExchange(GW_A, ON_A, qs)).map(reply);
    const byId = new Map(res.map((r) => [r.id, r.data]));
    assert.deepEqual(byId.get(qs[0]!.readUInt16BE(0)), ['10.0.1.2']);
    assert.deepEqual(byId.get(qs[1]!.readUInt16BE(0)), ['10.0.1.11']);
    assert.deepEqual(byId.get(qs[2]!.readUInt16BE(0)), ['192.0.2.7']);
  });

  test('a TCP client that shuts its side after its queries still gets every answer, forwarded ones too', async () => {
    const qs = [query('example.test'), query('web')];
    const res = await new Promise<Reply[]>((resolve, reject) => {
      const sock = net.connect({ host: GW_A, port: PORT, localAddress: ON_A });
      const chunks: Buffer[] = [];
      sock.on('error', reject);
      sock.on('connect', () => sock.end(Buffer.concat(qs.flatMap((q) => [u16(q.length), q]))));
      sock.on('data', (c: Buffer) => chunks.push(c));
      sock.on('end', () => {
        const out: Reply[] = [];
        let buf = Buffer.concat(chunks);
        while (buf.length >= 2) {
          out.push(reply(buf.subarray(2, 2 + buf.readUInt16BE(0))));
          buf = buf.subarray(2 + buf.readUInt16BE(0));
        }
        resolve(out);
      });
    });
    assert.deepEqual(sorted(res.map((r) => r.data[0]!)), ['10.0.1.2', '192.0.2.7']);
  });

  test('case and a trailing dot do not matter; the answer keeps the asked spelling', async () => {
    const r = await ask(GW_A, ON_A, 'WeB.');
    assert.deepEqual(r.data, ['10.0.1.2']);
    assert.equal(r.answers[0]!.name, 'WeB');
    assert.deepEqual(sorted(await resolver(ON_A).resolve4('TASKS.DB.')), ['10.0.1.10', '10.0.1.11']);
  });

  test('AAAA, MX and TXT of a cluster name: NOERROR with no records, never asked upstream', async () => {
    const before = upstream.asked.length;
    for (const type of ['AAAA', 'MX', 'TXT'] as const) {
      const r = await ask(GW_A, ON_A, 'web', type);
      assert.equal(r.rcode, 'NOERROR');
      assert.deepEqual(r.data, []);
    }
    await assert.rejects(resolver(ON_A).resolve6('db'), { code: 'ENODATA' });
    assert.equal(upstream.asked.length, before);
  });

  test('isolation: a name only on B is not resolved for a client on A (the upstream answers)', async () => {
    assert.deepEqual(await resolver(ON_B, GW_B).resolve4('api'), ['10.0.2.2']);
    assert.deepEqual(await resolver(ON_A).resolve4('api'), ['192.0.2.98']);
    await assert.rejects(resolver(ON_A).resolve4('tasks.api'), { code: 'ENOTFOUND' });
    // ...whichever gateway it asks: the source address decides.
    assert.deepEqual(await resolver(ON_A, GW_B).resolve4('web'), ['10.0.1.2']);
    // A PTR of another network's address is not ours to answer either.
    await assert.rejects(resolver(ON_A).reverse('10.0.2.2'), { code: 'ENOTFOUND' });
  });

  test("a client on two networks gets the first of its networks' answer", async () => {
    assert.deepEqual(await resolver(ON_BA).resolve4('web'), ['10.0.2.5']);
    assert.deepEqual(sorted(await resolver(ON_BA).resolve4('db')), ['10.0.1.10', '10.0.1.11']);
  });

  test('an unknown client gets no cluster name: everything goes upstream', async () => {
    const before = upstream.asked.length;
    assert.deepEqual(await resolver(STRANGER).resolve4('web'), ['192.0.2.99']);
    await assert.rejects(resolver(STRANGER).resolve4('tasks.web'), { code: 'ENOTFOUND' });
    assert.deepEqual(upstream.asked.slice(before).map((a) => a.name), ['web', 'tasks.web']);
  });

  test('no running task: a dnsrr name and tasks. go upstream (NXDOMAIN there); a vip name still answers', async () => {
    await assert.rejects(resolver(ON_A).resolve4('idle'), { code: 'ENOTFOUND' });
    await assert.rejects(resolver(ON_A).resolve4('tasks.cold'), { code: 'ENOTFOUND' });
    assert.deepEqual(await resolver(ON_A).resolve4('cold'), ['10.0.1.20']);
  });

  test('forwarding keeps the id and the transport, and relays the answer', async () => {
    const before = upstream.asked.length;
    const udp = await ask(GW_A, ON_A, 'example.test');
    const tcp = await ask(GW_A, ON_A, 'example.test', 'A', { tcp: true });
    const nx = await ask(GW_A, ON_A, 'nowhere.test');
    assert.deepEqual(udp.data, ['192.0.2.7']);
    assert.deepEqual(tcp.data, ['192.0.2.7']);
    assert.equal(nx.rcode, 'NXDOMAIN');
    assert.deepEqual(
      upstream.asked.slice(before).map((a) => [a.name, a.id, a.tcp]),
      [
        ['example.test', udp.id, false],
        ['example.test', tcp.id, true],
        ['nowhere.test', nx.id, false],
      ],
    );
  });

  test('setTable: the very next query sees the new table', async () => {
    const r = resolver(ON_A);
    assert.deepEqual(await r.resolve4('web'), ['10.0.1.2']);
    const moved: DnsNetwork = { id: 'neta', services: [{ ...NET_A.services[0]!, vip: '10.0.1.200', tasks: [{ id: 'tw9', slot: 1, ip: '10.0.1.9' }] }] };
    dns.setTable(new NameTable([moved, NET_B], CLIENTS));
    try {
      assert.deepEqual(await r.resolve4('web'), ['10.0.1.200']);
      assert.deepEqual(await r.resolve4('tasks.web'), ['10.0.1.9']);
      assert.deepEqual(await r.resolve4('db').catch((e: { code: string }) => e.code), 'ENOTFOUND'); // gone from A
    } finally {
      dns.setTable(table());
    }
    assert.deepEqual(await r.resolve4('web'), ['10.0.1.2']);
  });

  test('the task order is shuffled per answer: every task comes first over 50 queries', async () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 50; i++) firsts.add((await ask(GW_A, ON_A, 'tasks.web')).data[0]!);
    assert.deepEqual(sorted([...firsts]), ['10.0.1.3', '10.0.1.4', '10.0.1.5']);
  });

  test('a malformed packet is dropped or gets FORMERR, and the next good query is answered', async () => {
    const sock = dgram.createSocket('udp4');
    const replies: Buffer[] = [];
    sock.on('message', (m) => replies.push(m));
    await new Promise<void>((resolve) => sock.bind({ address: ON_A, port: 0 }, () => sock.connect(PORT, GW_A, () => resolve())));
    const send = (b: Buffer): Promise<void> => new Promise((resolve) => sock.send(b, () => resolve()));
    const good = query('web');
    const twoQuestions = dnsPacket.encode({ id: 0x4242, type: 'query', questions: [{ name: 'web', type: 'A' }, { name: 'db', type: 'A' }] });
    const cut = query('tasks.web').subarray(0, 20); // header promises a question that is not there
    cut.writeUInt16BE(0x4343, 0);
    const aResponse = Buffer.from(good);
    aResponse[2]! |= 0x80;
    await send(Buffer.from([1, 2, 3])); // shorter than a header: dropped
    await send(aResponse); // a response, not a query: dropped
    await send(twoQuestions);
    await send(cut);
    await send(good);
    const deadline = Date.now() + WAIT_MS;
    while (replies.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    sock.close();
    const byId = new Map(replies.map((b) => [b.readUInt16BE(0), reply(b)]));
    assert.equal(replies.length, 3);
    assert.equal(byId.get(0x4242)!.rcode, 'FORMERR');
    assert.equal(byId.get(0x4343)!.rcode, 'FORMERR');
    assert.deepEqual(byId.get(good.readUInt16BE(0))!.data, ['10.0.1.2']);
    // ...and over TCP the connection survives a bad frame.
    const [bad, fine] = (await tcpExchange(GW_A, ON_A, [twoQuestions, query('db.1.td1')])).map(reply);
    assert.equal(bad!.rcode, 'FORMERR');
    assert.deepEqual(fine!.data, ['10.0.1.10']);
  });

  test('more tasks than fit a UDP answer: truncated with TC over UDP, whole over TCP (c-ares retries itself)', async () => {
    const many: DnsNetwork = {
      id: 'neta',
      services: [{ id: 's', name: 'crowd', aliases: [], endpointMode: 'dnsrr', tasks: Array.from({ length: 100 }, (_, i) => ({ id: `c${i}`, slot: i + 1, ip: `10.0.3.${i + 1}` })) }],
    };
    dns.setTable(new NameTable([many], CLIENTS));
    try {
      const classic = await ask(GW_A, ON_A, 'crowd');
      assert.equal(classic.tc, true);
      assert.ok(classic.data.length > 0 && classic.data.length < 100);
      const edns = await ask(GW_A, ON_A, 'crowd', 'A', { edns: 4096 });
      assert.equal(edns.tc, true);
      assert.ok(edns.data.length > classic.data.length && edns.data.length < 100);
      assert.ok(edns.raw.additionals!.some((a) => a.type === 'OPT' && a.udpPayloadSize === 1232));
      const whole = await ask(GW_A, ON_A, 'crowd', 'A', { tcp: true });
      assert.equal(whole.tc, false);
      assert.equal(new Set(whole.data).size, 100);
      assert.equal((await resolver(ON_A).resolve4('crowd')).length, 100);
    } finally {
      dns.setTable(table());
    }
  });

  test('upstreams down: the next one is tried, and with none left the answer is SERVFAIL', async () => {
    const down = new ServiceDns({ upstreams: [`${NOBODY}:${PORT}`, `${SILENT}:${PORT}`, `${UPSTREAM}:${PORT}`] });
    const none = new ServiceDns({ upstreams: [`${NOBODY}:${PORT}`, `${SILENT}:${PORT}`] });
    down.setTable(table());
    none.setTable(table());
    try {
      await down.listen(`${BASE}.3`, PORT);
      await none.listen(`${BASE}.4`, PORT);
      // Cluster names never wait on an upstream.
      assert.deepEqual((await ask(`${BASE}.4`, ON_A, 'web')).data, ['10.0.1.2']);
      const [passed, failedUdp, failedTcp] = await Promise.all([
        ask(`${BASE}.3`, ON_A, 'example.test'),
        ask(`${BASE}.4`, ON_A, 'example.test'),
        ask(`${BASE}.4`, ON_A, 'example.test', 'A', { tcp: true }),
      ]);
      assert.deepEqual(passed.data, ['192.0.2.7']);
      assert.equal(failedUdp.rcode, 'SERVFAIL');
      assert.equal(failedTcp.rcode, 'SERVFAIL');
      assert.deepEqual(failedUdp.raw.questions, [{ name: 'example.test', type: 'A', class: 'IN' }]);
    } finally {
      await down.close();
      await none.close();
    }
  });

  test('no resolv.conf, or one without a nameserver: SERVFAIL for names outside, cluster names still answered', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'shoal-dns-'));
    const empty = join(dir, 'resolv.conf');
    await writeFile(empty, '# nothing\nsearch example.org\n');
    const logged: string[] = [];
    const log = { debug: () => undefined, info: () => undefined, warn: (_: object, m?: string) => void logged.push(m ?? ''), error: () => undefined };
    const missing = new ServiceDns({ resolvConf: join(dir, 'absent'), log });
    const blank = new ServiceDns({ resolvConf: empty, log });
    try {
      await missing.listen(`${BASE}.5`, PORT);
      await blank.listen(`${BASE}.6`, PORT);
      for (const [s, gw] of [[missing, `${BASE}.5`], [blank, `${BASE}.6`]] as const) {
        s.setTable(table());
        assert.equal((await ask(gw, ON_A, 'example.test')).rcode, 'SERVFAIL');
        assert.deepEqual((await ask(gw, ON_A, 'web')).data, ['10.0.1.2']);
      }
      assert.equal(logged.length, 2);
    } finally {
      await missing.close();
      await blank.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('unlisten stops answering on that address only; listen again serves it again', async () => {
    await dns.unlisten(GW_B);
    assert.deepEqual(dns.listening(), [GW_A]);
    await assert.rejects(udpExchange(GW_B, ON_B, query('api')), { code: 'ECONNREFUSED' });
    await assert.rejects(tcpExchange(GW_B, ON_B, [query('api')]), { code: 'ECONNREFUSED' });
    assert.deepEqual((await ask(GW_A, ON_B, 'api')).data, ['10.0.2.2']);
    await dns.unlisten(GW_B); // nothing to do
    await dns.listen(GW_B, PORT);
    assert.deepEqual((await ask(GW_B, ON_B, 'api')).data, ['10.0.2.2']);
  });

  test('listen fails with a ShoalError on an address taken, and on no address', async () => {
    const other = new ServiceDns({ upstreams: [] });
    try {
      await assert.rejects(other.listen(GW_A, PORT), (e: unknown) => ShoalError.is(e, 'UNAVAILABLE'));
      await assert.rejects(other.listen('gateway', PORT), (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT'));
      assert.deepEqual(other.listening(), []);
    } finally {
      await other.close();
    }
    await assert.rejects(other.listen(`${BASE}.7`, PORT), (e: unknown) => ShoalError.is(e, 'FAILED_PRECONDITION'));
  });
});
