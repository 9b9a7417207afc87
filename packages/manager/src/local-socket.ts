// Serving the control API on the machine's well-known socket (@shoal/api's localSocketPath) as
// well as DATA_DIR/control.sock, so that a bare `shoal service ls` on a manager needs no --host.
// Several daemons may share a machine (tests, a local cluster): the first one to take the socket
// keeps it, the others say so and go on without it. A worker serves its stub there too (worker-stub.ts).

import * as grpc from '@grpc/grpc-js';
import { type Stats, chmodSync, lstatSync, mkdirSync, rmSync } from 'node:fs';
import net from 'node:net';
import { dirname } from 'node:path';
import { type Logger, ShoalError } from '@shoal/api';

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
 * Binds `server` on the unix socket `path`, without TLS, mode 0600: whoever can open the file is
 * the cluster's admin, so the owner only (root can still). A stale socket there (nothing answers:
 * its daemon is gone) is replaced; a live one (another process serves it) or a file that is not a
 * socket is left as it is, and the bind fails with a one-line error saying so.
 */
export async function bindUnixSocket(server: grpc.Server, path: string): Promise<void> {
  let st: Stats | undefined;
  try {
    st = lstatSync(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (st && !st.isSocket()) throw new ShoalError('FAILED_PRECONDITION', `${path} exists and is not a socket: not replacing it`);
  if (st && (await answers(path))) throw new ShoalError('FAILED_PRECONDITION', `${path} is served by another running process (another shoald?): not taking it over`);
  rmSync(path, { force: true });
  await new Promise<number>((resolve, reject) =>
    server.bindAsync(`unix://${path}`, grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  chmodSync(path, 0o600);
}

/**
 * Binds `server` on the well-known socket `path` as well (bindUnixSocket). Resolves to the path
 * when bound; undefined (after a warning) when another daemon serves it or it cannot be made (no
 * permission on its directory...): never an error, the node runs as well without it.
 */
export async function serveLocalSocket(server: grpc.Server, path: string, log: Logger): Promise<string | undefined> {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    await bindUnixSocket(server, path);
    return path;
  } catch (err) {
    log.warn({ socket: path, err: (err as Error).message }, 'not serving the local control socket');
    return undefined;
  }
}
