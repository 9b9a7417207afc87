// The rules of a service's container settings (mounts, user, hostname, DNS, capabilities,
// sysctls, ulimits, stop signal, log driver), shared by the CLI's flags, the control API's
// completion (service-spec.ts) and the node (the hostname template is expanded there). They
// refuse at the edge what Docker's engine would refuse only on the node, where a bad spec becomes
// a task rejected over and over instead of one clear line.

import { isIP } from 'node:net';
import type { Mount } from './objects.js';
import { invalid } from './spec-error.js';

const q = (s: string): string => JSON.stringify(s);

// ------------------------------------------------------------------ capabilities

/** The Linux capabilities (capability(7), up to 6.x kernels), as Docker names them. */
export const LINUX_CAPABILITIES: readonly string[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL', 'CAP_SETGID', 'CAP_SETUID',
  'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE', 'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK',
  'CAP_IPC_OWNER', 'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT', 'CAP_SYS_ADMIN', 'CAP_SYS_BOOT',
  'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME', 'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM', 'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON',
  'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
];
const CAPABILITY_SET = new Set(LINUX_CAPABILITIES);

/** `net_admin`, `NET_ADMIN`, `CAP_NET_ADMIN` → `CAP_NET_ADMIN` (Docker's CLI's normal form); `ALL` stays. */
export function normalizeCapability(cap: string): string {
  let c = cap.trim().toUpperCase();
  if (c === 'ALL') return c;
  if (!c.startsWith('CAP_')) c = `CAP_${c}`;
  if (!CAPABILITY_SET.has(c)) invalid(`unknown capability ${q(cap)}: expected a Linux capability such as NET_ADMIN or SYS_PTRACE, or ALL`);
  return c;
}

/**
 * Docker's EffectiveCapAddCapDrop: both lists normalized, deduplicated and sorted; ALL alone
 * when given; a capability both added and dropped is added (adding wins).
 */
export function effectiveCapabilities(add: readonly string[], drop: readonly string[]): { capAdd: string[]; capDrop: string[] } {
  let a = new Set(add.map(normalizeCapability));
  let d = new Set(drop.map(normalizeCapability));
  if (a.has('ALL')) a = new Set(['ALL']);
  if (d.has('ALL')) d = new Set(['ALL']);
  for (const c of a) d.delete(c);
  return { capAdd: [...a].sort(), capDrop: [...d].sort() };
}

// ------------------------------------------------------------------ ulimits

/** The resource limits Docker sets (go-units' ulimit names). */
export const ULIMIT_NAMES: readonly string[] = [
  'as', 'core', 'cpu', 'data', 'fsize', 'locks', 'memlock', 'msgqueue', 'nice', 'nofile', 'nproc', 'rss', 'rtprio', 'rttime', 'sigpending', 'stack',
];

/** A ulimit's name and values as Docker takes them (-1: unlimited; soft no more than hard). */
export function checkUlimit(name: string, soft: number, hard: number): void {
  if (!ULIMIT_NAMES.includes(name)) invalid(`invalid ulimit name ${q(name)}: expected one of ${ULIMIT_NAMES.join(', ')}`);
  for (const v of [soft, hard]) if (!Number.isSafeInteger(v) || v < -1) invalid(`ulimit ${name}: limits are integers from -1 (unlimited) up, not ${v}`);
  const lim = (v: number) => (v === -1 ? Infinity : v);
  if (lim(soft) > lim(hard)) invalid(`ulimit ${name}: the soft limit ${soft} exceeds the hard limit ${hard}`);
}

// ------------------------------------------------------------------ sysctls

/** The sysctls a container may set: those of its own namespaces (runc's list, as Docker checks it). */
const NAMESPACED_SYSCTLS = new Set([
  'kernel.msgmax', 'kernel.msgmnb', 'kernel.msgmni', 'kernel.sem', 'kernel.shmall', 'kernel.shmmax', 'kernel.shmmni', 'kernel.shm_rmid_forced',
  'kernel.domainname',
]);
const NAMESPACED_PREFIXES = ['fs.mqueue.', 'net.'];

