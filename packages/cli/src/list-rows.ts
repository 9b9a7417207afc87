// What a `--format` template sees on each row of an ls/ps list, and the `--filter` keys of each
// list: docker's formatter contexts (`{{.Replicas}}` is `1/3`, `{{.CurrentState}}` is `Running 2
// minutes ago`) and docker's filters. Rows are objects with their fields in name order (so
// `{{json .}}` prints them as docker does); a method (`.Label "k"`) is a function field.

import type { Config, Network, NodeView, Secret, ServiceSummary, TaskView } from '@shoal/types';
import { TASK_STATES } from '@shoal/types';
import {
  capitalize,
  currentStateText,
  displayImage,
  managerStatusText,
  portsText,
  psRows,
  shortId,
  sortedNodeViews,
  summaries,
  timeAgo,
} from './format.js';
import { type FilterKey, labelMatch, oneOf } from './filters.js';

function sortedFields(o: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.keys(o).sort().map((k) => [k, o[k]]));
}

/** Go's time.Time.String() in UTC: `2026-12-07 15:28:06.123 +0000 UTC` (docker's CreatedAt columns). */
export function goTimeString(ms: number): string {
  const iso = new Date(ms).toISOString();
  const frac = iso.slice(20, 23).replace(/0+$/, '');
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac ? `.${frac}` : ''} +0000 UTC`;
}

function idPrefix(id: string, v: string): boolean {
  return id.startsWith(v);
}

// ------------------------------------------------------------------ services

export const SERVICE_HEADERS = { ID: 'ID', Name: 'NAME', Mode: 'MODE', Replicas: 'REPLICAS', Image: 'IMAGE', Ports: 'PORTS' };

export function serviceRows(xs: readonly ServiceSummary[], noTrunc = false): object[] {
  return summaries(xs).map(({ service, running, desired }) =>
    sortedFields({
      ID: shortId(service.id, noTrunc),
      Name: service.spec.name,
      Mode: service.spec.mode,
      Replicas: `${running}/${desired}`,
      Image: displayImage(service.spec.image),
      Ports: portsText(service.spec.ports),
    }),
  );
}

export const SERVICE_FILTERS: Record<string, FilterKey<ServiceSummary>> = {
  id: { match: (s, v) => idPrefix(s.service?.id ?? '', v) },
  name: { match: (s, v) => (s.service?.spec.name ?? '').startsWith(v) },
  label: { match: (s, v) => labelMatch(s.service?.spec.labels, v) },
  mode: {
    match: (s, v) => s.service?.spec.mode === v,
    check: oneOf('mode', ['replicated', 'global', 'replicated-job', 'global-job']),
  },
};

// ------------------------------------------------------------------ tasks

export const TASK_HEADERS = {
  ID: 'ID',
  Name: 'NAME',
  Image: 'IMAGE',
  Node: 'NODE',
  DesiredState: 'DESIRED STATE',
  CurrentState: 'CURRENT STATE',
  Error: 'ERROR',
  Ports: 'PORTS',
};

export function taskRows(views: readonly TaskView[], nowMs: number, noTrunc = false): object[] {
  return psRows(views).map(({ view, task, name, history }) =>
    sortedFields({
      ID: shortId(task.id, noTrunc),
      Name: history ? ` \\_ ${name}` : name,
      Image: noTrunc ? (task.spec?.image ?? '') : displayImage(task.spec?.image ?? ''),
      Node: view.nodeHostname || shortId(task.nodeId, noTrunc),
      DesiredState: capitalize(task.desiredState),
      CurrentState: currentStateText(task.status?.state ?? 'new', task.status?.timestamp ?? 0, nowMs),
      Error: task.status?.err ? `"${task.status.err}"` : '',
      Ports: portsText((task.spec?.ports ?? []).filter((p) => p.publishMode === 'host')),
    }),
  );
}

/** A task's name as ps shows it (`web.1`, or `web.NODEID` for a global service's task). */
function taskNameOf(v: TaskView): string {
  const t = v.task!;
  return t.slot > 0 ? `${t.serviceName}.${t.slot}` : `${t.serviceName}.${t.nodeId}`;
}

export const TASK_FILTERS: Record<string, FilterKey<TaskView>> = {
  id: { match: (v, x) => idPrefix(v.task?.id ?? '', x) },
  name: { match: (v, x) => v.task != null && taskNameOf(v).startsWith(x) },
  node: { match: (v, x) => v.nodeHostname === x || (x !== '' && idPrefix(v.task?.nodeId ?? '', x)) },
  'desired-state': { match: (v, x) => v.task?.desiredState === x, check: oneOf('desired-state', TASK_STATES) },
};

// ------------------------------------------------------------------ nodes

export const NODE_HEADERS = {
  ID: 'ID',
  Self: '',
  Hostname: 'HOSTNAME',
  Status: 'STATUS',
  Availability: 'AVAILABILITY',
  ManagerStatus: 'MANAGER STATUS',
  EngineVersion: 'ENGINE VERSION',
  TLSStatus: 'TLS STATUS',
};

/** `self`: the id of the node that answered (docker's `.Self` marks the node the CLI talks to). */
export function nodeRows(views: readonly NodeView[], self: string): object[] {
  return sortedNodeViews(views).map(({ view, node }) =>
    sortedFields({
      ID: node.id,
      Self: node.id === self,
      Hostname: node.description?.hostname ?? '',
      Status: capitalize(node.status?.state ?? 'unknown'),
      Availability: capitalize(node.spec?.availability ?? ''),
      ManagerStatus: managerStatusText(view),
      EngineVersion: node.description?.engineVersion ?? '',
      // Every node's certificate comes from the cluster's one root CA (Shoal has no root rotation).
      TLSStatus: 'Ready',
    }),
  );
}

export const NODE_FILTERS: Record<string, FilterKey<NodeView>> = {
  id: { match: (v, x) => idPrefix(v.node?.id ?? '', x) },
  name: { match: (v, x) => (v.node?.description?.hostname ?? '').includes(x) },
  role: { match: (v, x) => v.node?.spec?.role === x, check: oneOf('role', ['manager', 'worker']) },
  // Every node Shoal lists has joined with a token: accepted (Swarm's pending is for manual acceptance).
  membership: { match: (_v, x) => x === 'accepted', check: oneOf('membership', ['accepted', 'pending']) },
  // Docker's `label` is the engine's labels, which Shoal's nodes do not report: none match.
  label: { match: () => false },
  'node.label': { match: (v, x) => labelMatch(v.node?.spec?.labels, x) },
};

// ------------------------------------------------------------------ networks

export const NETWORK_HEADERS = {
  ID: 'NETWORK ID',
  Name: 'NAME',
  Driver: 'DRIVER',
  Scope: 'SCOPE',
  IPv6: 'IPV6',
  Internal: 'INTERNAL',
  Labels: 'LABELS',
  CreatedAt: 'CREATED AT',
};

export function networkRows(networks: readonly Network[], noTrunc = false): object[] {
  return [...networks]
    .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
    .map((n) => {
      const labels = n.spec.labels ?? {};
      return {
        ...sortedFields({
          ID: shortId(n.id, noTrunc),
          Name: n.spec.name,
          Driver: n.spec.driver,
          Scope: 'swarm',
          IPv6: false,
          Internal: n.spec.internal,
          Labels: Object.keys(labels)
            .sort()
            .map((k) => `${k}=${labels[k]}`)
            .join(','),
          CreatedAt: goTimeString(n.createdAt),
        }),
        // docker's `{{.Label "KEY"}}`: a label's value ("" when it is not there).
        Label: (key: string): string => labels[key] ?? '',
      };
    });
}

export const NETWORK_FILTERS: Record<string, FilterKey<Network>> = {
  id: { match: (n, x) => idPrefix(n.id, x) },
  name: { match: (n, x) => n.spec.name.includes(x) },
  driver: { match: (n, x) => n.spec.driver === x },
  label: { match: (n, x) => labelMatch(n.spec.labels, x) },
  scope: { match: (_n, x) => x === 'swarm', check: oneOf('scope', ['swarm', 'global', 'local']) },
  // Docker's builtin networks are bridge, host and none: every network of a cluster is custom.
  type: { match: (_n, x) => x === 'custom', check: oneOf('type', ['custom', 'builtin']) },
};

// ------------------------------------------------------------------ secrets and configs

export const SECRET_HEADERS = { ID: 'ID', Name: 'NAME', Driver: 'DRIVER', CreatedAt: 'CREATED', UpdatedAt: 'UPDATED', Labels: 'LABELS' };

/** `secret ls` and `config ls` rows, as docker's (`CreatedAt`: `2 minutes ago`); `.Label "k"`. */
export function secretRows(xs: readonly (Secret | Config)[], nowMs: number): object[] {
  return [...xs]
    .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
    .map((s) => {
      const labels = s.spec.labels ?? {};
      return {
        ...sortedFields({
          ID: s.id,
          Name: s.spec.name,
          Driver: '',
          CreatedAt: timeAgo(s.createdAt, nowMs),
          UpdatedAt: timeAgo(s.updatedAt, nowMs),
          Labels: Object.keys(labels)
            .sort()
            .map((k) => `${k}=${labels[k]}`)
            .join(','),
        }),
        Label: (key: string): string => labels[key] ?? '',
      };
    });
}

/** docker's `secret ls` / `config ls` filters: id (prefix), name (prefix), label. */
export const SECRET_FILTERS: Record<string, FilterKey<Secret | Config>> = {
  id: { match: (s, x) => idPrefix(s.id, x) },
  name: { match: (s, x) => s.spec.name.startsWith(x) },
  label: { match: (s, x) => labelMatch(s.spec.labels, x) },
};
