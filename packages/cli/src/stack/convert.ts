// A loaded Compose document turned into what a stack is made of: service specs (completed and
// checked by the control API's own rules), the networks, secrets and configs to create or to
// find, all named STACK_NAME and labelled with the stack's namespace, as `docker stack deploy`
// converts them. Nothing here calls the cluster: every mistake is found before the first call.

import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import {
  type ConfigReference,
  type NetworkSpec,
  type SecretReference,
  type ServiceSpec,
  type SpecInput,
  type VolumeOptions,
  SpecError,
  completeServiceSpec,
  parseConstraint,
  parseDuration,
} from '@shoal/types';
import { parseCpus, parseMemory } from '../parse.js';
import { type Doc, type LoadedCompose, listOrDict, networkMap } from './compose-load.js';
import { composeError, parseEnvFile } from './interpolate.js';
import { NAMESPACE_LABEL } from './namespace.js';

export { NAMESPACE_LABEL };

export interface StackNetwork {
  /** The key in the file (`default`, `backend`). */
  key: string;
  /** The cluster's name of it: STACK_KEY, or its `name:`, or an external network's name. */
  name: string;
  external: boolean;
  /** What to create (not external). */
  spec?: NetworkSpec;
}

export interface StackFileObject {
  key: string;
  name: string;
  external: boolean;
  labels: Record<string, string>;
  /** The file's content (not external). */
  data?: Buffer;
}

export interface StackService {
  /** The name in the file (`web`): its alias on the stack's networks. */
  short: string;
  /** Completed; networks, secrets and configs named (deploy puts their ids in). */
  spec: ServiceSpec;
}

export interface Stack {
  namespace: string;
  services: StackService[];
  networks: StackNetwork[];
  secrets: StackFileObject[];
  configs: StackFileObject[];
}

const q = JSON.stringify;
const isMap = (v: unknown): v is Doc => v !== null && typeof v === 'object' && !Array.isArray(v);
const strList = (v: unknown): string[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v.map(String) : [String(v)]);

/** `docker stack deploy`'s rule for a stack's name (it prefixes every object's). */
export function checkStackName(name: string): string {
  if (!/^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/.test(name) || name.length > 40) {
    throw composeError(`invalid stack name ${q(name)}: use letters, digits, '-', '_' and '.', starting with a letter or digit (40 at most)`);
  }
  return name;
}

/** Runs `fn`, a rule's failure (SpecError) said as a mistake at `where`. */
function at<T>(where: string, fn: () => T): T {
  try {
    return fn();
  } catch (err) {
    if (err instanceof SpecError) throw composeError(`${where}: ${err.message}`);
    throw err;
  }
}

/** A shell-form string split as a POSIX shell splits words (quotes and backslashes), as compose does. */
export function shellWords(s: string, where: string): string[] {
  const out: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | null = null;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote === "'") {
      if (c === "'") quote = null;
      else cur += c;
    } else if (quote === '"') {
      if (c === '"') quote = null;
      else if (c === '\\' && i + 1 < s.length && '"\\$`'.includes(s[i + 1]!)) cur += s[++i];
      else cur += c;
    } else if (c === "'" || c === '"') {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) out.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw composeError(`${where}: unterminated quote in ${q(s)}`);
  if (inWord) out.push(cur);
  return out;
}

const command = (v: unknown, where: string): string[] => (v === undefined || v === null ? [] : typeof v === 'string' ? shellWords(v, where) : strList(v));

const duration = (v: unknown, where: string): number | undefined => (v === undefined || v === null ? undefined : at(where, () => parseDuration(String(v), 'duration')));

const stringMap = (v: unknown): Record<string, string> =>
  Object.fromEntries(Object.entries(listOrDict(v)).map(([k, x]) => [k, x ?? '']));

// ------------------------------------------------------------------ top-level objects

function topLevel(doc: Doc, kind: 'networks' | 'volumes' | 'secrets' | 'configs'): [string, Doc][] {
  const v = doc[kind];
  return isMap(v) ? Object.entries(v).map(([k, x]) => [k, isMap(x) ? x : {}]) : [];
}

/** `external: true`, or the older `external: {name: NAME}` (which names it too). */
function isExternal(d: Doc): boolean {
  return d['external'] === true || isMap(d['external']);
}

