// A task's container settings as Docker's create call takes them: the parts of Config and
// HostConfig that come from the spec's container fields (entrypoint, user, hostname, DNS, init,
// stop signal, read-only root, capabilities, sysctls, ulimits, labels, logging, tty, mounts), and
// the named volumes the node must have before the container is created. Pure: the executor does
// the calls.

import { type Mount, type Task, expandHostname } from '@shoal/types';
import { LABELS, containerName, executorError, type CreateOptions } from './executor.js';

/** The node a container is made on, as a hostname template names it. */
export interface NodeFacts {
  id: string;
  hostname: string;
}

/** A named volume to create on the node if it is missing (Docker's VolumeCreateOptions). */
export interface VolumeToCreate {
  Name: string;
  Driver: string;
  DriverOpts: Record<string, string>;
  Labels: Record<string, string>;
}

/** Docker's HostConfig.Mounts entry. */
export interface EngineMount {
  Type: Mount['type'];
  Source: string;
  Target: string;
  ReadOnly: boolean;
  BindOptions?: { Propagation: 'private' | 'rprivate' | 'shared' | 'rshared' | 'slave' | 'rslave' };
  VolumeOptions?: { NoCopy: boolean; Labels: Record<string, string>; DriverConfig: { Name: string; Options: Record<string, string> } };
  TmpfsOptions?: { SizeBytes: number; Mode: number };
}

export interface ContainerSettings {
  /** Fields of the create call's top level (Config). */
  config: {
    Entrypoint?: string[];
    User?: string;
    Hostname?: string;
    StopSignal?: string;
    Tty?: boolean;
    Labels: Record<string, string>;
  };
  /** Fields of its HostConfig. */
  hostConfig: {
    Dns?: string[];
    DnsSearch?: string[];
    DnsOptions?: string[];
    Init?: boolean;
    ReadonlyRootfs?: boolean;
    CapAdd?: string[];
    CapDrop?: string[];
    Sysctls?: Record<string, string>;
    Ulimits?: { Name: string; Soft: number; Hard: number }[];
    LogConfig?: { Type: string; Config: Record<string, string> };
    Mounts?: EngineMount[];
  };
  volumes: VolumeToCreate[];
}

/** The hostname of a task's container: the spec's template with the task's and the node's values ('' : Docker's default). */
export function taskHostname(task: Task, node: NodeFacts): string {
  const t = task.spec.hostname ?? '';
  if (t === '') return '';
  try {
    return expandHostname(t, {
      'Service.Name': task.serviceName,
      'Service.ID': task.serviceId,
      'Task.Slot': String(task.slot),
      'Task.ID': task.id,
      'Task.Name': containerName(task),
      'Node.ID': node.id,
      'Node.Hostname': node.hostname,
    });
  } catch (err) {
    throw executorError('invalid-spec', `task ${task.id}: ${(err as Error).message}`, err);
  }
}

function engineMount(m: Mount): EngineMount {
  const out: EngineMount = { Type: m.type, Source: m.source, Target: m.target, ReadOnly: m.readOnly };
  if (m.type === 'bind' && m.bindPropagation) out.BindOptions = { Propagation: m.bindPropagation as NonNullable<EngineMount['BindOptions']>['Propagation'] };
  const vo = m.volumeOptions;
  if (m.type === 'volume' && vo) {
    // (a driver's name '' is the engine's default driver)
    out.VolumeOptions = { NoCopy: vo.noCopy, Labels: { ...vo.labels }, DriverConfig: { Name: vo.driver, Options: { ...vo.driverOptions } } };
  }
  const to = m.tmpfsOptions;
  if (m.type === 'tmpfs' && to && (to.sizeBytes > 0 || to.mode > 0)) {
    // 0: the engine's default (no size limit; mode 1777).
    out.TmpfsOptions = { SizeBytes: to.sizeBytes, Mode: to.mode };
  }
  return out;
}

/**
 * The container settings of `task` on `node`. `shoalLabels` are Shoal's own labels: they win over
 * the spec's container labels of the same key. `attach` adds the node's part: the network's
 * resolver and the extra mounts (secrets, configs), which replace a spec mount of the same target.
 */
export function containerSettings(task: Task, node: NodeFacts, shoalLabels: Record<string, string>, attach: CreateOptions = {}): ContainerSettings {
  const spec = task.spec;
  const hostname = taskHostname(task, node);
  const config: ContainerSettings['config'] = {
    ...(spec.entrypoint?.length ? { Entrypoint: [...spec.entrypoint] } : {}),
    ...(spec.user ? { User: spec.user } : {}),
    ...(hostname ? { Hostname: hostname } : {}),
    ...(spec.stopSignal ? { StopSignal: spec.stopSignal } : {}),
    ...(spec.tty ? { Tty: true } : {}),
    Labels: { ...(spec.containerLabels ?? {}), ...shoalLabels },
  };

  // On overlay networks the network's resolver comes first (service names resolve there, and it
  // forwards other names upstream); the user's servers follow, asked when it does not answer.
  const dns = spec.dnsConfig;
  const servers = [...new Set([...(attach.dns ?? []), ...(dns?.nameservers ?? [])])];
  const mounts = [...(spec.mounts ?? [])];
  for (const extra of attach.mounts ?? []) {
    const i = mounts.findIndex((m) => m.target === extra.target);
    if (i >= 0) mounts[i] = extra;
    else mounts.push(extra);
  }
  const hostConfig: ContainerSettings['hostConfig'] = {
    ...(servers.length ? { Dns: servers } : {}),
    ...(dns?.search.length ? { DnsSearch: [...dns.search] } : {}),
    ...(dns?.options.length ? { DnsOptions: [...dns.options] } : {}),
    ...(spec.init ? { Init: true } : {}),
    ...(spec.readOnly ? { ReadonlyRootfs: true } : {}),
    ...(spec.capAdd?.length ? { CapAdd: [...spec.capAdd] } : {}),
    ...(spec.capDrop?.length ? { CapDrop: [...spec.capDrop] } : {}),
    ...(spec.sysctls && Object.keys(spec.sysctls).length ? { Sysctls: { ...spec.sysctls } } : {}),
    ...(spec.ulimits?.length ? { Ulimits: spec.ulimits.map((u) => ({ Name: u.name, Soft: u.soft, Hard: u.hard })) } : {}),
    ...(spec.logDriver ? { LogConfig: { Type: spec.logDriver.name, Config: { ...spec.logDriver.options } } } : {}),
    ...(mounts.length ? { Mounts: mounts.map(engineMount) } : {}),
  };

  // Named volumes are made here, with the mount's driver, options and labels and Shoal's labels
  // saying which node and service made them; they outlive the task (as in Swarm: a replacement on
  // this node finds the data). Anonymous ones (no source) are Docker's, removed with the container.
  const volumes: VolumeToCreate[] = (spec.mounts ?? [])
    .filter((m) => m.type === 'volume' && m.source !== '')
    .map((m) => ({
      Name: m.source,
      Driver: m.volumeOptions?.driver || 'local',
      DriverOpts: { ...(m.volumeOptions?.driverOptions ?? {}) },
      Labels: {
        ...(m.volumeOptions?.labels ?? {}),
        [LABELS.nodeId]: node.id,
        [LABELS.serviceName]: task.serviceName,
        [LABELS.serviceId]: task.serviceId,
      },
    }));
  return { config, hostConfig, volumes };
}
