// A service's descriptor made ahead of time (serviceDescriptor, as the CLI's bundle embeds it)
// gives the same client as the .proto text parsed at run time: same methods, same field names
// (keepCase), defaults and enum forms, same bytes on the wire.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type * as grpc from '@grpc/grpc-js';
import { type ServiceName, clientConstructorFromDescriptor, getOnlyClientConstructor, serviceDescriptor } from '../src/index.js';

const SERVICES: ServiceName[] = ['shoal.control.Control', 'shoal.raft.Raft', 'shoal.ca.CA', 'shoal.dispatcher.Dispatcher'];

/** Everything of a method but its functions, and what its (de)serializers make of an empty message. */
function shape(m: grpc.MethodDefinition<unknown, unknown>) {
  const empty = Buffer.alloc(0);
  const req = m.requestDeserialize(empty);
  const res = m.responseDeserialize(empty);
  return {
    path: m.path,
    requestStream: m.requestStream,
    responseStream: m.responseStream,
    req,
    res,
    reqBytes: [...m.requestSerialize(req)],
    resBytes: [...m.responseSerialize(res)],
  };
}

describe('serviceDescriptor and clientConstructorFromDescriptor', () => {
  for (const name of SERVICES) {
    test(`${name}: the same client as getOnlyClientConstructor`, () => {
      const { json, files } = serviceDescriptor(name);
      assert.ok(files.some((f) => f.endsWith('.proto')), 'the files it was made from');
      // As embedded in a bundle: through JSON text.
      const fromJson = clientConstructorFromDescriptor(name, JSON.parse(JSON.stringify(json)));
      const parsed = getOnlyClientConstructor(name);
      assert.deepEqual(Object.keys(fromJson.service).sort(), Object.keys(parsed.service).sort());
      for (const method of Object.keys(parsed.service)) {
        assert.deepEqual(shape(fromJson.service[method]!), shape(parsed.service[method]!), method);
      }
    });
  }

  test('a message with nested fields and enums encodes and decodes alike', () => {
    const name = 'shoal.control.Control';
    const a = clientConstructorFromDescriptor(name, JSON.parse(JSON.stringify(serviceDescriptor(name).json))).service.ListServices!;
    const b = getOnlyClientConstructor(name).service.ListServices!;
    const res = b.responseDeserialize(Buffer.alloc(0)) as { services: unknown[] };
    const sample = { ...res, services: [{ service: { id: 'x1', spec: { name: 'web', image: 'busybox', replicas: 3 } } }] };
    const bytes = b.responseSerialize(sample);
    assert.deepEqual([...a.responseSerialize(sample)], [...bytes]);
    assert.deepEqual(a.responseDeserialize(bytes), b.responseDeserialize(bytes));
  });
});