/** An object's cluster name: its `name:`, else STACK_KEY (an external one: its key). */
function objectName(ns: string, key: string, d: Doc): string {
  if (typeof d['name'] === 'string' && d['name'] !== '') return d['name'];
  const ext = d['external'];
  if (isMap(ext) && typeof ext['name'] === 'string' && ext['name'] !== '') return ext['name'];
  return isExternal(d) ? key : `${ns}_${key}`;
}

function convertNetworks(doc: Doc, ns: string, used: Set<string>): StackNetwork[] {
  const declared = new Map(topLevel(doc, 'networks'));
  for (const key of used) if (key !== 'default' && !declared.has(key)) throw composeError(`a service uses network ${q(key)}, which is not declared in the top-level networks`);
  const out: StackNetwork[] = [];
  for (const key of [...used].sort()) {
    const d = declared.get(key) ?? {};
    const name = objectName(ns, key, d);
    if (isExternal(d)) {
      out.push({ key, name, external: true });
      continue;
    }
    const driver = d['driver'] === undefined ? 'overlay' : String(d['driver']);
    if (driver !== 'overlay') throw composeError(`networks.${key}.driver: ${q(driver)} is not supported (a stack's networks are overlay networks)`);
    const ipam = isMap(d['ipam']) && Array.isArray(d['ipam']['config']) ? ((d['ipam']['config'][0] ?? {}) as Doc) : {};
    out.push({
      key,
      name,
      external: false,
      spec: {
        name,
        driver: 'overlay',
        labels: { ...stringMap(d['labels']), [NAMESPACE_LABEL]: ns },
        internal: d['internal'] === true,
        attachable: d['attachable'] === true,
        ipam: { subnet: String(ipam['subnet'] ?? ''), gateway: String(ipam['gateway'] ?? '') },
        ingress: false,
      },
    });
  }
  return out;
}

function convertFileObjects(doc: Doc, ns: string, kind: 'secrets' | 'configs', used: Set<string>, workingDir: string, env: Readonly<Record<string, string | undefined>>): StackFileObject[] {
  const declared = new Map(topLevel(doc, kind));
  const what = kind.slice(0, -1);
  for (const key of used) if (!declared.has(key)) throw composeError(`a service uses ${what} ${q(key)}, which is not declared in the top-level ${kind}`);
  return [...used].sort().map((key) => {
    const d = declared.get(key)!;
    const name = objectName(ns, key, d);
    if (isExternal(d)) return { key, name, external: true, labels: {} };
    const labels = { ...stringMap(d['labels']), [NAMESPACE_LABEL]: ns };
    if (typeof d['file'] === 'string') {
      const path = resolve(workingDir, d['file']);
      try {
        return { key, name, external: false, labels, data: readFileSync(path) };
      } catch (err) {
        throw composeError(`${kind}.${key}.file: cannot read ${path} (${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message})`);
      }
    }
    if (typeof d['environment'] === 'string') {
      const v = env[d['environment']];
      if (v === undefined) throw composeError(`${kind}.${key}.environment: the variable ${d['environment']} is not set`);
      return { key, name, external: false, labels, data: Buffer.from(v) };
    }
    if (kind === 'configs' && typeof d['content'] === 'string') return { key, name, external: false, labels, data: Buffer.from(d['content']) };
    throw composeError(`${kind}.${key}: needs file: PATH${kind === 'configs' ? ', content:' : ''}, environment: VAR or external: true`);
  });
}

// ------------------------------------------------------------------ services

interface ServiceContext {
  ns: string;
  workingDir: string;
  env: Readonly<Record<string, string | undefined>>;
  volumes: Map<string, Doc>;
  secrets: Map<string, string>;
  configs: Map<string, string>;
  networks: Map<string, string>;
}

/** A service's env_file entries: a path, a list of paths, or `{path, required}` (false: it may be missing). */
function envFiles(v: unknown): { path: string; required: boolean }[] {
  const one = (e: unknown) => (isMap(e) ? { path: String(e['path']), required: e['required'] !== false } : { path: String(e), required: true });
  return v === undefined || v === null ? [] : Array.isArray(v) ? v.map(one) : [one(v)];
}

