// The dashboard's page: logs in with the token of a `shoal ui` link (once, then a cookie), then
// keeps a copy of the cluster from the manager's feed (/api/feed, Server-Sent Events: a snapshot,
// then changes) and draws it. A selected service can be scaled or rolled back, a selected node's
// availability changed: each a control API call on the manager (the server's actions.ts).
// Bundled by scripts/bundle-ui.mjs into dist/web/app.js.

import htm from 'htm';
import { h, render } from 'preact';
import { useEffect, useMemo, useState } from 'preact/hooks';
import type { EventLine, NodeView, RaftView, ServiceView, TaskView } from './model.js';
import { type Cluster, applyChanges, emptyCluster, fromSnapshot, runningOf, withEvents } from './model.js';
import { ago, bytes, cpus } from './format.js';

const html = htm.bind(h);

type Link = 'connecting' | 'live' | 'reconnecting';
type Selection = { kind: 'service' | 'node'; id: string } | undefined;

/** Exchanges the link's one-time token (in the fragment, which no server ever saw) for a session. */
async function login(): Promise<string | undefined> {
  const m = /(?:^#|&)token=([^&]+)/.exec(location.hash);
  if (!m) return undefined;
  history.replaceState(null, '', location.pathname);
  const res = await fetch('/api/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: decodeURIComponent(m[1]!) }) });
  if (res.ok) return undefined;
  return ((await res.json().catch(() => ({}))) as { message?: string }).message ?? `login failed (${res.status})`;
}

/** One action through the manager's control API; '' when done, else the reason it was refused. */
async function act(name: string, body: object): Promise<string> {
  const res = await fetch(`/api/actions/${name}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  if (res.ok) return '';
  return ((await res.json().catch(() => ({}))) as { message?: string }).message ?? `refused (${res.status})`;
}

function App() {
  const [cluster, setCluster] = useState<Cluster>(emptyCluster());
  const [link, setLink] = useState<Link>('connecting');
  const [problem, setProblem] = useState<string>('');
  const [selected, select] = useState<Selection>(undefined);

  useEffect(() => {
    let source: EventSource | undefined;
    let stopped = false;
    void (async () => {
      const failed = await login();
      // The feed cannot say why it was refused: one plain request does.
      const res = await fetch('/api/session');
      if (!res.ok) {
        setProblem(failed ?? ((await res.json().catch(() => ({}))) as { message?: string }).message ?? `the manager answered ${res.status}`);
        return;
      }
      if (stopped) return;
      source = new EventSource('/api/feed');
      source.addEventListener('open', () => setLink('live'));
      source.addEventListener('error', () => {
        setLink('reconnecting');
        // The browser retries on its own; a session that ended (or a restarted manager, which
        // forgot it) would be retried for ever: say so instead.
        void fetch('/api/session').then(async (r) => {
          if (r.status !== 401) return;
          source?.close();
          setProblem(((await r.json().catch(() => ({}))) as { message?: string }).message ?? 'the session ended');
        }, () => undefined);
      });
      source.addEventListener('snapshot', (e) => setCluster((c) => fromSnapshot(JSON.parse((e as MessageEvent).data), c.raft)));
      source.addEventListener('changes', (e) => setCluster((c) => applyChanges(c, JSON.parse((e as MessageEvent).data))));
      source.addEventListener('raft', (e) => setCluster((c) => ({ ...c, raft: JSON.parse((e as MessageEvent).data) as RaftView })));
      source.addEventListener('events', (e) => setCluster((c) => withEvents(c, JSON.parse((e as MessageEvent).data) as EventLine[])));
    })();
    return () => {
      stopped = true;
      source?.close();
    };
  }, []);

  if (problem) {
    return html`<section class="login"><h1>Shoal</h1><p class="error" data-testid="problem">${problem}</p>
      <p>Run <code>shoal ui</code> for a new login link, or present an admin certificate of the cluster.</p></section>`;
  }
  return html`
    <header>
      <h1>Shoal</h1>
      <span class="muted">cluster ${cluster.clusterId.slice(0, 12)}</span>
      <span class="muted">via manager ${hostOf(cluster, cluster.self)}</span>
      <span class=${`link ${link}`} data-testid="link">${link}</span>
    </header>
    <${Summary} cluster=${cluster} />
    <div class="grid">
      <${Nodes} cluster=${cluster} selected=${selected} select=${select} />
      <${Raft} cluster=${cluster} />
    </div>
    <${Services} cluster=${cluster} selected=${selected} select=${select} />
    <${Actions} cluster=${cluster} selected=${selected} />
    <${Tasks} cluster=${cluster} selected=${selected} select=${select} />
    <${Events} cluster=${cluster} />
  `;
}

function hostOf(c: Cluster, nodeId: string): string {
  return c.nodes.get(nodeId)?.hostname || nodeId.slice(0, 12);
}

function Summary({ cluster }: { cluster: Cluster }) {
  const nodes = [...cluster.nodes.values()];
  const ready = nodes.filter((n) => n.state === 'ready').length;
  const tasks = [...cluster.tasks.values()];
  const running = tasks.filter((t) => t.state === 'running').length;
  const failing = tasks.filter((t) => t.desiredState === 'running' && (t.state === 'failed' || t.state === 'rejected')).length;
  return html`<section class="summary">
    <div><b data-testid="nodes-ready">${ready}</b>/${nodes.length}<span>nodes ready</span></div>
    <div><b>${cluster.services.size}</b><span>services</span></div>
    <div><b data-testid="tasks-running">${running}</b><span>tasks running</span></div>
    <div class=${failing ? 'bad' : ''}><b>${failing}</b><span>tasks failing</span></div>
    <div><b>${cluster.raft?.members.length ?? '–'}</b><span>managers</span></div>
  </section>`;
}

function managerStatus(c: Cluster, n: NodeView): string {
  if (n.role !== 'manager') return '';
  const m = c.raft?.members.find((x) => x.nodeId === n.id);
  if (!m) return 'pending';
  if (c.raft?.leader === n.id) return 'Leader';
  return m.reachable ? 'Reachable' : 'Unreachable';
}

function Nodes({ cluster, selected, select }: { cluster: Cluster; selected: Selection; select: (s: Selection) => void }) {
  const nodes = [...cluster.nodes.values()].sort((a, b) => a.hostname.localeCompare(b.hostname));
  const tasksOn = useMemo(() => {
    const m = new Map<string, number>();
    for (const t of cluster.tasks.values()) if (t.desiredState === 'running' && t.state === 'running') m.set(t.nodeId, (m.get(t.nodeId) ?? 0) + 1);
    return m;
  }, [cluster.tasks]);
  return html`<section class="panel">
    <h2>Nodes</h2>
    <table data-testid="nodes">
      <thead><tr><th>Hostname</th><th>Status</th><th>Availability</th><th>Role</th><th>Manager</th><th>CPUs</th><th>Memory</th><th>Tasks</th><th>Address</th></tr></thead>
      <tbody>${nodes.map(
        (n) => html`<tr key=${n.id} data-node=${n.hostname} data-id=${n.id} data-state=${n.state} data-availability=${n.availability}
            class=${selected?.kind === 'node' && selected.id === n.id ? 'selected' : ''}
            onClick=${() => select(selected?.id === n.id ? undefined : { kind: 'node', id: n.id })}>
          <td>${n.hostname}${n.id === cluster.self ? html` <span class="tag">this</span>` : ''}</td>
          <td><span class=${`state ${n.state}`}>${n.state}</span>${n.message ? html`<div class="small muted">${n.message}</div>` : ''}</td>
          <td>${n.availability}</td>
          <td>${n.role}</td>
          <td class=${managerStatus(cluster, n) === 'Unreachable' ? 'bad' : ''}>${managerStatus(cluster, n)}</td>
          <td>${cpus(n.nanoCpus)}</td>
          <td>${bytes(n.memoryBytes)}</td>
          <td>${tasksOn.get(n.id) ?? 0}</td>
          <td class="mono small">${n.addr}</td>
        </tr>`,
      )}</tbody>
    </table>
  </section>`;
}

function Raft({ cluster }: { cluster: Cluster }) {
  const r = cluster.raft;
  return html`<section class="panel raft">
    <h2>Raft</h2>
    ${r
      ? html`<p>Leader <b data-testid="leader">${r.leader ? hostOf(cluster, r.leader) : 'none'}</b>, term ${r.term}</p>
          <ul>${r.members.map(
            (m) => html`<li key=${m.nodeId} class=${m.reachable ? '' : 'bad'}>
              <span class=${`dot ${m.reachable ? 'ok' : 'down'}`}></span>${hostOf(cluster, m.nodeId)}
              <span class="muted"> ${m.raftRole}</span><span class="mono small muted"> ${m.addr}</span></li>`,
          )}</ul>`
      : html`<p class="muted">asking the members…</p>`}
  </section>`;
}

function Services({ cluster, selected, select }: { cluster: Cluster; selected: Selection; select: (s: Selection) => void }) {
  const services = [...cluster.services.values()].sort((a, b) => a.name.localeCompare(b.name));
  const netName = (id: string) => cluster.networks.get(id)?.name ?? id.slice(0, 12);
  return html`<section class="panel">
    <h2>Services</h2>
    ${services.length === 0
      ? html`<p class="muted">No services.</p>`
      : html`<table data-testid="services">
      <thead><tr><th>Name</th><th>Mode</th><th>Replicas</th><th>Image</th><th>Update</th><th>Ports</th><th>Networks</th></tr></thead>
      <tbody>${services.map((s: ServiceView) => {
        const { running, desired } = runningOf(cluster, s);
        return html`<tr key=${s.id} data-service=${s.name} data-running=${running} data-desired=${desired}
            class=${selected?.kind === 'service' && selected.id === s.id ? 'selected' : ''}
            onClick=${() => select(selected?.id === s.id ? undefined : { kind: 'service', id: s.id })}>
          <td>${s.name}</td>
          <td>${s.mode}</td>
          <td class=${running < desired ? 'warn' : ''}><span data-testid="replicas">${running}/${desired}</span></td>
          <td class="mono small">${s.image}</td>
          <td>${s.update ? html`<span class=${`state ${s.update.state}`}>${s.update.state}</span>${s.update.message ? html`<div class="small muted">${s.update.message}</div>` : ''}` : ''}</td>
          <td class="mono small">${s.ports.map((p) => `${p.publishedPort}:${p.targetPort}/${p.protocol}${p.publishMode === 'host' ? ' (host)' : ''}`).join(', ')}</td>
          <td>${s.networks.map(netName).join(', ')}</td>
        </tr>`;
      })}</tbody>
    </table>`}
  </section>`;
}

/** The buttons of what is selected: a service's scale and rollback, a node's availability. */
function Actions({ cluster, selected }: { cluster: Cluster; selected: Selection }) {
  const [result, setResult] = useState<{ ok: boolean; text: string } | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const [replicas, setReplicas] = useState('');
  useEffect(() => {
    setResult(undefined);
    setReplicas('');
  }, [selected?.id]);
  if (!selected) return null;
  const run = async (what: string, name: string, body: object) => {
    setBusy(true);
    const why = await act(name, body).catch((err: Error) => err.message);
    setBusy(false);
    setResult(why ? { ok: false, text: why } : { ok: true, text: `${what}: done` });
  };
  const shown = result && html`<span class=${result.ok ? 'ok' : 'error'} data-testid="action-result">${result.text}</span>`;
  if (selected.kind === 'service') {
    const s = cluster.services.get(selected.id);
    if (!s) return null;
    const scalable = s.mode === 'replicated' || s.mode === 'replicated-job';
    return html`<section class="panel actions" data-testid="actions">
      <b>${s.name}</b>
      ${scalable
        ? html`<label>replicas <input type="number" min="0" data-testid="replicas-input" value=${replicas || String(s.replicas)}
              onInput=${(e: Event) => setReplicas((e.target as HTMLInputElement).value)} /></label>
            <button disabled=${busy} data-testid="scale" onClick=${() => run(`scaled ${s.name} to ${replicas || s.replicas}`, 'scale', { service: s.id, replicas: Number(replicas || s.replicas) })}>Scale</button>`
        : ''}
      <button disabled=${busy} data-testid="rollback" onClick=${() => run(`rolled ${s.name} back`, 'rollback', { service: s.id })}>Roll back</button>
      ${shown}
    </section>`;
  }
  const n = cluster.nodes.get(selected.id);
  if (!n) return null;
  return html`<section class="panel actions" data-testid="actions">
    <b>${n.hostname}</b> availability
    ${['active', 'pause', 'drain'].map(
      (a) => html`<button disabled=${busy || n.availability === a} data-testid=${`availability-${a}`}
        onClick=${() => run(`${n.hostname} is now ${a}`, 'availability', { node: n.id, availability: a })}>${a}</button>`,
    )}
    ${shown}
  </section>`;
}

function Tasks({ cluster, selected, select }: { cluster: Cluster; selected: Selection; select: (s: Selection) => void }) {
  const all = [...cluster.tasks.values()];
  const shown = (selected ? all.filter((t) => (selected.kind === 'service' ? t.serviceId === selected.id : t.nodeId === selected.id)) : all.filter((t) => t.desiredState === 'running' || t.err))
    .sort((a, b) => a.serviceName.localeCompare(b.serviceName) || a.slot - b.slot || b.timestamp - a.timestamp)
    .slice(0, 500);
  const title = !selected ? 'Tasks (wanted running, or failed)' : selected.kind === 'service' ? `Tasks of ${cluster.services.get(selected.id)?.name ?? selected.id}` : `Tasks on ${hostOf(cluster, selected.id)}`;
  return html`<section class="panel">
    <h2>${title} ${selected ? html`<button onClick=${() => select(undefined)}>show all</button>` : ''}</h2>
    <table data-testid="tasks">
      <thead><tr><th>Task</th><th>Node</th><th>Desired</th><th>State</th><th>Since</th><th>Error</th></tr></thead>
      <tbody>${shown.map(
        (t: TaskView) => html`<tr key=${t.id} data-task=${t.id}>
          <td>${t.serviceName}.${t.slot || hostOf(cluster, t.nodeId)} <span class="mono small muted">${t.id.slice(0, 12)}</span></td>
          <td>${t.nodeId ? hostOf(cluster, t.nodeId) : html`<span class="muted">unassigned</span>`}</td>
          <td>${t.desiredState}</td>
          <td><span class=${`state ${t.state}`}>${t.state}</span></td>
          <td class="small">${t.timestamp ? ago(t.timestamp) : ''}</td>
          <td class="error small">${t.err}${t.exitCode ? ` (exit ${t.exitCode})` : ''}</td>
        </tr>`,
      )}</tbody>
    </table>
  </section>`;
}

function Events({ cluster }: { cluster: Cluster }) {
  return html`<section class="panel">
    <h2>Events</h2>
    <ol class="events" data-testid="events">${[...cluster.events].reverse().slice(0, 200).map(
      (e: EventLine) => html`<li key=${e.version}>
        <span class="muted small">${new Date(e.time).toLocaleTimeString()}</span>${' '}
        <span class=${`type ${e.type}`}>${e.type}</span> <b>${e.action}</b> ${e.name}
        ${e.detail ? html`<span class="muted"> ${e.detail}</span>` : ''}</li>`,
    )}</ol>
  </section>`;
}

const root = document.getElementById('app')!;
// The server's "Loading…" placeholder goes: the page draws into an empty root.
root.replaceChildren();
render(html`<${App} />`, root);
