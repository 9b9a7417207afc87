// npm run bench:mesh [-- --duration 10 --connections 32 --threads 2]
// The routing mesh against the same busybox httpd, with wrk, in one run: straight to the
// container's address (direct), through Docker's own port publishing (`docker run -p`, its
// userland proxy on loopback), through the mesh on the node that runs the replica (mesh_local),
// and through the mesh on a node that runs none (mesh_remote: one forwarding hop more).
// One manager and two workers on 127.0.0.1-3 sharing this machine's Docker. Prints one JSON line.
import { execFileSync, spawnSync } from 'node:child_process';
import { parseArgs } from 'node:util';
import { TestCluster, eventually } from '../helpers/shoald.js';

const { values } = parseArgs({
  options: {
    duration: { type: 'string', default: '10' },
    connections: { type: 'string', default: '32' },
    threads: { type: 'string', default: '2' },
    image: { type: 'string', default: 'shoal/busybox:latest' },
  },
});
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

const c = new TestCluster();
let dockerPublished = '';
try {
  const [m1] = await c.managers(1);
  await c.join('w1', m1, 'worker', '127.0.0.2');
  await c.join('w2', m1, 'worker', '127.0.0.3');
  await eventually('three ready nodes', async () => {
    const r = await m1.call<{ nodes: { node: { status: { state: string } } }[] }>('ListNodes');
    return r.nodes.length === 3 && r.nodes.every((n) => n.node.status.state === 'ready') ? true : undefined;
  });
  await m1.call('CreateService', {
    spec: {
      name: 'meshbench',
      image,
      args: SERVE,
      replicas: 1,
      stopGracePeriodMs: 500,
      constraints: ['node.hostname==w1'],
      ports: [{ protocol: 'tcp', targetPort: 8080, publishedPort: PORT, publishMode: 'ingress' }],
    },
  });
  const task = await eventually('the replica running', async () => {
    const r = await m1.call<{ tasks: { task: { desiredState: string; status: { state: string; containerId: string } } }[] }>('ListTasks', { service: 'meshbench' });
    return r.tasks.find((t) => t.task.desiredState === 'running' && t.task.status.state === 'running')?.task;
  }, 60_000);
  const ip = docker('inspect', '-f', '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}', task.status.containerId);
  dockerPublished = docker('run', '-d', '--rm', '-p', `127.0.0.1:${DOCKER_PORT}:8080`, '--label', 'shoal.bench=mesh', image, ...SERVE);
  const urls = {
    direct: `http://${ip}:8080/index.html`,
    docker_publish: `http://127.0.0.1:${DOCKER_PORT}/index.html`,
    mesh_local: `http://127.0.0.2:${PORT}/index.html`,
    mesh_remote: `http://127.0.0.1:${PORT}/index.html`,
  };
  for (const [what, url] of Object.entries(urls)) {
    await eventually(`${what} answers`, async () => {
      const res = await fetch(url, { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
      return res?.ok ? true : undefined;
    }, 30_000);
  }
  const r: Record<string, { rps: number; p99: number; errors: number }> = {};
  for (const [what, url] of Object.entries(urls)) r[what] = wrk(url);
  console.log(
    JSON.stringify({
      direct_rps: r.direct.rps,
      docker_publish_rps: r.docker_publish.rps,
      mesh_local_rps: r.mesh_local.rps,
      mesh_remote_rps: r.mesh_remote.rps,
      direct_p99_ms: r.direct.p99,
      docker_publish_p99_ms: r.docker_publish.p99,
      mesh_local_p99_ms: r.mesh_local.p99,
      mesh_remote_p99_ms: r.mesh_remote.p99,
      mesh_local_over_direct: Math.round((r.mesh_local.rps / r.direct.rps) * 100) / 100,
      mesh_remote_over_direct: Math.round((r.mesh_remote.rps / r.direct.rps) * 100) / 100,
      errors: { direct: r.direct.errors, docker_publish: r.docker_publish.errors, mesh_local: r.mesh_local.errors, mesh_remote: r.mesh_remote.errors },
      wrk: { threads: Number(values.threads), connections: Number(values.connections), duration_s: Number(values.duration) },
    }),
  );
} finally {
  if (dockerPublished) spawnSync('docker', ['rm', '-f', dockerPublished]);
  await c.stop();
}
