// The control API's network calls (`shoal network ...`). A create proposes the network without a
// subnet or VNI when the user gave none: the store allocates them as it applies the create (see
// @shoal/store networks.ts), so concurrent creates on any manager never get the same ones.

import { ShoalError } from '@shoal/api';
import { type ClusterStore, type ServiceSpec, type CreateNetworkRequest, type GetNetworkRequest, type Network, type RemoveNetworkRequest, deleteOp, newId } from '@shoal/store';
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

/**
 * A service spec with its networks named by id (a client may give a name, an id or a unique id
 * prefix); an unknown network is refused, naming it. The store checks the ids again as it applies.
 */
export function attachNetworks(store: ClusterStore, spec: ServiceSpec): ServiceSpec {
  if (spec.networks.length === 0) return spec;
  const seen = new Set<string>();
  const networks = spec.networks.map((n) => {
    let id: string;
    try {
      const net = store.resolveNetwork(n.target);
      // As Swarm: the routing mesh puts services with published ports on it, not the user.
      if (net.spec.ingress) throw new ShoalError('INVALID_ARGUMENT', `a service cannot be attached to the ingress network "${net.spec.name}": publish a port (--publish) to be reachable through it`);
      id = net.id;
    } catch (err) {
      if (err instanceof ShoalError && err.code === 'NOT_FOUND') {
        throw new ShoalError('INVALID_ARGUMENT', `unknown network "${n.target}" (no network has this name or id: shoal network ls lists them)`);
      }
      throw err;
    }
    if (seen.has(id)) throw new ShoalError('INVALID_ARGUMENT', `network "${n.target}" is given twice`);
    seen.add(id);
    return { target: id, aliases: n.aliases };
  });
  return { ...spec, networks };
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
