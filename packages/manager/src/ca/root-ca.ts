// The cluster's root certificate authority. Created once, by `shoald init`; its fingerprint is
// part of every join token, so a joining node can tell it reached the cluster it meant to join.
// (Node certificates and mutual TLS build on it in a later step.)

import 'reflect-metadata';
import { createHash, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { ShoalError } from '@shoal/api';

// The library wants a DOM Crypto; Node's webcrypto is one (the DOM types are not in our lib).
x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

const ALG = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;

export interface RootCA {
  certPem: string;
  keyPem: string;
  fingerprint: string;
}

/** SHA-256 of the certificate's DER, in base 36 (50 chars), as Swarm writes it in tokens. */
export function caFingerprint(certPem: string): string {
  let der: Buffer;
  try {
    der = Buffer.from(new x509.X509Certificate(certPem).rawData);
  } catch (err) {
    throw new ShoalError('INVALID_ARGUMENT', `not a PEM certificate: ${(err as Error).message}`);
  }
  const digest = createHash('sha256').update(der).digest();
  return BigInt(`0x${digest.toString('hex')}`).toString(36).padStart(50, '0');
}

export async function createRootCA(clusterName = 'shoal'): Promise<RootCA> {
  const keys = await webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']);
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: Buffer.from(webcrypto.getRandomValues(new Uint8Array(16))).toString('hex'),
    name: `CN=${clusterName} root CA`,
    notBefore: new Date(now - 60_000),
    notAfter: new Date(now + 20 * 365 * 24 * 3600_000),
    signingAlgorithm: ALG,
    keys: keys as unknown as Parameters<typeof x509.X509CertificateGenerator.createSelfSigned>[0]['keys'],
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ],
  });
  const pkcs8 = await webcrypto.subtle.exportKey('pkcs8', keys.privateKey);
  const keyPem = x509.PemConverter.encode(pkcs8, 'PRIVATE KEY');
  const certPem = cert.toString('pem');
  return { certPem, keyPem, fingerprint: caFingerprint(certPem) };
}
