// The container's options of `service create` and `service update` (container-flags.ts parses
// their values): their yargs definitions and how a handler reads them.

import { readFileSync } from 'node:fs';
import type { Options } from 'yargs';
import type { ContainerCreateFlags, ContainerUpdateFlags } from '../container-flags.js';
import { parseEnvFile } from '../container-flags.js';
import { UsageError } from '../errors.js';
import { type Args, list, one } from './common.js';

const S = { type: 'string', requiresArg: true } as const;
// No default: absent stays undefined, so that an update changes only what was given.
const B = { type: 'boolean' } as const;

export const CONTAINER_CREATE_OPTIONS: Readonly<Record<string, Options>> = {
  mount: {
    ...S,
    describe:
      'Attach a filesystem: type=volume|bind|tmpfs,source=SRC,target=/PATH[,readonly][,volume-label=K=V][,volume-driver=D][,volume-opt=K=V][,volume-nocopy][,tmpfs-size=64m][,tmpfs-mode=1777][,bind-propagation=rprivate]; repeatable',
  },
  user: { ...S, alias: 'u', describe: 'User the container runs as: USER, UID, USER:GROUP or UID:GID' },
  entrypoint: { ...S, describe: "Replace the image's ENTRYPOINT (split into words as a shell would; \"\" keeps the image's)" },
  hostname: {
    ...S,
    describe: 'Container hostname; may use {{.Service.Name}}, {{.Service.ID}}, {{.Task.Slot}}, {{.Task.ID}}, {{.Task.Name}}, {{.Node.ID}}, {{.Node.Hostname}}',
  },
  dns: { ...S, describe: 'DNS server (an IP; on an overlay network, after the service DNS); repeatable' },
  'dns-search': { ...S, describe: 'DNS search domain; repeatable' },
  'dns-option': { ...S, describe: 'DNS resolver option, e.g. ndots:2; repeatable' },
  init: { ...B, describe: 'Run an init inside the container that forwards signals and reaps processes' },
  'stop-signal': { ...S, describe: 'Signal that stops the container, e.g. SIGINT (default: the image\'s, else SIGTERM)' },
  'read-only': { ...B, describe: "Mount the container's root filesystem read-only" },
  'cap-add': { ...S, describe: 'Add a Linux capability, e.g. NET_ADMIN (ALL: all of them); repeatable' },
  'cap-drop': { ...S, describe: 'Drop a Linux capability, e.g. CHOWN (ALL: all of them); repeatable' },
  sysctl: { ...S, describe: 'Set a namespaced kernel parameter KEY=VALUE, e.g. net.core.somaxconn=1024; repeatable' },
  ulimit: { ...S, describe: 'Set a resource limit NAME=SOFT[:HARD], e.g. nofile=1024:2048; repeatable' },
  'env-file': { ...S, describe: 'Read environment variables from a file (KEY=VALUE lines, # comments; a bare KEY takes its value here); repeatable' },
  'container-label': { ...S, describe: 'Container label KEY=VALUE (Shoal\'s own shoal.* labels win); repeatable' },
  'log-driver': { ...S, describe: 'Logging driver of the containers, e.g. json-file, local, none' },
  'log-opt': { ...S, describe: 'Logging driver option KEY=VALUE, e.g. max-size=10m; repeatable' },
  tty: { ...B, alias: 't', describe: 'Allocate a pseudo-TTY' },
  'replicas-max-per-node': { ...S, describe: 'Most tasks of this service on one node (default 0: no limit)' },
};

const setting = (k: string): Options => CONTAINER_CREATE_OPTIONS[k]!;

