// The well-known local socket of a manager (as /var/run/docker.sock is Docker's): `shoald` serves
// the control API there besides DATA_DIR/control.sock, and `shoal` talks to it when given neither
// --host nor SHOAL_HOST. One definition for both (a module of its own: the CLI reads it on every
// start without loading gRPC).

/** Where, unless SHOAL_SOCKET says otherwise. */
export const DEFAULT_LOCAL_SOCKET = '/run/shoal/shoal.sock';

/** The environment variable that moves it (for shoald and shoal alike); empty: none (shoald serves none). */
export const LOCAL_SOCKET_ENV = 'SHOAL_SOCKET';

/** The well-known socket's path under this environment; undefined when it is turned off. */
export function localSocketPath(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const v = env[LOCAL_SOCKET_ENV];
  if (v === undefined) return DEFAULT_LOCAL_SOCKET;
  return v.trim() === '' ? undefined : v.trim();
}
