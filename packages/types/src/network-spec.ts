// A network's rules, in one place: its shape (what the store takes in), the rules a new spec must
// pass at the edge (the control API and the CLI run completeNetworkSpec), and the IPv4 arithmetic
// of subnets that the store's address allocation uses (the default pool, overlap, gateways).

import { type Check, bool, int, obj, oneOf, str, stringMap, uint, withDefault } from './check.js';
import { NETWORK_DRIVERS } from './enums.js';
import type { IPAMConfig, Network, NetworkSpec } from './objects.js';
import { checkDnsLabel, labelMap, memberOf } from './service-spec.js';
import { invalid } from './spec-error.js';

const q = (s: string): string => JSON.stringify(s);

/** Swarm's default address pool: 10.0.0.0/8, handed out in /24s. */
export const DEFAULT_POOL = { base: '10.0.0.0', prefix: 8, size: 24 } as const;
/**
 * The smallest subnet a network may have: a /29 holds the network and broadcast addresses, the
 * gateway, and 5 tasks or virtual IPs; anything smaller holds too few to be useful.
 */
export const MAX_SUBNET_PREFIX = 29;
/** VXLAN network identifiers start here (Swarm's first overlay VNI); up to 2^24 - 1. */
export const FIRST_VNI = 4096;
export const MAX_VNI = 0xffffff;

// ------------------------------------------------------------------ IPv4

/** A dotted quad as a 32-bit number, or null when it is not one. */
export function parseIPv4(s: string): number | null {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  if (parts.some((p, i) => p > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith('0')))) return null;
  return ((parts[0]! << 24) >>> 0) + (parts[1]! << 16) + (parts[2]! << 8) + parts[3]!;
}

export function formatIPv4(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/** An IPv4 subnet: its first address and prefix length. */
export interface Cidr {
  base: number;
  prefix: number;
}

export function cidrSize(c: Cidr): number {
  return 2 ** (32 - c.prefix);
}

export function formatCidr(c: Cidr): string {
  return `${formatIPv4(c.base)}/${c.prefix}`;
}

/** Parses `A.B.C.D/N`; null when malformed or when host bits are set. */
export function parseCidr(s: string): Cidr | null {
  const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
  if (!m) return null;
  const addr = parseIPv4(m[1]!);
  const prefix = Number(m[2]);
  if (addr === null || prefix > 32) return null;
  const c = { base: addr, prefix };
  return addr % cidrSize(c) === 0 ? c : null;
}

export function overlaps(a: Cidr, b: Cidr): boolean {
  return a.base < b.base + cidrSize(b) && b.base < a.base + cidrSize(a);
}

export function contains(c: Cidr, addr: number): boolean {
  return addr >= c.base && addr < c.base + cidrSize(c);
}

/** The first /size of `pool` that overlaps none of `taken`, or null when the pool is full. */
export function nextFreeSubnet(taken: readonly Cidr[], pool: Cidr = { base: parseIPv4(DEFAULT_POOL.base)!, prefix: DEFAULT_POOL.prefix }, size: number = DEFAULT_POOL.size): Cidr | null {
  const step = 2 ** (32 - size);
  const sorted = [...taken].sort((a, b) => a.base - b.base);
  let base = pool.base;
  const end = pool.base + cidrSize(pool);
  while (base + step <= end) {
    const c = { base, prefix: size };
    const hit = sorted.find((t) => overlaps(t, c));
    if (!hit) return c;
    // Past the subnet in the way, rounded up to the next /size boundary.
    const after = hit.base + cidrSize(hit);
    base = Math.ceil(after / step) * step;
  }
  return null;
}

// ------------------------------------------------------------------ rules (the edge)

/** A subnet as a user gives it (`--subnet`): IPv4 CIDR, no host bits, /29 or larger. */
export function checkSubnet(s: string): Cidr {
  const c = parseCidr(s);
  if (!c) {
    const m = /^([^/]+)\/(\d{1,2})$/.exec(s);
    const addr = m ? parseIPv4(m[1]!) : null;
    if (m && addr !== null && Number(m[2]) <= 32) {
      const prefix = Number(m[2]);
      const base = addr - (addr % 2 ** (32 - prefix));
      invalid(`invalid subnet ${q(s)}: host bits are set (did you mean ${formatCidr({ base, prefix })}?)`);
    }
    invalid(`invalid subnet ${q(s)}: expected an IPv4 CIDR such as 10.1.0.0/24`);
  }
  if (c.prefix > MAX_SUBNET_PREFIX) invalid(`subnet ${q(s)} is too small: a network needs a /${MAX_SUBNET_PREFIX} or larger`);
  return c;
}

export interface NetworkSpecInput {
  name?: string | null;
  driver?: string | null;
  labels?: Record<string, string> | null;
  internal?: boolean | null;
  attachable?: boolean | null;
  ipam?: Partial<IPAMConfig> | null;
}

/** Checks a network spec from a client and fills in the defaults (driver overlay). Throws a SpecError. */
export function completeNetworkSpec(input: NetworkSpecInput | null | undefined): NetworkSpec {
  if (!input) invalid('a network spec is required');
  const name = checkDnsLabel(String(input.name ?? ''), 'network', 'network create NAME');
  const driver = memberOf(input.driver, NETWORK_DRIVERS, 'overlay', 'the network driver');
  const subnet = String(input.ipam?.subnet ?? '');
  const gateway = String(input.ipam?.gateway ?? '');
  if (gateway !== '') {
    const gw = parseIPv4(gateway);
    if (gw === null) invalid(`invalid gateway ${q(gateway)}: expected an IPv4 address`);
    if (subnet === '') invalid(`a gateway (${gateway}) needs its subnet (--subnet)`);
    const c = checkSubnet(subnet);
    if (!contains(c, gw) || gw === c.base || gw === c.base + cidrSize(c) - 1) {
      invalid(`gateway ${gateway} is not a host address of subnet ${subnet}`);
    }
  } else if (subnet !== '') checkSubnet(subnet);
  return {
    name,
    driver,
    labels: labelMap(input.labels, 'labels'),
    internal: input.internal === true,
    attachable: input.attachable === true,
    ipam: { subnet, gateway },
    // Only the leader makes the ingress network (manager/src/allocator/ingress.ts).
    ingress: false,
  };
}

/** The subnet's first host address: the gateway when none is given. */
export function defaultGateway(c: Cidr): string {
  return formatIPv4(c.base + 1);
}

// ------------------------------------------------------------------ shape (the store)

const NETWORK_SPEC_SHAPE = obj<NetworkSpec>({
  name: str({ nonEmpty: true, max: 63 }),
  driver: oneOf(NETWORK_DRIVERS),
  labels: stringMap,
  internal: bool,
  attachable: bool,
  ipam: obj<IPAMConfig>({ subnet: str({ max: 18 }), gateway: str({ max: 15 }) }),
  ingress: withDefault(bool, false),
});

/** A network as the store holds it: its allocation is a valid subnet holding its gateway, and a VNI. */
export const networkShape: Check<Network> = obj<Network>({
  id: str({ nonEmpty: true, max: 256 }),
  version: uint,
  createdAt: int(Number.MIN_SAFE_INTEGER),
  updatedAt: int(Number.MIN_SAFE_INTEGER),
  spec: NETWORK_SPEC_SHAPE,
  subnet: str({ max: 18 }),
  gateway: str({ max: 15 }),
  vni: int(0, MAX_VNI),
});