export const CONTAINER_UPDATE_OPTIONS: Readonly<Record<string, Options>> = {
  'mount-add': { ...S, describe: 'Add or replace (by target) a mount, same syntax as create --mount; repeatable' },
  'mount-rm': { ...S, describe: 'Remove the mount of a target path; repeatable' },
  user: setting('user'),
  entrypoint: setting('entrypoint'),
  hostname: setting('hostname'),
  'dns-add': { ...S, describe: 'Add a DNS server; repeatable' },
  'dns-rm': { ...S, describe: 'Remove a DNS server; repeatable' },
  'dns-search-add': { ...S, describe: 'Add a DNS search domain; repeatable' },
  'dns-search-rm': { ...S, describe: 'Remove a DNS search domain; repeatable' },
  'dns-option-add': { ...S, describe: 'Add a DNS option; repeatable' },
  'dns-option-rm': { ...S, describe: 'Remove a DNS option; repeatable' },
  init: { ...setting('init'), describe: 'Run an init inside the container (--init=false: no more)' },
  'stop-signal': setting('stop-signal'),
  'read-only': { ...setting('read-only'), describe: 'Mount the root filesystem read-only (--read-only=false: writable again)' },
  'cap-add': { ...S, describe: 'Add a Linux capability (and no longer drop it); repeatable' },
  'cap-drop': { ...S, describe: 'Drop a Linux capability (and no longer add it); repeatable' },
  'sysctl-add': { ...S, describe: 'Add or replace a sysctl KEY=VALUE; repeatable' },
  'sysctl-rm': { ...S, describe: 'Remove a sysctl KEY; repeatable' },
  'ulimit-add': { ...S, describe: 'Add or replace a ulimit NAME=SOFT[:HARD]; repeatable' },
  'ulimit-rm': { ...S, describe: 'Remove a ulimit NAME; repeatable' },
  'container-label-add': { ...S, describe: 'Add or replace a container label KEY=VALUE; repeatable' },
  'container-label-rm': { ...S, describe: 'Remove a container label KEY; repeatable' },
  'log-driver': { ...setting('log-driver'), describe: 'Logging driver (its options with --log-opt, replaced together)' },
  'log-opt': setting('log-opt'),
  tty: { ...setting('tty'), describe: 'Allocate a pseudo-TTY (--tty=false: none)' },
  'replicas-max-per-node': setting('replicas-max-per-node'),
};

function bool(a: Args, key: string): boolean | undefined {
  const v = a[key];
  return v === undefined ? undefined : v === true || v === 'true';
}

/** The `--env-file`s' entries, in order (read here: the one piece of I/O of these flags). */
function envFromFiles(files: readonly string[]): string[] {
  return files.flatMap((file) => {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`cannot read --env-file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    return parseEnvFile(text, file, process.env);
  });
}

export function containerCreateFlags(a: Args): ContainerCreateFlags {
  return {
    mount: list(a, 'mount'),
    user: one(a, 'user'),
    entrypoint: one(a, 'entrypoint'),
    hostname: one(a, 'hostname'),
    dns: list(a, 'dns'),
    dnsSearch: list(a, 'dnsSearch'),
    dnsOption: list(a, 'dnsOption'),
    init: bool(a, 'init'),
    stopSignal: one(a, 'stopSignal'),
    readOnly: bool(a, 'readOnly'),
    capAdd: list(a, 'capAdd'),
    capDrop: list(a, 'capDrop'),
    sysctl: list(a, 'sysctl'),
    ulimit: list(a, 'ulimit'),
    envFromFiles: envFromFiles(list(a, 'envFile')),
    containerLabel: list(a, 'containerLabel'),
    logDriver: one(a, 'logDriver'),
    logOpt: list(a, 'logOpt'),
    tty: bool(a, 'tty'),
    replicasMaxPerNode: one(a, 'replicasMaxPerNode'),
  };
}

export function containerUpdateFlags(a: Args): ContainerUpdateFlags {
  const capAdd = list(a, 'capAdd');
  const capDrop = list(a, 'capDrop');
  return {
    mountAdd: list(a, 'mountAdd'),
    mountRm: list(a, 'mountRm'),
    user: one(a, 'user'),
    entrypoint: one(a, 'entrypoint'),
    hostname: one(a, 'hostname'),
    dnsAdd: list(a, 'dnsAdd'),
    dnsRm: list(a, 'dnsRm'),
    dnsSearchAdd: list(a, 'dnsSearchAdd'),
    dnsSearchRm: list(a, 'dnsSearchRm'),
    dnsOptionAdd: list(a, 'dnsOptionAdd'),
    dnsOptionRm: list(a, 'dnsOptionRm'),
    init: bool(a, 'init'),
    stopSignal: one(a, 'stopSignal'),
    readOnly: bool(a, 'readOnly'),
    capAdd: capAdd.length > 0 ? capAdd : undefined,
    capDrop: capDrop.length > 0 ? capDrop : undefined,
    sysctlAdd: list(a, 'sysctlAdd'),
    sysctlRm: list(a, 'sysctlRm'),
    ulimitAdd: list(a, 'ulimitAdd'),
    ulimitRm: list(a, 'ulimitRm'),
    containerLabelAdd: list(a, 'containerLabelAdd'),
    containerLabelRm: list(a, 'containerLabelRm'),
    logDriver: one(a, 'logDriver'),
    logOpt: list(a, 'logOpt'),
    tty: bool(a, 'tty'),
    replicasMaxPerNode: one(a, 'replicasMaxPerNode'),
  };
}
