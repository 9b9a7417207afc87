// The control API's dashboard call (`shoal ui`): a one-time login to the web dashboard of the
// manager that answers. The dashboard is the daemon's (shoald --ui-addr); its tokens live in that
// process's memory only, so the call is never passed on to the leader.

import { ShoalError } from '@shoal/api';
import type { ControlContext } from './context.js';

export interface UiLogin {
  /** The dashboard's address with the token in its fragment. */
  url: string;
  token: string;
  expiresAtMs: number;
}

export async function createUiLogin(ctx: ControlContext): Promise<UiLogin> {
  const login = ctx.uiLogin?.();
  if (!login) throw new ShoalError('FAILED_PRECONDITION', 'this manager serves no dashboard: start its shoald with --ui-addr HOST:PORT');
  return login;
}
