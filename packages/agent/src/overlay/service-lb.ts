// Services' virtual IPs, balanced in the CLIENT's network namespace, as Docker does with IPVS in
// each container's namespace; this kernel has no IPVS, so it is nftables in kube-proxy's shape.
//
// One table (`ip shoal_lb`) in the client container's namespace: its `nat` chain, hooked on output
// (the container is the client: its traffic is locally generated), DNATs every packet to a VIP to
// one of the service's running tasks, chosen round robin per new connection (`numgen inc`), every
// protocol and port, the destination port kept. The counter is the rule's, so each client goes
// round robin on its own; each client's map starts at another backend (rotated by a digest of its
// namespace's name), else every client's first connection would go to the same task. The client's own address stays the source (no
// SNAT, no hairpin): the DNAT'd packet crosses the overlay's L2 like any other toward a task, and
// the replies are un-NATed by this namespace's conntrack. A VIP with no running task is refused at
// once (TCP reset, ICMP port unreachable) by a filter chain, since nat chains cannot reject: a
// client fails fast instead of waiting on a black hole.
//
// Every change is one `nft -f` transaction that deletes and remakes the table, so no packet sees a
// half-updated set and any previous content (a restarted agent's, a hand edit) is replaced. The
// previous state is read back from the kernel (not kept in memory), which also tells which
// connections went to tasks that are no longer backends: their conntrack entries are deleted, so
// a client's next packet on them is balanced anew instead of going on to a task that is gone.

import { createHash } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { ShoalError } from '@shoal/api';
import { parseIPv4 } from '@shoal/types';
import { Netfilter, type NetfilterOptions, type NftJson } from './netfilter.js';

export interface ServiceVip {
  readonly vip: string;
  /** Running tasks' overlay IPs; empty when none is running (the VIP then refuses connections). */
  readonly backends: readonly string[];
}

export interface LbChanges {
  /** VIPs that were not in the table. */
  readonly added: readonly string[];
  /** VIPs that are no longer in it. */
  readonly removed: readonly string[];
  /** VIPs whose backends changed (to none included). */
  readonly changed: readonly string[];
  /** Conntrack entries deleted: connections to a VIP on a task that no longer backs it. */
  readonly conntrackDeleted: number;
  /** False when the table already was what was asked for (no transaction ran). */
  readonly applied: boolean;
}

export type ServiceLbOptions = Pick<NetfilterOptions, 'onCommand'>;

const FAMILY = 'ip';
const TABLE = 'shoal_lb';
const NAT_CHAIN = 'nat';
const REFUSE_CHAIN = 'refuse';
const REFUSED_SET = 'refused';
/** Output's NAT priority (the `dstnat` keyword is prerouting's only). */
const NAT_PRIORITY = -100;

/** VIP → its backends, sorted by address. */
type LbState = Map<string, readonly string[]>;

const byAddress = (a: string, b: string): number => parseIPv4(a)! - parseIPv4(b)!;

function desiredState(vips: readonly ServiceVip[]): LbState {
  const state: LbState = new Map();
  for (const v of vips) {
    for (const addr of [v.vip, ...v.backends]) {
      if (!isIPv4(addr)) throw new ShoalError('INVALID_ARGUMENT', `service VIP ${v.vip}: not an IPv4 address: ${addr}`);
    }
    if (state.has(v.vip)) throw new ShoalError('INVALID_ARGUMENT', `service VIP ${v.vip} is given twice`);
    state.set(v.vip, [...new Set(v.backends)].sort(byAddress));
  }
  return state;
}

/** The backends in the order of the namespace's map: sorted, then rotated by a digest of `netns`. */
function mapOrder(netns: string, backends: readonly string[]): string[] {
  const k = createHash('sha256').update(netns).digest().readUInt32BE(0) % Math.max(backends.length, 1);
  return [...backends.slice(k), ...backends.slice(0, k)];
}

