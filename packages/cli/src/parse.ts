// Parsers of the flag values and arguments of `shoal` (pure functions: no I/O).
//
// Every parser either returns a value or throws a UsageError whose message is one line that names
// the offending input and says what was expected; the CLI prints it as `Error: MESSAGE` and exits 2.

import type { NetworkAttachmentConfig, PortConfig, Protocol, PublishMode } from '@shoal/types';
import { UsageError } from './errors.js';

// The rules a service spec shares with the control API live in @shoal/types; the CLI's flags use them as they are.
export { formatDuration, parseConstraint, parseDuration, parseEnv, parsePlacementPref } from '@shoal/types';

function usage(message: string): never {
  throw new UsageError(message);
}

const q = (s: string): string => JSON.stringify(s);

// ------------------------------------------------------------------ numbers

/** A non-negative decimal integer (a replica count, an attempt count...). */
export function parseNonNegativeInt(value: string | number, what: string): number {
  const s = String(value).trim();
  if (!/^\d+$/.test(s)) usage(`invalid ${what} ${q(String(value))}: expected a non-negative integer`);
  const n = Number(s);
  if (!Number.isSafeInteger(n)) usage(`invalid ${what} ${q(String(value))}: too large`);
  return n;
}

/** A replica count: a non-negative integer. */
export function parseReplicas(value: string | number): number {
  return parseNonNegativeInt(value, 'replicas');
}

// ------------------------------------------------------------------ KEY=VALUE

/** An environment variable name alone (`--env-rm KEY`). */
export function parseEnvKey(value: string): string {
  if (value === '' || value.includes('=') || /\s/.test(value)) {
    usage(`invalid environment variable name ${q(value)}: expected a name without '=' or spaces`);
  }
  return value;
}

/** `--label KEY=VALUE` (or `KEY` alone: an empty value, as docker). */
export function parseLabel(value: string): { key: string; value: string } {
  const i = value.indexOf('=');
  const key = (i < 0 ? value : value.slice(0, i)).trim();
  if (key === '') usage(`invalid label ${q(value)}: expected KEY=VALUE with a non-empty KEY`);
  return { key, value: i < 0 ? '' : value.slice(i + 1) };
}

/** A label key alone (`--label-rm KEY`). */
export function parseLabelKey(value: string): string {
  const key = value.trim();
  if (key === '' || key.includes('=')) usage(`invalid label name ${q(value)}: expected a key without '='`);
  return key;
}

/** Several labels as a map (the last one of a key wins). */
export function parseLabels(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const { key, value } = parseLabel(v);
    out[key] = value;
  }
  return out;
}

// ------------------------------------------------------------------ ports

function parsePort(s: string, what: string, spec: string): number {
  if (!/^\d+$/.test(s)) usage(`invalid ${what} port ${q(s)} in ${q(spec)}: expected a number from 1 to 65535`);
  const n = Number(s);
  if (n < 1 || n > 65535) usage(`invalid ${what} port ${s} in ${q(spec)}: ports range from 1 to 65535`);
  return n;
}

function parseProtocol(s: string, spec: string): Protocol {
  const p = s.toLowerCase();
  if (p !== 'tcp' && p !== 'udp') usage(`invalid protocol ${q(s)} in ${q(spec)}: expected tcp or udp`);
  return p;
}

/**
 * A `-p` / `--publish` value, in either of docker's syntaxes:
 * - short: `PUBLISHED:TARGET[/tcp|udp]` (ingress mode);
 * - long: `mode=ingress|host,published=P,target=T[,protocol=tcp|udp][,proxy-protocol=v2]`
 *   (comma-separated key=value; `target` and `published` required, mode defaults to ingress,
 *   protocol to tcp; proxy-protocol=v2 has the routing mesh send the client's address first).
 */
export function parsePublish(spec: string): PortConfig {
  const s = spec.trim();
  if (s.includes('=')) return parsePublishLong(s, spec);
  const m = /^([^:/]*):([^:/]*)(?:\/(.*))?$/.exec(s);
  if (!m) {
    usage(
      `invalid port specification ${q(spec)}: expected PUBLISHED:TARGET[/tcp|udp] or mode=ingress|host,published=P,target=T[,protocol=tcp|udp]`,
    );
  }
  return {
    protocol: m[3] === undefined ? 'tcp' : parseProtocol(m[3], spec),
    targetPort: parsePort(m[2]!, 'target', spec),
    publishedPort: parsePort(m[1]!, 'published', spec),
    publishMode: 'ingress',
    proxyProtocol: false,
  };
}