function environment(svc: Doc, c: ServiceContext, where: string): string[] {
  const vars = new Map<string, string>();
  for (const f of envFiles(svc['env_file'])) {
    const path = resolve(c.workingDir, f.path);
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (err) {
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      if (missing && !f.required) continue;
      throw composeError(`${where}.env_file: cannot read ${path} (${missing ? 'no such file' : (err as Error).message})`);
    }
    for (const [k, v] of parseEnvFile(text, path, c.env)) vars.set(k, v);
  }
  for (const [k, v] of Object.entries(listOrDict(svc['environment']))) {
    // `KEY` alone (or `KEY:` empty): from the deploying shell's environment, left out if unset there.
    if (v === null) {
      const fromShell = c.env[k];
      if (fromShell !== undefined) vars.set(k, fromShell);
    } else vars.set(k, v);
  }
  return [...vars].map(([k, v]) => `${k}=${v}`);
}

/** Short syntax `[HOST_IP:][PUBLISHED[-END]:]TARGET[-END][/PROTO]` or the long one; ranges expand. */
function ports(v: unknown, where: string): SpecInput['ports'] {
  const out: { targetPort: number; publishedPort: number; protocol: string; publishMode: string }[] = [];
  for (const [i, p] of ((v as unknown[]) ?? []).entries()) {
    const w = `${where}.ports[${i}]`;
    if (isMap(p)) {
      const published = p['published'] === undefined ? 0 : Number(p['published']);
      if (!Number.isInteger(published)) throw composeError(`${w}.published must be a port number in a stack (ranges only in the short syntax)`);
      if (published === 0) throw composeError(`${w}: a published port is required`);
      out.push({ targetPort: Number(p['target']), publishedPort: published, protocol: String(p['protocol'] ?? 'tcp'), publishMode: String(p['mode'] ?? 'ingress') });
      continue;
    }
    const s = String(p);
    const m = /^(?:(?:(\[[^\]]+\]|[^:]*):)?(\d+)(?:-(\d+))?:)?(\d+)(?:-(\d+))?(?:\/(tcp|udp|sctp))?$/.exec(s);
    if (!m) throw composeError(`${w}: invalid port ${q(s)}: expected [PUBLISHED:]TARGET[/PROTOCOL]`);
    const [, ip, pub, pubEnd, target, targetEnd, proto] = m;
    if (ip) throw composeError(`${w}: ${q(s)}: a stack cannot publish on one host address (${ip})`);
    if (pub === undefined) throw composeError(`${w}: ${q(s)}: a published port is required (PUBLISHED:TARGET)`);
    const t0 = Number(target);
    const count = (targetEnd ? Number(targetEnd) : t0) - t0 + 1;
    const pubCount = (pubEnd ? Number(pubEnd) : Number(pub)) - Number(pub) + 1;
    if (count < 1 || count !== pubCount) throw composeError(`${w}: invalid port range ${q(s)}`);
    for (let k = 0; k < count; k++) out.push({ targetPort: t0 + k, publishedPort: Number(pub) + k, protocol: proto ?? 'tcp', publishMode: 'ingress' });
  }
  // Protocols and modes are checked by completeServiceSpec.
  return out as SpecInput['ports'];
}

