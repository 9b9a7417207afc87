// The control API's edge: a spec's broken rule (@shoal/types) is answered INVALID_ARGUMENT.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ShoalError } from '@shoal/api';
import { validateServiceSpec } from '../src/controlapi/validate.js';

test('a broken rule is INVALID_ARGUMENT with the rule\'s one-line message; a good spec comes back completed', () => {
  assert.throws(
    () => validateServiceSpec({ name: 'web.fe', image: 'busybox' }),
    (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT') && /^invalid service name "web.fe"/.test(e.message),
  );
  assert.equal(validateServiceSpec({ name: 'web', image: 'busybox' }).replicas, 1);
});
