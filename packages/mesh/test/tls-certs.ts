// Test certificates made with the openssl CLI: an EC P-256 root CA per "cluster" and node
// certificates shaped like the real ones (O=<cluster>/OU=<role>/CN=<node id>, SAN DNS:shoal-node,
// serverAuth + clientAuth). Generated into a temp dir once per CA.

import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { MeshTls } from '../src/index.js';

const run = promisify(execFile);

async function openssl(args: string[], cwd: string): Promise<void> {
  try {
    await run('openssl', args, { cwd });
  } catch (err) {
    const e = err as Error & { stderr?: string };
    throw new Error(`openssl ${args[0]} failed: ${e.stderr ?? e.message}`);
  }
}

export interface NodeCert {
  cert: string;
  key: string;
}

export interface NodeCertOptions {
  cluster?: string;
  role?: string;
  /** subjectAltName; default `DNS:shoal-node`. */
  san?: string;
  /** Validity window in the past (openssl ca -startdate/-enddate): an expired certificate. */
  expired?: boolean;
}

export interface TestCa {
  /** The CA certificate (PEM). */
  ca: string;
  dir: string;
  issue(nodeId: string, opts?: NodeCertOptions): Promise<NodeCert>;
  /** `MeshTls` for a node certificate of this CA (trusting this CA). */
  tls(node: NodeCert, verifyPeer?: MeshTls['verifyPeer']): MeshTls;
  remove(): Promise<void>;
}

export async function makeCa(name = 'Shoal Root CA'): Promise<TestCa> {
  const dir = await mkdtemp(join(tmpdir(), 'shoal-mesh-tls-'));
  await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', 'ca.key'], dir);
  await openssl(
    [
      'req', '-x509', '-new', '-key', 'ca.key', '-sha256', '-days', '30', '-subj', `/CN=${name}`, '-out', 'ca.pem',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  // `openssl ca` (for past validity windows, which `openssl x509 -req` cannot do in OpenSSL 3.0)
  // needs its database files.
  await writeFile(join(dir, 'index.txt'), '');
  await writeFile(
    join(dir, 'ca.cnf'),
    [
      '[ca]', 'default_ca = shoal',
      '[shoal]', `dir = ${dir}`, 'database = $dir/index.txt', 'new_certs_dir = $dir', 'serial = $dir/serial',
      'default_md = sha256', 'policy = any', 'unique_subject = no', 'copy_extensions = none',
      '[any]', 'organizationName = optional', 'organizationalUnitName = optional', 'commonName = supplied',
      '',
    ].join('\n'),
  );
  await writeFile(join(dir, 'serial'), '1000\n');
  const ca = await readFile(join(dir, 'ca.pem'), 'utf8');
  let n = 0;
  return {
    ca,
    dir,
    async issue(nodeId, opts = {}) {
      const base = `node${n++}`;
      const ext = `${base}.ext`;
      await writeFile(
        join(dir, ext),
        [
          `subjectAltName=${opts.san ?? 'DNS:shoal-node'}`,
          'extendedKeyUsage=serverAuth,clientAuth',
          'keyUsage=critical,digitalSignature',
          'basicConstraints=critical,CA:FALSE',
          '',
        ].join('\n'),
      );
      const subj = `/O=${opts.cluster ?? 'cluster1'}/OU=${opts.role ?? 'shoal-worker'}/CN=${nodeId}`;
      await openssl(['ecparam', '-name', 'prime256v1', '-genkey', '-noout', '-out', `${base}.key`], dir);
      await openssl(['req', '-new', '-key', `${base}.key`, '-subj', subj, '-out', `${base}.csr`], dir);
      if (opts.expired) {
        await openssl(
          [
            'ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key', '-in', `${base}.csr`,
            '-out', `${base}.pem`, '-extfile', ext, '-notext', '-preserveDN',
            '-startdate', '20200101000000Z', '-enddate', '20200201000000Z',
          ],
          dir,
        );
      } else {
        await openssl(
          [
            'x509', '-req', '-in', `${base}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial',
            '-days', '7', '-sha256', '-extfile', ext, '-out', `${base}.pem`,
          ],
          dir,
        );
      }
      return { cert: await readFile(join(dir, `${base}.pem`), 'utf8'), key: await readFile(join(dir, `${base}.key`), 'utf8') };
    },
    tls(node, verifyPeer) {
      return verifyPeer ? { ca, cert: node.cert, key: node.key, verifyPeer } : { ca, cert: node.cert, key: node.key };
    },
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}