/** A sysctl's key (dots or slashes) must be one the container's namespaces own. */
export function checkSysctl(key: string, value: string): void {
  if (!/^[a-z0-9_][a-z0-9_./-]*$/i.test(key)) invalid(`invalid sysctl ${q(`${key}=${value}`)}: expected KEY=VALUE, like net.core.somaxconn=1024`);
  const k = key.replaceAll('/', '.');
  if (!NAMESPACED_SYSCTLS.has(k) && !NAMESPACED_PREFIXES.some((p) => k.startsWith(p))) {
    invalid(`sysctl ${key} is not namespaced: a container may set only net.*, fs.mqueue.*, kernel.msg*, kernel.sem, kernel.shm* and kernel.domainname`);
  }
  if (/[\n\0]/.test(value)) invalid(`invalid value for sysctl ${key}`);
}

// ------------------------------------------------------------------ signals, user

const SIGNALS = new Set([
  'ABRT', 'ALRM', 'BUS', 'CHLD', 'CLD', 'CONT', 'FPE', 'HUP', 'ILL', 'INT', 'IO', 'IOT', 'KILL', 'PIPE', 'POLL', 'PROF', 'PWR', 'QUIT', 'SEGV',
  'STKFLT', 'STOP', 'SYS', 'TERM', 'TRAP', 'TSTP', 'TTIN', 'TTOU', 'URG', 'USR1', 'USR2', 'VTALRM', 'WINCH', 'XCPU', 'XFSZ',
]);

/** `--stop-signal`: a name (SIGTERM, TERM), RTMIN+n/RTMAX-n, or a number, as Docker's ParseSignal takes it. */
export function checkStopSignal(sig: string): string {
  if (sig === '') return sig;
  const s = sig.toUpperCase().replace(/^SIG/, '');
  const num = /^\d+$/.test(sig) ? Number(sig) : NaN;
  const rt = /^RT(MIN\+|MAX-)(\d+)$/.exec(s);
  const ok = SIGNALS.has(s) || (num >= 1 && num <= 64) || (rt !== null && Number(rt[2]) <= 30) || s === 'RTMIN' || s === 'RTMAX';
  if (!ok) invalid(`invalid stop signal ${q(sig)}: expected a signal name like SIGTERM or SIGINT, or its number`);
  return sig;
}

/** `-u, --user`: `user`, `uid`, `user:group` or `uid:gid` (no spaces). */
export function checkUser(user: string): string {
  if (user === '') return user;
  if (!/^[^\s:]+(:[^\s:]+)?$/.test(user)) invalid(`invalid user ${q(user)}: expected USER, UID, USER:GROUP or UID:GID`);
  return user;
}

// ------------------------------------------------------------------ DNS

/** `--dns`: an IP address (Docker's ValidateIPAddress). */
export function checkNameserver(ip: string): string {
  const s = ip.trim();
  if (isIP(s) === 0) invalid(`invalid DNS server ${q(ip)}: expected an IP address`);
  return s;
}

/** `--dns-search`: a domain (or `.`, no search), Docker's ValidateDNSSearch. */
export function checkDnsSearch(domain: string): string {
  const d = domain.trim();
  if (d === '.') return d;
  if (d.length > 255 || !/^[a-zA-Z0-9_]([a-zA-Z0-9_.-]*[a-zA-Z0-9_])?\.?$/.test(d) || d.includes('..')) invalid(`invalid DNS search domain ${q(domain)}`);
  return d;
}

/** `--dns-option`: `name` or `name:value` (resolv.conf's options). */
export function checkDnsOption(opt: string): string {
  if (!/^[a-z0-9_-]+(:\S+)?$/i.test(opt)) invalid(`invalid DNS option ${q(opt)}: expected NAME or NAME:VALUE, like ndots:2`);
  return opt;
}

// ------------------------------------------------------------------ hostname templates

/** What a hostname template may name (Swarm's template context, the parts that make sense in a name). */
export interface HostnameValues {
  'Service.Name': string;
  'Service.ID': string;
  'Task.Slot': string;
  'Task.ID': string;
  'Task.Name': string;
  'Node.ID': string;
  'Node.Hostname': string;
}
export const HOSTNAME_PLACEHOLDERS = ['Service.Name', 'Service.ID', 'Task.Slot', 'Task.ID', 'Task.Name', 'Node.ID', 'Node.Hostname'] as const;

const PLACEHOLDER = /\{\{\s*\.([A-Za-z.]+)\s*\}\}/g;

/**
 * `--hostname`: letters, digits, `-`, `.` and `_` around `{{.Service.Name}}`-style placeholders
 * (those of HOSTNAME_PLACEHOLDERS; Go's template spacing `{{ .Task.Slot }}` too).
 */