function mounts(v: unknown, where: string, c: ServiceContext): SpecInput['mounts'] {
  const named = (source: string, w: string): { source: string; volumeOptions: Partial<VolumeOptions> | null } => {
    const d = c.volumes.get(source);
    if (!d) throw composeError(`${w}: undefined volume ${q(source)} (declare it in the top-level volumes)`);
    if (isExternal(d)) return { source: objectName(c.ns, source, d), volumeOptions: null };
    return {
      source: objectName(c.ns, source, d),
      volumeOptions: { noCopy: false, labels: { ...stringMap(d['labels']), [NAMESPACE_LABEL]: c.ns }, driver: String(d['driver'] ?? ''), driverOptions: stringMap(d['driver_opts']) },
    };
  };
  const hostPath = (s: string) => (isAbsolute(s) ? s : resolve(c.workingDir, s));
  const isPath = (s: string) => s.startsWith('.') || s.startsWith('/') || s.startsWith('~');
  return ((v as unknown[]) ?? []).map((m, i) => {
    const w = `${where}.volumes[${i}]`;
    if (isMap(m)) {
      const type = String(m['type']);
      if (!['volume', 'bind', 'tmpfs'].includes(type)) throw composeError(`${w}.type: ${q(type)} mounts are not supported (volume, bind or tmpfs)`);
      const target = String(m['target'] ?? '');
      const source = m['source'] === undefined ? '' : String(m['source']);
      const readOnly = m['read_only'] === true;
      if (type === 'tmpfs') {
        const t = isMap(m['tmpfs']) ? m['tmpfs'] : {};
        const size = t['size'] === undefined ? 0 : typeof t['size'] === 'number' ? t['size'] : at(`${w}.tmpfs.size`, () => parseMemory(String(t['size']), 'size'));
        return { type, source: '', target, readOnly, tmpfsOptions: { sizeBytes: size, mode: t['mode'] === undefined ? 0 : Number(t['mode']) } };
      }
      if (type === 'bind') {
        const b = isMap(m['bind']) ? m['bind'] : {};
        return { type, source: hostPath(source), target, readOnly, bindPropagation: String(b['propagation'] ?? '') };
      }
      const vol = isMap(m['volume']) ? m['volume'] : {};
      if (source === '') return { type, source: '', target, readOnly, volumeOptions: { noCopy: vol['nocopy'] === true } };
      const n = named(source, w);
      return { type, target, readOnly, ...n, volumeOptions: n.volumeOptions ? { ...n.volumeOptions, noCopy: vol['nocopy'] === true } : vol['nocopy'] === true ? { noCopy: true } : null };
    }
    const parts = String(m).split(':');
    if (parts.length === 1) return { type: 'volume', source: '', target: parts[0]! };
    if (parts.length > 3) throw composeError(`${w}: invalid volume ${q(String(m))}: expected SOURCE:TARGET[:MODE]`);
    const [source, target, mode = 'rw'] = parts as [string, string, string?];
    const opts = mode.split(',');
    const bad = opts.find((o) => !['ro', 'rw', 'z', 'Z', 'nocopy', 'rprivate', 'private', 'rshared', 'shared', 'rslave', 'slave'].includes(o));
    if (bad !== undefined) throw composeError(`${w}: invalid volume mode ${q(bad)} in ${q(String(m))}`);
    const readOnly = opts.includes('ro');
    if (isPath(source)) {
      const propagation = opts.find((o) => /^r?(private|shared|slave)$/.test(o)) ?? '';
      return { type: 'bind', source: hostPath(source.replace(/^~/, process.env['HOME'] ?? '~')), target, readOnly, bindPropagation: propagation };
    }
    const n = named(source, w);
    return { type: 'volume', target, readOnly, ...n, volumeOptions: opts.includes('nocopy') ? { ...(n.volumeOptions ?? {}), noCopy: true } : n.volumeOptions };
  });
}

function fileRefs<K extends 'secrets' | 'configs'>(v: unknown, kind: K, names: Map<string, string>): (K extends 'secrets' ? Partial<SecretReference> : Partial<ConfigReference>)[] {
  return ((v as unknown[]) ?? []).map((r) => {
    const d: Doc = isMap(r) ? r : { source: String(r) };
    const source = String(d['source']);
    const name = names.get(source)!;
    // The default target is the short name (docker's: /run/secrets/KEY, /KEY), not the stack's.
    const target = d['target'] === undefined ? (kind === 'configs' ? `/${source}` : source) : String(d['target']);
    const common = { target, uid: d['uid'] === undefined ? '' : String(d['uid']), gid: d['gid'] === undefined ? '' : String(d['gid']), mode: d['mode'] === undefined ? 0 : Number(d['mode']) };
    return (kind === 'secrets' ? { secretName: name, secretId: '', ...common } : { configName: name, configId: '', ...common }) as never;
  });
}

function healthcheck(v: unknown, where: string): SpecInput['healthcheck'] {
  if (!isMap(v)) return null;
  if (v['disable'] === true) return { test: ['NONE'] };
  const t = v['test'];
  const test = t === undefined ? [] : typeof t === 'string' ? ['CMD-SHELL', t] : strList(t);
  return {
    test,
    intervalMs: duration(v['interval'], `${where}.healthcheck.interval`),
    timeoutMs: duration(v['timeout'], `${where}.healthcheck.timeout`),
    retries: v['retries'] === undefined ? undefined : Number(v['retries']),
    startPeriodMs: duration(v['start_period'], `${where}.healthcheck.start_period`),
  };
}

