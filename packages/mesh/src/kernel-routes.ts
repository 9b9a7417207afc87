// Kernel mode of the routing mesh: iptables DNAT rules that hand a node's LOCAL replicas their
// share of a published port's connections inside the kernel, without the userland proxy's
// accept + connect + two pipes per connection. The Mesh's listener still listens on every port:
// connections the rules do not take (the remote replicas' share, ports without a local replica,
// PROXY protocol ports, everything while the rules are down) reach it as before.
//
// Per node (several nodes may share one machine), chains named from the node id:
//   nat    SHOAL-<id10>       DNAT rules, jumped to from PREROUTING (other hosts) and OUTPUT
//                            (this host) for `-d <address>/32 -p tcp`;
//   nat    SHOAL-<id10>-POST  MASQUERADE of the connections DNAT'ed from <address>:<port>, jumped
//                            to from POSTROUTING (the backend answers to this node, so the reply
//                            is un-NATed: needed for loopback and same-bridge clients);
//   filter SHOAL-<id10>-FWD   ACCEPT of DNAT'ed connections from <address> (Docker's FORWARD
//                            policy is DROP), jumped to from FORWARD.
// The DNAT and POST chains are rewritten together, atomically, with `iptables-restore --noflush`
// (declaring a chain flushes it); the jumps and the FWD chain are installed once.
//
// Spread: of every `n` new connections to a port with `n` backends, `k` of them local, the kernel
// DNATs one to each local backend (`-m statistic --mode nth`, rule i: `--every n-i --packet 0`),
// the `n-k` left fall through to the Mesh's listener, which sends them to the remote backends
// (`PublishedPort.localInKernel`). nat rules see only a connection's first packet: per connection.
//
// With the ingress overlay (`setIngress`: this node's address on the ingress network, and the
// other nodes' there that serve theirs), the remote backends' share stays in the kernel too: one
// slot of the cascade per remote replica, DNATed to `<its node's ingress address>:<port>` and
// SNATed to this node's ingress address (the replica's answer must come back through this node
// to be un-NATed; its client is then this node, as with Swarm's ingress). The other node DNATs
// what arrives at its ingress address to its LOCAL replicas only, keeping that source: nothing is
// forwarded twice. Replicas on a node that does not serve its ingress address stay with userland.
//
// UDP published ports get the same rules with `-p udp` (conntrack makes a flow of a client's
// datagrams, so the cascade spreads flows), over the backends the kernel reaches only (local
// replicas, and the remote ones behind the ingress overlay): the userland proxy forwards no UDP
// to other nodes, so nothing of a UDP port is left to fall through to it.

import { execFile } from 'node:child_process';
import net from 'node:net';
import { lookup } from 'node:dns/promises';
import { parseHostPort } from './addr.js';
import { NOOP_LOGGER, type Logger } from '@shoal/api';
import type { MeshTable } from './types.js';

/** Runs a command (`input` on its stdin); resolves with its stdout, rejects on failure. */
export type CommandRunner = (file: string, args: readonly string[], input?: string) => Promise<string>;

export interface KernelRoutesOptions {
  /** The node's id: names its chains (several nodes may share one machine). */
  nodeId: string;
  /**
   * The node's own IPv4 address: the rules match connections to `address:publishedPort`. A host
   * name (docker-compose's, a lab's) is resolved to its IPv4 address when the routes start.
   */
  address: string;
  logger?: Logger;
  /** Executes iptables, iptables-save, iptables-restore, ip, sysctl. Default: child_process.execFile. */
  run?: CommandRunner;
  /** Table changes within this are applied together. Default 20 ms. */
  debounceMs?: number;
  /** After a failed apply (rules removed, the userland proxy serves), try again after this. Default 5000 ms. */
  retryMs?: number;
  /**
   * How often to check that the jumps are still there (a firewall reload flushes them): if not,
   * everything is installed and applied again. Default 10000 ms; 0: never.
   */
  verifyMs?: number;
  /**
   * The rules could not be applied (`err`: they were removed, every connection goes to the
   * userland proxy until a later apply succeeds), or work again (`null`). The set returned by
   * `update`/`routedPorts` changed: the caller should feed the Mesh again.
   */
  onError?: (err: Error | null) => void;
}

