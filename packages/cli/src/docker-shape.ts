// Shoal's objects in the shape of Docker's Engine API (`docker service inspect` and friends), so
// that `jq` one-liners and `--format '{{.Spec.Name}}'` templates written for Docker work: Go's
// field names, RFC 3339 times, durations in nanoseconds, omitempty fields left out, maps (labels,
// options) as goMap()s so a template reading a missing key prints `<no value>` as Go does.
// Shoal's `command` + `args` are the container's CMD, so they are Docker's Args; Shoal's
// `entrypoint` is Docker's ContainerSpec.Command.

import type { Config, Mount, Network, Node, PortConfig, Secret, Service, ServiceSpec, UpdateConfig } from '@shoal/types';
import type { NodeView } from '@shoal/types';
import { goMap } from './template/exec.js';

type Obj = Record<string, unknown>;

/** RFC 3339 with nanoseconds' digits trimmed, as Go's time.Time marshals (UTC). */
export function rfc3339(ms: number | undefined): string {
  return new Date(Number(ms ?? 0)).toISOString().replace(/\.000Z$/, 'Z').replace(/(\.\d*?)0+Z$/, '$1Z');
}

/** A duration in milliseconds as Go's time.Duration in JSON: nanoseconds. */
function ns(ms: number | undefined): number {
  return Number(ms ?? 0) * 1_000_000;
}

/** A field Go's encoding/json leaves out when empty (omitempty): see struct(). */
class OmitEmpty {
  constructor(readonly value: unknown) {}
}

function isEmpty(v: unknown): boolean {
  if (v === null || v === undefined || v === '' || v === 0 || v === false) return true;
  if (Array.isArray(v)) return v.length === 0;
  return typeof v === 'object' && Object.keys(v as object).length === 0;
}

/** Marks a field omitempty. */
function oe(v: unknown): OmitEmpty {
  return new OmitEmpty(v);
}

/**
 * An object whose omitempty fields that are empty are kept, but not enumerable: JSON leaves
 * them out (as Docker's answers do), while a template still reads their zero value (as Go's
 * struct field: `{{.Spec.TaskTemplate.ContainerSpec.User}}` prints "", not an error).
 */
function struct(fields: Obj): Obj {
  const o: Obj = {};
  for (const [k, v] of Object.entries(fields)) {
    if (v instanceof OmitEmpty && isEmpty(v.value)) Object.defineProperty(o, k, { value: v.value ?? null, enumerable: false });
    else o[k] = v instanceof OmitEmpty ? v.value : v;
  }
  return o;
}

/** A map that omitempty leaves out when empty (Docker's `Labels,omitempty` fields). */
function oeMap(m: Record<string, string> | null | undefined): OmitEmpty {
  return oe(goMap(m));
}

function ports(ps: readonly PortConfig[] | null | undefined): OmitEmpty {
  return oe(
    (ps ?? []).map((p) => ({
      Protocol: p.protocol || 'tcp',
      TargetPort: Number(p.targetPort),
      PublishedPort: Number(p.publishedPort),
      PublishMode: p.publishMode || 'ingress',
    })),
  );
}

function mount(m: Mount): Obj {
  const v = m.volumeOptions;
  const t = m.tmpfsOptions;
  return struct({
    Type: m.type,
    Source: oe(m.source),
    Target: m.target,
    ReadOnly: oe(m.readOnly),
    BindOptions: oe(m.type === 'bind' && m.bindPropagation ? { Propagation: m.bindPropagation } : null),
    VolumeOptions: oe(
      v
        ? struct({
            NoCopy: oe(v.noCopy),
            Labels: oeMap(v.labels),
            DriverConfig: oe(v.driver || Object.keys(v.driverOptions ?? {}).length > 0 ? struct({ Name: oe(v.driver), Options: oeMap(v.driverOptions) }) : null),
          })
        : null,
    ),
    TmpfsOptions: oe(t ? struct({ SizeBytes: oe(Number(t.sizeBytes)), Mode: oe(Number(t.mode)) }) : null),
  });
}

/** A file reference's mode as Docker's JSON has it (a decimal FileMode; 0444 unless set). */
function fileMode(mode: number | undefined): number {
  return Number(mode) || 0o444;
}

function rollout(c: UpdateConfig | null | undefined): OmitEmpty {
  if (!c) return oe(null);
  return oe(
    struct({
      Parallelism: Number(c.parallelism),
      Delay: oe(ns(c.delayMs)),
      FailureAction: oe(c.failureAction || 'pause'),
      Monitor: oe(ns(Number(c.monitorMs) || 5000)),
      MaxFailureRatio: Number(c.maxFailureRatio ?? 0),
      Order: c.order || 'stop-first',
    }),
  );
}

