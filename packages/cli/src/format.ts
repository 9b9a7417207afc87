// Output of `shoal`: docker-like aligned tables, the JSON shapes of INTERFACE.md, relative times
// (pure functions: the caller passes `now`).

import type { Node, PortConfig, Service, ServiceSpec, Task } from '@shoal/types';
import { hasTag } from '@shoal/types';
// Imported, not require()d on the first table: so the bundle holds it (with its code cache, and
// string-width's ASCII fast path: scripts/bundle-cli.mjs), where evaluating it costs `--help`
// next to nothing, and spares `service ls` loading and compiling it from node_modules.
import Table from 'cli-table3';
import { formatDuration } from './parse.js';
import { containerInspectLines } from './container-format.js';
import type { ClusterStatusResponse, NodeView, ServiceSummary, TaskView } from '@shoal/types';

// ------------------------------------------------------------------ tables

const NO_BORDER = {
  top: '',
  'top-mid': '',
  'top-left': '',
  'top-right': '',
  bottom: '',
  'bottom-mid': '',
  'bottom-left': '',
  'bottom-right': '',
  left: '',
  'left-mid': '',
  mid: '',
  'mid-mid': '',
  right: '',
  'right-mid': '',
  middle: '   ',
};

/**
 * A table as `docker ... ls` prints it: a header row in capitals, then the rows, columns left
 * aligned and separated by three spaces, no borders, no trailing spaces. Ends without a newline.
 */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const t = new Table({
    head: headers.map((h) => h.toUpperCase()),
    chars: NO_BORDER,
    style: { head: [], border: [], 'padding-left': 0, 'padding-right': 0 },
  });
  for (const r of rows) t.push(r.map(oneLine));
  return t
    .toString()
    .split('\n')
    .map((l) => l.trimEnd())
    .join('\n');
}

/** A cell on one line (newlines and tabs become spaces). */
function oneLine(s: string): string {
  return s.replace(/[\r\n\t]+/g, ' ');
}

/** An id as docker shows it in tables: its first 12 characters, unless `noTrunc`. */
export function shortId(id: string, noTrunc = false): string {
  return noTrunc ? id : id.slice(0, 12);
}

function ellipsis(s: string, max: number, noTrunc: boolean): string {
  const l = oneLine(s);
  return noTrunc || l.length <= max ? l : `${l.slice(0, max - 1)}…`;
}

/** `ready` → `Ready` (docker capitalizes states in tables). */
export function capitalize(s: string): string {
  return s === '' ? s : s[0]!.toUpperCase() + s.slice(1);
}

// ------------------------------------------------------------------ times

/**
 * Docker's units.HumanDuration: "Less than a second", "1 second", "N seconds", "About a minute",
 * "N minutes", "About an hour", "N hours", "N days", "N weeks", "N months", "N years".
 */
export function humanDuration(ms: number): string {
  const d = Math.max(0, ms);
  const seconds = Math.floor(d / 1000);
  if (seconds < 1) return 'Less than a second';
  if (seconds === 1) return '1 second';
  if (seconds < 60) return `${seconds} seconds`;
  const minutes = Math.floor(d / 60_000);
  if (minutes === 1) return 'About a minute';
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(d / 3_600_000 + 0.5);
  if (hours === 1) return 'About an hour';
  if (hours < 48) return `${hours} hours`;
  if (hours < 24 * 7 * 2) return `${Math.floor(hours / 24)} days`;
  if (hours < 24 * 30 * 2) return `${Math.floor(hours / 24 / 7)} weeks`;
  if (hours < 24 * 365 * 2) return `${Math.floor(hours / 24 / 30)} months`;
  return `${Math.floor(Math.floor(d / 3_600_000) / 24 / 365)} years`;
}

/** `2 minutes ago`, `less than a second ago`, `about an hour ago` (a future time counts as now). */
export function timeAgo(timestampMs: number, nowMs: number): string {
  return `${humanDuration(nowMs - timestampMs).toLowerCase()} ago`;
}

/** The CURRENT STATE column of `service ps`: `Running 2 minutes ago`. */
export function currentStateText(state: string, timestampMs: number, nowMs: number): string {
  if (!timestampMs) return capitalize(state);
  return `${capitalize(state)} ${timeAgo(timestampMs, nowMs)}`;
}

