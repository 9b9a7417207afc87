// The pure rules of a lab: its nodes' names, the names and labels of its objects in the engine,
// the arguments a user may give, each node's and the registry's fixed address, `lab env`'s line,
// readiness, the names images loaded into the lab go by.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import Docker from 'dockerode';
import { ShoalError } from '@shoal/api';
import { nodeAddresses, registryAddress } from '../src/addresses.js';
import { lastLine } from '../src/engine.js';
import { envLine, shellWord } from '../src/env.js';
import { labReference, parseImageName } from '../src/image-ref.js';
import {
  checkLabName, compareNodes, containerName, labFilter, labLabels, networkName, nodeLabels, nodeNames, parseMemberName, parseNodeName,
  registryLabels, registryVolumeName, volumeNames,
} from '../src/names.js';
import { notReady, parseNodeList } from '../src/readiness.js';
import { labsDir } from '../src/state-dir.js';

const invalid = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT') && re.test(e.message));

describe('lab names', () => {
  test('nodes are manager1..N then worker1..N; they are the Shoal hostnames too', () => {
    assert.deepEqual(nodeNames(3, 2).map((n) => n.name), ['manager1', 'manager2', 'manager3', 'worker1', 'worker2']);
    assert.deepEqual(nodeNames(1, 0), [{ name: 'manager1', role: 'manager', index: 1 }]);
  });

  test('--managers and --workers: whole numbers in range', () => {
    invalid(() => nodeNames(0, 1), /--managers 0: a whole number from 1 to 9/);
    invalid(() => nodeNames(10, 1), /--managers 10/);
    invalid(() => nodeNames(1, -1), /--workers -1: a whole number from 0 to 20/);
    invalid(() => nodeNames(1.5, 1), /--managers 1.5/);
    invalid(() => nodeNames(1, 21), /--workers 21/);
  });

  test('a node name is managerN or workerN', () => {
    assert.deepEqual(parseNodeName('worker12'), { name: 'worker12', role: 'worker', index: 12 });
    for (const bad of ['worker0', 'worker', 'node1', 'manager01', 'Worker1', 'worker1 ', '']) invalid(() => parseNodeName(bad), /lab nodes are manager1..N and worker1..N/);
  });

  test('nodes sort managers first, by number, the registry last', () => {
    const registry = { name: 'registry', role: 'registry' as const, index: 0 };
    const names = [registry, ...['worker10', 'manager10', 'worker2', 'manager2', 'manager1'].map(parseNodeName)].sort(compareNodes).map((n) => n.name);
    assert.deepEqual(names, ['manager1', 'manager2', 'manager10', 'worker2', 'worker10', 'registry']);
  });

  test('lab stop/start/exec take a node\'s name or `registry`', () => {
    assert.equal(parseMemberName('worker3'), 'worker3');
    assert.equal(parseMemberName('registry'), 'registry');
    for (const bad of ['registry1', 'Registry', 'worker0', '']) invalid(() => parseMemberName(bad), /lab nodes are manager1..N and worker1..N, and the lab's registry is registry/);
  });

  test('a lab name: lowercase letters, digits, dashes', () => {
    assert.equal(checkLabName('ci-3'), 'ci-3');
    for (const bad of ['', 'Lab', '-x', 'a_b', 'a.b', 'a'.repeat(31), 'a b']) invalid(() => checkLabName(bad), /invalid lab name/);
  });

  test('every object of a lab is named after it and labelled with it (down finds them by that label)', () => {
    assert.equal(networkName('ci'), 'shoal-ci');
    assert.equal(containerName('ci', 'worker1'), 'shoal-ci-worker1');
    assert.deepEqual(volumeNames('ci', 'worker1'), { docker: 'shoal-ci-worker1-docker', shoal: 'shoal-ci-worker1-shoal' });
    assert.deepEqual(labLabels('ci'), { 'org.shoal.lab': 'ci' });
    assert.deepEqual(nodeLabels('ci', parseNodeName('manager2'), '10.1.0.3'), {
      'org.shoal.lab': 'ci', 'org.shoal.lab.node': 'manager2', 'org.shoal.lab.role': 'manager', 'org.shoal.lab.addr': '10.1.0.3',
    });
    assert.deepEqual(labFilter('ci'), { label: ['org.shoal.lab=ci'] });
    assert.equal(containerName('ci', 'registry'), 'shoal-ci-registry');
    assert.equal(registryVolumeName('ci'), 'shoal-ci-registry-data');
    assert.deepEqual(registryLabels('ci', '10.1.255.254'), {
      'org.shoal.lab': 'ci', 'org.shoal.lab.node': 'registry', 'org.shoal.lab.role': 'registry', 'org.shoal.lab.addr': '10.1.255.254',
    });
  });
});

describe('lab addresses', () => {
  test('nodes take the subnet\'s addresses after the network and its gateway', () => {
    assert.deepEqual(nodeAddresses('172.26.0.0/16', 3), ['172.26.0.2', '172.26.0.3', '172.26.0.4']);
    assert.deepEqual(nodeAddresses('10.9.8.16/28', 2), ['10.9.8.18', '10.9.8.19']);
    assert.deepEqual(nodeAddresses('192.168.1.0/24', 252).slice(-1), ['192.168.1.253']);
  });

  test('the registry takes the subnet\'s last address before the broadcast one, which no node takes', () => {
    assert.equal(registryAddress('172.26.0.0/16'), '172.26.255.254');
    assert.equal(registryAddress('10.9.8.16/28'), '10.9.8.30');
    assert.equal(registryAddress('192.168.1.7/24'), '192.168.1.254');
    assert.equal(nodeAddresses('10.9.8.16/28', 12).includes(registryAddress('10.9.8.16/28')), false);
  });

  test('a subnet too small, or not IPv4, is refused', () => {
    assert.throws(() => nodeAddresses('10.0.0.0/29', 5), /room for 4 nodes, not 5/);
    assert.throws(() => registryAddress('fd00::/64'), /not an IPv4 subnet/);
    assert.throws(() => nodeAddresses('fd00::/64', 1), /not an IPv4 subnet/);
    assert.throws(() => nodeAddresses('10.0.0.300/24', 1), /not an IPv4 subnet/);
  });
});

describe('lab env', () => {
  test('every manager\'s address on port 4242, and the certificate directory', () => {
    assert.equal(envLine(['172.26.0.2', '172.26.0.3'], '/root/.local/state/shoal/labs/lab/admin'),
      'export SHOAL_HOST=172.26.0.2:4242,172.26.0.3:4242 SHOAL_CERT_PATH=/root/.local/state/shoal/labs/lab/admin');
  });

  test('the registry, when the lab has one, as SHOAL_LAB_REGISTRY', () => {
    assert.equal(envLine(['172.26.0.2'], '/c', '172.26.255.254:5000'), 'export SHOAL_HOST=172.26.0.2:4242 SHOAL_CERT_PATH=/c SHOAL_LAB_REGISTRY=172.26.255.254:5000');
  });

  test('a path a shell would split or expand is quoted', () => {
    assert.equal(shellWord("/home/o'neil/my labs/$x"), `'/home/o'\\''neil/my labs/$x'`);
    assert.equal(envLine(['10.0.0.2'], '/a b'), "export SHOAL_HOST=10.0.0.2:4242 SHOAL_CERT_PATH='/a b'");
  });

  test('the certificates live under the XDG state directory, else ~/.local/state', () => {
    assert.equal(labsDir({ XDG_STATE_HOME: '/s', HOME: '/h' }), '/s/shoal/labs');
    assert.equal(labsDir({ HOME: '/h' }), '/h/.local/state/shoal/labs');
    // The XDG rule: a relative XDG_STATE_HOME is ignored.
    assert.equal(labsDir({ XDG_STATE_HOME: 'rel', HOME: '/h' }), '/h/.local/state/shoal/labs');
  });
});

describe('lab readiness', () => {
  const listed = [
    { hostname: 'manager1', status: 'ready' },
    { hostname: 'worker1', status: 'down' },
    { hostname: 'worker2', status: 'unknown' },
    { hostname: 'stranger', status: 'ready' },
  ];

  test('the nodes not ready are named, in order; a node not listed at all is not ready', () => {
    assert.deepEqual(notReady(['manager1', 'worker1', 'worker2', 'worker3'], listed), ['worker1', 'worker2', 'worker3']);
    assert.deepEqual(notReady(['manager1'], listed), []);
  });

  test('node ls output that is not a JSON list (a manager still starting) reads as nothing', () => {
    assert.equal(parseNodeList('Error: cannot reach'), undefined);
    assert.equal(parseNodeList('{}'), undefined);
    assert.deepEqual(parseNodeList(JSON.stringify([...listed, { id: 'x' }])), listed);
  });

  test('a container\'s last log line, from the engine\'s framed log', async () => {
    const frame = (stream: number, text: string) => {
      const header = Buffer.alloc(8);
      header[0] = stream;
      header.writeUInt32BE(Buffer.byteLength(text), 4);
      return Buffer.concat([header, Buffer.from(text)]);
    };
    const { modem } = new Docker();
    assert.equal(await lastLine(Buffer.concat([frame(1, 'booting\n'), frame(2, 'dockerd failed: no cgroup\n\n')]), modem), 'dockerd failed: no cgroup');
    assert.equal(await lastLine(Buffer.alloc(0), modem), '');
  });
});

describe('lab load: the names of images in the lab', () => {
  const inLab = (ref: string) => labReference('172.26.255.254:5000', parseImageName(ref));

  test('the image\'s path and tag under the registry\'s lab address; no tag is latest', () => {
    assert.equal(inLab('shoal/busybox:latest'), '172.26.255.254:5000/shoal/busybox:latest');
    assert.equal(inLab('shoal/busybox'), '172.26.255.254:5000/shoal/busybox:latest');
    assert.equal(inLab('a.b/c-d/e__f:1.2-rc_3'), '172.26.255.254:5000/c-d/e__f:1.2-rc_3');
  });

  test('the registry it came from is dropped, Docker Hub\'s library/ too', () => {
    for (const ref of ['busybox:1.36', 'docker.io/library/busybox:1.36', 'index.docker.io/library/busybox:1.36', 'library/busybox:1.36']) {
      assert.equal(inLab(ref), '172.26.255.254:5000/busybox:1.36', ref);
    }
    assert.equal(inLab('localhost:5001/app:v1'), '172.26.255.254:5000/app:v1');
    assert.equal(inLab('ghcr.io/library/x:1'), '172.26.255.254:5000/library/x:1');
    assert.equal(inLab('172.26.255.254:5000/app'), '172.26.255.254:5000/app:latest');
    assert.deepEqual(parseImageName('localhost:5001/app'), { domain: 'localhost:5001', path: 'app', tag: 'latest' });
  });

  test('a digest, an image id or a name Docker would refuse is refused', () => {
    invalid(() => parseImageName('busybox@sha256:' + 'a'.repeat(64)), /give it by name, NAME\[:TAG\]/);
    invalid(() => parseImageName('sha256:' + 'a'.repeat(64)), /give it by name/);
    invalid(() => parseImageName('BusyBox'), /a name is lowercase letters and digits/);
    invalid(() => parseImageName('a//b'), /a name is lowercase/);
    invalid(() => parseImageName(''), /a name is lowercase/);
    invalid(() => parseImageName('busybox:'), /the tag "" is not one/);
    invalid(() => parseImageName('busybox:-x'), /the tag "-x" is not one/);
    invalid(() => parseImageName('bad_host.io:x/app'), /the registry "bad_host.io:x" is not a host\[:port\]/);
  });
});