function mode(s: ServiceSpec): Obj {
  // Compared as a string: the job modes are on the wire before ServiceMode names them.
  switch (s.mode as string) {
    case 'global':
      return { Global: {} };
    case 'replicated-job':
      return { ReplicatedJob: { MaxConcurrent: Number(s.maxConcurrent) || 1, TotalCompletions: Number(s.replicas) } };
    case 'global-job':
      return { GlobalJob: {} };
    default:
      return { Replicated: { Replicas: Number(s.replicas) } };
  }
}

function resources(r: { nanoCpus: number; memoryBytes: number } | null | undefined): OmitEmpty {
  return oe(struct({ NanoCPUs: oe(Number(r?.nanoCpus ?? 0)), MemoryBytes: oe(Number(r?.memoryBytes ?? 0)) }));
}

/** A ServiceSpec as Docker's swarm.ServiceSpec. */
export function dockerServiceSpec(s: ServiceSpec): Obj {
  const hc = s.healthcheck;
  const dns = s.dnsConfig;
  const res = s.resources;
  return struct({
    Name: s.name,
    Labels: goMap(s.labels),
    TaskTemplate: struct({
      ContainerSpec: struct({
        Image: s.image,
        Labels: oeMap(s.containerLabels),
        Command: oe([...(s.entrypoint ?? [])]),
        Args: oe([...(s.command ?? []), ...(s.args ?? [])]),
        Hostname: oe(s.hostname),
        Env: oe([...(s.env ?? [])]),
        Dir: oe(s.workdir),
        User: oe(s.user),
        // Docker's fields Shoal has no flag for: there, empty, so scripts reading them still work.
        Groups: oe([]),
        Privileges: oe(null),
        Hosts: oe([]),
        OpenStdin: oe(false),
        Init: oe(s.init ? true : null),
        TTY: oe(s.tty),
        ReadOnly: oe(s.readOnly),
        Mounts: oe((s.mounts ?? []).map(mount)),
        StopSignal: oe(s.stopSignal),
        StopGracePeriod: ns(s.stopGracePeriodMs),
        Healthcheck: oe(
          hc
            ? struct({
                Test: [...(hc.test ?? [])],
                Interval: oe(ns(hc.intervalMs)),
                Timeout: oe(ns(hc.timeoutMs)),
                Retries: oe(Number(hc.retries)),
                StartPeriod: oe(ns(hc.startPeriodMs)),
              })
            : null,
        ),
        DNSConfig: struct({
          Nameservers: oe([...(dns?.nameservers ?? [])]),
          Search: oe([...(dns?.search ?? [])]),
          Options: oe([...(dns?.options ?? [])]),
        }),
        Secrets: oe(
          (s.secrets ?? []).map((r) => ({
            File: { Name: r.target || r.secretName, UID: r.uid || '0', GID: r.gid || '0', Mode: fileMode(r.mode) },
            SecretID: r.secretId,
            SecretName: r.secretName,
          })),
        ),
        Configs: oe(
          (s.configs ?? []).map((r) => ({
            File: { Name: r.target || `/${r.configName}`, UID: r.uid || '0', GID: r.gid || '0', Mode: fileMode(r.mode) },
            ConfigID: r.configId,
            ConfigName: r.configName,
          })),
        ),
        Sysctls: oeMap(s.sysctls),
        CapabilityAdd: oe([...(s.capAdd ?? [])]),
        CapabilityDrop: oe([...(s.capDrop ?? [])]),
        Ulimits: oe((s.ulimits ?? []).map((u) => ({ Name: u.name, Soft: Number(u.soft), Hard: Number(u.hard) }))),
        Isolation: 'default',
      }),
      Resources: struct({ Limits: resources(res?.limits), Reservations: resources(res?.reservations) }),
      RestartPolicy: oe(
        s.restartPolicy
          ? struct({
              Condition: s.restartPolicy.condition,
              Delay: ns(s.restartPolicy.delayMs),
              MaxAttempts: Number(s.restartPolicy.maxAttempts),
              Window: oe(ns(s.restartPolicy.windowMs)),
            })
          : null,
      ),
      Placement: struct({
        Constraints: oe([...(s.constraints ?? [])]),
        Preferences: oe((s.placementPrefs ?? []).map((p) => ({ Spread: { SpreadDescriptor: p.replace(/^spread=/, '') } }))),
        MaxReplicas: oe(Number(s.maxReplicasPerNode)),
      }),
      Networks: oe((s.networks ?? []).map((n) => struct({ Target: n.target, Aliases: oe([...(n.aliases ?? [])]) }))),
      LogDriver: oe(s.logDriver ? struct({ Name: s.logDriver.name, Options: oeMap(s.logDriver.options) }) : null),
      ForceUpdate: Number(s.forceUpdate),
      Runtime: 'container',
    }),
    Mode: mode(s),
    UpdateConfig: rollout(s.updateConfig),
    RollbackConfig: rollout(s.rollbackConfig),
    EndpointSpec: struct({ Mode: s.endpointMode || 'vip', Ports: ports(s.ports) }),
  });
}