function parsePublishLong(s: string, spec: string): PortConfig {
  const fields = new Map<string, string>();
  for (const part of s.split(',')) {
    const i = part.indexOf('=');
    if (i < 0) usage(`invalid port specification ${q(spec)}: ${q(part)} is not KEY=VALUE`);
    const key = part.slice(0, i).trim().toLowerCase();
    const value = part.slice(i + 1).trim();
    if (!['mode', 'published', 'target', 'protocol', 'proxy-protocol'].includes(key)) {
      usage(`invalid port specification ${q(spec)}: unknown field ${q(key)} (expected mode, published, target, protocol, proxy-protocol)`);
    }
    if (fields.has(key)) usage(`invalid port specification ${q(spec)}: ${key} given twice`);
    fields.set(key, value);
  }
  const mode = (fields.get('mode') ?? 'ingress').toLowerCase();
  if (mode !== 'ingress' && mode !== 'host') usage(`invalid publish mode ${q(mode)} in ${q(spec)}: expected ingress or host`);
  const target = fields.get('target');
  if (target === undefined) usage(`invalid port specification ${q(spec)}: target=PORT is required`);
  const published = fields.get('published');
  if (published === undefined) usage(`invalid port specification ${q(spec)}: published=PORT is required`);
  const pp = (fields.get('proxy-protocol') ?? 'none').toLowerCase();
  if (pp !== 'none' && pp !== 'v2') usage(`invalid proxy-protocol ${q(pp)} in ${q(spec)}: expected v2 or none`);
  if (pp === 'v2' && mode !== 'ingress') usage(`invalid port specification ${q(spec)}: proxy-protocol=v2 needs mode=ingress (the routing mesh sends it)`);
  return {
    protocol: parseProtocol(fields.get('protocol') ?? 'tcp', spec),
    targetPort: parsePort(target, 'target', spec),
    publishedPort: parsePort(published, 'published', spec),
    publishMode: mode as PublishMode,
    proxyProtocol: pp === 'v2',
  };
}

/** Several publish specs; the same published port and protocol twice is an error. */
export function parsePublishes(specs: readonly string[]): PortConfig[] {
  const ports = specs.map(parsePublish);
  const seen = new Set<string>();
  for (const p of ports) {
    const k = `${p.publishedPort}/${p.protocol}`;
    if (seen.has(k)) usage(`published port ${k} is given twice`);
    seen.add(k);
  }
  return ports;
}

/** `--publish-rm PUBLISHED[/tcp|udp]`: which published port to remove (no protocol: both). */
export function parsePublishRm(value: string): { publishedPort: number; protocol?: Protocol } {
  const m = /^([^/]*)(?:\/(.*))?$/.exec(value.trim())!;
  const publishedPort = parsePort(m[1]!, 'published', value);
  return m[2] === undefined ? { publishedPort } : { publishedPort, protocol: parseProtocol(m[2], value) };
}

// ------------------------------------------------------------------ scale

/** `SERVICE=REPLICAS` (a `service scale` argument). */
export function parseScaleArg(value: string): { service: string; replicas: number } {
  const i = value.lastIndexOf('=');
  if (i < 0) usage(`invalid scale argument ${q(value)}: expected SERVICE=REPLICAS`);
  const service = value.slice(0, i).trim();
  if (service === '') usage(`invalid scale argument ${q(value)}: the service name before '=' is empty`);
  const n = value.slice(i + 1).trim();
  if (!/^\d+$/.test(n)) usage(`invalid scale argument ${q(value)}: replicas must be a non-negative integer`);
  return { service, replicas: parseNonNegativeInt(n, 'replicas') };
}

/** Every `service scale` argument; the same service twice is an error. */
export function parseScaleArgs(values: readonly string[]): { service: string; replicas: number }[] {
  if (values.length === 0) usage('service scale needs at least one SERVICE=REPLICAS argument');
  const out = values.map(parseScaleArg);
  const seen = new Set<string>();
  for (const { service } of out) {
    if (seen.has(service)) usage(`service ${q(service)} is given twice`);
    seen.add(service);
  }
  return out;
}

// ------------------------------------------------------------------ addresses

/** Where the control API is: a unix socket path or a TCP host:port. */
export type HostAddr = { kind: 'unix'; path: string } | { kind: 'tcp'; host: string; port: number };

/**
 * `--host` / `SHOAL_HOST`: `unix:///ABS/PATH` (also `unix:PATH`, or a bare path starting with `/`
 * or `.`), or `HOST:PORT` (also `tcp://HOST:PORT`, `[IPv6]:PORT`).
 */
export function parseHost(value: string): HostAddr {
  const s = value.trim();
  const bad = (why: string): never =>
    usage(`invalid --host ${q(value)}: ${why} (expected unix:///PATH/control.sock or HOST:PORT)`);
  if (s === '') bad('empty');
  if (s.startsWith('unix:')) {
    const path = s.startsWith('unix://') ? s.slice('unix://'.length) : s.slice('unix:'.length);
    if (path === '') bad('no socket path');
    return { kind: 'unix', path };
  }
  if (s.startsWith('/') || s.startsWith('./') || s.startsWith('../')) return { kind: 'unix', path: s };
  const hp = s.startsWith('tcp://') ? s.slice('tcp://'.length) : s;
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(hp)) bad('unsupported scheme');
  const m = /^(\[[^\]]+\]|[^:\s/]+):(\d+)$/.exec(hp);
  if (!m) return bad('no port');
  const port = Number(m[2]);
  if (port < 1 || port > 65535) bad('the port must be from 1 to 65535');
  return { kind: 'tcp', host: m[1]!, port };
}

