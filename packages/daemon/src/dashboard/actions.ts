// The dashboard's few buttons (scale, rollback, a node's availability), each one call of the
// control API on this manager's own control socket: the very handlers, checks and forwarding to
// the leader that `shoal service scale`, `service rollback` and `node update --availability` go
// through on this machine. Only a caller the dashboard let in (an admin certificate, or a session
// from `shoal ui`, which only an admin can run) gets here.

import { ShoalError, callUnary } from '@shoal/api';

/** A control call's deadline: a write waits for a quorum (and maybe an election). */
const CALL_TIMEOUT_MS = 20_000;

/** Each action's control method and the request it makes of the page's JSON body. */
const ACTIONS: Record<string, { method: string; request: (b: Record<string, unknown>) => object }> = {
  scale: { method: 'ScaleService', request: (b) => ({ service: str(b, 'service'), replicas: count(b, 'replicas') }) },
  rollback: { method: 'RollbackService', request: (b) => ({ service: str(b, 'service') }) },
  availability: { method: 'UpdateNode', request: (b) => ({ node: str(b, 'node'), availability: str(b, 'availability') }) },
};

export function isAction(name: string): boolean {
  return Object.hasOwn(ACTIONS, name);
}

/** Runs an action through the control socket `socket`; throws the control API's ShoalError. */
export async function runAction(socket: string, name: string, body: Record<string, unknown>): Promise<void> {
  const a = ACTIONS[name];
  if (!a) throw new ShoalError('NOT_FOUND', `no action ${name}`);
  await callUnary('shoal.control.Control', `unix://${socket}`, a.method, a.request(body), CALL_TIMEOUT_MS);
}

function str(b: Record<string, unknown>, key: string): string {
  const v = b[key];
  if (typeof v !== 'string' || v === '') throw new ShoalError('INVALID_ARGUMENT', `${key} is required`);
  return v;
}

function count(b: Record<string, unknown>, key: string): number {
  const v = Number(b[key]);
  if (!Number.isSafeInteger(v) || v < 0) throw new ShoalError('INVALID_ARGUMENT', `${key} must be a whole number, 0 or more (not ${JSON.stringify(b[key])})`);
  return v;
}

/** The HTTP status of a control API error, for the page. */
export function httpStatusOf(err: unknown): number {
  const code = ShoalError.is(err) ? err.code : 'INTERNAL';
  switch (code) {
    case 'INVALID_ARGUMENT':
      return 400;
    case 'NOT_FOUND':
      return 404;
    case 'FAILED_PRECONDITION':
    case 'ALREADY_EXISTS':
      return 409;
    case 'PERMISSION_DENIED':
      return 403;
    case 'UNAVAILABLE':
    case 'NOT_LEADER':
      return 503;
    default:
      return 500;
  }
}
