// The control API's handler table (controlapi/index.ts) against proto/control.proto: every method
// the proto declares has a handler (else clients get UNIMPLEMENTED), and no handler is named for a
// method the proto lacks (a misspelt name would leave the real method unserved).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getServiceDefinition } from '@shoal/api';
import { type ControlContext, controlHandlers, controlStreams } from '../src/controlapi/index.js';

test('the handler tables serve exactly the methods of control.proto, streams as streams', () => {
  // The tables are only read here, never called: their handlers would be the ones to use the context.
  const table = controlHandlers({} as ControlContext, async () => ({}));
  const streams = controlStreams({ events: async () => undefined, serviceLogs: async () => undefined });
  const def = getServiceDefinition('shoal.control.Control');
  const declared = Object.keys(def).filter((m) => !def[m]!.responseStream).sort();
  const declaredStreams = Object.keys(def).filter((m) => def[m]!.responseStream).sort();
  assert.ok(declared.length > 10, 'control.proto was loaded');
  assert.deepEqual(Object.keys(table).sort(), declared);
  assert.deepEqual(Object.keys(streams).sort(), declaredStreams);
});
