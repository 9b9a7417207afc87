// The container's flags of `service create` and `service update` (mounts, user, entrypoint,
// hostname, DNS, init, stop signal, read-only root, capabilities, sysctls, ulimits, env files,
// container labels, logging, tty, replicas per node), in docker's syntax. Pure functions: each
// bad value throws a UsageError naming it; what the manager also checks is left to the shared
// rules of @shoal/types (completeServiceSpec runs on every spec the CLI sends).

import {
  type DnsConfig,
  type LogDriver,
  type Mount,
  type ServiceSpec,
  type SpecInput,
  type Ulimit,
  MOUNT_TYPES,
  checkDnsOption,
  checkDnsSearch,
  checkNameserver,
  checkSysctl,
  checkUlimit,
  effectiveCapabilities,
  normalizeCapability,
} from '@shoal/types';
import { UsageError } from './errors.js';
import { parseLabel, parseLabelKey, parseLabels, parseMemory, parseNonNegativeInt } from './parse.js';

const q = (s: string): string => JSON.stringify(s);

function usage(message: string): never {
  throw new UsageError(message);
}

// ------------------------------------------------------------------ words

/**
 * Splits a command line into words as a POSIX shell would, without expanding anything (docker's
 * `--entrypoint` goes through google/shlex): spaces separate, 'single' and "double" quotes group,
 * a backslash escapes the next character (in double quotes only before `"`, `\`, `$` or a backtick).
 */
export function splitShellWords(line: string, what = '--entrypoint'): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === ' ' || c === '\t' || c === '\n') {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) usage(`invalid ${what} ${q(line)}: a single quote is not closed`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      word ??= '';
      for (i++; ; i++) {
        if (i >= line.length) usage(`invalid ${what} ${q(line)}: a double quote is not closed`);
        const d = line[i]!;
        if (d === '"') break;
        if (d === '\\' && i + 1 < line.length && '"\\$`'.includes(line[i + 1]!)) word += line[++i];
        else word += d;
      }
    } else if (c === '\\') {
      if (i + 1 >= line.length) usage(`invalid ${what} ${q(line)}: it ends with a lone backslash`);
      word = (word ?? '') + line[++i];
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** The fields of a comma-separated value, as Go's encoding/csv reads one line (docker's --mount). */
export function splitCsv(line: string, what: string): string[] {
  const fields: string[] = [];
  let i = 0;
  for (;;) {
    let field = '';
    if (line[i] === '"') {
      for (i++; ; i++) {
        if (i >= line.length) usage(`invalid ${what} ${q(line)}: a double quote is not closed`);
        if (line[i] === '"') {
          if (line[i + 1] === '"') {
            field += '"';
            i++;
            continue;
          }
          i++;
          break;
        }
        field += line[i];
      }
      if (i < line.length && line[i] !== ',') usage(`invalid ${what} ${q(line)}: text after a closing quote`);
    } else {
      const end = line.indexOf(',', i);
      field = end < 0 ? line.slice(i) : line.slice(i, end);
      i = end < 0 ? line.length : end;
    }
    fields.push(field);
    if (i >= line.length) return fields;
    i++; // the comma
  }
}

function parseBool(v: string, what: string): boolean {
  const s = v.trim().toLowerCase();
  if (['1', 't', 'true'].includes(s)) return true;
  if (['0', 'f', 'false'].includes(s)) return false;
  return usage(`invalid ${what} ${q(v)}: expected true or false`);
}

// ------------------------------------------------------------------ --mount

/**
 * `--mount type=volume|bind|tmpfs,source|src=S,target|dst|destination=T[,readonly|ro[=BOOL]]
 * [,volume-label=K=V][,volume-driver=D][,volume-opt=K=V][,volume-nocopy][,tmpfs-size=SIZE]
 * [,tmpfs-mode=OCTAL][,bind-propagation=P]`, docker's syntax (type defaults to volume). Options
 * of another type, a missing or relative target, a bind source that is not absolute, a tmpfs
 * with a source: refused here by the shared rules, as by the manager.
 */
