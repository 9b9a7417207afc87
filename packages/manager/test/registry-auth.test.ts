// A service's registry credentials at the control API's edge and at rest: what a request may
// carry (Docker's AuthConfig JSON), refused in one line that never quotes it, sealed for one
// service (its sealed form opens for that service only), and docker's image pinning rules that
// need no registry (a digest given is kept; a bare name gets `:latest`).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ShoalError } from '@shoal/api';
import { KeyEncryptionKey } from '@shoal/pki';
import { RegistryAuthVault, parseRegistryAuth } from '../src/registry-auth.js';
import { withDefaultTag as withTag } from '@shoal/types';
import { digestWarning, pinImage } from '../src/controlapi/image-pin.js';

const SECRET = 'pa55-w0rd-never-shown';

function refused(text: string, re: RegExp): void {
  assert.throws(
    () => parseRegistryAuth(text),
    (e: unknown) => ShoalError.is(e, 'INVALID_ARGUMENT') && re.test(e.message) && !e.message.includes(SECRET) && !e.message.includes('\n'),
  );
}

describe("a request's registry_auth", () => {
  test('none given (an update keeps the service\'s), an empty login (none stored), a login', () => {
    assert.equal(parseRegistryAuth(''), undefined);
    assert.equal(parseRegistryAuth(undefined), undefined);
    assert.equal(parseRegistryAuth('{}'), null);
    assert.equal(parseRegistryAuth('{"serveraddress":"reg:5000"}'), null);
    assert.deepEqual(parseRegistryAuth(JSON.stringify({ username: 'u', password: SECRET, serveraddress: 'reg:5000' })), {
      username: 'u',
      password: SECRET,
      serveraddress: 'reg:5000',
    });
    assert.deepEqual(parseRegistryAuth('{"identitytoken":"t"}'), { identitytoken: 't' });
  });
  test('bad input: one line, never quoting the secret', () => {
    refused(`{"username":"u","password":"${SECRET}"`, /registry_auth is not JSON/);
    refused(`["${SECRET}"]`, /not a JSON object/);
    refused(`{"username":"u","pasword":"${SECRET}"}`, /unknown field "pasword"/);
    refused(`{"username":"u","password":["${SECRET}"]}`, /field password is not a string/);
    refused(`{"password":"${SECRET}"}`, /a password without a username/);
  });
});

describe('sealed for one service', () => {
  const kek = KeyEncryptionKey.generate();
  const vault = new RegistryAuthVault(() => kek, () => 'cluster1');
  test('the store holds ciphertext that opens for its service only', () => {
    const auth = { username: 'u', password: SECRET };
    const sealed = vault.seal('svcA', auth);
    assert.ok(!JSON.stringify(sealed).includes(SECRET));
    assert.ok(!Buffer.from(sealed.data, 'base64').toString('latin1').includes(SECRET));
    assert.deepEqual(JSON.parse(vault.open('svcA', sealed)), auth);
    assert.throws(() => vault.open('svcB', sealed), (e: unknown) => ShoalError.is(e, 'CORRUPT_DATA'));
    assert.throws(() => new RegistryAuthVault(() => kek, () => 'cluster2').open('svcA', sealed), (e: unknown) => ShoalError.is(e, 'CORRUPT_DATA'));
  });
});

describe('image pinning without a registry', () => {
  const never = async (): Promise<string> => {
    throw new Error('no registry should be asked');
  };
  test('a digest given is kept as it is, never asked again', async () => {
    const image = 'reg:5000/app:v1@sha256:' + 'a'.repeat(64);
    assert.deepEqual(await pinImage(image, never, null), { image });
  });
  test("docker's TagNameOnly: `:latest` added to a bare name (a registry's port is no tag)", () => {
    assert.equal(withTag('busybox'), 'busybox:latest');
    assert.equal(withTag('reg:5000/app'), 'reg:5000/app:latest');
    assert.equal(withTag('reg:5000/app:v1'), 'reg:5000/app:v1');
  });
  test('no registry has it: the image as given, with the warning naming it tagged', async () => {
    assert.deepEqual(await pinImage('busybox', never, null), { image: 'busybox', warning: digestWarning('busybox:latest') });
    assert.deepEqual(await pinImage('busybox', undefined, null), { image: 'busybox', warning: digestWarning('busybox:latest') });
  });
});
