// npm run bench:mesh [-- --duration 10 --connections 32 --threads 2 --mesh-mode both --rounds 1]
// The routing mesh against the same busybox httpd, with wrk, in one run: straight to the
// container's address (direct), through Docker's own port publishing (`docker run -p`, its
// userland proxy on loopback), through the mesh on the node that runs the replica (mesh_local),
// and through the mesh on a node that runs none (mesh_remote: one forwarding hop more).
// One manager and two workers on 127.0.0.1-3 sharing this machine's Docker. Prints one JSON line.
//
// --mesh-mode: userland (every node's mesh is the userland proxy), kernel (w1 DNATs to its local
// replicas with iptables: mesh_local is the kernel path; needs root), or both (the default):
// kernel numbers as mesh_local_kernel, and mesh_local through w2, a userland node running a
// replica of its own (another service, another port). mesh_remote goes through m1 (userland) to
// w1's replica. The kernel path gets a replica of its own (another service on w1): connections
// masqueraded to the bridge address mixed, on one container, with direct or forwarded ones from
// that same address get their NAT ports remapped, and the container then drops some SYNs (PAWS,
// TIME_WAIT): a cross-talk of the measurements, not what one path costs (mesh README, kernel mode).
// --rounds N: every measurement N times, interleaved; the medians are reported.
import { execFileSync, spawnSync } from 'node:child_process';
import { loadavg } from 'node:os';
import { parseArgs } from 'node:util';
import { TestCluster, eventually, removeContainersOf } from '../helpers/shoald.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    image: { type: 'string', default: 'shoal/busybox:latest' },
    'mesh-mode': { type: 'string', default: 'both' },
    rounds: { type: 'string', default: '1' },
  },
});
const mode = values['mesh-mode']!;
if (!['userland', 'kernel', 'both'].includes(mode)) throw new Error(`--mesh-mode must be userland, kernel or both, not ${mode}`);
const rounds = Math.max(1, Number(values.rounds));
const image = values.image!;
const PORT = 38080;
const DOCKER_PORT = 38081;
// A small file, as in the reference measurement.
const SERVE = ['sh', '-c', 'mkdir -p /www; echo "hello from $(hostname)" > /www/index.html; exec httpd -f -p 8080 -h /www'];

function docker(...args: string[]): string {
  return execFileSync('docker', args, { encoding: 'utf8' }).trim();
}

/** wrk's requests/s and p99 (ms) against a URL; errors counted (timeouts, connect, read). */
function wrk(url: string): { rps: number; p99: number; errors: number } {
  const r = spawnSync('wrk', ['-t', values.threads!, '-c', values.connections!, '-d', `${values.duration}s`, '--latency', '--timeout', '2s', url], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`wrk failed on ${url}: ${r.stderr || r.stdout}`);
  const out = r.stdout;
  const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(out)?.[1] ?? NaN);
  const m = /99%\s+([\d.]+)(us|ms|s)\b/.exec(out);
  const p99 = m ? Number(m[1]) * (m[2] === 'us' ? 0.001 : m[2] === 's' ? 1000 : 1) : NaN;
  const err = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(out);
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? 0);
  const errors = (err ? err.slice(1).reduce((a, x) => a + Number(x), 0) : 0) + non2xx;
  return { rps: Math.round(rps), p99: Math.round(p99 * 100) / 100, errors };
}