// ------------------------------------------------------------------ ports

/** `*:8080->80/tcp` (ingress) or `8080->80/tcp (host)`. */
export function portText(p: PortConfig): string {
  const proto = p.protocol || 'tcp';
  return p.publishMode === 'host'
    ? `${p.publishedPort}->${p.targetPort}/${proto} (host)`
    : `*:${p.publishedPort}->${p.targetPort}/${proto}`;
}

export function portsText(ports: readonly PortConfig[] | null | undefined): string {
  return (ports ?? []).map(portText).join(', ');
}

// ------------------------------------------------------------------ nodes

export interface NodeLsEntry {
  id: string;
  hostname: string;
  role: string;
  availability: string;
  status: string;
  addr: string;
  leader: boolean;
}

/** The views that hold a node, by hostname then id (the order of `node ls`). */
export function sortedNodeViews(views: readonly NodeView[]): { view: NodeView; node: Node }[] {
  return sortNodes(nodesOf(views));
}

function nodesOf(views: readonly NodeView[]): { view: NodeView; node: Node }[] {
  return views.filter((v): v is NodeView & { node: Node } => v.node != null).map((v) => ({ view: v, node: v.node }));
}

function sortNodes<T extends { node: Node }>(xs: T[]): T[] {
  return xs.sort(
    (a, b) =>
      (a.node.description?.hostname ?? '').localeCompare(b.node.description?.hostname ?? '') ||
      a.node.id.localeCompare(b.node.id),
  );
}

/** `node ls --format json`. */
export function nodeLsJson(views: readonly NodeView[]): NodeLsEntry[] {
  return sortNodes(nodesOf(views)).map(({ view, node }) => ({
    id: node.id,
    hostname: node.description?.hostname ?? '',
    role: node.spec?.role ?? '',
    availability: node.spec?.availability ?? '',
    status: node.status?.state ?? 'unknown',
    addr: node.status?.addr || node.managerStatus?.addr || '',
    leader: view.leader,
  }));
}

/**
 * The MANAGER STATUS column: Leader, Reachable, Unreachable, Learner (catching up, no vote yet),
 * Pending (not in Raft yet), or empty for a worker.
 */
export function managerStatusText(view: NodeView): string {
  if (view.leader) return 'Leader';
  if (view.node?.spec?.role !== 'manager' && !view.node?.managerStatus) return '';
  return capitalize(view.reachability || 'unknown');
}

/** `node ls` as a table. */
export function nodeLsTable(views: readonly NodeView[]): string {
  const rows = sortNodes(nodesOf(views)).map(({ view, node }) => [
    node.id,
    node.description?.hostname ?? '',
    capitalize(node.status?.state ?? 'unknown'),
    capitalize(node.spec?.availability ?? ''),
    managerStatusText(view),
    node.status?.addr || node.managerStatus?.addr || '',
    node.description?.engineVersion ?? '',
  ]);
  return renderTable(['ID', 'HOSTNAME', 'STATUS', 'AVAILABILITY', 'MANAGER STATUS', 'ADDR', 'ENGINE VERSION'], rows);
}

/** `node inspect` without --format json: a docker-like `--pretty` listing. */
export function nodeInspectText(view: NodeView, nowMs: number): string {
  const n = view.node;
  if (!n) return '';
  const lines: string[] = [];
  const kv = (k: string, v: string | number): void => void lines.push(`${`${k}:`.padEnd(22)}${v}`);
  kv('ID', n.id);
  kv('Hostname', n.description?.hostname ?? '');
  kv('Joined at', `${new Date(n.createdAt).toISOString()} (${timeAgo(n.createdAt, nowMs)})`);
  kv('Status', capitalize(n.status?.state ?? 'unknown'));
  if (n.status?.message) kv(' Message', n.status.message);
  kv(' Availability', capitalize(n.spec?.availability ?? ''));
  kv(' Address', n.status?.addr ?? '');
  kv('Role', n.spec?.role ?? '');
  if (n.managerStatus) {
    lines.push('Manager Status:');
    kv(' Address', n.managerStatus.addr);
    kv(' Raft Status', capitalize(view.reachability || 'unknown'));
    kv(' Leader', view.leader ? 'Yes' : 'No');
  }
  const labels = Object.entries(n.spec?.labels ?? {});
  if (labels.length > 0) {
    lines.push('Labels:');
    for (const [k, v] of labels) lines.push(` - ${k}=${v}`);
  }
  const d = n.description;
  if (d) {
    lines.push('Platform:');
    kv(' Operating System', d.platform?.os ?? '');
    kv(' Architecture', d.platform?.arch ?? '');
    lines.push('Resources:');
    kv(' CPUs', d.resources ? d.resources.nanoCpus / 1e9 : 0);
    kv(' Memory', bytesText(d.resources?.memoryBytes ?? 0));
    kv('Engine Version', d.engineVersion ?? '');
  }
  return lines.map((l) => l.trimEnd()).join('\n');
}

