// The control API's network calls (`shoal network ...`). A create proposes the network without a
// subnet or VNI when the user gave none: the store allocates them as it applies the create (see
// @shoal/store networks.ts), so concurrent creates on any manager never get the same ones.

import { ShoalError } from '@shoal/api';
import { type CreateNetworkRequest, type GetNetworkRequest, type Network, type RemoveNetworkRequest, deleteOp, newId } from '@shoal/store';
import { type NetworkSpecInput, SpecError, completeNetworkSpec } from '@shoal/types';
import { type ControlContext, commit, read, required } from './context.js';

function validateNetworkSpec(input: NetworkSpecInput | null | undefined) {
  try {
    return completeNetworkSpec(input);
  } catch (err) {
    if (err instanceof SpecError) throw new ShoalError('INVALID_ARGUMENT', err.message);
    throw err;
  }
}

export async function createNetwork(ctx: ControlContext, req: CreateNetworkRequest): Promise<{ network: Network }> {
  const spec = validateNetworkSpec(req.spec as NetworkSpecInput);
  const now = ctx.now();
  const network: Network = { id: newId(), version: 0, createdAt: now, updatedAt: now, spec, subnet: '', gateway: '', vni: 0 };
  await commit(ctx, [{ op: 'create', kind: 'network', object: network }]);
  return { network: ctx.store.get('network', network.id) as Network };
}

export async function getNetwork(ctx: ControlContext, req: GetNetworkRequest): Promise<{ network: Network }> {
  const store = await read(ctx);
  return { network: store.resolveNetwork(required(req.network, 'network')) };
}

export async function listNetworks(ctx: ControlContext): Promise<{ networks: Network[] }> {
  const store = await read(ctx);
  return { networks: store.list('network').sort((a, b) => a.spec.name.localeCompare(b.spec.name)) };
}

export async function removeNetwork(ctx: ControlContext, req: RemoveNetworkRequest): Promise<{ id: string }> {
  const store = await read(ctx);
  const n = store.resolveNetwork(required(req.network, 'network'));
  await commit(ctx, [deleteOp('network', n)]);
  return { id: n.id };
}
