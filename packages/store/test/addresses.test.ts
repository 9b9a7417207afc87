// Overlay addresses in the store: a service's virtual IPs allocated at apply time, and every address
// (a task's, a VIP) held by one live holder at a time, whoever proposes it; refusals leave the
// state unchanged.

import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { type Network, type NetworkSpec, type Service, type Task, type TxFailure, completeNetworkSpec } from '../src/index.js';
import { Log, T0, create, del, mkService, mkSpec, mkTask, update } from './fixtures.js';
import { readSnapshot } from './snapshot-fixtures.js';

function mkNetwork(id: string, name: string, subnet = ''): Network {
  const spec: NetworkSpec = completeNetworkSpec({ name, ipam: { subnet, gateway: '' } });
  return { id, version: 0, createdAt: T0, updatedAt: T0, spec, subnet: '', gateway: '', vni: 0 };
}

const onNet = (id: string, name: string, nets: string[], over: Partial<Service['spec']> = {}): Service =>
  mkService(id, name, { spec: mkSpec(name, { ports: [], networks: nets.map((target) => ({ target, aliases: [] })), ...over }) });

function taskOn(id: string, slot: number, attachments: Record<string, string>, over: Partial<Task> = {}): Task {
  const t = mkTask(id, 'web', slot, { state: 'pending' });
  const spec = { ...t.spec, networks: Object.keys(attachments).map((target) => ({ target, aliases: [] })) };
  return { ...t, spec, networks: Object.entries(attachments).map(([networkId, addr]) => ({ networkId, addr })), ...over };
}

function refused(log: Log, ops: ReturnType<typeof create>[], code: string, re: RegExp): void {
  const before = log.store.snapshot();
  const r = log.tx(...ops) as TxFailure;
  assert.equal(r.ok, false, 'expected the transaction to fail');
  assert.equal(r.code, code, r.message);
  assert.match(r.message, re);
  assert.deepEqual(readSnapshot(log.store.snapshot()).objects, readSnapshot(before).objects);
}

function withNetworks(...nets: Network[]): Log {
  const log = new Log();
  log.ok(...nets.map((n) => create('network', n)));
  log.ok(create('service', mkService('web', 'web', { spec: mkSpec('web', { ports: [] }) })));
  return log;
}

describe('virtual IPs', () => {
  test('a vip-mode service gets the lowest free address of each network; dnsrr none; both kept across updates', () => {
    const log = withNetworks(mkNetwork('n1', 'front'), mkNetwork('n2', 'back'));
    log.ok(create('service', onNet('s1', 'api', ['n1', 'n2'])));
    log.ok(create('service', onNet('s2', 'db', ['n2'], { endpointMode: 'dnsrr' })));
    log.ok(create('service', onNet('s3', 'cache', ['n2'])));
    assert.deepEqual(log.store.get('service', 's1')!.endpoint.virtualIps, [
      { networkId: 'n1', addr: '10.0.0.2/24' },
      { networkId: 'n2', addr: '10.0.1.2/24' },
    ]);
    assert.deepEqual(log.store.get('service', 's2')!.endpoint.virtualIps, []);
    assert.deepEqual(log.store.get('service', 's3')!.endpoint.virtualIps, [{ networkId: 'n2', addr: '10.0.1.3/24' }]);
    // An update that keeps a network keeps its VIP; one that leaves a network lets it go.
    const s1 = log.store.get('service', 's1')!;
    log.ok(update('service', { ...s1, spec: { ...s1.spec, networks: [{ target: 'n2', aliases: [] }] } }));
    assert.deepEqual(log.store.get('service', 's1')!.endpoint.virtualIps, [{ networkId: 'n2', addr: '10.0.1.2/24' }]);
    assert.equal(log.store.addressHolder('n1', '10.0.0.2'), undefined);
    // To dnsrr: the VIP goes; the freed address is the next service's.
    const again = log.store.get('service', 's1')!;
    log.ok(update('service', { ...again, spec: { ...again.spec, endpointMode: 'dnsrr' } }));
    assert.deepEqual(log.store.get('service', 's1')!.endpoint.virtualIps, []);
    log.ok(create('service', onNet('s4', 'queue', ['n2'])));
    assert.deepEqual(log.store.get('service', 's4')!.endpoint.virtualIps, [{ networkId: 'n2', addr: '10.0.1.2/24' }]);
    log.ok(del('service', 's4'));
    assert.equal(log.store.addressHolder('n2', '10.0.1.2/24'), undefined);
  });

  test('a full network refuses the service whose VIP does not fit, saying so, state unchanged', () => {
    // A /29: 6 host addresses, one the gateway: 5 to give.
    const log = withNetworks(mkNetwork('n1', 'tiny', '10.9.0.0/29'));
    for (let i = 1; i <= 5; i++) log.ok(create('service', onNet(`s${i}`, `svc${i}`, ['n1'])));
    const vips = [1, 2, 3, 4, 5].map((i) => log.store.get('service', `s${i}`)!.endpoint.virtualIps[0]!.addr);
    assert.deepEqual(vips, ['10.9.0.2/29', '10.9.0.3/29', '10.9.0.4/29', '10.9.0.5/29', '10.9.0.6/29']);
    refused(log, [create('service', onNet('s6', 'svc6', ['n1']))], 'RESOURCE_EXHAUSTED', /network "tiny" \(10\.9\.0\.0\/29\) has no free address left for the virtual IP of service "svc6"/);
  });
});

