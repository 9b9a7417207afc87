// The control API's handler table (controlapi/index.ts) against proto/control.proto: every method
// the proto declares has a handler (else clients get UNIMPLEMENTED), and no handler is named for a
// method the proto lacks (a misspelt name would leave the real method unserved).

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { getServiceDefinition } from '@shoal/api';
import { type ControlContext, controlHandlers } from '../src/controlapi/index.js';

test('the handler table serves exactly the methods of control.proto', () => {
  // The table is only read here, never called: its handlers would be the ones to use the context.
  const table = controlHandlers({} as ControlContext, async () => ({}));
  const declared = Object.keys(getServiceDefinition('shoal.control.Control')).sort();
  assert.ok(declared.length > 10, 'control.proto was loaded');
  assert.deepEqual(Object.keys(table).sort(), declared);
});
