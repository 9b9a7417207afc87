// The overlay module on the REAL kernel: network namespaces stand for two hosts joined by a veth
// "underlay" (192.0.2.0/24, TEST-NET-1), each host running the module in its namespace, each with
// endpoint namespaces on its overlay bridge. Needs root (and VXLAN, bridges, veth in the kernel).

import { after, afterEach, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { ShoalError } from '@shoal/api';
import {
  Iproute,
  type LocalEndpoint,
  type OverlayNetwork,
  type OverlayState,
  type Tool,
  applyOverlay,
  bridgeName,
  ensureNodeIsolation,
  hostVethName,
  macOfIp,
  removeNodeIsolation,
  removeOverlay,
  vxlanName,
} from '../src/overlay/index.js';

const run = promisify(execFile);
const RUN = `o${process.pid % 100000}`;
const H1 = `${RUN}h1`;
const H2 = `${RUN}h2`;
const U1 = '192.0.2.1';
const U2 = '192.0.2.2';
const made: string[] = [];

async function sh(...args: string[]): Promise<string> {
  return (await run(args[0], args.slice(1))).stdout;
}

async function netns(name: string): Promise<string> {
  await sh('ip', 'netns', 'add', name);
  made.push(name);
  await sh('ip', '-n', name, 'link', 'set', 'lo', 'up');
  return name;
}

/** An Iproute for a host namespace that records the commands that change something. */
function host(ns: string): { ip: Iproute; log: string[] } {
  const log: string[] = [];
  const ip = new Iproute({ netns: ns, onCommand: (tool: Tool, args) => log.push(`${tool} ${args.join(' ')}`) });
  return { ip, log };
}

const NET_A: OverlayNetwork = { id: 'neta', vni: 4101, subnet: '10.77.0.0/24', mtu: 1500, internal: true };
const NET_B: OverlayNetwork = { id: 'netb', vni: 4102, subnet: '10.77.0.0/24', mtu: 1500, internal: true };
// Networks with a gateway have subnets of their own: the node has a route to each.
const NET_C: OverlayNetwork = { id: 'netc', vni: 4103, subnet: '10.78.1.0/24', gateway: '10.78.1.1', mtu: 1500, internal: true };
const NET_D: OverlayNetwork = { id: 'netd', vni: 4104, subnet: '10.78.2.0/24', gateway: '10.78.2.1', mtu: 1500, internal: true };
const children: ChildProcess[] = [];

const ep = (id: string, ip: string, ns: string): LocalEndpoint => ({ id, ip, netns: ns, ifname: 'eth0' });

async function ping(fromNs: string, ip: string): Promise<boolean> {
  try {
    // busybox's ping: the machine has no iputils.
    await sh('ip', 'netns', 'exec', fromNs, 'busybox', 'ping', '-c', '1', '-W', '1', ip);
    return true;
  } catch {
    return false;
  }
}

async function inet4(ns: string, dev: string): Promise<string[]> {
  const [row] = JSON.parse(await sh('ip', '-n', ns, '-j', 'addr', 'show', 'dev', dev)) as { addr_info: { family: string; local: string; prefixlen: number }[] }[];
  return row.addr_info.filter((a) => a.family === 'inet').map((a) => `${a.local}/${a.prefixlen}`);
}

async function linkMac(ns: string, dev: string): Promise<string> {
  const [link] = JSON.parse(await sh('ip', '-n', ns, '-j', 'link', 'show', 'dev', dev)) as { address: string }[];
  return link.address;
}

/** The MAC `ns` has for `ip` in its neighbour (ARP) table, if any. */
async function neighMac(ns: string, dev: string, ip: string): Promise<string | undefined> {
  const rows = JSON.parse(await sh('ip', '-n', ns, '-j', 'neigh', 'show', ip, 'dev', dev)) as { lladdr?: string }[];
  return rows[0]?.lladdr;
}

/** True when a TCP connection from `ns` to ip:port is accepted (busybox nc, a generous wait). */
async function tcpConnects(ns: string, ip: string, port: number): Promise<boolean> {
  try {
    await run('ip', ['netns', 'exec', ns, 'busybox', 'nc', '-w', '3', ip, String(port)], { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/**
 * A UDP listener on ip:port in `ns` (Node itself: busybox's nc has no UDP), ready once this
 * resolves; `received` is the first datagram's text.
 */
async function udpListener(ns: string, ip: string, port: number): Promise<{ received: Promise<string> }> {
  const script = `const s = require('node:dgram').createSocket('udp4');
s.on('message', (m) => process.stdout.write(m.toString(), () => process.exit(0)));
s.bind(${port}, '${ip}', () => process.stdout.write('ready;'));`;
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(child);
  let out = '';
  const ended = new Promise<string>((resolve) => {
    child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
    child.once('close', () => resolve(out));
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', () => out.startsWith('ready;') && resolve());
    child.once('close', () => reject(new Error(`the UDP listener on ${ip}:${port} ended: ${out}`)));
  });
  return { received: ended.then((text) => text.slice('ready;'.length)) };
}

async function udpSend(ns: string, ip: string, port: number, text: string): Promise<void> {
  const script = `const s = require('node:dgram').createSocket('udp4');
s.send(${JSON.stringify(text)}, ${port}, '${ip}', (err) => { if (err) throw err; s.close(); });`;
  await run('ip', ['netns', 'exec', ns, process.execPath, '-e', script]);
}

async function txPackets(ns: string, dev: string): Promise<number> {
  const [link] = JSON.parse(await sh('ip', '-n', ns, '-j', '-s', 'link', 'show', 'dev', dev)) as { stats64: { tx: { packets: number } } }[];
  return link.stats64.tx.packets;
}

/** Counts UDP datagrams to port 4789 that enter `ns` through its underlay veth. */
async function countVxlanUdp(ns: string, dev: string): Promise<void> {
  await sh('ip', 'netns', 'exec', ns, 'nft', `add table inet ${RUN}; add chain inet ${RUN} in { type filter hook input priority 0; }; add rule inet ${RUN} in iifname ${dev} udp dport 4789 counter`);
}

async function vxlanUdpIn(ns: string): Promise<number> {
  const out = JSON.parse(await sh('ip', 'netns', 'exec', ns, 'nft', '-j', 'list', 'table', 'inet', RUN)) as { nftables: { rule?: { expr: { counter?: { packets: number } }[] } }[] };
  let packets = 0;
  for (const item of out.nftables) for (const e of item.rule?.expr ?? []) packets += e.counter?.packets ?? 0;
  return packets;
}

async function fdb(ns: string, vni: number): Promise<string[]> {
  const rows = JSON.parse(await sh('bridge', '-n', ns, '-j', 'fdb', 'show', 'dev', vxlanName(vni))) as { mac: string; dst?: string; master?: string }[];
  return rows.filter((r) => r.dst !== undefined && r.master === undefined).map((r) => `${r.mac}>${r.dst}`).sort();
}

async function neigh(ns: string, vni: number): Promise<string[]> {
  const rows = JSON.parse(await sh('ip', '-n', ns, '-j', 'neigh', 'show', 'dev', vxlanName(vni))) as { dst: string; lladdr?: string }[];
  return rows.map((r) => `${r.dst}=${r.lladdr}`).sort();
}

// Needs root (network namespaces): without it the suite fails, it does not skip.
describe('overlay data plane (real kernel)', () => {
  before(async () => {
    await netns(H1);
    await netns(H2);
    // The underlay: a veth pair between the two hosts.
    await sh('ip', 'link', 'add', `${RUN}u1`, 'netns', H1, 'type', 'veth', 'peer', 'name', `${RUN}u2`, 'netns', H2);
    await sh('ip', '-n', H1, 'addr', 'add', `${U1}/24`, 'dev', `${RUN}u1`);
    await sh('ip', '-n', H2, 'addr', 'add', `${U2}/24`, 'dev', `${RUN}u2`);
    await sh('ip', '-n', H1, 'link', 'set', `${RUN}u1`, 'up');
    await sh('ip', '-n', H2, 'link', 'set', `${RUN}u2`, 'up');
    await countVxlanUdp(H2, `${RUN}u2`);
  });

  afterEach(async () => {
    // Each test starts from hosts with no overlay and no endpoint namespaces.
    for (const c of children.splice(0)) c.kill();
    for (const ns of [H1, H2]) {
      for (const net of [NET_A, NET_B, NET_C, NET_D]) await removeOverlay(new Iproute({ netns: ns }), net);
      await removeNodeIsolation({ netns: ns });
    }
    for (const ns of made.splice(2)) await sh('ip', 'netns', 'del', ns).catch(() => undefined);
  });

  after(async () => {
    for (const ns of made.splice(0)) await sh('ip', 'netns', 'del', ns).catch(() => undefined);
  });

  /** Network `net` on both hosts with one endpoint each; returns the endpoint namespaces. */
  async function twoHosts(net: OverlayNetwork, ip1: string, ip2: string): Promise<{ e1: string; e2: string; s1: OverlayState; s2: OverlayState }> {
    const e1 = await netns(`${RUN}${net.id}e1`);
    const e2 = await netns(`${RUN}${net.id}e2`);
    const s1: OverlayState = {
      network: net, underlay: U1, peers: [{ underlay: U2 }],
      remoteEndpoints: [{ ip: ip2, peer: U2 }], localEndpoints: [ep(`${net.id}-t1`, ip1, e1)],
    };
    const s2: OverlayState = {
      network: net, underlay: U2, peers: [{ underlay: U1 }],
      remoteEndpoints: [{ ip: ip1, peer: U1 }], localEndpoints: [ep(`${net.id}-t2`, ip2, e2)],
    };
    await applyOverlay(host(H1).ip, s1);
    await applyOverlay(host(H2).ip, s2);
    return { e1, e2, s1, s2 };
  }

  test('endpoints on two hosts reach each other over VXLAN (UDP 4789 on the underlay), MTU reduced by 50', async () => {
    const { e1 } = await twoHosts(NET_A, '10.77.0.11', '10.77.0.12');
    const vx1 = vxlanName(NET_A.vni);
    const before1 = await txPackets(H1, vx1);
    assert.equal(await ping(e1, '10.77.0.12'), true);
    assert.ok((await txPackets(H1, vx1)) > before1, 'the ping went through the VXLAN device');
    const [link] = JSON.parse(await sh('ip', '-n', H1, '-j', '-d', 'link', 'show', 'dev', vx1));
    assert.deepEqual(
      { id: link.linkinfo.info_data.id, port: link.linkinfo.info_data.port, local: link.linkinfo.info_data.local, learning: link.linkinfo.info_data.learning, mtu: link.mtu, master: link.master },
      { id: NET_A.vni, port: 4789, local: U1, learning: false, mtu: 1450, master: bridgeName(NET_A.vni) },
    );
    const [inner] = JSON.parse(await sh('ip', '-n', e1, '-j', 'link', 'show', 'dev', 'eth0'));
    assert.deepEqual({ mtu: inner.mtu, address: inner.address }, { mtu: 1450, address: '02:42:0a:4d:00:0b' });
    // The frames really were UDP to port 4789 on the underlay: counted by an nftables rule in
    // host 2's namespace (the test's own), on packets that arrived over the underlay veth.
    assert.ok((await vxlanUdpIn(H2)) > 0, 'host 2 received UDP 4789 datagrams on the underlay');
  });

  test('a second network with another VNI is isolated from the first, even with the same addresses', async () => {
    const a = await twoHosts(NET_A, '10.77.0.21', '10.77.0.22');
    // Network B (same subnet, other VNI) has on host 2 an endpoint with the address of A's there.
    const b = await twoHosts(NET_B, '10.77.0.31', '10.77.0.22');
    assert.equal(await ping(a.e1, '10.77.0.22'), true, 'A reaches A');
    assert.equal(await ping(b.e1, '10.77.0.22'), true, 'B reaches B');
    // A's host-2 endpoint goes: A's host 1 still sends to its IP and MAC, which B's host-2
    // endpoint also has, over VNI 4101 to host 2, where no bridge of A may hand it to B's.
    await applyOverlay(host(H2).ip, { ...a.s2, localEndpoints: [] });
    assert.equal(await ping(a.e1, '10.77.0.22'), false, 'A does not reach B');
    assert.equal(await ping(a.e1, '10.77.0.31'), false, 'A does not reach B (B-only address)');
  });

  test('removing a remote endpoint removes only its FDB and neighbour entries; a second converge changes nothing', async () => {
    const { s1 } = await twoHosts(NET_A, '10.77.0.41', '10.77.0.42');
    const U3 = '192.0.2.3';
    const more: OverlayState = {
      ...s1,
      peers: [{ underlay: U2 }, { underlay: U3 }],
      remoteEndpoints: [{ ip: '10.77.0.42', peer: U2 }, { ip: '10.77.0.43', peer: U3 }, { ip: '10.77.0.44', peer: U3 }],
    };
    const h1 = host(H1);
    await applyOverlay(h1.ip, more);
    assert.deepEqual(await fdb(H1, NET_A.vni), [
      `00:00:00:00:00:00>${U2}`, `00:00:00:00:00:00>${U3}`,
      `${macOfIp('10.77.0.42')}>${U2}`, `${macOfIp('10.77.0.43')}>${U3}`, `${macOfIp('10.77.0.44')}>${U3}`,
    ].sort());
    assert.deepEqual(await neigh(H1, NET_A.vni), ['10.77.0.42', '10.77.0.43', '10.77.0.44'].map((a) => `${a}=${macOfIp(a)}`));

    h1.log.length = 0;
    const again = await applyOverlay(h1.ip, more);
    assert.deepEqual(h1.log, [], 'a converge of the same state runs no changing command');
    assert.deepEqual(again, { fdbAdded: 0, fdbRemoved: 0, neighAdded: 0, neighRemoved: 0, attached: 0, detached: 0 });

    const fewer: OverlayState = { ...more, remoteEndpoints: more.remoteEndpoints.filter((e) => e.ip !== '10.77.0.44') };
    const changes = await applyOverlay(h1.ip, fewer);
    assert.deepEqual(h1.log, [
      `bridge fdb del ${macOfIp('10.77.0.44')} dev ${vxlanName(NET_A.vni)} dst ${U3}`,
      `ip neigh del 10.77.0.44 dev ${vxlanName(NET_A.vni)}`,
    ]);
    assert.deepEqual(changes, { fdbAdded: 0, fdbRemoved: 1, neighAdded: 0, neighRemoved: 1, attached: 0, detached: 0 });
    assert.deepEqual(await neigh(H1, NET_A.vni), ['10.77.0.42', '10.77.0.43'].map((a) => `${a}=${macOfIp(a)}`));
    assert.equal((await fdb(H1, NET_A.vni)).length, 4);
  });

  test('a restarted agent converges onto what it made, without duplicates; a gone local endpoint is detached', async () => {
    const { e1, s1 } = await twoHosts(NET_A, '10.77.0.51', '10.77.0.52');
    const fresh = host(H1); // a new process: nothing in memory
    assert.deepEqual(await applyOverlay(fresh.ip, s1), { fdbAdded: 0, fdbRemoved: 0, neighAdded: 0, neighRemoved: 0, attached: 0, detached: 0 });
    assert.deepEqual(fresh.log, []);
    const ports = JSON.parse(await sh('ip', '-n', H1, '-j', 'link', 'show', 'master', bridgeName(NET_A.vni))) as { ifname: string }[];
    assert.deepEqual(ports.map((p) => p.ifname).sort(), [hostVethName('neta-t1'), vxlanName(NET_A.vni)].sort());
    const changes = await applyOverlay(fresh.ip, { ...s1, localEndpoints: [] });
    assert.equal(changes.detached, 1);
    const left = JSON.parse(await sh('ip', '-n', e1, '-j', 'link', 'show')) as { ifname: string }[];
    assert.deepEqual(left.map((l) => l.ifname), ['lo'], 'the endpoint lost its interface');
  });

  test("every node's bridge carries exactly the gateway address; ARP for it is answered by the local bridge only", async () => {
    const { e1, e2, s1 } = await twoHosts(NET_C, '10.78.1.11', '10.78.1.12');
    const br = bridgeName(NET_C.vni);
    assert.deepEqual(await inet4(H1, br), ['10.78.1.1/24']);
    assert.deepEqual(await inet4(H2, br), ['10.78.1.1/24']);
    const mac1 = await linkMac(H1, br);
    const mac2 = await linkMac(H2, br);
    assert.notEqual(mac1, mac2, 'the two bridges have MACs of their own');

    assert.equal(await ping(e1, '10.78.1.1'), true);
    assert.equal(await ping(e2, '10.78.1.1'), true);
    assert.equal(await neighMac(e1, 'eth0', '10.78.1.1'), mac1, "host 1's endpoint has host 1's bridge as the gateway");
    assert.equal(await neighMac(e2, 'eth0', '10.78.1.1'), mac2, "host 2's endpoint has host 2's bridge as the gateway");
    // A node that had seen the other host's ARP request would have learnt the asker.
    assert.equal(await neighMac(H2, br, '10.78.1.11'), undefined, "host 1's ARP request did not reach host 2");
    assert.equal(await neighMac(H1, br, '10.78.1.12'), undefined, "host 2's ARP request did not reach host 1");

    // Converged: a stray address goes, the gateway stays; no gateway, no address.
    await sh('ip', '-n', H1, 'addr', 'add', '10.78.1.200/24', 'dev', br);
    const h1 = host(H1);
    await applyOverlay(h1.ip, s1);
    assert.deepEqual(h1.log, [`ip addr del 10.78.1.200/24 dev ${br}`]);
    assert.deepEqual(await inet4(H1, br), ['10.78.1.1/24']);
    await applyOverlay(h1.ip, { ...s1, network: { ...NET_C, gateway: undefined } });
    assert.deepEqual(await inet4(H1, br), []);
    await assert.rejects(applyOverlay(h1.ip, { ...s1, network: { ...NET_C, gateway: '10.78.2.1' } }),
      (err: unknown) => err instanceof ShoalError && err.code === 'INVALID_ARGUMENT' && /gateway 10\.78\.2\.1/.test(err.message));
  });

  test("node isolation: an overlay reaches neither the node (but its own gateway's DNS) nor other networks through it; bridged traffic goes on", async () => {
    const c = await twoHosts(NET_C, '10.78.1.11', '10.78.1.12');
    const d = await twoHosts(NET_D, '10.78.2.11', '10.78.2.12');
    const a = await twoHosts(NET_A, '10.77.0.71', '10.77.0.72'); // no gateway: its bridges carry no address
    // A second endpoint of C on host 1: traffic between the two is bridged on host 1 alone.
    const c3 = await netns(`${RUN}netce3`);
    await applyOverlay(host(H1).ip, { ...c.s1, localEndpoints: [...c.s1.localEndpoints, ep('netc-t3', '10.78.1.13', c3)] });
    await sh('ip', '-n', H2, 'neigh', 'replace', '10.78.1.13', 'lladdr', macOfIp('10.78.1.13'), 'dev', vxlanName(NET_C.vni), 'nud', 'permanent');
    // Routes through the gateways, and a node that forwards: what the isolation has to stop.
    await sh('ip', '-n', c.e1, 'route', 'add', 'default', 'via', '10.78.1.1');
    await sh('ip', '-n', d.e1, 'route', 'add', 'default', 'via', '10.78.2.1');
    await sh('ip', 'netns', 'exec', H1, 'sysctl', '-q', '-w', 'net.ipv4.ip_forward=1');
    children.push(spawn('ip', ['netns', 'exec', H1, 'busybox', 'nc', '-ll', '-p', '53', '-e', '/bin/true'], { stdio: 'ignore' }));

    const reach = async (): Promise<Record<string, boolean>> => ({
      otherGateway: await ping(c.e1, '10.78.2.1'),
      underlay: await ping(c.e1, U1),
      ownGatewayPing: await ping(c.e1, '10.78.1.1'),
      otherNetwork: await ping(c.e1, '10.78.2.11'),
      otherGatewayDns: await tcpConnects(c.e1, '10.78.2.1', 53),
    });
    for (let i = 0; i < 100 && !(await tcpConnects(c.e1, '10.78.1.1', 53)); i++) await new Promise((r) => setTimeout(r, 100));
    assert.deepEqual(await reach(), { otherGateway: true, underlay: true, ownGatewayPing: true, otherNetwork: true, otherGatewayDns: true },
      'without the isolation the node is reachable and routes between networks');

    // Docker's FORWARD policy, wherever Docker runs: bridged frames pass the iptables forward hook too.
    for (const h of [H1, H2]) await sh('ip', 'netns', 'exec', h, 'iptables', '-P', 'FORWARD', 'DROP');
    const log: string[] = [];
    const onCommand = (tool: string, args: readonly string[]): void => void log.push(`${tool} ${args.join(' ')}`);
    assert.equal(await ensureNodeIsolation({ netns: H1, onCommand }), true);
    assert.equal(await ensureNodeIsolation({ netns: H2, onCommand }), true);
    const accept = 'iptables -I FORWARD 1 -i shbr+ -o shbr+ -j ACCEPT';
    assert.deepEqual(log, [accept, 'nft -f -', accept, 'nft -f -'], 'one transaction each, after the accept of bridged frames');
    log.length = 0;
    assert.equal(await ensureNodeIsolation({ netns: H1, onCommand }), false);
    assert.deepEqual(log, [], 'already in place: nothing runs');

    assert.deepEqual(await reach(), { otherGateway: false, underlay: false, ownGatewayPing: false, otherNetwork: false, otherGatewayDns: false });
    assert.equal(await tcpConnects(c.e1, '10.78.1.1', 53), true, 'DNS over TCP to its own gateway');
    const dns = await udpListener(H1, '10.78.1.1', 53);
    await udpSend(c.e1, '10.78.1.1', 53, 'query');
    assert.equal(await dns.received, 'query', 'DNS over UDP to its own gateway');
    // Within a network, across hosts and on one host, with and without a gateway: bridged, untouched.
    assert.equal(await ping(c.e1, '10.78.1.12'), true);
    assert.equal(await ping(c.e1, '10.78.1.13'), true);
    assert.equal(await ping(d.e2, '10.78.2.11'), true);
    assert.equal(await ping(a.e1, '10.77.0.72'), true);

    await removeNodeIsolation({ netns: H1 });
    assert.doesNotMatch(await sh('ip', 'netns', 'exec', H1, 'nft', 'list', 'tables'), /shoal_overlay/);
    assert.equal(await ping(c.e1, '10.78.2.1'), true, 'removed: the node answers again');
    await removeNodeIsolation({ netns: H1 }); // nothing left: no error
  });

  test('removal leaves no device of the network; bad input and a half-made endpoint are one-line ShoalErrors that leave nothing', async () => {
    await twoHosts(NET_A, '10.77.0.61', '10.77.0.62');
    await removeOverlay(host(H1).ip, NET_A);
    const links = JSON.parse(await sh('ip', '-n', H1, '-j', 'link', 'show')) as { ifname: string }[];
    assert.deepEqual(links.map((l) => l.ifname).filter((n) => n.startsWith('sh')), []);
    await removeOverlay(host(H1).ip, NET_A); // nothing left to remove: no error

    await assert.rejects(applyOverlay(host(H1).ip, { network: { ...NET_A, vni: 0 }, underlay: U1, peers: [], remoteEndpoints: [], localEndpoints: [] }),
      (err: unknown) => err instanceof ShoalError && err.code === 'INVALID_ARGUMENT' && !err.message.includes('\n'));
    await assert.rejects(applyOverlay(host(H1).ip, { network: NET_A, underlay: U1, peers: [], remoteEndpoints: [{ ip: '10.77.0.999', peer: U2 }], localEndpoints: [] }),
      (err: unknown) => err instanceof ShoalError && err.code === 'INVALID_ARGUMENT' && /not an IPv4 address: 10\.77\.0\.999/.test(err.message));
    // A local endpoint that fails half way (a MAC the kernel refuses) leaves no veth behind.
    const e9 = await netns(`${RUN}e9`);
    const bad = { ...ep('bad', '10.77.0.63', e9), mac: '03:00:00:00:00:01' };
    await assert.rejects(applyOverlay(host(H1).ip, { network: NET_A, underlay: U1, peers: [], remoteEndpoints: [], localEndpoints: [bad] }),
      (err: unknown) => err instanceof ShoalError && err.code === 'INTERNAL' && !err.message.includes('\n'));
    const hostSide = JSON.parse(await sh('ip', '-n', H1, '-j', 'link', 'show')) as { ifname: string }[];
    assert.deepEqual(hostSide.map((l) => l.ifname).filter((n) => n === hostVethName('bad')), []);
    const inside = JSON.parse(await sh('ip', '-n', e9, '-j', 'link', 'show')) as { ifname: string }[];
    assert.deepEqual(inside.map((l) => l.ifname), ['lo']);

    await assert.rejects(applyOverlay(new Iproute({ netns: `${RUN}nosuch` }), { network: NET_A, underlay: U1, peers: [], remoteEndpoints: [], localEndpoints: [] }),
      (err: unknown) => err instanceof ShoalError && err.code === 'INTERNAL' && !err.message.includes('\n'));
  });
});

describe('overlay addresses', () => {
  test("an endpoint's MAC is 02:42 and its IPv4 address's bytes (Docker's rule)", () => {
    assert.equal(macOfIp('10.0.0.2'), '02:42:0a:00:00:02');
    assert.equal(macOfIp('172.18.255.254'), '02:42:ac:12:ff:fe');
    assert.throws(() => macOfIp('fe80::1'), (err: unknown) => err instanceof ShoalError && err.code === 'INVALID_ARGUMENT');
  });
});
