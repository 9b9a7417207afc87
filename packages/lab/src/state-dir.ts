// Where a lab keeps what the host needs of it: the admin certificate copied out of its first
// manager. Under the XDG state directory (a user's, 0700), one directory a lab; `down` removes it.

import os from 'node:os';
import path from 'node:path';

/** $XDG_STATE_HOME/shoal/labs, else ~/.local/state/shoal/labs (the XDG default). */
export function labsDir(env: NodeJS.ProcessEnv = process.env): string {
  const state = env['XDG_STATE_HOME'] && path.isAbsolute(env['XDG_STATE_HOME']) ? env['XDG_STATE_HOME'] : path.join(env['HOME'] || os.homedir(), '.local', 'state');
  return path.join(state, 'shoal', 'labs');
}

/** A lab's admin certificate directory (ca.pem, cert.pem, key.pem: what --cert-path takes). */
export const certDir = (labs: string, lab: string) => path.join(labs, lab, 'admin');