export function parseMount(spec: string): Mount {
  const m: Mount = { type: 'volume', source: '', target: '', readOnly: false, volumeOptions: null, tmpfsOptions: null, bindPropagation: '' };
  const vo = () => (m.volumeOptions ??= { noCopy: false, labels: {}, driver: '', driverOptions: {} });
  const to = () => (m.tmpfsOptions ??= { sizeBytes: 0, mode: 0 });
  const given = { volumeOptions: false, tmpfsOptions: false, bindPropagation: false };
  const bad = (why: string): never => usage(`invalid --mount ${q(spec)}: ${why}`);
  for (const field of splitCsv(spec, '--mount')) {
    const i = field.indexOf('=');
    const key = (i < 0 ? field : field.slice(0, i)).trim().toLowerCase();
    const val = i < 0 ? undefined : field.slice(i + 1);
    if (val === undefined) {
      if (key === 'readonly' || key === 'ro') m.readOnly = true;
      else if (key === 'volume-nocopy') {
        vo().noCopy = true;
        given.volumeOptions = true;
      } else bad(`${q(field)} is not KEY=VALUE`);
      continue;
    }
    switch (key) {
      case 'type': {
        const t = val.toLowerCase();
        if (!(MOUNT_TYPES as readonly string[]).includes(t)) bad(`unknown type ${q(val)} (expected volume, bind or tmpfs)`);
        m.type = t as Mount['type'];
        break;
      }
      case 'source':
      case 'src':
        m.source = val;
        break;
      case 'target':
      case 'dst':
      case 'destination':
        m.target = val;
        break;
      case 'readonly':
      case 'ro':
        m.readOnly = parseBool(val, `${key} in --mount ${q(spec)}`);
        break;
      case 'bind-propagation':
        m.bindPropagation = val.toLowerCase();
        given.bindPropagation = true;
        break;
      case 'volume-driver':
        vo().driver = val;
        given.volumeOptions = true;
        break;
      case 'volume-label': {
        const { key: k, value } = parseLabel(val);
        vo().labels[k] = value;
        given.volumeOptions = true;
        break;
      }
      case 'volume-opt': {
        const { key: k, value } = parseLabel(val);
        vo().driverOptions[k] = value;
        given.volumeOptions = true;
        break;
      }
      case 'volume-nocopy':
        vo().noCopy = parseBool(val, `volume-nocopy in --mount ${q(spec)}`);
        given.volumeOptions = true;
        break;
      case 'tmpfs-size':
        to().sizeBytes = parseMemory(val, `tmpfs-size in --mount ${q(spec)}`);
        given.tmpfsOptions = true;
        break;
      case 'tmpfs-mode': {
        if (!/^[0-7]{1,4}$/.test(val)) bad(`tmpfs-mode ${q(val)} is not an octal mode like 1777`);
        to().mode = parseInt(val, 8);
        given.tmpfsOptions = true;
        break;
      }
      default:
        bad(`unknown key ${q(key)} (expected type, source, target, readonly, volume-label, volume-driver, volume-opt, volume-nocopy, tmpfs-size, tmpfs-mode, bind-propagation)`);
    }
  }
  // The shared rules, here with the flag's text, so the line names what was typed.
  if (given.volumeOptions && m.type !== 'volume') bad('volume-* options are only for type=volume');
  if (given.tmpfsOptions && m.type !== 'tmpfs') bad('tmpfs-* options are only for type=tmpfs');
  if (given.bindPropagation && m.type !== 'bind') bad('bind-propagation is only for type=bind');
  if (m.type !== 'volume') m.volumeOptions = null;
  if (m.type !== 'tmpfs') m.tmpfsOptions = null;
  if (m.target === '') bad('target=PATH is required');
  if (!m.target.startsWith('/')) bad(`the target ${q(m.target)} must be an absolute path`);
  if (m.type === 'bind' && m.source === '') bad('a bind mount needs source=/HOST/PATH');
  if (m.type === 'bind' && !m.source.startsWith('/')) bad(`the bind source ${q(m.source)} must be an absolute path`);
  if (m.type === 'tmpfs' && m.source !== '') bad('a tmpfs mount takes no source');
  return m;
}

