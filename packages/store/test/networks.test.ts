// The store's network rules: subnets and VNIs allocated at apply time (never twice, in Raft's
// order), and every conflict refused with the state unchanged.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Network, type NetworkSpec, type TxFailure, nextFreeSubnet, parseCidr, completeNetworkSpec, SpecError } from '../src/index.js';
import { Log, T0, create, mkService, update } from './fixtures.js';
import { readSnapshot } from './snapshot-fixtures.js';

function mkNetwork(id: string, name: string, ipam: Partial<NetworkSpec['ipam']> = {}): Network {
  const spec = completeNetworkSpec({ name, ipam: { subnet: '', gateway: '', ...ipam } });
  return { id, version: 0, createdAt: T0, updatedAt: T0, spec, subnet: '', gateway: '', vni: 0 };
}

function refused(log: Log, op: ReturnType<typeof create>, code: string, re: RegExp): void {
  const before = log.store.snapshot();
  const r = log.tx(op) as TxFailure;
  assert.equal(r.ok, false, 'expected the transaction to fail');
  assert.equal(r.code, code, r.message);
  assert.match(r.message, re);
  assert.deepEqual(readSnapshot(log.store.snapshot()).objects, readSnapshot(before).objects);
}

describe('network allocation', () => {
  test('networks without a subnet get the next free /24 of 10.0.0.0/8, the gateway its first address, VNIs from 4096', () => {
    const log = new Log();
    log.ok(create('network', mkNetwork('n1', 'a')));
    log.ok(create('network', mkNetwork('n2', 'b')), create('network', mkNetwork('n3', 'c')));
    const got = ['n1', 'n2', 'n3'].map((id) => log.store.get('network', id)!);
    assert.deepEqual(got.map((n) => n.subnet), ['10.0.0.0/24', '10.0.1.0/24', '10.0.2.0/24']);
    assert.deepEqual(got.map((n) => n.gateway), ['10.0.0.1', '10.0.1.1', '10.0.2.1']);
    assert.deepEqual(got.map((n) => n.vni), [4096, 4097, 4098]);
  });

  test('the pool skips given subnets and reuses a removed network\'s /24 only once it is gone', () => {
    const log = new Log();
    log.ok(create('network', mkNetwork('big', 'big', { subnet: '10.0.0.0/23', gateway: '10.0.1.254' })));
    log.ok(create('network', mkNetwork('n1', 'a')));
    assert.equal(log.store.get('network', 'big')!.gateway, '10.0.1.254');
    assert.equal(log.store.get('network', 'n1')!.subnet, '10.0.2.0/24');
    log.ok({ op: 'delete', kind: 'network', id: 'big' });
    log.ok(create('network', mkNetwork('n2', 'b')));
    assert.equal(log.store.get('network', 'n2')!.subnet, '10.0.0.0/24');
    assert.equal(log.store.get('network', 'n2')!.vni, 4096);
  });

  test('nextFreeSubnet rounds past a subnet in the way and says when the pool is full', () => {
    const pool = parseCidr('10.0.0.0/22')!;
    assert.equal(nextFreeSubnet([parseCidr('10.0.0.0/25')!], pool)?.base, parseCidr('10.0.1.0/24')!.base);
    assert.equal(nextFreeSubnet([parseCidr('10.0.0.0/22')!], pool), null);
  });

  test('conflicts are refused and leave the state unchanged', () => {
    const log = new Log();
    log.ok(create('network', mkNetwork('n1', 'front', { subnet: '10.1.0.0/16' })));
    refused(log, create('network', mkNetwork('n2', 'front')), 'ALREADY_EXISTS', /network name "front" is already taken/);
    refused(log, create('network', mkNetwork('n2', 'back', { subnet: '10.1.2.0/24' })), 'ALREADY_EXISTS', /subnet 10.1.2.0\/24 overlaps subnet 10.1.0.0\/16 of network "front"/);
    refused(log, create('network', mkNetwork('n2', 'back', { subnet: '10.0.0.0/8' })), 'ALREADY_EXISTS', /overlaps/);
    refused(log, create('network', { ...mkNetwork('n2', 'back'), subnet: '10.2.0.0/24', gateway: '10.2.0.1', vni: 4096 }), 'ALREADY_EXISTS', /VNI 4096/);
    refused(log, create('network', { ...mkNetwork('n2', 'back'), subnet: '10.2.0.0/30', gateway: '10.2.0.1', vni: 5000 }), 'INVALID_ARGUMENT', /too small/);
    refused(log, create('network', { ...mkNetwork('n2', 'back'), spec: { ...mkNetwork('n2', 'back').spec, driver: 'bridge' } }), 'INVALID_ARGUMENT', /driver/);
  });
});

