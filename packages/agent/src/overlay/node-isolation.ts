// The node's own namespace against its overlays: since every network's bridge carries the
// network's gateway address, the node is on every network and would route between them (and
// between them and the host's other interfaces) and answer anything sent to it. One table
// (`inet shoal_overlay`) keeps each network to itself:
//
// - forward: nothing is routed from or to a `shbr*` bridge. The rules cannot simply drop every
//   packet whose in- or output device is a bridge: with br_netfilter (bridge-nf-call-iptables, on
//   by default and wherever Docker runs) frames BRIDGED between a network's ports also pass this
//   hook, in and out device both the bridge, and must go on; and nft cannot compare the in and out
//   device with each other (nor has it iptables' physdev match). What tells them apart is the
//   node's routes: a bridge with an address has the route to its subnet, so a frame bridged on it
//   has its destination's route through its input device (`fib daddr . iif oif exists`); a bridge
//   without an address has no route of the node leading into it, so a frame bridged on it goes out
//   through a bridge while its destination's route (if any) does not (`fib daddr oifname` is not
//   a bridge). A routed packet is neither: it leaves through the device of its destination's route,
//   which is not the one it came in by. Everything else to or from a bridge is dropped.
// - input: from a bridge, only DNS (udp/tcp 53) to that bridge's own address (the network's
//   gateway, `fib daddr . iif type local`) and replies to what the node sent; nothing else from an
//   overlay reaches the node (not another network's gateway, not the node's other addresses).
//
// - the ingress network's bridge (`ingressBridge`) is the routing mesh's: connections the mesh's
//   kernel rules DNATed (to another node's ingress address, or from there to a local replica) are
//   routed through it, both ways; nothing else is.
//
// - Docker's own FORWARD chain (iptables, policy DROP wherever Docker runs) would drop the frames
//   bridged on a network's bridge (br_netfilter hands them to every forward hook): one rule in its
//   DOCKER-USER chain (or FORWARD, without Docker) accepts traffic from a bridge to a bridge, as
//   flannel accepts its pods' traffic. It opens nothing this table closes: a drop in any table wins.
//
// Applied as one `nft -f` transaction that remakes the table; a marker with a digest of the ruleset
// on every rule tells a converge that the table already is this version.

import { createHash } from 'node:crypto';
import { ShoalError } from '@shoal/api';
import { Netfilter, type NetfilterOptions, type NftJson } from './netfilter.js';
import { DEVICE_PREFIX } from './names.js';

const FAMILY = 'inet';
const TABLE = 'shoal_overlay';
const BRIDGES = `${DEVICE_PREFIX}br*`;

export interface NodeIsolationOptions extends NetfilterOptions {
  /** The ingress network's bridge on this node, when it is on it. */
  readonly ingressBridge?: string;
}

function body(marker: string, ingressBridge: string | undefined): string[] {
  const c = `comment "${marker}"`;
  const ingress = ingressBridge === undefined ? [] : [
    `    iifname "${ingressBridge}" ct status dnat accept ${c}`,
    `    oifname "${ingressBridge}" ct status dnat accept ${c}`,
  ];
  return [
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    ...ingress,
    `    iifname "${BRIDGES}" fib daddr . iif oif exists accept ${c}`,
    `    iifname "${BRIDGES}" oifname "${BRIDGES}" fib daddr oifname != "${BRIDGES}" accept ${c}`,
    `    iifname "${BRIDGES}" drop ${c}`,
    `    oifname "${BRIDGES}" drop ${c}`,
    '  }',
    '  chain input {',
    '    type filter hook input priority 0; policy accept;',
    `    iifname "${BRIDGES}" ct state established,related accept ${c}`,
    `    iifname "${BRIDGES}" meta l4proto { tcp, udp } th dport 53 fib daddr . iif type local accept ${c}`,
    `    iifname "${BRIDGES}" drop ${c}`,
    '  }',
  ];
}

/** The marker of a version of the rules (the ingress bridge is part of it). */
const markerOf = (ingressBridge: string | undefined): string => `shoal:${createHash('sha256').update(body('', ingressBridge).join('\n')).digest('hex').slice(0, 12)}`;

function ruleset(ingressBridge: string | undefined): string {
  return [`table ${FAMILY} ${TABLE}`, `delete table ${FAMILY} ${TABLE}`, `table ${FAMILY} ${TABLE} {`, ...body(markerOf(ingressBridge), ingressBridge), '}', ''].join('\n');
}

/** True when the table holds this version's rules and nothing else. */
function isCurrent(json: NftJson, ingressBridge: string | undefined): boolean {
  const marker = markerOf(ingressBridge);
  let rules = 0;
  let chains = 0;
  for (const item of json.nftables) {
    if ('chain' in item) chains++;
    else if ('rule' in item) {
      if ((item.rule as { comment?: string }).comment !== marker) return false;
      rules++;
    } else if (!('metainfo' in item) && !('table' in item)) return false;
  }
  return chains === 2 && rules === body('', ingressBridge).filter((l) => l.includes('comment')).length;
}

const BRIDGED = ['-i', `${DEVICE_PREFIX}br+`, '-o', `${DEVICE_PREFIX}br+`, '-j', 'ACCEPT'];

/** The accept of bridged overlay frames in iptables' FORWARD path (no iptables: nothing to do). */
async function acceptBridgedInIptables(nf: Netfilter): Promise<void> {
  let chain = 'DOCKER-USER';
  try {
    if ((await nf.iptables(['-S', chain], false)) !== 0) chain = 'FORWARD';
    if ((await nf.iptables(['-C', chain, ...BRIDGED], false)) === 0) return;
  } catch {
    return; // no iptables on this node: no FORWARD policy to pass either
  }
  const code = await nf.iptables(['-I', chain, '1', ...BRIDGED]);
  if (code !== 0) throw new ShoalError('INTERNAL', `iptables -I ${chain} 1 ${BRIDGED.join(' ')}${nf.netns ? ` (netns ${nf.netns})` : ''}: exit code ${code}`);
}

/** Makes (or keeps) the node's isolation table; true when it had to be (re)written. */
export async function ensureNodeIsolation(opts: NodeIsolationOptions = {}): Promise<boolean> {
  const nf = new Netfilter(opts);
  await acceptBridgedInIptables(nf);
  const json = await nf.listTable(FAMILY, TABLE);
  if (json !== undefined && isCurrent(json, opts.ingressBridge)) return false;
  await nf.transaction(ruleset(opts.ingressBridge));
  return true;
}

/** Removes the node's isolation table; nothing to remove is fine. */
export async function removeNodeIsolation(opts: NodeIsolationOptions = {}): Promise<void> {
  const nf = new Netfilter(opts);
  for (const chain of ['DOCKER-USER', 'FORWARD']) {
    while ((await nf.iptables(['-C', chain, ...BRIDGED], false).catch(() => 1)) === 0) await nf.iptables(['-D', chain, ...BRIDGED]);
  }
  if ((await nf.listTable(FAMILY, TABLE)) === undefined) return;
  await nf.transaction(`table ${FAMILY} ${TABLE}\ndelete table ${FAMILY} ${TABLE}\n`);
}