function rollout(v: unknown, where: string): SpecInput['updateConfig'] {
  if (!isMap(v)) return undefined;
  return {
    parallelism: v['parallelism'] === undefined ? 1 : Number(v['parallelism']),
    delayMs: duration(v['delay'], `${where}.delay`),
    failureAction: v['failure_action'] === undefined ? undefined : String(v['failure_action']),
    monitorMs: duration(v['monitor'], `${where}.monitor`),
    maxFailureRatio: v['max_failure_ratio'] === undefined ? undefined : Number(v['max_failure_ratio']),
    order: v['order'] === undefined ? undefined : String(v['order']),
  } as SpecInput['updateConfig'];
}

function resources(v: unknown, where: string): SpecInput['resources'] {
  if (!isMap(v)) return undefined;
  const one = (x: unknown, w: string) => {
    if (!isMap(x)) return undefined;
    return {
      nanoCpus: x['cpus'] === undefined ? 0 : at(`${w}.cpus`, () => parseCpus(String(x['cpus']), 'cpus')),
      memoryBytes: x['memory'] === undefined ? 0 : typeof x['memory'] === 'number' ? x['memory'] : at(`${w}.memory`, () => parseMemory(String(x['memory']), 'memory')),
    };
  };
  return { limits: one(v['limits'], `${where}.limits`), reservations: one(v['reservations'], `${where}.reservations`) };
}

function ulimits(v: unknown): SpecInput['ulimits'] {
  if (!isMap(v)) return [];
  return Object.entries(v).map(([name, x]) => (isMap(x) ? { name, soft: Number(x['soft']), hard: Number(x['hard']) } : { name, soft: Number(x), hard: Number(x) }));
}

