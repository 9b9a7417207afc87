// Join tokens: the role a token grants is decided by comparing digests in constant time, against
// both of the cluster's tokens.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { newJoinToken, parseJoinToken, roleOfToken, safeEqual } from '../src/join-token.js';

const FP = 'a'.repeat(50);

describe('join token secrets', () => {
  test('safeEqual: equal strings only, whatever their lengths', () => {
    assert.equal(safeEqual('abc', 'abc'), true);
    assert.equal(safeEqual('abc', 'abd'), false);
    assert.equal(safeEqual('abc', 'abcd'), false);
    assert.equal(safeEqual('', ''), true);
  });

  test('roleOfToken: the manager token, the worker token, or nothing', () => {
    const tokens = { worker: newJoinToken(FP), manager: newJoinToken(FP) };
    assert.equal(roleOfToken(parseJoinToken(tokens.manager), tokens), 'manager');
    assert.equal(roleOfToken(parseJoinToken(tokens.worker), tokens), 'worker');
    assert.equal(roleOfToken(parseJoinToken(newJoinToken(FP)), tokens), undefined);
  });
});