/** Mounts by target: a later one of a target replaces an earlier one (update's --mount-add). */
function putMount(mounts: Mount[], m: Mount): void {
  const i = mounts.findIndex((x) => x.target === m.target);
  if (i >= 0) mounts[i] = m;
  else mounts.push(m);
}

// ------------------------------------------------------------------ K=V flags

/** `--ulimit nofile=1024:2048` (`nofile=1024`: soft and hard alike), docker's syntax. */
export function parseUlimit(value: string): Ulimit {
  const m = /^([a-z]+)=(-?\d+)(?::(-?\d+))?$/.exec(value.trim());
  if (!m) usage(`invalid --ulimit ${q(value)}: expected NAME=SOFT[:HARD], like nofile=1024:2048`);
  const soft = Number(m[2]);
  const hard = m[3] === undefined ? soft : Number(m[3]);
  try {
    checkUlimit(m[1]!, soft, hard);
  } catch (err) {
    usage(`invalid --ulimit ${q(value)}: ${(err as Error).message.replace(/^invalid ulimit name /, 'unknown name ').replace(/^ulimit \S+: /, '')}`);
  }
  return { name: m[1]!, soft, hard };
}

/** `--sysctl KEY=VALUE` (a namespaced sysctl). */
export function parseSysctl(value: string): { key: string; value: string } {
  const i = value.indexOf('=');
  if (i <= 0) usage(`invalid --sysctl ${q(value)}: expected KEY=VALUE, like net.core.somaxconn=1024`);
  const key = value.slice(0, i).trim();
  const v = value.slice(i + 1);
  checkSysctl(key, v);
  return { key, value: v };
}

/** `--log-opt KEY=VALUE`. */
function parseLogOpts(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) usage(`invalid --log-opt ${q(v)}: expected KEY=VALUE, like max-size=10m`);
    out[v.slice(0, i)] = v.slice(i + 1);
  }
  return out;
}

/**
 * An `--env-file`, docker's format: KEY=VALUE lines (the value as written, to the end of the
 * line), blank lines and `#` comments skipped, a bare KEY takes its value from `env` (the CLI's
 * environment; dropped when unset there). `file` names the file in errors.
 */
export function parseEnvFile(text: string, file: string, env: Readonly<Record<string, string | undefined>>): string[] {
  const out: string[] = [];
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/);
  lines.forEach((raw, n) => {
    const line = raw.replace(/^\s+/, '');
    if (line === '' || line.startsWith('#')) return;
    const i = line.indexOf('=');
    const key = i < 0 ? line : line.slice(0, i);
    if (key === '') usage(`invalid env file ${file}, line ${n + 1}: no variable name before '='`);
    if (/\s/.test(key)) usage(`invalid env file ${file}, line ${n + 1}: variable ${q(key)} contains whitespace`);
    if (i >= 0) out.push(line);
    else if (env[key] !== undefined) out.push(`${key}=${env[key]}`);
  });
  return out;
}

// ------------------------------------------------------------------ create

/** The container's flags of `service create` (values as typed). */
export interface ContainerCreateFlags {
  mount?: readonly string[];
  user?: string;
  entrypoint?: string;
  hostname?: string;
  dns?: readonly string[];
  dnsSearch?: readonly string[];
  dnsOption?: readonly string[];
  init?: boolean;
  stopSignal?: string;
  readOnly?: boolean;
  capAdd?: readonly string[];
  capDrop?: readonly string[];
  sysctl?: readonly string[];
  ulimit?: readonly string[];
  /** The entries of the `--env-file`s, read and parsed (parseEnvFile), in order: `--env` comes after them. */
  envFromFiles?: readonly string[];
  containerLabel?: readonly string[];
  logDriver?: string;
  logOpt?: readonly string[];
  tty?: boolean;
  replicasMaxPerNode?: string | number;
}

