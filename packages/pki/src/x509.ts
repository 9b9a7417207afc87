// One place that sets up @peculiar/x509 (it wants a DOM Crypto provider; Node's webcrypto is one).

import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509, webcrypto };

/** ECDSA P-256 with SHA-256 for every key and signature: small, fast, what SwarmKit uses. */
export const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export type Keys = Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'];

type CryptoKey = webcrypto.CryptoKey;

export async function generateKeys(): Promise<webcrypto.CryptoKeyPair> {
  return (await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
}

export async function exportKeyPem(key: CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
}

export async function importKeyPem(pem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new Error('no PEM block');
  return webcrypto.subtle.importKey('pkcs8', der, ALG, false, ['sign']);
}

export function randomSerial(): string {
  // Positive (top bit clear), 16 bytes: unique without coordination between managers.
  const b = Buffer.from(webcrypto.getRandomValues(new Uint8Array(16)));
  b[0] &= 0x7f;
  return b.toString('hex');
}