/** 1.5GiB, 512MiB... */
export function bytesText(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)}${units[i]}`;
}

// ------------------------------------------------------------------ services

export interface ServiceLsEntry {
  id: string;
  name: string;
  mode: string;
  /** Jobs also: `completed` (the current iteration's) and `total` (completions wanted). */
  replicas: { running: number; desired: number; completed?: number; total?: number };
  image: string;
  ports: PortConfig[];
}

function sortByName<T extends { service: Service }>(xs: T[]): T[] {
  return xs.sort((a, b) => a.service.spec.name.localeCompare(b.service.spec.name) || a.service.id.localeCompare(b.service.id));
}

/** The summaries that hold a service, by name (the order of `service ls`). */
export function summaries(xs: readonly ServiceSummary[]): (ServiceSummary & { service: Service })[] {
  return sortByName(xs.filter((s): s is ServiceSummary & { service: Service } => s.service?.spec != null));
}

/**
 * An image as docker's `service ls` and `service ps` show it: a tagged reference without the
 * digest it was pinned to (`name:tag@sha256:...` → `name:tag`); one without a tag keeps its digest.
 */
export function displayImage(image: string): string {
  const at = image.indexOf('@');
  if (at < 0) return image;
  const name = image.slice(0, at);
  return hasTag(name) ? name : image;
}

const isJob = (s: Service) => s.spec.mode === 'replicated-job' || s.spec.mode === 'global-job';

/** The completions a job wants: its replicas, or (global) a node each: those still wanted and those done. */
function jobTotal(s: Service, desired: number, completed: number | undefined): number {
  return s.spec.mode === 'global-job' ? Number(desired) + Number(completed ?? 0) : Number(s.spec.replicas);
}

/** `service ls --format json`. `ports` are the spec's PortConfig objects. */
export function serviceLsJson(xs: readonly ServiceSummary[]): ServiceLsEntry[] {
  return summaries(xs).map(({ service, running, desired, completed }) => ({
    id: service.id,
    name: service.spec.name,
    mode: service.spec.mode,
    replicas: isJob(service) ? { running, desired, completed: Number(completed ?? 0), total: jobTotal(service, desired, completed) } : { running, desired },
    image: displayImage(service.spec.image),
    ports: (service.spec.ports ?? []).map((p) => ({
      protocol: p.protocol,
      targetPort: p.targetPort,
      publishedPort: p.publishedPort,
      publishMode: p.publishMode,
      proxyProtocol: p.proxyProtocol,
    })),
  }));
}

/** `service ls` as a table. */
export function serviceLsTable(xs: readonly ServiceSummary[], noTrunc = false): string {
  const rows = summaries(xs).map(({ service, running, desired, completed }) => [
    shortId(service.id, noTrunc),
    service.spec.name,
    // docker's words: `replicated job`, `global job`.
    service.spec.mode.replace('-', ' '),
    isJob(service) ? `${running}/${desired} (${Number(completed ?? 0)}/${jobTotal(service, desired, completed)} completed)` : `${running}/${desired}`,
    displayImage(service.spec.image),
    portsText(service.spec.ports),
  ]);
  return renderTable(['ID', 'NAME', 'MODE', 'REPLICAS', 'IMAGE', 'PORTS'], rows);
}

/** `service inspect` without --format json: a docker-like `--pretty` listing. */
/**
 * A service as `service inspect --format json` shows it (INTERFACE.md): the stored object, its
 * endpoint as `{mode, virtualIps: [{network, addr}]}`.
 */
export function serviceInspectJson(s: Service): object {
  const virtualIps = (s.endpoint?.virtualIps ?? []).map((v) => ({ network: v.networkId, addr: v.addr }));
  return { ...s, endpoint: { mode: s.spec.endpointMode || 'vip', virtualIps } };
}

export function serviceInspectText(s: Service, running?: number, desired?: number, withRegistryAuth = false): string {
  const spec: ServiceSpec = s.spec;
  const lines: string[] = [];
  const kv = (k: string, v: string | number): void => void lines.push(`${`${k}:`.padEnd(22)}${v}`);
  kv('ID', s.id);
  kv('Name', spec.name);
  const labels = Object.entries(spec.labels ?? {});
  if (labels.length > 0) {
    lines.push('Labels:');
    for (const [k, v] of labels) lines.push(` ${k}=${v}`);
  }
  kv('Service Mode', capitalize(spec.mode));
  if (spec.mode === 'replicated') kv(' Replicas', spec.replicas);
  if (spec.mode === 'replicated-job') {
    kv(' Max Concurrent', spec.maxConcurrent);
    kv(' Total Completions', spec.replicas);
  }
  if (s.jobStatus) {
    kv(' Job Iteration', Number(s.jobStatus.jobIteration));
    kv(' Last Execution', new Date(Number(s.jobStatus.lastExecution)).toISOString());
  }
  if (running !== undefined && desired !== undefined) kv(' Running', `${running}/${desired}`);
  const us = s.updateStatus;
  if (us) {
    // As docker service inspect --pretty: where the last update stands.
    lines.push('UpdateStatus:');
    kv(' State', us.state);
    if (Number(us.startedAt)) kv(' Started', new Date(Number(us.startedAt)).toISOString());
    if (Number(us.completedAt)) kv(' Completed', new Date(Number(us.completedAt)).toISOString());
    kv(' Message', us.message);
  }
  if (spec.constraints?.length || spec.placementPrefs?.length || spec.maxReplicasPerNode) {
    lines.push('Placement:');
    if (spec.maxReplicasPerNode) lines.push(` Max replicas per node: ${spec.maxReplicasPerNode}`);
    if (spec.constraints?.length) lines.push(' Constraints:');
    for (const c of spec.constraints ?? []) lines.push(`  ${c}`);
    if (spec.placementPrefs?.length) lines.push(' Preferences:');
    for (const p of spec.placementPrefs ?? []) lines.push(`  ${p}`);
  }
  const hc = spec.healthcheck;
  if (hc && hc.test?.length) {
    lines.push('Healthcheck:');
    if (hc.test[0] === 'NONE') kv(' Test', 'none (the image\'s check is off)');
    else {
      kv(' Test', hc.test[0] === 'CMD-SHELL' ? hc.test.slice(1).join(' ') : JSON.stringify(hc.test.slice(1)));
      kv(' Interval', Number(hc.intervalMs) ? formatDuration(Number(hc.intervalMs)) : '30s (default)');
      kv(' Timeout', Number(hc.timeoutMs) ? formatDuration(Number(hc.timeoutMs)) : '30s (default)');
      kv(' Retries', Number(hc.retries) || '3 (default)');
      if (Number(hc.startPeriodMs)) kv(' Start period', formatDuration(Number(hc.startPeriodMs)));
    }
  }
  const res = spec.resources;
  if (res && [res.limits.nanoCpus, res.limits.memoryBytes, res.reservations.nanoCpus, res.reservations.memoryBytes].some((x) => Number(x) > 0)) {
    lines.push('Resources:');
    for (const [label, r] of [
      [' Reservations', res.reservations],
      [' Limits', res.limits],
    ] as const) {
      if (!Number(r.nanoCpus) && !Number(r.memoryBytes)) continue;
      lines.push(`${label}:`);
      if (Number(r.nanoCpus)) kv('  CPU', Number(r.nanoCpus) / 1e9);
      if (Number(r.memoryBytes)) kv('  Memory', bytesText(Number(r.memoryBytes)));
    }
  }
  for (const [title, c, orderLabel] of [
    ['UpdateConfig', spec.updateConfig, 'Update order'],
    ['RollbackConfig', spec.rollbackConfig, 'Rollback order'],
  ] as const) {
    if (!c) continue;
    lines.push(`${title}:`);
    kv(' Parallelism', c.parallelism);
    if (Number(c.delayMs)) kv(' Delay', formatDuration(Number(c.delayMs)));
    if (c.failureAction) kv(' On failure', c.failureAction);
    if (Number(c.monitorMs)) kv(' Monitoring Period', formatDuration(Number(c.monitorMs)));
    kv(' Max failure ratio', Number(c.maxFailureRatio ?? 0));
    if (c.order) kv(` ${orderLabel}`, c.order);
  }
  if (spec.restartPolicy) {
    lines.push('RestartPolicy:');
    kv(' Condition', spec.restartPolicy.condition);
    kv(' Delay', formatDuration(spec.restartPolicy.delayMs));
    kv(' Max attempts', spec.restartPolicy.maxAttempts || 'unlimited');
  }
  lines.push('ContainerSpec:');
  kv(' Image', spec.image);
  if (withRegistryAuth) kv(' Registry auth', 'set (sealed in the cluster store; sent only to the nodes that run its tasks)');
  if (spec.command?.length) kv(' Command', spec.command.join(' '));
  if (spec.args?.length) kv(' Args', spec.args.join(' '));
  if (spec.env?.length) {
    lines.push(' Env:');
    for (const e of spec.env) lines.push(`  ${e}`);
  }
  lines.push(...containerInspectLines(spec));
  kv(' Stop grace period', formatDuration(spec.stopGracePeriodMs ?? 0));
  // As docker service inspect --pretty: the networks by id, then the endpoint mode.
  if (spec.networks?.length) {
    lines.push('Networks:');
    for (const n of spec.networks) {
      const vip = s.endpoint?.virtualIps.find((v) => v.networkId === n.target)?.addr;
      lines.push(` ${n.target}${vip ? ` (virtual IP ${vip})` : ''}${n.aliases?.length ? ` (aliases: ${n.aliases.join(', ')})` : ''}`);
    }
  }
  kv('Endpoint Mode', spec.endpointMode || 'vip');
  if (spec.ports?.length) {
    lines.push('Ports:');
    for (const p of spec.ports) {
      lines.push(` PublishedPort = ${p.publishedPort}`);
      lines.push(`  Protocol = ${p.protocol}`);
      lines.push(`  TargetPort = ${p.targetPort}`);
      lines.push(`  PublishMode = ${p.publishMode}`);
    }
  }
  kv('Created', new Date(s.createdAt).toISOString());
  kv('Updated', new Date(s.updatedAt).toISOString());
  return lines.map((l) => l.trimEnd()).join('\n');
}

// ------------------------------------------------------------------ tasks

export interface ServicePsEntry {
  id: string;
  name: string;
  slot: number;
  nodeId: string;
  node: string;
  desiredState: string;
  currentState: string;
  error: string;
  /** What the node last said of the task (e.g. a pull's progress while it is preparing). */
  message: string;
  containerId: string;
}

export interface PsRow {
  view: TaskView;
  task: Task;
  name: string;
  /** True for an older task of a slot already listed (shown as ` \_ NAME`). */
  history: boolean;
}

/** The task's name: `SERVICE.SLOT`, or `SERVICE.NODEID` for a global service's task (slot 0). */
export function taskName(t: Task, serviceName?: string): string {
  const svc = serviceName || t.serviceName || t.serviceId;
  return t.slot > 0 ? `${svc}.${t.slot}` : `${svc}.${t.nodeId}`;
}

function taskTime(t: Task): number {
  return t.createdAt || t.status?.timestamp || 0;
}

/**
 * The tasks in `docker service ps` order: grouped by slot (by node for a global service), slots
 * in ascending order, and within a slot the newest task first.
 */
export function psRows(views: readonly TaskView[]): PsRow[] {
  const rows = views
    .filter((v): v is TaskView & { task: Task } => v.task != null)
    .map((view) => ({ view, task: view.task, name: taskName(view.task), history: false }));
  rows.sort(
    (a, b) =>
      a.task.serviceName.localeCompare(b.task.serviceName) ||
      a.task.slot - b.task.slot ||
      (a.task.slot === 0 ? a.task.nodeId.localeCompare(b.task.nodeId) : 0) ||
      taskTime(b.task) - taskTime(a.task) ||
      (b.task.version ?? 0) - (a.task.version ?? 0) ||
      a.task.id.localeCompare(b.task.id),
  );
  for (let i = 1; i < rows.length; i++) rows[i]!.history = rows[i]!.name === rows[i - 1]!.name;
  return rows;
}

/** `service ps --format json`. */
export function servicePsJson(views: readonly TaskView[]): ServicePsEntry[] {
  return psRows(views).map(({ view, task, name }) => ({
    id: task.id,
    name,
    slot: task.slot,
    nodeId: task.nodeId,
    node: view.nodeHostname,
    desiredState: task.desiredState,
    currentState: task.status?.state ?? 'new',
    error: task.status?.err ?? '',
    message: task.status?.message ?? '',
    containerId: task.status?.containerId ?? '',
  }));
}

/** `service ps` as a table (CURRENT STATE as `Running 2 minutes ago`). */
export function servicePsTable(views: readonly TaskView[], nowMs: number, noTrunc = false): string {
  const rows = psRows(views).map(({ view, task, name, history }) => [
    shortId(task.id, noTrunc),
    history ? ` \\_ ${name}` : name,
    noTrunc ? (task.spec?.image ?? '') : displayImage(task.spec?.image ?? ''),
    view.nodeHostname || shortId(task.nodeId, noTrunc),
    capitalize(task.desiredState),
    currentStateText(task.status?.state ?? 'new', task.status?.timestamp ?? 0, nowMs),
    task.status?.err ? ellipsis(`"${task.status.err}"`, 40, noTrunc) : '',
    portsText((task.spec?.ports ?? []).filter((p) => p.publishMode === 'host')),
  ]);
  return renderTable(['ID', 'NAME', 'IMAGE', 'NODE', 'DESIRED STATE', 'CURRENT STATE', 'ERROR', 'PORTS'], rows);
}

// ------------------------------------------------------------------ cluster

export interface ClusterStatusJson {
  clusterId: string;
  leader: string;
  term: number;
  members: {
    nodeId: string;
    addr: string;
    raftRole: string;
    reachable: boolean;
    commitIndex: number;
    appliedIndex: number;
  }[];
}

/** `cluster status --format json`. */
export function clusterStatusJson(r: ClusterStatusResponse): ClusterStatusJson {
  return {
    clusterId: r.clusterId,
    leader: r.leader,
    term: r.term,
    // Raft's members by id, then the managers Raft has not taken in yet.
    members: [...r.members]
      .sort((a, b) => Number(a.raftRole === 'pending') - Number(b.raftRole === 'pending') || a.nodeId.localeCompare(b.nodeId))
      .map((m) => ({
        nodeId: m.nodeId,
        addr: m.addr,
        raftRole: m.raftRole,
        reachable: m.reachable,
        commitIndex: m.commitIndex,
        appliedIndex: m.appliedIndex,
      })),
  };
}

/** `cluster status` as text: three header lines, then a table of the Raft members and the managers Raft has not taken in yet. */
export function clusterStatusText(r: ClusterStatusResponse): string {
  const j = clusterStatusJson(r);
  const head = [`Cluster ID:  ${j.clusterId}`, `Leader:      ${j.leader || '(none)'}`, `Term:        ${j.term}`];
  const rows = j.members.map((m) => [
    m.nodeId,
    m.addr,
    capitalize(m.raftRole),
    m.reachable ? 'yes' : 'no',
    // A pending manager has no Raft log here to speak of.
    m.raftRole === 'pending' ? '-' : String(m.commitIndex),
    m.raftRole === 'pending' ? '-' : String(m.appliedIndex),
  ]);
  return `${head.join('\n')}\n\n${renderTable(['NODE ID', 'ADDR', 'RAFT ROLE', 'REACHABLE', 'COMMIT INDEX', 'APPLIED INDEX'], rows)}`;
}

// ------------------------------------------------------------------ JSON

/** A JSON document as printed on stdout (two-space indentation). */
export function toJson(v: unknown): string {
  return JSON.stringify(v, null, 2);
}