function dnsOf(servers: readonly string[], search: readonly string[], options: readonly string[]): DnsConfig | null {
  const d = { nameservers: servers.map(checkNameserver), search: search.map(checkDnsSearch), options: options.map(checkDnsOption) };
  return d.nameservers.length + d.search.length + d.options.length === 0 ? null : d;
}

function logDriverOf(driver: string | undefined, opts: readonly string[]): LogDriver | null {
  if (driver === undefined || driver === '') {
    if (opts.length > 0) usage('--log-opt needs --log-driver (the driver and its options are set together)');
    return null;
  }
  return { name: driver, options: parseLogOpts(opts) };
}

/** The spec fields of the container's create flags (completeServiceSpec then checks the rest). */
export function containerSpecOf(f: ContainerCreateFlags): Partial<SpecInput> {
  const mounts: Mount[] = [];
  for (const m of (f.mount ?? []).map(parseMount)) {
    if (mounts.some((x) => x.target === m.target)) usage(`--mount: the target ${m.target} is given twice`);
    mounts.push(m);
  }
  const sysctls: Record<string, string> = {};
  for (const { key, value } of (f.sysctl ?? []).map(parseSysctl)) sysctls[key] = value;
  const ulimits: Ulimit[] = [];
  for (const u of (f.ulimit ?? []).map(parseUlimit)) {
    const i = ulimits.findIndex((x) => x.name === u.name);
    if (i >= 0) ulimits[i] = u;
    else ulimits.push(u);
  }
  return {
    mounts,
    user: f.user,
    entrypoint: f.entrypoint === undefined ? [] : splitShellWords(f.entrypoint),
    hostname: f.hostname,
    dnsConfig: dnsOf(f.dns ?? [], f.dnsSearch ?? [], f.dnsOption ?? []),
    init: f.init === true,
    stopSignal: f.stopSignal,
    readOnly: f.readOnly === true,
    capAdd: (f.capAdd ?? []).map(normalizeCapability),
    capDrop: (f.capDrop ?? []).map(normalizeCapability),
    sysctls,
    ulimits,
    containerLabels: parseLabels(f.containerLabel ?? []),
    logDriver: logDriverOf(f.logDriver, f.logOpt ?? []),
    tty: f.tty === true,
    maxReplicasPerNode: f.replicasMaxPerNode === undefined ? 0 : parseNonNegativeInt(f.replicasMaxPerNode, '--replicas-max-per-node'),
  };
}

// ------------------------------------------------------------------ update

/** The container's flags of `service update`: the settable ones of create, and docker's -add/-rm. */
export interface ContainerUpdateFlags {
  mountAdd?: readonly string[];
  /** Targets of the mounts to remove. */
  mountRm?: readonly string[];
  user?: string;
  entrypoint?: string;
  hostname?: string;
  dnsAdd?: readonly string[];
  dnsRm?: readonly string[];
  dnsSearchAdd?: readonly string[];
  dnsSearchRm?: readonly string[];
  dnsOptionAdd?: readonly string[];
  dnsOptionRm?: readonly string[];
  init?: boolean;
  stopSignal?: string;
  readOnly?: boolean;
  capAdd?: readonly string[];
  capDrop?: readonly string[];
  sysctlAdd?: readonly string[];
  sysctlRm?: readonly string[];
  ulimitAdd?: readonly string[];
  ulimitRm?: readonly string[];
  containerLabelAdd?: readonly string[];
  containerLabelRm?: readonly string[];
  logDriver?: string;
  logOpt?: readonly string[];
  tty?: boolean;
  replicasMaxPerNode?: string | number;
}

/** `list` without the values of `rm`, then with those of `add` not already in it. */
function editList(list: readonly string[], add: readonly string[], rm: readonly string[]): string[] {
  const out = list.filter((x) => !rm.includes(x));
  for (const a of add) if (!out.includes(a)) out.push(a);
  return out;
}