/** This node on the ingress overlay, as the kernel routes use it. */
export interface KernelIngress {
  /** This node's address on the ingress network (bare IPv4). */
  address: string;
  /** The ingress network's subnet: connections DNATed into it are SNATed to `address`. */
  subnet: string;
  /** The ingress address of every other node that serves its own (mesh mode kernel+ingress). */
  nodes: ReadonlyMap<string, string>;
}

/** A published port whose local share the kernel serves. */
export interface KernelPort {
  port: number;
  protocol: 'tcp' | 'udp';
  serviceName: string;
  /** The local backends' container `IP:port` (IPv4), sorted. */
  locals: string[];
  /** One ingress address per remote replica the kernel sends its share to (its node's), sorted. */
  remotes: string[];
  /** How many backends the port spreads over, local and remote. */
  total: number;
  /**
   * Which clients are masqueraded (their source rewritten to the node's address on the bridge):
   * this host's own addresses (loopback, wrk on the node) always, plus these source subnets (the
   * local backends' bridges: a container calling the published port, hairpin). Other clients
   * keep their address: the backend sees the real client, and no NAT port remapping mixes their
   * connections (see README). `undefined`: the subnets are unknown, every client is masqueraded.
   */
  masqSources?: string[];
}

export interface KernelChains {
  nat: string;
  post: string;
  fwd: string;
  /** The comment on the jumps: `shoal node <id>`. */
  comment: string;
}

const NOOP = (): void => {};

/** The chains of a node: `SHOAL-<first 10 chars of its id>` (+ `-POST`, `-FWD`), at most 21 chars. */
export function kernelChains(nodeId: string): KernelChains {
  const id = nodeId.replace(/[^A-Za-z0-9_]/g, '');
  if (!id) throw new Error(`cannot name iptables chains after node id "${nodeId}"`);
  const nat = `SHOAL-${id.slice(0, 10)}`;
  return { nat, post: `${nat}-POST`, fwd: `${nat}-FWD`, comment: `shoal node ${id.slice(0, 40)}` };
}

/**
 * The ports the kernel serves for this node's table: ports with at least one local backend (all
 * of them IPv4), or one behind the ingress overlay, and no PROXY protocol (the kernel cannot
 * write the header).
 */
export function planKernelRoutes(table: MeshTable, ingress?: KernelIngress): KernelPort[] {
  const out: KernelPort[] = [];
  const seen = new Set<string>();
  for (const p of table.ports) {
    const protocol = p.protocol ?? 'tcp';
    const key = `${p.port}/${protocol}`;
    if (!Number.isInteger(p.port) || p.port < 1 || p.port > 65535 || seen.has(key)) continue;
    seen.add(key);
    if (p.proxyProtocol) continue;
    const locals = new Set<string>();
    const remotes = new Set<string>();
    const viaIngress: string[] = [];
    let ipv6 = false;
    for (const b of p.backends) {
      if (b.local) {
        const hp = b.addr === undefined ? undefined : parseHostPort(b.addr);
        if (!hp) continue;
        if (!net.isIPv4(hp.host)) {
          ipv6 = true;
          continue;
        }
        locals.add(`${hp.host}:${hp.port}`);
      } else if (ingress?.nodes.has(b.nodeId)) {
        viaIngress.push(ingress.nodes.get(b.nodeId)!);
      } else if (b.via) {
        remotes.add(`${b.taskId}/${b.targetPort}/${b.via}`);
      }
    }
    if ((locals.size === 0 && viaIngress.length === 0) || ipv6) continue;
    // UDP: the userland proxy forwards none to other nodes, so its remote share is no share.
    const userland = protocol === 'udp' ? 0 : remotes.size;
    out.push({ port: p.port, protocol, serviceName: p.serviceName, locals: [...locals].sort(), remotes: viaIngress.sort(), total: locals.size + viaIngress.length + userland });
  }
  return out.sort((a, b) => a.port - b.port || a.protocol.localeCompare(b.protocol));
}

