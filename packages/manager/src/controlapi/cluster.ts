// The control API's cluster calls (`shoal swarm ...`): status, join tokens, cluster-wide
// settings (autolock among them), and admin certificates signed by the cluster's CA.

import { ShoalError } from '@shoal/api';
import { DEFAULT_ADMIN_CERT_EXPIRY_MS, UnlockKey, identityOfPem, sealContext, signCsr } from '@shoal/pki';
import { CERT_EXPIRY, type DurationRange, type GetJoinTokenRequest, HEARTBEAT_PERIOD, SpecError, checkDurationIn } from '@shoal/types';
import { type Cluster, isLegacyCaKey, newId, updateOp } from '@shoal/store';
import { newJoinToken } from '@shoal/pki';
import { longestCertValidityMs } from '../removed-nodes.js';
import { type ControlContext, read, update } from './context.js';

export async function clusterStatus(ctx: ControlContext) {
  const store = await read(ctx);
  const cluster = store.cluster();
  return ctx.membership.clusterStatus(cluster?.id ?? '');
}

export async function getJoinToken(ctx: ControlContext, req: GetJoinTokenRequest): Promise<{ token: string }> {
  const role = req.role;
  if (role !== 'worker' && role !== 'manager') throw new ShoalError('INVALID_ARGUMENT', `role must be worker or manager, not ${role || '(empty)'}`);
  if (req.rotate) {
    await update(ctx, (store) => {
      const c = store.cluster();
      if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
      const joinTokens = { ...c.joinTokens, [role]: newJoinToken(c.caFingerprint) };
      return [updateOp('cluster', { ...c, joinTokens, updatedAt: ctx.now() })];
    });
  }
  const store = await read(ctx);
  const c = store.cluster();
  if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
  return { token: c.joinTokens[role] };
}

/**
 * Another admin certificate (`shoal swarm admin-cert`): the caller made the key and sends only a
 * CSR; the name and role come from here. Admin certificates are not renewed: this is how a new
 * one is had before the old one expires, or one per operator.
 */
export async function issueAdminCertificate(
  ctx: ControlContext,
  req: { csr?: unknown; expiryMs?: unknown },
): Promise<{ cert: string; caCert: string; name: string; notAfterMs: number }> {
  const expiryMs = settingMs(req.expiryMs, '--expiry', CERT_EXPIRY) || DEFAULT_ADMIN_CERT_EXPIRY_MS;
  const c = (await read(ctx)).cluster();
  if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
  const name = `admin-${newId().slice(0, 12)}`;
  const cert = await signCsr(ctx.ca(), typeof req.csr === 'string' ? req.csr : '', { nodeId: name, role: 'admin', clusterId: c.id }, expiryMs);
  return { cert, caCert: c.caCert, name, notAfterMs: identityOfPem(cert)!.notAfter };
}

/**
 * Cluster-wide settings (`shoal swarm update`): new certificates get the new validity; autolock
 * (applied only when changeAutolock is set) gives the cluster an unlock key, or takes it away,
 * and every manager re-wraps its kek.json as the cluster object then says (ca/autolock.ts).
 */
export async function updateCluster(
  ctx: ControlContext,
  req: { certExpiryMs?: unknown; heartbeatPeriodMs?: unknown; changeAutolock?: unknown; autolock?: unknown },
): Promise<{ certExpiryMs: number; heartbeatPeriodMs: number; autolock: boolean; unlockKey: string }> {
  const certExpiryMs = settingMs(req.certExpiryMs, '--cert-expiry', CERT_EXPIRY);
  const heartbeatPeriodMs = settingMs(req.heartbeatPeriodMs, '--dispatcher-heartbeat', HEARTBEAT_PERIOD);
  const autolock = req.changeAutolock === true ? req.autolock === true : undefined;
  if (certExpiryMs || heartbeatPeriodMs || autolock !== undefined) {
    await update(ctx, (store) => {
      const c = store.cluster();
      if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
      const spec = { ...c.spec, ...(certExpiryMs ? { certExpiryMs } : {}), ...(heartbeatPeriodMs ? { heartbeatPeriodMs } : {}) };
      // Certificates issued under a longer validity outlive a lowering: removed nodes stay listed for them.
      const longestCertExpiryMs = longestCertValidityMs(c);
      // Turning autolock on again keeps the key in force (the operator may hold it already).
      const unlockKey = autolock === undefined ? c.unlockKey : autolock ? (c.unlockKey ?? sealUnlockKey(ctx, c, UnlockKey.generate())) : null;
      return [updateOp('cluster', { ...c, spec, longestCertExpiryMs, unlockKey, updatedAt: ctx.now() })];
    });
  }
  const c = (await read(ctx)).cluster();
  if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
  return {
    certExpiryMs: c.spec.certExpiryMs,
    heartbeatPeriodMs: c.spec.heartbeatPeriodMs,
    autolock: c.unlockKey !== null,
    // The key in force whenever this call asked for autolock: the operator must be shown it.
    unlockKey: autolock === true ? openUnlockKey(ctx, c) : '',
  };
}

/**
 * The unlock key (`shoal swarm unlock-key`), or a new one (`--rotate`): each manager re-wraps its
 * kek.json with it as soon as it sees the change; a manager down meanwhile still opens with the
 * previous key, and re-wraps once it is unlocked. Empty when autolock is off.
 */
export async function getUnlockKey(ctx: ControlContext, req: { rotate?: unknown }): Promise<{ unlockKey: string }> {
  if (req.rotate === true) {
    await update(ctx, (store) => {
      const c = store.cluster();
      if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
      if (!c.unlockKey) throw new ShoalError('FAILED_PRECONDITION', 'cannot rotate the unlock key: autolock is off (turn it on with shoal swarm update --autolock true)');
      return [updateOp('cluster', { ...c, unlockKey: sealUnlockKey(ctx, c, UnlockKey.generate()), updatedAt: ctx.now() })];
    });
  }
  const c = (await read(ctx)).cluster();
  if (!c) throw new ShoalError('FAILED_PRECONDITION', 'the cluster is not initialized');
  return { unlockKey: openUnlockKey(ctx, c) };
}

/** A manager that serves the control API is unlocked (a locked one answers this call from its daemon). */
export async function unlockManager(): Promise<never> {
  throw new ShoalError('FAILED_PRECONDITION', 'this manager is not locked');
}

/** Sealed with the key the CA key is sealed with: the one every manager holds. */
function sealUnlockKey(ctx: ControlContext, c: Cluster, key: UnlockKey) {
  const kek = ctx.kek();
  if (c.caKey && !isLegacyCaKey(c.caKey) && c.caKey.kekId !== kek.id) {
    throw new ShoalError('FAILED_PRECONDITION', "this manager does not hold the cluster's key-encryption key yet (its renewal brings it): try again in a moment, or on another manager");
  }
  return kek.seal(key.toString(), sealContext.unlockKey(c.id));
}

function openUnlockKey(ctx: ControlContext, c: Cluster): string {
  return c.unlockKey ? ctx.kek().open(c.unlockKey, sealContext.unlockKey(c.id)) : '';
}

/** A duration setting from a client: 0 (unset on the wire) leaves it as it is; else within its range. */
function settingMs(v: unknown, flag: string, range: DurationRange): number {
  const n = Number(v ?? 0);
  if (n === 0) return 0;
  try {
    return checkDurationIn(n, range, flag);
  } catch (err) {
    if (err instanceof SpecError) throw new ShoalError('INVALID_ARGUMENT', err.message);
    throw err;
  }
}