/**
 * Docker's updateCapabilities: a capability dropped leaves the added ones and joins the dropped,
 * one added leaves the dropped and joins the added; adding wins when a flag gives both.
 */
export function updateCapabilities(capAdd: readonly string[], capDrop: readonly string[], add: readonly string[], drop: readonly string[]): { capAdd: string[]; capDrop: string[] } {
  const toAdd = new Set(add.map(normalizeCapability));
  const toDrop = new Set(drop.map(normalizeCapability));
  const a = new Set(capAdd.map(normalizeCapability));
  const d = new Set(capDrop.map(normalizeCapability));
  for (const c of toDrop) {
    if (toAdd.has(c)) continue;
    a.delete(c);
    d.add(c);
  }
  for (const c of toAdd) {
    d.delete(c);
    a.add(c);
  }
  return effectiveCapabilities([...a], [...d]);
}

/** `s` (a copy, changed in place) with the container's update flags applied; removals before additions. */
export function applyContainerUpdate(s: ServiceSpec, f: ContainerUpdateFlags): void {
  const mounts = (s.mounts ?? []).filter((m) => !(f.mountRm ?? []).includes(m.target));
  for (const m of (f.mountAdd ?? []).map(parseMount)) putMount(mounts, m);
  s.mounts = mounts;

  if (f.user !== undefined) s.user = f.user;
  if (f.entrypoint !== undefined) s.entrypoint = splitShellWords(f.entrypoint);
  if (f.hostname !== undefined) s.hostname = f.hostname;

  const d = s.dnsConfig ?? { nameservers: [], search: [], options: [] };
  s.dnsConfig = dnsOf(
    editList(d.nameservers, (f.dnsAdd ?? []).map(checkNameserver), (f.dnsRm ?? []).map((x) => x.trim())),
    editList(d.search, (f.dnsSearchAdd ?? []).map(checkDnsSearch), (f.dnsSearchRm ?? []).map((x) => x.trim())),
    editList(d.options, (f.dnsOptionAdd ?? []).map(checkDnsOption), f.dnsOptionRm ?? []),
  );

  if (f.init !== undefined) s.init = f.init;
  if (f.stopSignal !== undefined) s.stopSignal = f.stopSignal;
  if (f.readOnly !== undefined) s.readOnly = f.readOnly;
  if (f.tty !== undefined) s.tty = f.tty;
  if (f.capAdd !== undefined || f.capDrop !== undefined) Object.assign(s, updateCapabilities(s.capAdd ?? [], s.capDrop ?? [], f.capAdd ?? [], f.capDrop ?? []));

  s.sysctls = { ...(s.sysctls ?? {}) };
  for (const k of (f.sysctlRm ?? []).map((x) => parseLabelKey(x))) delete s.sysctls[k];
  for (const { key, value } of (f.sysctlAdd ?? []).map(parseSysctl)) s.sysctls[key] = value;

  s.ulimits = (s.ulimits ?? []).filter((u) => !(f.ulimitRm ?? []).map((x) => x.trim()).includes(u.name));
  for (const u of (f.ulimitAdd ?? []).map(parseUlimit)) {
    const i = s.ulimits.findIndex((x) => x.name === u.name);
    if (i >= 0) s.ulimits[i] = u;
    else s.ulimits.push(u);
  }

  s.containerLabels = { ...(s.containerLabels ?? {}) };
  for (const k of (f.containerLabelRm ?? []).map(parseLabelKey)) delete s.containerLabels[k];
  Object.assign(s.containerLabels, parseLabels(f.containerLabelAdd ?? []));

  // As docker: a driver and its options are replaced together; options alone need the driver.
  if (f.logDriver !== undefined) s.logDriver = logDriverOf(f.logDriver, f.logOpt ?? []);
  else if ((f.logOpt ?? []).length > 0) usage('--log-opt needs --log-driver (the driver and its options are set together)');

  if (f.replicasMaxPerNode !== undefined) s.maxReplicasPerNode = parseNonNegativeInt(f.replicasMaxPerNode, '--replicas-max-per-node');
}