/** The host as users write it (for messages). */
/** `--host A,B,C`: several managers, tried in this order (the next when one cannot be reached). */
export function parseHosts(value: string): HostAddr[] {
  const parts = value.split(',').map((p) => p.trim());
  if (parts.length > 1 && parts.some((p) => p === '')) usage(`invalid --host ${q(value)}: an empty address in the list`);
  return parts.map(parseHost);
}

export function formatHost(h: HostAddr): string {
  return h.kind === 'unix' ? `unix://${h.path}` : `${h.host}:${h.port}`;
}

// ------------------------------------------------------------------ argv

/**
 * Makes everything from IMAGE on reach `service create` verbatim, whatever it looks like (docker's
 * `IMAGE [COMMAND [ARG...]]`: `... nginx sh -c 'echo -n hi'` must not read `-c` and `-n` as
 * shoal flags). Finds the command path (e.g. service create) among the leading words, then the
 * first word after it that is neither a flag nor a flag's value, and puts `--` before it (yargs
 * then leaves it and what follows in argv['--']). `takesValue(flag)` tells which flags (`--name`,
 * `-e`) consume the next word. Returns argv unchanged when the path is not there or `--` already
 * precedes the image.
 */
export function splitTrailingArgs(
  argv: readonly string[],
  path: readonly string[],
  takesValue: (flag: string) => boolean,
): string[] {
  const out = [...argv];
  const isFlag = (t: string): boolean => t.startsWith('-') && t !== '-';
  const consumesNext = (t: string): boolean => {
    if (t.includes('=')) return false;
    if (t.startsWith('--')) return takesValue(t.slice(2));
    return t.length === 2 && takesValue(t.slice(1)); // -p VALUE (not -p8080:80)
  };
  let k = 0;
  for (let i = 0; i < out.length; i++) {
    const t = out[i]!;
    if (t === '--') return out;
    if (isFlag(t)) {
      if (consumesNext(t)) i++;
      continue;
    }
    if (k < path.length) {
      if (t !== path[k]) return out;
      k++;
      continue;
    }
    out.splice(i, 0, '--');
    return out;
  }
  return out;
}

/** `--limit-cpu 0.5`: CPUs as a decimal number, in nanoCPUs (Docker's NanoCPUs). */
export function parseCpus(value: string, what: string): number {
  const s = value.trim();
  if (!/^(\d+(\.\d*)?|\.\d+)$/.test(s)) usage(`invalid ${what} ${q(value)}: expected a number of CPUs, like 0.5 or 2`);
  const nano = Math.round(Number(s) * 1e9);
  if (!Number.isSafeInteger(nano)) usage(`invalid ${what} ${q(value)}: too large`);
  return nano;
}

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1 << 10, m: 1 << 20, g: 1 << 30, t: 2 ** 40 };

/** `--limit-memory 64M`: a size as Docker reads it (b, k, m, g, t; binary multiples; "MB", "MiB" alike). */
export function parseMemory(value: string, what: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?$/i.exec(value.trim());
  if (!m) usage(`invalid ${what} ${q(value)}: expected a size, like 512m or 1g`);
  const bytes = Math.round(Number(m![1]) * SIZE_UNITS[m![2]!.toLowerCase()]!);
  if (!Number.isSafeInteger(bytes)) usage(`invalid ${what} ${q(value)}: too large`);
  return bytes;
}

// ------------------------------------------------------------------ networks

/**
 * `--network NAME` or docker's long form `--network name=NAME,alias=A[,alias=B]` (`target=` is
 * docker's other spelling of `name=`).
 */
export function parseNetworkAttachment(spec: string): NetworkAttachmentConfig {
  if (!spec.includes('=')) return { target: spec, aliases: [] };
  let target = '';
  const aliases: string[] = [];
  for (const field of spec.split(',')) {
    const i = field.indexOf('=');
    const key = i < 0 ? field : field.slice(0, i);
    const value = i < 0 ? '' : field.slice(i + 1);
    if (key === 'name' || key === 'target') target = value;
    else if (key === 'alias') aliases.push(value);
    else usage(`invalid --network ${q(spec)}: unknown field ${q(key)} (expected name=NETWORK,alias=ALIAS)`);
  }
  if (target === '') usage(`invalid --network ${q(spec)}: name=NETWORK is missing`);
  return { target, aliases };
}
