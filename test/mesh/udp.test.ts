// UDP published ports on real containers: a UDP echo service (Node's dgram in shoal/node-base,
// busybox here has no UDP server) published in ingress mode answers through a single-node
// cluster in both mesh modes: userland (the relay, a socket per client) and kernel (`-p udp`
// DNAT rules in the node's chain). A TCP port of the same number stays the TCP service's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { execRunner, findRemoval, kernelChains, removalText } from '@shoal/mesh';
import { TestCluster, type Daemon, eventually, removeContainersOf } from '../helpers/shoald.js';

const IMAGE = 'shoal/node-base:20';
const ECHO = "const s=require('dgram').createSocket('udp4');s.on('message',(m,r)=>s.send(require('os').hostname()+':'+m,r.port,r.address));s.bind(5353)";

interface NodeView {
  node: { id: string; status: { state: string; meshMode: string; meshErrors: string[] } };
}
interface TaskView {
  task: { desiredState: string; status: { state: string } };
}

/** One datagram from a new socket to host:port; its answer, or undefined after timeoutMs. */
function ask(host: string, port: number, text: string, timeoutMs = 1_000): Promise<string | undefined> {
  const s = dgram.createSocket('udp4');
  return new Promise((resolve) => {
    const done = (v: string | undefined) => {
      clearTimeout(t);
      s.close();
      resolve(v);
    };
    const t = setTimeout(() => done(undefined), timeoutMs);
    s.once('message', (m) => done(m.toString()));
    s.once('error', () => done(undefined));
    s.send(text, port, host);
  });
}

/** Safety net: removes the chains a node left (its daemon did not stop cleanly); what it found. */
async function removeChains(nodeId: string): Promise<string[]> {
  const left: string[] = [];
  const ch = kernelChains(nodeId);
  for (const table of ['nat', 'filter'] as const) {
    const r = findRemoval(ch, await execRunner('iptables-save', ['-t', table]));
    const text = removalText(table, r);
    if (!text) continue;
    left.push(`${table}: ${r.chains.join(', ')}`);
    await execRunner('iptables-restore', ['-w', '5', '--noflush'], text);
  }
  return left;
}

async function udpEcho(m1: Daemon, name: string, port: number, replicas: number): Promise<void> {
  await m1.call('CreateService', {
    spec: {
      name,
      image: IMAGE,
      args: ['node', '-e', ECHO],
      replicas,
      stopGracePeriodMs: 500,
      restartPolicy: { condition: 'any', delayMs: 0 },
      ports: [{ protocol: 'udp', targetPort: 5353, publishedPort: port, publishMode: 'ingress' }],
    },
  });
  await eventually(`${name}: ${replicas} running`, async () => {
    const r = await m1.call<{ tasks: TaskView[] }>('ListTasks', { service: name });
    return r.tasks.filter((t) => t.task.desiredState === 'running' && t.task.status.state === 'running').length === replicas ? true : undefined;
  }, 60_000);
}

for (const mode of ['userland', 'kernel'] as const) {
  describe(`UDP published ports (${mode} mesh)`, () => {
    const c = new TestCluster();
    let m1: Daemon;
    // Userland on 127.0.0.1 (the test clusters' default); kernel on an address of its own.
    const host = mode === 'userland' ? '127.0.0.1' : '127.0.0.6';
    const port = mode === 'userland' ? 29153 : 29154;

    before(async () => {
      execFileSync('docker', ['image', 'inspect', IMAGE], { stdio: 'ignore' });
      if (mode === 'userland') m1 = await c.init('m1');
      else {
        m1 = await c.newDaemon('m1', host);
        m1.start(['init', '--data-dir', m1.dataDir, '--listen-addr', m1.addr, '--hostname', 'm1', '--mesh-mode', 'kernel']);
        await m1.ready();
      }
      await udpEcho(m1, `udp-${mode}`, port, 2);
    });
    after(async () => {
      if (mode === 'userland') return c.stop();
      // SIGTERM: the node removes its own chains; the safety net says if it did not.
      const { nodes } = await m1.call<{ nodes: NodeView[] }>('ListNodes');
      await Promise.all(c.daemons.map((d) => d.kill('SIGTERM')));
      const left = (await Promise.all(nodes.map((n) => removeChains(n.node.id)))).flat();
      // (c.stop() asks the running daemons for their nodes' containers: none runs now.)
      removeContainersOf(nodes.map((n) => n.node.id));
      await c.stop();
      assert.deepEqual(left, [], 'chains left by a stopped node');
    });

    test('datagrams reach the replicas and the answers come back from the published port', async () => {
      const first = await eventually('an answer', () => ask(host, port, 'ping'), 30_000);
      assert.match(first, /^[0-9a-f]{12}:ping$/, first);
      // Clients spread over both replicas (a flow each), once the node has both in its table.
      const seen = new Set<string>();
      let i = 0;
      await eventually('both replicas answering', async () => {
        const a = await ask(host, port, `n${i++}`);
        if (a) seen.add(a.split(':')[0]!);
        if (seen.size < 2) await new Promise((r) => setTimeout(r, 50));
        return seen.size === 2 ? true : undefined;
      }, 15_000).catch(() => undefined);
      const nodes = await m1.call<{ nodes: NodeView[] }>('ListNodes');
      let n = nodes.nodes[0]!.node;
      const chain = mode === 'kernel' ? execFileSync('iptables', ['-w', '5', '-t', 'nat', '-S', kernelChains(n.id).nat], { encoding: 'utf8' }) : '';
      assert.equal(seen.size, 2, `replicas answering: ${[...seen].join(', ')}\n${chain}`);
      // The node's errors travel in its heartbeats: one said before the replicas ran clears at the next.
      n = await eventually('no mesh error reported', async () => {
        const x = (await m1.call<{ nodes: NodeView[] }>('ListNodes')).nodes[0]!.node;
        return x.status.meshErrors.length === 0 ? x : undefined;
      }, 10_000);
      assert.deepEqual(n.status.meshErrors, []);
      if (mode === 'kernel') {
        assert.equal(n.status.meshMode, 'kernel');
        const rules = execFileSync('iptables', ['-w', '5', '-t', 'nat', '-S', kernelChains(n.id).nat], { encoding: 'utf8' });
        assert.match(rules, new RegExp(`-p udp -m udp --dport ${port} .*-j DNAT`), rules);
      }
    });
  });
}