/** Is the IPv4 address `ip` in `cidr` (a.b.c.d/n)? */
export function inSubnet(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const n = Number(bits);
  if (!base || !net.isIPv4(base) || !net.isIPv4(ip) || !Number.isInteger(n) || n < 0 || n > 32) return false;
  const num = (a: string) => a.split('.').reduce((x, o) => x * 256 + Number(o), 0);
  const size = 2 ** (32 - n);
  return Math.floor(num(ip) / size) === Math.floor(num(base) / size);
}

function commentArg(s: string): string {
  return `"${s.replace(/[^A-Za-z0-9_.:/ -]/g, '').slice(0, 200)}"`;
}

/** The iptables-restore input that rewrites a node's DNAT and POST chains (atomically: one COMMIT). */
export function kernelRulesText(chains: KernelChains, address: string, plan: KernelPort[], ingress?: Omit<KernelIngress, 'nodes'>): string {
  const lines = ['*nat', `:${chains.nat} - [0:0]`, `:${chains.post} - [0:0]`];
  /** One DNAT per slot, each taking 1/n of what is left: every slot gets one connection in `total`. */
  const cascade = (match: string, comment: string, slots: string[], total: number): void => {
    slots.forEach((to, i) => {
      const every = total - i;
      const nth = every > 1 ? ` -m statistic --mode nth --every ${every} --packet 0` : '';
      lines.push(`-A ${chains.nat} ${match} ${comment}${nth} -j DNAT --to-destination ${to}`);
    });
  };
  for (const p of plan) {
    const proto = p.protocol ?? 'tcp';
    const match = `-d ${address}/32 -p ${proto} -m ${proto} --dport ${p.port}`;
    const comment = `-m comment --comment ${commentArg(`${p.serviceName} ${p.port}${proto === 'udp' ? '/udp' : ''}`)}`;
    // A replica calling its own port through the node: DNAT'ed to itself, the packet would have
    // to leave its bridge port the way it came (bridge netfilter, no hairpin mode): left to the
    // userland path instead.
    for (const to of p.locals) lines.push(`-A ${chains.nat} -s ${to.slice(0, to.lastIndexOf(':'))}/32 ${match} ${comment} -j RETURN`);
    const remotes = ingress ? p.remotes.map((ip) => `${ip}:${p.port}`) : [];
    cascade(match, comment, [...p.locals, ...remotes], p.total);
    // Sent here by another node over the ingress overlay: to a local replica, never on again.
    if (ingress && p.locals.length > 0) cascade(`-d ${ingress.address}/32 -p ${proto} -m ${proto} --dport ${p.port}`, comment, p.locals, p.locals.length);
    const ct = `-p ${proto} -m conntrack --ctstate DNAT --ctorigdst ${address}/32 --ctorigdstport ${p.port}`;
    if (remotes.length > 0) lines.push(`-A ${chains.post} -d ${ingress!.subnet} ${ct} -j SNAT --to-source ${ingress!.address}`);
    if (p.masqSources === undefined) {
      lines.push(`-A ${chains.post} ${ct} -j MASQUERADE`);
    } else {
      lines.push(`-A ${chains.post} ${ct} -m addrtype --src-type LOCAL -j MASQUERADE`);
      for (const net of p.masqSources) lines.push(`-A ${chains.post} -s ${net} ${ct} -j MASQUERADE`);
    }
  }
  lines.push('COMMIT', '');
  return lines.join('\n');
}

