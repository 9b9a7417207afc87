// A secret's data sealed for that secret of that cluster: any bytes come back as they went in,
// the sealed form holds none of them, and it opens for no other secret or cluster.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { KeyEncryptionKey } from '@shoal/pki';
import { SecretVault } from '../src/secret-vault.js';

describe('SecretVault', () => {
  const kek = KeyEncryptionKey.generate();
  const vault = (cluster: string) => new SecretVault(() => kek, () => cluster);

  test('seals any bytes for one secret of one cluster', () => {
    const data = Buffer.concat([Buffer.from('pa55-word\n'), Buffer.from([0, 255, 10, 13])]);
    const sealed = vault('c1').seal('s1', data);
    assert.ok(!JSON.stringify(sealed).includes('pa55') && !JSON.stringify(sealed).includes(data.toString('base64')));
    assert.deepEqual(vault('c1').open('s1', sealed), data);
    assert.throws(() => vault('c1').open('s2', sealed), /fails its integrity check/);
    assert.throws(() => vault('c2').open('s1', sealed), /fails its integrity check/);
  });
});