const loadBefore = loadavg().map((x) => Math.round(x * 100) / 100);
const c = new TestCluster();
let dockerPublished = '';
const nodeIds: string[] = [];
type Task = { desiredState: string; status: { state: string; containerId: string } };
try {
  const kernelW1 = mode !== 'userland';
  const [m1] = await c.managers(1);
  const { token } = await m1.call<{ token: string }>('GetJoinToken', { role: 'worker' });
  for (const [name, host, kernel] of [['w1', '127.0.0.2', kernelW1], ['w2', '127.0.0.3', false]] as const) {
    const d = await c.newDaemon(name, host);
    d.start(['join', '--data-dir', d.dataDir, '--listen-addr', d.addr, '--join-addr', m1.addr, '--token', token, '--hostname', name, '--mesh-mode', kernel ? 'kernel' : 'userland']);
  }
  await eventually('three ready nodes', async () => {
    const r = await m1.call<{ nodes: { node: { id: string; status: { state: string } } }[] }>('ListNodes');
    if (!(r.nodes.length === 3 && r.nodes.every((n) => n.node.status.state === 'ready'))) return undefined;
    nodeIds.splice(0, nodeIds.length, ...r.nodes.map((n) => n.node.id));
    return true;
  });
  const service = async (name: string, node: string, port: number): Promise<Task> => {
    await m1.call('CreateService', {
      spec: {
        name,
        image,
        args: SERVE,
        replicas: 1,
        stopGracePeriodMs: 500,
        constraints: [`node.hostname==${node}`],
        ports: [{ protocol: 'tcp', targetPort: 8080, publishedPort: port, publishMode: 'ingress' }],
      },
    });
    return eventually(`the ${name} replica running`, async () => {
      const r = await m1.call<{ tasks: { task: Task }[] }>('ListTasks', { service: name });
      return r.tasks.find((t) => t.task.desiredState === 'running' && t.task.status.state === 'running')?.task;
    }, 60_000);
  };
  const task = await service('meshbench', 'w1', PORT);
  // Both: a userland node running a replica of its own, for mesh_local.
  if (mode === 'both') await service('meshbench2', 'w2', PORT + 2);
  // The kernel path's own replica on w1.
  const ktask = kernelW1 ? await service('meshbench-k', 'w1', PORT + 4) : undefined;
  const ip = docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', task.status.containerId);
  dockerPublished = docker('run', '-d', '--rm', '-p', `127.0.0.1:${DOCKER_PORT}:8080`, '--label', 'shoal.bench=mesh', image, ...SERVE);
  const urls: Record<string, string> = {
    direct: `http://${ip}:8080/index.html`,
    docker_publish: `http://127.0.0.1:${DOCKER_PORT}/index.html`,
  };
  if (mode === 'both') {
    urls.mesh_local = `http://127.0.0.3:${PORT + 2}/index.html`;
    urls.mesh_local_kernel = `http://127.0.0.2:${PORT + 4}/index.html`;
  } else if (mode === 'kernel') {
    urls.mesh_local = `http://127.0.0.2:${PORT + 4}/index.html`;
  } else {
    urls.mesh_local = `http://127.0.0.2:${PORT}/index.html`;
  }
  urls.mesh_remote = `http://127.0.0.1:${PORT}/index.html`;
  for (const [what, url] of Object.entries(urls)) {
    await eventually(`${what} answers`, async () => {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
      return res?.ok ? true : undefined;
    }, 30_000);
  }
  if (ktask) {
    // The kernel path must really be in place (w1 falls back to userland when iptables fails).
    const kip = docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', ktask.status.containerId);
    const w1Id = (await m1.call<{ node: { node: { id: string } } }>('GetNode', { node: 'w1' })).node.node.id;
    const chain = `SHOAL-${w1Id.slice(0, 10)}`;
    await eventually('w1 DNATs to its replica', async () => {
      const rules = spawnSync('iptables', ['-w', '5', '-t', 'nat', '-S', chain], { encoding: 'utf8' }).stdout ?? '';
      return rules.includes(`--to-destination ${kip}:8080`) ? true : undefined;
    }, 20_000);
  }
  const all: Record<string, { rps: number; p99: number; errors: number }[]> = {};
  for (let i = 0; i < rounds; i++) {
    for (const [what, url] of Object.entries(urls)) (all[what] ??= []).push(wrk(url));
  }
  const median = (xs: number[]) => {
    const v = [...xs].sort((a, b) => a - b);
    return v.length % 2 ? v[(v.length - 1) / 2]! : (v[v.length / 2 - 1]! + v[v.length / 2]!) / 2;
  };
  const r: Record<string, { rps: number; p99: number; errors: number }> = {};
  for (const [what, xs] of Object.entries(all)) {
    r[what] = { rps: Math.round(median(xs.map((x) => x.rps))), p99: Math.round(median(xs.map((x) => x.p99)) * 100) / 100, errors: xs.reduce((a, x) => a + x.errors, 0) };
  }
  const ratio = (x: number) => Math.round((x / r.direct!.rps) * 100) / 100;
  const local = r.mesh_local!;
  const kernel = mode === 'both' ? r.mesh_local_kernel : mode === 'kernel' ? r.mesh_local : undefined;
  console.log(
    JSON.stringify({
      mesh_mode: mode,
      direct_rps: r.direct!.rps,
      docker_publish_rps: r.docker_publish!.rps,
      mesh_local_rps: local.rps,
      mesh_remote_rps: r.mesh_remote!.rps,
      direct_p99_ms: r.direct!.p99,
      docker_publish_p99_ms: r.docker_publish!.p99,
      mesh_local_p99_ms: local.p99,
      mesh_remote_p99_ms: r.mesh_remote!.p99,
      ...(kernel ? { mesh_local_kernel_rps: kernel.rps, mesh_local_kernel_p99_ms: kernel.p99, mesh_local_kernel_over_direct: ratio(kernel.rps) } : {}),
      mesh_local_over_direct: ratio(local.rps),
      mesh_remote_over_direct: ratio(r.mesh_remote!.rps),
      errors: Object.fromEntries(Object.entries(r).map(([k, v]) => [k, v.errors])),
      ...(rounds > 1 ? { rps_per_round: Object.fromEntries(Object.entries(all).map(([k, xs]) => [k, xs.map((x) => x.rps)])) } : {}),
      wrk: { threads: Number(values.threads), connections: Number(values.connections), duration_s: Number(values.duration), rounds },
      loadavg_before: loadBefore,
    }),
  );
} finally {
  if (dockerPublished) spawnSync('docker', ['rm', '-f', dockerPublished]);
  // SIGTERM first: a kernel-mode node removes its iptables chains when it stops.
  await Promise.all(c.daemons.map((d) => d.kill('SIGTERM')));
  removeContainersOf(nodeIds);
  await c.stop();
}
