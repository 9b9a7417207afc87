// The cluster's certificate authority: the root (created once by `shoald init`), its fingerprint
// (part of every join token, so a joining node knows it reached the cluster it meant to join), and
// the signing of node and admin certificates. Any manager can sign: the root's key is replicated
// to managers only (in the Raft store, which workers never hold), sealed with the cluster's
// key-encryption key (kek.ts) that managers keep outside Raft.

import { createHash, createPrivateKey, type KeyObject, X509Certificate } from 'node:crypto';
import { ShoalError } from '@shoal/api';
import { ALG, type Keys, exportKeyPem, generateKeys, importKeyPem, randomSerial, webcrypto, x509 } from './x509.js';
import { type CertRole, MANAGER_SERVER_NAME, NODE_SERVER_NAME, ROLE_OU } from './names.js';
import { CERT_EXPIRY, DEFAULT_CERT_EXPIRY_MS } from '@shoal/types';

export interface RootCA {
  certPem: string;
  keyPem: string;
  fingerprint: string;
}

/** The validity of node certificates: default and range (@shoal/types, the cluster settings' rules). */
export const MIN_CERT_EXPIRY_MS = CERT_EXPIRY.minMs;
export const MAX_CERT_EXPIRY_MS = CERT_EXPIRY.maxMs;
export { DEFAULT_CERT_EXPIRY_MS };
/** Admin certificates (the control API over TCP) live a year: they are not renewed automatically. */
export const DEFAULT_ADMIN_CERT_EXPIRY_MS = 365 * 24 * 3600_000;
/** Clocks differ between nodes: a new certificate is valid from a minute ago. */
const BACKDATE_MS = 60_000;

/** SHA-256 of the certificate's DER, in base 36 (50 chars), as Swarm writes it in tokens. */
export function caFingerprint(certPem: string): string {
  let der: Buffer;
  try {
    der = Buffer.from(new x509.X509Certificate(certPem).rawData);
  } catch (err) {
    throw new ShoalError('INVALID_ARGUMENT', `not a PEM certificate: ${(err as Error).message}`);
  }
  return fingerprintOfDer(der);
}

export function fingerprintOfDer(der: Buffer): string {
  const digest = createHash('sha256').update(der).digest();
  return BigInt(`0x${digest.toString('hex')}`).toString(36).padStart(50, '0');
}

export async function createRootCA(clusterName = 'shoal'): Promise<RootCA> {
  const keys = await generateKeys();
  const now = Date.now();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: randomSerial(),
    name: `CN=${clusterName} root CA`,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + 20 * 365 * 24 * 3600_000),
    signingAlgorithm: ALG,
    keys: keys as unknown as Keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey as unknown as Keys['publicKey']),
    ],
  });
  const certPem = cert.toString('pem');
  return { certPem, keyPem: await exportKeyPem(keys.privateKey), fingerprint: caFingerprint(certPem) };
}

/**
 * A root CA the operator brings (`shoald init --ca-cert --ca-key`), checked the way the cluster
 * will use it: a self-signed CA certificate valid now, and its ECDSA P-256 key (PKCS#8 or SEC1
 * PEM). Every problem is one INVALID_ARGUMENT line naming the flag.
 */
export function loadRootCA(certPem: string, keyPem: string, now = Date.now()): RootCA {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (err) {
    throw new ShoalError('INVALID_ARGUMENT', `--ca-cert: not a PEM certificate (${(err as Error).message})`);
  }
  if (!cert.ca) throw new ShoalError('INVALID_ARGUMENT', '--ca-cert: not a CA certificate (basic constraints CA:TRUE is required)');
  if (!(cert.checkIssued(cert) && cert.verify(cert.publicKey))) {
    throw new ShoalError('INVALID_ARGUMENT', '--ca-cert: not a self-signed root certificate (nodes pin the root the join token names)');
  }
  if (Date.parse(cert.validFrom) > now || Date.parse(cert.validTo) <= now) {
    throw new ShoalError('INVALID_ARGUMENT', `--ca-cert: not valid now (valid from ${cert.validFrom} to ${cert.validTo})`);
  }
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (err) {
    throw new ShoalError('INVALID_ARGUMENT', `--ca-key: not a PEM private key (${(err as Error).message})`);
  }
  if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
    throw new ShoalError('INVALID_ARGUMENT', '--ca-key: must be an ECDSA P-256 key');
  }
  if (!cert.checkPrivateKey(key)) throw new ShoalError('INVALID_ARGUMENT', '--ca-key: does not belong to the --ca-cert certificate');
  const pem = cert.toString();
  return { certPem: pem, keyPem: key.export({ type: 'pkcs8', format: 'pem' }) as string, fingerprint: caFingerprint(pem) };
}