/** The chains (empty) and the jumps to them (TCP, then UDP), inserted first in the built-in chains. */
export function kernelSetupText(chains: KernelChains, address: string, ingressAddress?: string): string {
  const c = `-m comment --comment ${commentArg(chains.comment)}`;
  const both = (f: (proto: string) => string) => ['tcp', 'udp'].map(f);
  // Connections other nodes send to this node's ingress address: theirs to forward, ours to serve.
  const viaIngress = ingressAddress === undefined ? [] : both((p) => `-I PREROUTING 1 -d ${ingressAddress}/32 -p ${p} ${c} -j ${chains.nat}`);
  const fwdIngress = ingressAddress === undefined ? [] : both((p) => `-A ${chains.fwd} -p ${p} -m conntrack --ctstate DNAT --ctorigdst ${ingressAddress}/32 -j ACCEPT`);
  return [
    '*filter',
    `:${chains.fwd} - [0:0]`,
    ...both((p) => `-A ${chains.fwd} -p ${p} -m conntrack --ctstate DNAT --ctorigdst ${address}/32 -j ACCEPT`),
    ...fwdIngress,
    `-I FORWARD 1 ${c} -j ${chains.fwd}`,
    'COMMIT',
    '*nat',
    `:${chains.nat} - [0:0]`,
    `:${chains.post} - [0:0]`,
    ...both((p) => `-I PREROUTING 1 -d ${address}/32 -p ${p} ${c} -j ${chains.nat}`),
    ...viaIngress,
    ...both((p) => `-I OUTPUT 1 -d ${address}/32 -p ${p} ${c} -j ${chains.nat}`),
    `-I POSTROUTING 1 ${c} -j ${chains.post}`,
    'COMMIT',
    '',
  ].join('\n');
}

/** Splits an iptables-save rule line into arguments (double quotes, backslash escapes). */
export function splitRule(line: string): string[] {
  const out: string[] = [];
  let cur = '';
  let quoted = false;
  let has = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i]!;
    if (ch === '\\' && i + 1 < line.length) {
      cur += line[++i];
      has = true;
    } else if (ch === '"') {
      quoted = !quoted;
      has = true;
    } else if (ch === ' ' && !quoted) {
      if (has) out.push(cur);
      cur = '';
      has = false;
    } else {
      cur += ch;
      has = true;
    }
  }
  if (has) out.push(cur);
  return out;
}

/** What removes a node's chains from one table, given that table's `iptables-save` output. */
export interface Removal {
  /** The jumps to the node's chains, as `-D CHAIN ...` argument lists. */
  deletes: string[][];
  /** The node's chains present in the table. */
  chains: string[];
}

export function findRemoval(chains: KernelChains, save: string): Removal {
  const ours = new Set([chains.nat, chains.post, chains.fwd]);
  const deletes: string[][] = [];
  const present: string[] = [];
  for (const raw of save.split('\n')) {
    const line = raw.trim();
    if (line.startsWith(':')) {
      const name = line.slice(1).split(' ')[0]!;
      if (ours.has(name)) present.push(name);
      continue;
    }
    if (!line.startsWith('-A ')) continue;
    const args = splitRule(line);
    const j = args.lastIndexOf('-j');
    const g = args.lastIndexOf('-g');
    const at = Math.max(j, g);
    if (at < 0 || !ours.has(args[at + 1] ?? '')) continue;
    if (ours.has(args[1]!)) continue; // inside our own chains: flushed with them
    deletes.push(['-D', ...args.slice(1)]);
  }
  return { deletes, chains: present };
}

function quoteArg(a: string): string {
  return /^[A-Za-z0-9_.:/!-]+$/.test(a) ? a : `"${a.replace(/(["\\])/g, '\\$1')}"`;
}

/** iptables-restore input removing a table's jumps and chains ('' when there is nothing). */
export function removalText(table: 'nat' | 'filter', r: Removal): string {
  if (r.deletes.length === 0 && r.chains.length === 0) return '';
  const lines = [`*${table}`];
  for (const d of r.deletes) lines.push(d.map(quoteArg).join(' '));
  for (const c of r.chains) lines.push(`-F ${c}`);
  for (const c of r.chains) lines.push(`-X ${c}`);
  lines.push('COMMIT', '');
  return lines.join('\n');
}