export function checkHostnameTemplate(t: string): string {
  if (t === '') return t;
  for (const m of t.matchAll(PLACEHOLDER)) {
    if (!(HOSTNAME_PLACEHOLDERS as readonly string[]).includes(m[1]!)) {
      invalid(`invalid hostname ${q(t)}: unknown placeholder {{.${m[1]}}} (expected ${HOSTNAME_PLACEHOLDERS.map((p) => `{{.${p}}}`).join(', ')})`);
    }
  }
  const literal = t.replace(PLACEHOLDER, 'x');
  if (literal.includes('{{') || literal.includes('}}')) invalid(`invalid hostname ${q(t)}: a placeholder is not closed or not of the form {{.Task.Slot}}`);
  if (!/^[A-Za-z0-9_.-]+$/.test(literal)) invalid(`invalid hostname ${q(t)}: use letters, digits, '-', '.' and '_' (and {{.Task.Slot}}-style placeholders)`);
  if (literal.length > 255) invalid(`invalid hostname ${q(t)}: longer than 255 characters`);
  return t;
}

/** The hostname a template gives one task (its placeholders replaced); at most 63 characters, as the kernel takes it. */
export function expandHostname(t: string, values: HostnameValues): string {
  const out = t.replace(PLACEHOLDER, (_m, key: string) => values[key as keyof HostnameValues] ?? '');
  if (out.length > 63) invalid(`the hostname ${q(out)} (from ${q(t)}) is longer than 63 characters`);
  return out;
}

// ------------------------------------------------------------------ mounts, logging

const PROPAGATIONS = ['private', 'rprivate', 'shared', 'rshared', 'slave', 'rslave'];

/** Docker's volume name rule. */
export const VOLUME_NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]+$/;

/**
 * The rules of one mount, as Docker's engine checks them: an absolute target (not `/`); a bind's
 * source an absolute path; a tmpfs has no source; a volume's source a volume name (none: an
 * anonymous volume); options only of the mount's own type.
 */
export function checkMount(m: Mount, given: { volumeOptions: boolean; tmpfsOptions: boolean; bindPropagation: boolean }): void {
  const what = `mount ${m.type}${m.source ? ` ${m.source}` : ''} on ${m.target || '(no target)'}`;
  if (m.target === '') invalid(`invalid ${what}: a target is required (target=/PATH)`);
  if (!m.target.startsWith('/')) invalid(`invalid ${what}: the target ${q(m.target)} must be an absolute path`);
  if (m.target.replace(/\/+$/, '') === '') invalid(`invalid ${what}: the target cannot be /`);
  if (given.volumeOptions && m.type !== 'volume') invalid(`invalid ${what}: volume options (volume-*) are only for type=volume`);
  if (given.tmpfsOptions && m.type !== 'tmpfs') invalid(`invalid ${what}: tmpfs options (tmpfs-*) are only for type=tmpfs`);
  if (given.bindPropagation && m.type !== 'bind') invalid(`invalid ${what}: bind-propagation is only for type=bind`);
  if (m.type === 'bind') {
    if (m.source === '') invalid(`invalid ${what}: a bind mount needs a source (source=/HOST/PATH)`);
    if (!m.source.startsWith('/')) invalid(`invalid ${what}: the bind source ${q(m.source)} must be an absolute path`);
    if (m.bindPropagation !== '' && !PROPAGATIONS.includes(m.bindPropagation)) {
      invalid(`invalid ${what}: bind-propagation must be one of ${PROPAGATIONS.join(', ')}, not ${q(m.bindPropagation)}`);
    }
  } else if (m.type === 'tmpfs') {
    if (m.source !== '') invalid(`invalid ${what}: a tmpfs mount takes no source`);
  } else if (m.source !== '' && !VOLUME_NAME_RE.test(m.source)) {
    invalid(`invalid ${what}: ${q(m.source)} is not a volume name (letters, digits, '_', '.', '-'; a bind mount is type=bind)`);
  }
}

/** A log driver's name (a built-in driver or a plugin's `[REGISTRY/]NAME[:TAG]`). */
export function checkLogDriverName(name: string): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.:/-]*$/.test(name) || name.length > 255) invalid(`invalid log driver ${q(name)}`);
  return name;
}