export interface Subject {
  nodeId: string;
  role: CertRole;
  clusterId: string;
}

/** A key pair and a certificate signing request for it (the subject is the CA's to decide). */
export async function newKeyAndCsr(): Promise<{ keyPem: string; csrPem: string }> {
  const keys = await generateKeys();
  const csr = await x509.Pkcs10CertificateRequestGenerator.create({
    name: 'CN=shoal-node',
    keys: keys as unknown as Keys,
    signingAlgorithm: ALG,
  });
  return { keyPem: await exportKeyPem(keys.privateKey), csrPem: csr.toString('pem') };
}

const MAX_CSR_CHARS = 16 * 1024;

/**
 * Signs a node's (or an admin's) CSR. Only the public key is taken from the CSR: who the holder is
 * (subject) and what it may do (role) come from the cluster, never from the request.
 */
export async function signCsr(ca: { certPem: string; keyPem: string }, csrPem: string, subject: Subject, validityMs: number, now = Date.now()): Promise<string> {
  if (typeof csrPem !== 'string' || csrPem.length === 0) throw new ShoalError('INVALID_ARGUMENT', 'a certificate signing request (PEM) is required');
  if (csrPem.length > MAX_CSR_CHARS) throw new ShoalError('INVALID_ARGUMENT', `the certificate signing request is too large (${csrPem.length} chars)`);
  let csr: x509.Pkcs10CertificateRequest;
  try {
    csr = new x509.Pkcs10CertificateRequest(csrPem);
  } catch (err) {
    throw new ShoalError('INVALID_ARGUMENT', `malformed certificate signing request: ${(err as Error).message}`);
  }
  let ok = false;
  try {
    ok = await csr.verify();
  } catch {
    ok = false;
  }
  if (!ok) throw new ShoalError('INVALID_ARGUMENT', 'the certificate signing request is not signed by its own key');
  const alg = csr.publicKey.algorithm as { name?: string; namedCurve?: string };
  if (alg.name !== 'ECDSA' || alg.namedCurve !== 'P-256') {
    throw new ShoalError('INVALID_ARGUMENT', 'the certificate signing request must be for an ECDSA P-256 key');
  }
  return issue(ca, csr.publicKey, subject, validityMs, now);
}

/** A new key and its certificate, signed here (init's own node certificate, admin certificates). */
export async function issueWithNewKey(ca: { certPem: string; keyPem: string }, subject: Subject, validityMs: number): Promise<{ certPem: string; keyPem: string }> {
  const { keyPem, csrPem } = await newKeyAndCsr();
  return { keyPem, certPem: await signCsr(ca, csrPem, subject, validityMs) };
}

async function issue(ca: { certPem: string; keyPem: string }, publicKey: x509.PublicKey, subject: Subject, validityMs: number, now: number): Promise<string> {
  const caCert = new x509.X509Certificate(ca.certPem);
  const signingKey = await importKeyPem(ca.keyPem);
  const names: x509.JsonGeneralName[] = [];
  if (subject.role !== 'admin') names.push({ type: 'dns', value: NODE_SERVER_NAME });
  if (subject.role === 'manager') names.push({ type: 'dns', value: MANAGER_SERVER_NAME });
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(
      subject.role === 'admin' ? [x509.ExtendedKeyUsage.clientAuth] : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    ),
    await x509.AuthorityKeyIdentifierExtension.create(caCert),
  ];
  if (names.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(names));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: randomSerial(),
    subject: `CN=${subject.nodeId}, OU=${ROLE_OU[subject.role]}, O=${subject.clusterId}`,
    issuer: caCert.subject,
    notBefore: new Date(now - BACKDATE_MS),
    notAfter: new Date(now + validityMs),
    signingAlgorithm: ALG,
    publicKey,
    signingKey: signingKey as unknown as Keys['privateKey'],
    extensions,
  });
  return cert.toString('pem');
}

/** Checks that `certPem` was issued by `caPem` (signature and issuer), without a TLS handshake. */
export function issuedBy(certPem: string, caPem: string): boolean {
  try {
    const c = new X509Certificate(certPem);
    const root = new X509Certificate(caPem);
    return c.checkIssued(root) && c.verify(root.publicKey);
  } catch {
    return false;
  }
}

export { webcrypto };