const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** child_process.execFile, with the sbin directories on PATH and `input` written to stdin. */
export const execRunner: CommandRunner = (file, args, input) =>
  new Promise((resolve, reject) => {
    const path = [process.env.PATH ?? '', ...SBIN].filter(Boolean).join(':');
    const child = execFile(file, [...args], { env: { ...process.env, PATH: path }, timeout: 15_000, maxBuffer: 256 * 1024 * 1024 }, (err, stdout, stderr) => {
      if (err) {
        const code = (err as NodeJS.ErrnoException).code;
        const why = code === 'ENOENT' ? `${file} not found (kernel mesh mode needs iptables, ip and sysctl)` : String(stderr).trim() || err.message;
        reject(new Error(`${file} ${args.join(' ')}: ${why}`.replace(/\s+/g, ' ')));
      } else {
        resolve(String(stdout));
      }
    });
    child.stdin?.on('error', NOOP);
    child.stdin?.end(input ?? '');
  });

/**
 * One node's kernel routes. `start()` (removes a stale set left by a crash, installs the chains
 * and jumps; throws when iptables cannot be used), then `update(table)` on every table change
 * (debounced, applied in the background), `stop()` removes everything.
 */
export class KernelRoutes {
  readonly chains: KernelChains;
  private addr: string;
  private readonly log: Logger;
  private readonly run: CommandRunner;
  private readonly debounceMs: number;
  private readonly retryMs: number;
  private readonly verifyMs: number;
  private verifyTimer: NodeJS.Timeout | undefined;
  private readonly onError: (err: Error | null) => void;
  /** A loopback address: the backends' interfaces need route_localnet (127/8 sources routed out). */
  private get loopback(): boolean {
    return this.addr.startsWith('127.');
  }

  private started = false;
  private starting: Promise<void> | undefined;
  private stopped = false;
  private installed = false;
  private wanted: { plan: KernelPort[]; key: string } | undefined;
  /** The last table given to update(): planned again when the ingress changes. */
  private table: MeshTable | undefined;
  private ingress: KernelIngress | undefined;
  /** The ingress address the installed jumps match (undefined: none). */
  private installedIngress: string | undefined;
  /** The applied plan (its key) and rules text. */
  private appliedKey: string | undefined;
  private appliedText: string | undefined;
  private routed: ReadonlySet<number> = new Set();
  private routedUdp: ReadonlySet<number> = new Set();
  private failure: Error | undefined;
  private timer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private queue: Promise<void> = Promise.resolve();
  /** Container IP → its interface and that interface's subnet; interfaces whose route_localnet we set. */
  private readonly routes = new Map<string, { dev: string; subnet: string | undefined }>();
  private readonly localnet = new Set<string>();
  private warnedSubnet = false;
  private applies = 0;

  constructor(opts: KernelRoutesOptions) {
    this.chains = kernelChains(opts.nodeId);
    this.addr = opts.address;
    this.log = opts.logger ?? NOOP_LOGGER;
    this.run = opts.run ?? execRunner;
    this.debounceMs = opts.debounceMs ?? 20;
    this.retryMs = opts.retryMs ?? 5000;
    this.verifyMs = opts.verifyMs ?? 10_000;
    this.onError = opts.onError ?? NOOP;
  }

  /** The node's IPv4 address the rules match (its host name's, once started). */
  get address(): string {
    return this.addr;
  }

  /** The last apply failed (rules removed; userland serves every connection until one succeeds). */
  get error(): Error | undefined {
    return this.failure;
  }

  /** How many rule sets were applied (tests). */
  get appliedCount(): number {
    return this.applies;
  }

