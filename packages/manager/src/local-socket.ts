// Serving the control API on the machine's well-known socket (@shoal/api's localSocketPath) as
// well as DATA_DIR/control.sock, so that a bare `shoal service ls` on a manager needs no --host.
// Several daemons may share a machine (tests, a local cluster): the first one to take the socket
// keeps it, the others say so and go on without it.

import * as grpc from '@grpc/grpc-js';
import { chmodSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '@shoal/api';

/** Whether something answers on the unix socket `path` (a live daemon, not a stale file). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createConnection(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * Binds `server` on the unix socket `path` (a stale file there is replaced), without TLS, mode 0600:
 * whoever can open the file is the cluster's admin, so the owner only (root can still).
 */
export async function bindUnixSocket(server: grpc.Server, path: string): Promise<void> {
  rmSync(path, { force: true });
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  chmodSync(path, 0o600);
}

/**
 * Binds `server` (insecure: whoever may open the file is the cluster's admin) on `path`, mode 0600
 * as control.sock. Resolves to the path when bound; undefined (after a warning) when another
 * daemon serves it or it cannot be made (no permission on its directory...): never an error, the
 * node runs as well without it.
 */
export async function serveLocalSocket(server: grpc.Server, path: string, log: Logger): Promise<string | undefined> {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    if (existsSync(path)) {
      if (await answers(path)) {
        log.warn({ socket: path }, 'another daemon serves the local control socket: not serving it');
        return undefined;
      }
    }
    await bindUnixSocket(server, path);
    return path;
  } catch (err) {
    log.warn({ socket: path, err: (err as Error).message }, 'cannot serve the local control socket');
    return undefined;
  }
}