/** `service inspect --format docker`'s element (and what its templates see). */
export function dockerService(svc: Service): Obj {
  const us = svc.updateStatus;
  const js = svc.jobStatus;
  return struct({
    ID: svc.id,
    Version: { Index: Number(svc.version) },
    CreatedAt: rfc3339(svc.createdAt),
    UpdatedAt: rfc3339(svc.updatedAt),
    Spec: dockerServiceSpec(svc.spec),
    PreviousSpec: oe(svc.previousSpec ? dockerServiceSpec(svc.previousSpec) : null),
    Endpoint: struct({
      Spec: struct({ Mode: svc.spec.endpointMode || 'vip', Ports: ports(svc.spec.ports) }),
      Ports: ports(svc.spec.ports),
      VirtualIPs: oe((svc.endpoint?.virtualIps ?? []).map((v) => ({ NetworkID: v.networkId, Addr: v.addr }))),
    }),
    UpdateStatus: oe(
      us
        ? struct({
            State: us.state,
            StartedAt: oe(Number(us.startedAt) ? rfc3339(Number(us.startedAt)) : null),
            CompletedAt: oe(Number(us.completedAt) ? rfc3339(Number(us.completedAt)) : null),
            Message: us.message,
          })
        : null,
    ),
    JobStatus: oe(js ? { JobIteration: { Index: Number(js.jobIteration) }, LastExecution: rfc3339(Number(js.lastExecution)) } : null),
  });
}

/** `node inspect --format docker`'s element: swarm.Node. */
export function dockerNode(view: NodeView): Obj {
  const n = view.node as Node;
  const d = n.description;
  return struct({
    ID: n.id,
    Version: { Index: Number(n.version) },
    CreatedAt: rfc3339(n.createdAt),
    UpdatedAt: rfc3339(n.updatedAt),
    Spec: struct({ Labels: goMap(n.spec?.labels), Role: n.spec?.role ?? '', Availability: n.spec?.availability ?? '' }),
    Description: {
      Hostname: d?.hostname ?? '',
      Platform: { Architecture: d?.platform?.arch ?? '', OS: d?.platform?.os ?? '' },
      Resources: { NanoCPUs: Number(d?.resources?.nanoCpus ?? 0), MemoryBytes: Number(d?.resources?.memoryBytes ?? 0) },
      Engine: { EngineVersion: d?.engineVersion ?? '' },
    },
    // Docker's Status.Addr is the node's IP alone.
    Status: struct({ State: n.status?.state ?? 'unknown', Message: oe(n.status?.message), Addr: (n.status?.addr ?? '').replace(/:\d+$/, '') }),
    ManagerStatus: oe(n.managerStatus ? struct({ Leader: oe(view.leader), Reachability: view.reachability || 'unknown', Addr: n.managerStatus.addr }) : null),
  });
}

/** `network inspect --format docker`'s element: the Engine API's network (its `Id`, not `ID`). */
export function dockerNetwork(n: Network): Obj {
  return {
    Name: n.spec.name,
    Id: n.id,
    Created: rfc3339(n.createdAt),
    Scope: 'swarm',
    Driver: n.spec.driver,
    EnableIPv6: false,
    IPAM: { Driver: 'default', Options: null, Config: [{ Subnet: n.subnet, Gateway: n.gateway }] },
    Internal: n.spec.internal,
    Attachable: n.spec.attachable,
    Ingress: n.spec.ingress,
    ConfigFrom: { Network: '' },
    ConfigOnly: false,
    Containers: goMap({}),
    Options: goMap({ 'com.docker.network.driver.overlay.vxlanid_list': String(n.vni) }),
    Labels: goMap(n.spec.labels),
  };
}

/** `secret inspect --format docker`'s element: swarm.Secret (never the data: the API has none to give). */
export function dockerSecret(s: Secret): Obj {
  return {
    ID: s.id,
    Version: { Index: Number(s.version) },
    CreatedAt: rfc3339(s.createdAt),
    UpdatedAt: rfc3339(s.updatedAt),
    Spec: { Name: s.spec.name, Labels: goMap(s.spec.labels) },
  };
}

/** `config inspect --format docker`'s element: swarm.Config, its data in base64 as Docker's JSON. */
export function dockerConfig(c: Config): Obj {
  return {
    ID: c.id,
    Version: { Index: Number(c.version) },
    CreatedAt: rfc3339(c.createdAt),
    UpdatedAt: rfc3339(c.updatedAt),
    Spec: { Name: c.spec.name, Labels: goMap(c.spec.labels), Data: Buffer.from(c.spec.data ?? new Uint8Array()).toString('base64') },
  };
}