  /** Removes what a previous run left (a crash), installs the chains and jumps. Throws if it cannot. */
  start(): Promise<void> {
    if (this.stopped) return Promise.reject(new Error('kernel routes stopped'));
    this.starting ??= (async () => {
      if (!net.isIP(this.addr) && this.addr !== '') {
        this.addr = await lookup(this.addr, { family: 4 }).then(
          (r) => r.address,
          (err: Error) => {
            throw new Error(`kernel mesh mode needs the node's IPv4 address: cannot resolve "${this.addr}": ${err.message}`);
          },
        );
      }
      if (!net.isIPv4(this.address) || this.address === '0.0.0.0') {
        throw new Error(`kernel mesh mode needs the node's own IPv4 address, not "${this.address}" (advertise an IPv4 address)`);
      }
      await this.install();
      this.started = true;
      this.log.info({ chain: this.chains.nat, address: this.address }, 'mesh: kernel routes installed');
      if (this.verifyMs > 0 && !this.stopped) {
        this.verifyTimer = setInterval(() => this.verify(), this.verifyMs);
        this.verifyTimer.unref();
      }
    })();
    return this.starting;
  }

  /**
   * The node's new table: recomputes the rules and applies them after `debounceMs` (nothing if
   * unchanged). Returns the ports whose local share the kernel serves (empty while the rules are
   * down): set `localInKernel` on those in the Mesh's table.
   */
  update(table: MeshTable): ReadonlySet<number> {
    this.table = table;
    if (!this.started || this.stopped) return new Set();
    const plan = planKernelRoutes(table, this.ingress);
    const key = JSON.stringify({ plan, ingress: this.ingress && { address: this.ingress.address, subnet: this.ingress.subnet } });
    this.wanted = { plan, key };
    this.routed = new Set(plan.filter((p) => p.protocol === 'tcp').map((p) => p.port));
    this.routedUdp = new Set(plan.filter((p) => p.protocol === 'udp').map((p) => p.port));
    if (key !== this.appliedKey) this.schedule(this.debounceMs);
    return this.routedPorts();
  }

  /**
   * This node on the ingress overlay (undefined: not on it, or not yet): the remote replicas'
   * share goes there from the next update on. Returns the routed ports, as update() does.
   */
  setIngress(ingress: KernelIngress | undefined): ReadonlySet<number> {
    const key = (i: KernelIngress | undefined) => JSON.stringify(i && [i.address, i.subnet, [...i.nodes].sort()]);
    if (key(ingress) === key(this.ingress)) return this.routedPorts();
    this.ingress = ingress;
    return this.table ? this.update(this.table) : this.routedPorts();
  }

  /** True while this node serves its ingress address in the kernel (others may send it connections). */
  get servingIngress(): boolean {
    return this.started && !this.stopped && !this.failure && this.installed && this.installedIngress !== undefined && this.installedIngress === this.ingress?.address;
  }

  /** The TCP ports whose local share the kernel serves now (empty while the rules are down). */
  routedPorts(): ReadonlySet<number> {
    return this.failure || !this.started || this.stopped ? new Set() : this.routed;
  }

  /** The UDP ports the kernel serves now, wholly (empty while the rules are down). */
  routedUdpPorts(): ReadonlySet<number> {
    return this.failure || !this.started || this.stopped ? new Set() : this.routedUdp;
  }

  /** The rules as last computed (for logs and tests). */
  plan(): KernelPort[] {
    return this.wanted?.plan ?? [];
  }

  /** Resolves once the last update has been applied (or has failed). */
  async settled(): Promise<void> {
    for (;;) {
      if (this.timer) {
        clearTimeout(this.timer);
        this.timer = undefined;
        this.kick();
      }
      const q = this.queue;
      await q;
      if (!this.timer && q === this.queue) return;
    }
  }