function convertService(short: string, svc: Doc, c: ServiceContext): StackService {
  const where = `services.${short}`;
  if (typeof svc['image'] !== 'string' || svc['image'] === '') throw composeError(`${where}.image is required (a stack's services run an image; build: is not supported)`);
  const deploy = isMap(svc['deploy']) ? svc['deploy'] : {};
  const placement = isMap(deploy['placement']) ? deploy['placement'] : {};
  const restart = isMap(deploy['restart_policy']) ? deploy['restart_policy'] : undefined;
  const logging = isMap(svc['logging']) ? svc['logging'] : undefined;
  const nets = svc['networks'] === undefined ? { default: null } : networkMap(svc['networks']);
  const dns = strList(svc['dns']);
  const dnsSearch = strList(svc['dns_search']);
  const dnsOpt = strList(svc['dns_opt']);
  const mode = deploy['mode'] === undefined ? 'replicated' : String(deploy['mode']);
  const input: SpecInput = {
    name: `${c.ns}_${short}`,
    labels: { ...stringMap(deploy['labels']), [NAMESPACE_LABEL]: c.ns },
    containerLabels: { ...stringMap(svc['labels']), [NAMESPACE_LABEL]: c.ns },
    image: svc['image'],
    entrypoint: command(svc['entrypoint'], `${where}.entrypoint`),
    args: command(svc['command'], `${where}.command`),
    env: environment(svc, c, where),
    mode,
    // A global service (or job) runs one task per node: it has no replicas.
    replicas: mode.startsWith('global') ? 0 : deploy['replicas'] === undefined ? 1 : Number(deploy['replicas']),
    ports: ports(svc['ports'], where),
    networks: Object.entries(nets).map(([key, opts]) => ({
      target: c.networks.get(key)!,
      // Every service answers to its short name on each of the stack's networks.
      aliases: [...new Set([short, ...strList(isMap(opts) ? opts['aliases'] : undefined)])],
    })),
    endpointMode: deploy['endpoint_mode'] === undefined ? undefined : String(deploy['endpoint_mode']),
    mounts: mounts(svc['volumes'], where, c),
    secrets: fileRefs(svc['secrets'], 'secrets', c.secrets),
    configs: fileRefs(svc['configs'], 'configs', c.configs),
    healthcheck: healthcheck(svc['healthcheck'], where),
    user: svc['user'] === undefined ? '' : String(svc['user']),
    workdir: svc['working_dir'] === undefined ? '' : String(svc['working_dir']),
    hostname: svc['hostname'] === undefined ? '' : String(svc['hostname']),
    dnsConfig: dns.length + dnsSearch.length + dnsOpt.length === 0 ? null : { nameservers: dns, search: dnsSearch, options: dnsOpt },
    capAdd: strList(svc['cap_add']),
    capDrop: strList(svc['cap_drop']),
    readOnly: svc['read_only'] === true,
    init: svc['init'] === true,
    tty: svc['tty'] === true,
    ulimits: ulimits(svc['ulimits']),
    sysctls: stringMap(svc['sysctls']),
    stopSignal: svc['stop_signal'] === undefined ? '' : String(svc['stop_signal']),
    stopGracePeriodMs: duration(svc['stop_grace_period'], `${where}.stop_grace_period`),
    logDriver: logging && logging['driver'] !== undefined ? { name: String(logging['driver']), options: stringMap(logging['options']) } : null,
    constraints: strList(placement['constraints']).map((s) => at(`${where}.deploy.placement.constraints`, () => parseConstraint(s))),
    placementPrefs: ((placement['preferences'] as unknown[]) ?? []).map((p) => `spread=${String(isMap(p) ? p['spread'] : p)}`),
    maxReplicasPerNode: placement['max_replicas_per_node'] === undefined ? 0 : Number(placement['max_replicas_per_node']),
    resources: resources(deploy['resources'], `${where}.deploy.resources`),
    restartPolicy: restart
      ? {
          condition: restart['condition'] === undefined ? undefined : String(restart['condition']),
          delayMs: duration(restart['delay'], `${where}.deploy.restart_policy.delay`),
          maxAttempts: restart['max_attempts'] === undefined ? undefined : Number(restart['max_attempts']),
          windowMs: duration(restart['window'], `${where}.deploy.restart_policy.window`),
        }
      : undefined,
    updateConfig: rollout(deploy['update_config'], `${where}.deploy.update_config`),
    rollbackConfig: rollout(deploy['rollback_config'], `${where}.deploy.rollback_config`),
  } as SpecInput;
  return { short, spec: at(where, () => completeServiceSpec(input)) };
}

/** The stack `ns` of a loaded Compose document (secret and config files are read here). */
export function convertStack(loaded: LoadedCompose, ns: string): Stack {
  checkStackName(ns);
  const { doc, workingDir, env } = loaded;
  const services = isMap(doc['services']) ? Object.entries(doc['services']) : [];
  if (services.length === 0) throw composeError('the Compose file has no services');
  const usedNetworks = new Set<string>();
  const usedSecrets = new Set<string>();
  const usedConfigs = new Set<string>();
  for (const [, s] of services) {
    const svc = isMap(s) ? s : {};
    for (const key of svc['networks'] === undefined ? ['default'] : Object.keys(networkMap(svc['networks']))) usedNetworks.add(key);
    for (const r of (svc['secrets'] as unknown[]) ?? []) usedSecrets.add(String(isMap(r) ? r['source'] : r));
    for (const r of (svc['configs'] as unknown[]) ?? []) usedConfigs.add(String(isMap(r) ? r['source'] : r));
  }
  const networks = convertNetworks(doc, ns, usedNetworks);
  const secrets = convertFileObjects(doc, ns, 'secrets', usedSecrets, workingDir, env);
  const configs = convertFileObjects(doc, ns, 'configs', usedConfigs, workingDir, env);
  const c: ServiceContext = {
    ns,
    workingDir,
    env,
    volumes: new Map(topLevel(doc, 'volumes')),
    networks: new Map(networks.map((n) => [n.key, n.name])),
    secrets: new Map(secrets.map((s) => [s.key, s.name])),
    configs: new Map(configs.map((s) => [s.key, s.name])),
  };
  return {
    namespace: ns,
    services: services.map(([short, s]) => convertService(short, isMap(s) ? s : {}, c)),
    networks,
    secrets,
    configs,
  };
}
