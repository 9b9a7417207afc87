// A real image registry for tests: Debian's docker-registry (distribution 2.8), from the image
// shoal/lab-base:12, on a published 127.0.0.1 port (the engine trusts 127.0.0.0/8 registries
// over plain HTTP), without authentication. Images are pushed to it with the docker CLI.

import { execFile as execFileCb } from 'node:child_process';
import net from 'node:net';
import { promisify } from 'node:util';

const execFile = promisify(execFileCb);
const REGISTRY_IMAGE = 'shoal/lab-base:12';
/** The packaged config asks for htpasswd auth; the tests' registry takes anyone. */
const CONFIG = ['version: 0.1', 'log:', '  level: warn', 'storage:', '  filesystem:', '    rootdirectory: /tmp/registry', 'http:', '  addr: :5000', ''].join('\n');

export async function docker(...args: string[]): Promise<string> {
  const { stdout } = await execFile('docker', args, { timeout: 60_000 });
  return stdout.trim();
}

/** A port on 127.0.0.1 nothing listens on (a registry there is unreachable). */
export function unusedPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export class TestRegistry {
  private constructor(
    private readonly container: string,
    /** host:port, the name's first part in image references. */
    readonly host: string,
  ) {}

  static async start(): Promise<TestRegistry> {
    const container = await docker(
      'run', '-d', '--rm', '-p', '127.0.0.1::5000', REGISTRY_IMAGE,
      'sh', '-c', 'printf "%s" "$0" > /tmp/registry.yml && exec docker-registry serve /tmp/registry.yml', CONFIG,
    );
    const port = (await docker('port', container, '5000/tcp')).split('\n')[0]!.replace(/^.*:/, '');
    const reg = new TestRegistry(container, `127.0.0.1:${port}`);
    const end = Date.now() + 30_000;
    for (;;) {
      // A timer of our own, not AbortSignal.timeout's: that one is unref'd, and a fetch whose
      // socket undici has unref'd (docker-proxy accepting before the registry listens) then
      // leaves the event loop empty: node:test ends the hook as never resolved.
      const ac = new AbortController();
      const timer = setTimeout(() => ac.abort(), 2_000);
      const ok = await fetch(`http://${reg.host}/v2/`, { signal: ac.signal }).then((r) => r.ok, () => false).finally(() => clearTimeout(timer));
      if (ok) return reg;
      if (Date.now() > end) {
        await reg.stop();
        throw new Error(`the test registry (${REGISTRY_IMAGE}) did not answer on ${reg.host}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** Pushes local image `image` as `name` (REPO:TAG) and removes the local tag; returns the full reference. */
  async push(image: string, name: string): Promise<string> {
    const ref = `${this.host}/${name}`;
    await docker('tag', image, ref);
    await docker('push', '--quiet', ref);
    await docker('rmi', ref);
    return ref;
  }

  async stop(): Promise<void> {
    await docker('rm', '-f', this.container).catch(() => '');
  }
}