function ruleset(netns: string, state: LbState): string {
  const balanced = [...state].filter(([, b]) => b.length > 0);
  const refused = [...state].filter(([, b]) => b.length === 0).map(([vip]) => vip);
  const lines = [
    // The first line makes the table if it is missing, so that the delete never fails.
    `table ${FAMILY} ${TABLE}`,
    `delete table ${FAMILY} ${TABLE}`,
    `table ${FAMILY} ${TABLE} {`,
    `  set ${REFUSED_SET} {`,
    '    type ipv4_addr',
    ...(refused.length > 0 ? [`    elements = { ${refused.join(', ')} }`] : []),
    '  }',
    `  chain ${NAT_CHAIN} {`,
    `    type nat hook output priority ${NAT_PRIORITY}; policy accept;`,
    ...balanced.map(([vip, backends]) => {
      const map = mapOrder(netns, backends).map((b, i) => `${i} : ${b}`).join(', ');
      return `    ip daddr ${vip} dnat to numgen inc mod ${backends.length} map { ${map} }`;
    }),
    '  }',
    `  chain ${REFUSE_CHAIN} {`,
    '    type filter hook output priority 0; policy accept;',
    `    ip daddr @${REFUSED_SET} meta l4proto tcp reject with tcp reset`,
    `    ip daddr @${REFUSED_SET} reject`,
    '  }',
    '}',
  ];
  return `${lines.join('\n')}\n`;
}

// ------------------------------------------------------------------ reading the table back

interface Parsed {
  /** VIP → backends in map order. */
  readonly state: LbState;
  /** True when the table is exactly what ruleset() makes of `state`; else it is rewritten. */
  readonly exact: boolean;
}

type Json = Record<string, unknown>;
const obj = (v: unknown): Json | undefined => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Json) : undefined);

/** `ip daddr == ADDR` (or `@set`): the right-hand side, or undefined when the expression is another. */
function daddrMatch(e: unknown): string | undefined {
  const m = obj(obj(e)?.match);
  const p = obj(obj(m?.left)?.payload);
  if (m?.op !== '==' || p?.protocol !== 'ip' || p.field !== 'daddr' || typeof m.right !== 'string') return undefined;
  return m.right;
}

/** `dnat to numgen inc mod N map { 0 : b0, … }`: the backends in map order, or undefined. */
function dnatBackends(e: unknown): string[] | undefined {
  const map = obj(obj(obj(obj(e)?.dnat)?.addr)?.map);
  const ng = obj(obj(map?.key)?.numgen);
  const pairs = obj(map?.data)?.set;
  if (ng?.mode !== 'inc' || (ng.offset ?? 0) !== 0 || !Array.isArray(pairs) || ng.mod !== pairs.length) return undefined;
  const backends: string[] = [];
  for (const [i, pair] of pairs.entries()) {
    if (!Array.isArray(pair) || pair[0] !== i || typeof pair[1] !== 'string') return undefined;
    backends.push(pair[1]);
  }
  return backends;
}

function parseTable(netns: string, json: NftJson): Parsed {
  const state: LbState = new Map();
  let exact = true;
  const chains = new Map<string, Json>();
  const sets = new Map<string, Json>();
  const rules: Json[] = [];
  for (const item of json.nftables) {
    const [kind, value] = Object.entries(item)[0] ?? [];
    const v = obj(value);
    if (kind === 'chain' && v !== undefined) chains.set(String(v.name), v);
    else if (kind === 'set' && v !== undefined) sets.set(String(v.name), v);
    else if (kind === 'rule' && v !== undefined) rules.push(v);
    else if (kind !== 'metainfo' && kind !== 'table') exact = false;
  }
  const nat = chains.get(NAT_CHAIN);
  const refuse = chains.get(REFUSE_CHAIN);
  const set = sets.get(REFUSED_SET);
  if (
    chains.size !== 2 || sets.size !== 1 ||
    nat?.type !== 'nat' || nat.hook !== 'output' || nat.prio !== NAT_PRIORITY || nat.policy !== 'accept' ||
    refuse?.type !== 'filter' || refuse.hook !== 'output' || refuse.prio !== 0 || refuse.policy !== 'accept' ||
    set?.type !== 'ipv4_addr'
  ) {
    exact = false;
  }

  let refuseRules = 0;
  for (const rule of rules) {
    const expr = Array.isArray(rule.expr) ? rule.expr : [];
    if (rule.chain === NAT_CHAIN) {
      const vip = daddrMatch(expr[0]);
      const backends = expr.length === 2 ? dnatBackends(expr[1]) : undefined;
      if (vip === undefined || backends === undefined || state.has(vip)) {
        exact = false;
        continue;
      }
      state.set(vip, backends);
      if (backends.join() !== mapOrder(netns, [...backends].sort(byAddress)).join()) exact = false;
    } else if (rule.chain === REFUSE_CHAIN && daddrMatch(expr[0]) === `@${REFUSED_SET}` && obj(expr.at(-1))?.reject !== undefined) {
      refuseRules++;
    } else {
      exact = false;
    }
  }
  if (refuseRules !== 2) exact = false;
  for (const elem of Array.isArray(set?.elem) ? set.elem : []) {
    if (typeof elem !== 'string' || state.has(elem)) {
      exact = false;
      continue;
    }
    state.set(elem, []);
  }
  return { state, exact };
}