describe('task addresses', () => {
  test('an address held by a live task or a VIP is refused to another; a dead task lets it go', () => {
    const log = withNetworks(mkNetwork('n1', 'front'));
    log.ok(create('service', onNet('s1', 'api', ['n1'])));
    log.ok(create('task', taskOn('t1', 1, { n1: '10.0.0.5/24' })));
    assert.equal(log.store.addressHolder('n1', '10.0.0.5'), 't1');
    refused(log, [create('task', taskOn('t2', 2, { n1: '10.0.0.5/24' }))], 'ALREADY_EXISTS', /address 10\.0\.0\.5\/24 of network "front" is already held by task t1/);
    refused(log, [create('task', taskOn('t2', 2, { n1: '10.0.0.2/24' }))], 'ALREADY_EXISTS', /already held by service s1/);
    // Two tasks of one transaction asking for the same address.
    refused(log, [create('task', taskOn('t2', 2, { n1: '10.0.0.6/24' })), create('task', taskOn('t3', 3, { n1: '10.0.0.6/24' }))], 'ALREADY_EXISTS', /10\.0\.0\.6\/24 .* already held by task t2/);
    // Still desired running, though failed: it keeps it (the orchestrator has not shut it down yet).
    const t1 = log.store.get('task', 't1')!;
    log.ok(update('task', { ...t1, status: { ...t1.status, state: 'failed' } }));
    refused(log, [create('task', taskOn('t2', 2, { n1: '10.0.0.5/24' }))], 'ALREADY_EXISTS', /held by task t1/);
    const failed = log.store.get('task', 't1')!;
    log.ok(update('task', { ...failed, desiredState: 'shutdown' }));
    assert.equal(log.store.addressHolder('n1', '10.0.0.5'), undefined);
    // Handed over in the same transaction that lets it go: fine too.
    log.ok(create('task', taskOn('t2', 2, { n1: '10.0.0.5/24' })));
    const t2 = log.store.get('task', 't2')!;
    log.ok(update('task', { ...t2, desiredState: 'shutdown', status: { ...t2.status, state: 'shutdown' } }), create('task', taskOn('t3', 3, { n1: '10.0.0.5/24' })));
    assert.equal(log.store.addressHolder('n1', '10.0.0.5/24'), 't3');
    // The dead task's record keeps its address (history); its deletion takes nothing from t3.
    log.ok(del('task', 't2'));
    assert.equal(log.store.addressHolder('n1', '10.0.0.5/24'), 't3');
  });

  test('addresses that are not the network\'s are refused', () => {
    const log = withNetworks(mkNetwork('n1', 'front'), mkNetwork('n2', 'back'));
    const bad: [Record<string, string>, string, RegExp][] = [
      [{ n1: '10.0.1.5/24' }, 'INVALID_ARGUMENT', /not in subnet 10\.0\.0\.0\/24/],
      [{ n1: '10.0.0.5/16' }, 'INVALID_ARGUMENT', /prefix length \/24/],
      [{ n1: '10.0.0.1/24' }, 'INVALID_ARGUMENT', /the gateway/],
      [{ n1: '10.0.0.0/24' }, 'INVALID_ARGUMENT', /network or broadcast/],
      [{ n1: '10.0.0.255/24' }, 'INVALID_ARGUMENT', /network or broadcast/],
      [{ n1: 'ten/24' }, 'INVALID_ARGUMENT', /not of the form/],
      [{ n9: '10.0.0.5/24' }, 'FAILED_PRECONDITION', /network n9 does not exist/],
    ];
    for (const [att, code, re] of bad) refused(log, [create('task', taskOn('t1', 1, att))], code, re);
    const twice = taskOn('t1', 1, { n1: '10.0.0.5/24' });
    refused(log, [create('task', { ...twice, networks: [...twice.networks, { networkId: 'n1', addr: '10.0.0.6/24' }] })], 'INVALID_ARGUMENT', /two addresses on network n1/);
  });

  test('a snapshot carries who holds what', () => {
    const log = withNetworks(mkNetwork('n1', 'front'));
    log.ok(create('service', onNet('s1', 'api', ['n1'])), create('task', taskOn('t1', 1, { n1: '10.0.0.7/24' })));
    const other = new Log();
    other.store.restore(log.store.snapshot());
    assert.equal(other.store.addressHolder('n1', '10.0.0.7'), 't1');
    assert.equal(other.store.addressHolder('n1', '10.0.0.2'), 's1');
  });
});