  /** Removes the chains and their jumps. Errors are logged, not thrown. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.timer = this.retryTimer = undefined;
    await this.starting?.catch(NOOP);
    if (this.verifyTimer) clearInterval(this.verifyTimer);
    this.verifyTimer = undefined;
    await this.queue;
    if (!this.installed) return;
    try {
      await this.removeAll();
      this.installed = false;
      this.log.info({ chain: this.chains.nat }, 'mesh: kernel routes removed');
    } catch (err) {
      this.log.error({ chain: this.chains.nat, err: (err as Error).message }, 'mesh: could not remove the kernel routes');
    }
  }

  // ---- applying ----------------------------------------------------------------------------

  private schedule(ms: number): void {
    if (this.timer || this.stopped) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.kick();
    }, ms);
  }

  /** Applies are serialized: each one applies the latest wanted rules. */
  private kick(): void {
    this.queue = this.queue.then(() => this.apply()).catch(NOOP);
  }

  private async apply(): Promise<void> {
    const w = this.wanted;
    if (this.stopped || !w || w.key === this.appliedKey) return;
    try {
      // The jumps match the ingress address: a new one means new jumps.
      if (this.installed && this.installedIngress !== this.ingress?.address) this.installed = false;
      if (!this.installed) await this.install();
      const plan = await this.resolve(w.plan);
      const text = kernelRulesText(this.chains, this.address, plan, this.ingress);
      if (text !== this.appliedText) await this.run('iptables-restore', ['-w', '5', '--noflush'], text);
      this.appliedKey = w.key;
      this.appliedText = text;
      this.applies++;
      this.log.debug({ chain: this.chains.nat, ports: w.plan.map((p) => `${p.port}/${p.protocol}: ${p.locals.length}/${p.total}`) }, 'mesh: kernel routes applied');
      if (this.failure) {
        this.failure = undefined;
        this.log.info({ chain: this.chains.nat }, 'mesh: kernel routes work again');
        this.onError(null);
      }
    } catch (err) {
      const e = err as Error;
      const first = this.failure?.message !== e.message;
      const was = this.failure;
      this.failure = e;
      this.appliedKey = this.appliedText = undefined;
      // Rules left in place could send connections to a container that is gone: remove them all,
      // the userland proxy serves every connection until an apply succeeds.
      try {
        await this.removeAll();
      } catch (rmErr) {
        this.log.error({ err: (rmErr as Error).message }, 'mesh: could not remove the kernel routes either');
      }
      this.installed = false;
      if (first) {
        this.log.error({ chain: this.chains.nat, err: e.message, retryMs: this.retryMs }, 'mesh: kernel routes failed; the userland proxy serves every connection meanwhile');
      }
      if (first || !was) this.onError(e);
      if (!this.stopped && !this.retryTimer) {
        this.retryTimer = setTimeout(() => {
          this.retryTimer = undefined;
          if (this.failure) this.schedule(0);
        }, this.retryMs);
        this.retryTimer.unref();
      }
    }
  }

  /** Still in place? (A firewall reload removes every rule.) If not: install and apply again. */
  private verify(): void {
    if (this.stopped || !this.installed || this.timer) return;
    this.queue = this.queue
      .then(async () => {
        if (this.stopped || !this.installed) return;
        const c = `${this.chains.comment}`;
        try {
          await this.run('iptables', ['-w', '5', '-t', 'nat', '-C', 'OUTPUT', '-d', `${this.address}/32`, '-p', 'tcp', '-m', 'comment', '--comment', c, '-j', this.chains.nat]);
          return;
        } catch {
          // gone (or iptables fails: the reinstall says which)
        }
        if (this.stopped) return;
        this.log.warn({ chain: this.chains.nat }, 'mesh: the kernel routes were removed by someone else; installing them again');
        this.installed = false;
        this.appliedKey = this.appliedText = undefined;
        if (this.wanted) await this.apply();
        else await this.install().catch((err: Error) => this.log.error({ err: err.message }, 'mesh: cannot install the kernel routes again'));
      })
      .catch(NOOP);
  }

