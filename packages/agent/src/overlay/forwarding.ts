// A network's forwarding state toward other nodes, converged to exactly the desired set by
// applying only the difference: on the VXLAN device, an all-zero MAC FDB entry per remote peer
// (broadcast and unknown unicast are flooded to every peer, flannel's and libnetwork's head-end
// replication) and a MAC → peer entry per remote endpoint; a permanent neighbour (ARP) entry per
// remote endpoint, which the device's ARP proxy answers from.

import { FLOOD_MAC, macOfIp } from './addresses.js';
import type { Iproute } from './iproute.js';
import { vxlanName } from './names.js';
import type { RemoteEndpoint, RemotePeer } from './types.js';

interface FdbRow {
  readonly mac: string;
  readonly dst?: string;
  readonly master?: string;
}

interface NeighRow {
  readonly dst: string;
  readonly lladdr?: string;
  readonly state?: readonly string[];
}

export interface ForwardingChanges {
  readonly fdbAdded: number;
  readonly fdbRemoved: number;
  readonly neighAdded: number;
  readonly neighRemoved: number;
}

const fdbKey = (mac: string, dst: string): string => `${mac.toLowerCase()} ${dst}`;

export async function convergeForwarding(
  ip: Iproute,
  vni: number,
  peers: readonly RemotePeer[],
  endpoints: readonly RemoteEndpoint[],
): Promise<ForwardingChanges> {
  const dev = vxlanName(vni);

  const wantFdb = new Map<string, { mac: string; dst: string }>();
  for (const p of peers) wantFdb.set(fdbKey(FLOOD_MAC, p.underlay), { mac: FLOOD_MAC, dst: p.underlay });
  const wantNeigh = new Map<string, string>();
  for (const e of endpoints) {
    const mac = (e.mac ?? macOfIp(e.ip)).toLowerCase();
    wantFdb.set(fdbKey(mac, e.peer), { mac, dst: e.peer });
    wantNeigh.set(e.ip, mac);
  }

  // Only the device's own (remote) entries have a dst; the bridge's learnt ones (master) do not.
  const haveFdb = new Map<string, { mac: string; dst: string }>();
  for (const row of await ip.query<FdbRow>('bridge', ['fdb', 'show', 'dev', dev])) {
    if (row.dst !== undefined && row.master === undefined) haveFdb.set(fdbKey(row.mac, row.dst), { mac: row.mac, dst: row.dst });
  }
  const haveNeigh = new Map<string, string>();
  for (const row of await ip.query<NeighRow>('ip', ['neigh', 'show', 'dev', dev])) {
    if (row.lladdr !== undefined) haveNeigh.set(row.dst, row.lladdr.toLowerCase());
  }

  let fdbRemoved = 0;
  for (const [key, e] of haveFdb) {
    if (wantFdb.has(key)) continue;
    await ip.run('bridge', ['fdb', 'del', e.mac, 'dev', dev, 'dst', e.dst]);
    fdbRemoved++;
  }
  let fdbAdded = 0;
  for (const [key, e] of wantFdb) {
    if (haveFdb.has(key)) continue;
    // append: several peers share the all-zero MAC, each its own entry.
    await ip.run('bridge', ['fdb', 'append', e.mac, 'dev', dev, 'dst', e.dst, 'self', 'permanent']);
    fdbAdded++;
  }
  let neighRemoved = 0;
  for (const addr of haveNeigh.keys()) {
    if (wantNeigh.has(addr)) continue;
    await ip.run('ip', ['neigh', 'del', addr, 'dev', dev]);
    neighRemoved++;
  }
  let neighAdded = 0;
  for (const [addr, mac] of wantNeigh) {
    if (haveNeigh.get(addr) === mac) continue;
    await ip.run('ip', ['neigh', 'replace', addr, 'lladdr', mac, 'dev', dev, 'nud', 'permanent']);
    neighAdded++;
  }
  return { fdbAdded, fdbRemoved, neighAdded, neighRemoved };
}