/** The VIPs balanced in the namespace as the kernel has them; undefined when there is no table. */
export async function readServiceLb(netns: string, opts: ServiceLbOptions = {}): Promise<ServiceVip[] | undefined> {
  const json = await new Netfilter({ ...opts, netns }).listTable(FAMILY, TABLE);
  if (json === undefined) return undefined;
  return [...parseTable(netns, json).state]
    .map(([vip, backends]) => ({ vip, backends: [...backends].sort(byAddress) }))
    .sort((a, b) => byAddress(a.vip, b.vip));
}

// ------------------------------------------------------------------ converging

const sameBackends = (a: readonly string[], b: readonly string[]): boolean => a.join() === b.join();

/** Converges the namespace's VIPs to exactly `vips` (one transaction), then drops stale connections. */
export async function applyServiceLb(netns: string, vips: readonly ServiceVip[], opts: ServiceLbOptions = {}): Promise<LbChanges> {
  const want = desiredState(vips);
  const nf = new Netfilter({ ...opts, netns });
  const json = await nf.listTable(FAMILY, TABLE);
  const have = json === undefined ? { state: new Map() as LbState, exact: false } : parseTable(netns, json);

  const added = [...want.keys()].filter((vip) => !have.state.has(vip));
  const removed = [...have.state.keys()].filter((vip) => !want.has(vip));
  const changed = [...want].filter(([vip, b]) => have.state.has(vip) && !sameBackends([...have.state.get(vip)!].sort(byAddress), b)).map(([vip]) => vip);
  if (have.exact && added.length === 0 && removed.length === 0 && changed.length === 0) {
    return { added, removed, changed, conntrackDeleted: 0, applied: false };
  }

  await nf.transaction(ruleset(netns, want));

  let conntrackDeleted = 0;
  for (const [vip, before] of have.state) {
    const now = new Set(want.get(vip) ?? []);
    for (const backend of before) {
      if (!now.has(backend)) conntrackDeleted += await nf.deleteConntrack(['-d', vip, '-r', backend]);
    }
  }
  for (const [vip, backends] of want) {
    // Connections to a VIP that had no backend (or no rule) were never NATed and never will be
    // (NAT is decided on a connection's first packet): a UDP client would go on sending into the
    // void. Their entries go, so the next packet is balanced.
    if (backends.length > 0 && (have.state.get(vip)?.length ?? 0) === 0) {
      conntrackDeleted += await nf.deleteConntrack(['-d', vip, '-r', vip]);
    }
  }
  return { added, removed, changed, conntrackDeleted, applied: true };
}

/** Removes the namespace's table (and with it every VIP); nothing to remove is fine. */
export async function removeServiceLb(netns: string, opts: ServiceLbOptions = {}): Promise<void> {
  const nf = new Netfilter({ ...opts, netns });
  if ((await nf.listTable(FAMILY, TABLE)) === undefined) return;
  await nf.transaction(`table ${FAMILY} ${TABLE}\ndelete table ${FAMILY} ${TABLE}\n`);
}