  private async install(): Promise<void> {
    await this.removeAll();
    this.appliedText = undefined; // the chains are empty again
    const ingress = this.ingress?.address;
    try {
      await this.run('iptables-restore', ['-w', '5', '--noflush'], kernelSetupText(this.chains, this.address, ingress));
    } catch (err) {
      // Half installed (one table committed): take it back out.
      await this.removeAll().catch(NOOP);
      throw err;
    }
    this.installed = true;
    this.installedIngress = ingress;
  }

  /**
   * The plan with each port's masqueraded source subnets: the subnets of the interfaces its local
   * backends are reached through (`ip route`), for hairpin connections from containers on them.
   * Loopback node addresses also need route_localnet on those interfaces: a DNAT'ed packet leaves
   * with a 127/8 source (masqueraded after routing) and its answer comes back to one, which the
   * kernel drops as martian otherwise (Docker does the same for docker0 without its userland proxy).
   */
  private async resolve(plan: KernelPort[]): Promise<KernelPort[]> {
    if (this.routes.size > 4096) this.routes.clear();
    const out: KernelPort[] = [];
    for (const p of plan) {
      const nets = new Set<string>();
      let unknown = false;
      for (const to of p.locals) {
        const ip = to.slice(0, to.lastIndexOf(':'));
        let r = this.routes.get(ip);
        if (!r) {
          const got = await this.run('ip', ['-4', '-o', 'route', 'get', ip]);
          const m = /\bdev\s+(\S+)/.exec(got);
          if (!m) throw new Error(`no route to ${ip}: ${got.trim()}`);
          const dev = m[1]!;
          let subnet: string | undefined;
          if (dev !== 'lo') {
            const links = await this.run('ip', ['-4', '-o', 'route', 'show', 'dev', dev, 'scope', 'link']).catch(() => '');
            subnet = links
              .split('\n')
              .map((l) => l.trim().split(/\s+/)[0] ?? '')
              .find((n) => inSubnet(ip, n));
          }
          r = { dev, subnet };
          this.routes.set(ip, r);
        }
        if (r.dev === 'lo') continue;
        if (r.subnet) nets.add(r.subnet);
        else unknown = true;
        if (this.loopback && !this.localnet.has(r.dev)) {
          await this.run('sysctl', ['-q', '-w', `net.ipv4.conf.${r.dev.replace(/\./g, '/')}.route_localnet=1`]);
          this.localnet.add(r.dev);
          this.log.info({ dev: r.dev }, 'mesh: route_localnet enabled (loopback node address, kernel mode)');
        }
      }
      if (unknown && !this.warnedSubnet) {
        this.warnedSubnet = true;
        this.log.warn({ port: p.port }, 'mesh: the subnet of a local backend\'s interface is unknown: masquerading every client of its port');
      }
      out.push({ ...p, masqSources: unknown ? undefined : [...nets].sort() });
    }
    return out;
  }

  /** Removes this node's jumps and chains from both tables (a no-op when there are none). */
  private async removeAll(): Promise<void> {
    for (const table of ['nat', 'filter'] as const) {
      const save = await this.run('iptables-save', ['-t', table]);
      const r = findRemoval(this.chains, save);
      const text = removalText(table, r);
      if (!text) continue;
      try {
        await this.run('iptables-restore', ['-w', '5', '--noflush'], text);
      } catch (err) {
        // One by one: a rule iptables-save prints in a form it cannot delete should not keep the
        // others (and the chains) in place.
        this.log.warn({ table, err: (err as Error).message }, 'mesh: removing the kernel routes at once failed; one by one');
        for (const d of r.deletes) await this.run('iptables', ['-w', '5', '-t', table, ...d]).catch(NOOP);
        for (const c of r.chains) await this.run('iptables', ['-w', '5', '-t', table, '-F', c]).catch(NOOP);
        for (const c of r.chains) await this.run('iptables', ['-w', '5', '-t', table, '-X', c]);
      }
    }
  }
}