describe('networks and services', () => {
  test('a service names existing networks only; a network in use is not removed, saying by whom', () => {
    const log = new Log();
    log.ok(create('network', mkNetwork('n1', 'front')));
    const web = mkService('s1', 'web');
    refused(log, create('service', { ...web, spec: { ...web.spec, networks: [{ target: 'gone', aliases: [] }] } }), 'FAILED_PRECONDITION', /network gone of service "web" no longer exists/);
    log.ok(create('service', { ...web, spec: { ...web.spec, networks: [{ target: 'n1', aliases: ['www'] }] } }));
    const api = mkService('s2', 'api');
    log.ok(create('service', { ...api, spec: { ...api.spec, networks: [{ target: 'n1', aliases: [] }] } }));
    refused(log, { op: 'delete', kind: 'network', id: 'n1' }, 'FAILED_PRECONDITION', /^network "front" is in use by services api, web \(ops\[0\]\)$/);
    const s1 = log.store.get('service', 's1')!;
    refused(log, update('service', { ...s1, spec: { ...s1.spec, networks: [{ target: 'nope', aliases: [] }] } }), 'FAILED_PRECONDITION', /no longer exists/);
    // Both leave it (one removed, one updated) in the same transaction as the removal: it goes.
    const s2 = log.store.get('service', 's2')!;
    log.ok({ op: 'delete', kind: 'service', id: 's1' }, update('service', { ...s2, spec: { ...s2.spec, networks: [] } }), { op: 'delete', kind: 'network', id: 'n1' });
    assert.equal(log.store.get('network', 'n1'), null);
  });
});

describe('network spec rules', () => {
  const bad = (input: Parameters<typeof completeNetworkSpec>[0], re: RegExp) => assert.throws(() => completeNetworkSpec(input), (e: unknown) => e instanceof SpecError && re.test(e.message));
  test('names follow SwarmKit\'s rule; subnets are IPv4 CIDRs of /29 or more; gateways host addresses inside them; overlay only', () => {
    bad({ name: '' }, /the network name is empty/);
    bad({ name: '-x' }, /invalid network name "-x"/);
    bad({ name: 'a'.repeat(64) }, /at most 63/);
    bad({ name: 'n', driver: 'bridge' }, /driver must be overlay, not bridge/);
    bad({ name: 'n', ipam: { subnet: '10.0.0.0/33' } }, /invalid subnet/);
    bad({ name: 'n', ipam: { subnet: '300.0.0.0/24' } }, /invalid subnet/);
    bad({ name: 'n', ipam: { subnet: '10.1.2.3/24' } }, /host bits are set \(did you mean 10.1.2.0\/24\?\)/);
    bad({ name: 'n', ipam: { subnet: '10.1.2.0/30' } }, /too small: a network needs a \/29 or larger/);
    bad({ name: 'n', ipam: { subnet: '10.1.2.0/24', gateway: '10.1.3.1' } }, /gateway 10.1.3.1 is not a host address of subnet 10.1.2.0\/24/);
    bad({ name: 'n', ipam: { subnet: '10.1.2.0/24', gateway: '10.1.2.0' } }, /not a host address/);
    bad({ name: 'n', ipam: { gateway: '10.1.2.1' } }, /needs its subnet/);
    assert.deepEqual(completeNetworkSpec({ name: 'ok_1', ipam: { subnet: '192.168.5.0/29', gateway: '192.168.5.6' } }), {
      name: 'ok_1', driver: 'overlay', labels: {}, internal: false, attachable: false, ipam: { subnet: '192.168.5.0/29', gateway: '192.168.5.6' }, ingress: false,
    });
  });
});
