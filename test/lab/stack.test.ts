// A real application on lab hosts (issue 17, section 4): examples/three-tier deployed as a stack
// from its Compose file. A published front end calls an API by name; the API reads a secret and
// a config and calls a store that keeps its data in a named volume. Used through the routing mesh
// from every host; the store's container killed (its data kept); a host powered off (the stack
// whole again where it can be); a redeploy with one change (only that service touched); `stack rm`
// (nothing left on any node). The secret's text is found nowhere under any node's /var/lib.
// Needs root and a Docker engine; without them the suite fails, it does not skip.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { eventually } from '../helpers/shoald.js';
import { TestLab, lines, ok, type PsTask } from '../helpers/lab.js';

const ROOT = new URL('../../..', import.meta.url).pathname;
const NODES = ['manager1', 'worker1', 'worker2'];
const STACK = 'demo';
const SERVICES = ['front', 'api', 'store'].map((s) => `${STACK}_${s}`);

describe('a three-tier stack on a lab of real hosts', { timeout: 1_800_000 }, () => {
  const lab = new TestLab('stack');
  const dir = mkdtempSync(join(tmpdir(), 'shoal-stack-'));
  // A secret nobody could find by chance: the test looks for it on every node's disk.
  const token = `tok-${randomBytes(12).toString('hex')}`;
  let image = '';

  /** `shoal stack deploy` of the example with the image and more variables in its environment. */
  function deploy(env: Record<string, string> = {}): string {
    const vars = Object.entries({ IMAGE: image, ...env }).map(([k, v]) => `${k}=${v}`);
    return ok(lab.sh('env', [...vars, 'sh', '-c', 'node=$0 cli=$1 name=$2; shift 2; eval "$("$node" "$cli" lab env --name "$name")" && exec "$node" "$cli" "$@"',
      process.execPath, `${ROOT}/packages/cli/bin/shoal.js`, lab.name, 'stack', 'deploy', '-c', join(dir, 'compose.yml'), STACK], 180_000));
  }

  const running = (service: string): PsTask[] => (lab.ps(service) ?? []).filter((t) => t.desiredState === 'running' && t.currentState === 'running');
  const whole = (up: string[]) => running(`${STACK}_front`).length === 2 && running(`${STACK}_api`).length === 2 && running(`${STACK}_store`).length === 1 && up.length > 0;

  /** One request to the front end through the routing mesh on `node`'s address, or '' on failure. */
  async function call(node: string): Promise<string> {
    const res = await fetch(`http://${lab.addr(node)}:8080/cgi-bin/front`, { signal: AbortSignal.timeout(8_000) }).catch(() => undefined);
    if (!res || res.status !== 200) return '';
    return (await res.text()).trim();
  }

  /** The counter in a front end's answer (the store's count), when the whole chain answered. */
  function countOf(answer: string): number | undefined {
    const m = /^front=\S+ color=\S+ api=\S+ greeting=hello-from-config token_length=(\d+) count=(\d+)$/.exec(answer);
    if (!m || Number(m[1]) !== token.length) return undefined;
    return Number(m[2]);
  }

  /** Ids of the running tasks of each of the stack's services. */
  const taskIds = () => Object.fromEntries(SERVICES.map((s) => [s, running(s).map((t) => t.id).sort()]));

  before(async () => {
    cpSync(`${ROOT}/examples/three-tier`, dir, { recursive: true });
    writeFileSync(join(dir, 'token.txt'), token);
    lab.up(1, 2);
    image = lab.loadImage('shoal/busybox:latest');
  });
  after(() => {
    lab.down();
    rmSync(dir, { recursive: true, force: true });
  });

  test('deploy: every service runs; Swarm-ignored keys are reported', async () => {
    const out = deploy();
    assert.match(out, /Creating network demo_web/);
    assert.match(out, /Creating service demo_store/);
    await eventually('the stack running', async () => whole(['x']) || undefined, 240_000);
    const services = JSON.parse(ok(lab.shoal('stack', 'services', STACK, '--format', 'json'))) as { name: string }[];
    assert.deepEqual(services.map((s) => s.name).sort(), [...SERVICES].sort());
    const stacks = JSON.parse(ok(lab.shoal('stack', 'ls', '--format', 'json'))) as { name: string; services: number }[];
    assert.deepEqual(stacks.map((s) => [s.name, s.services]), [[STACK, 3]]);
  });

  test('used through the routing mesh from every host: the front calls the API, the API its store', async () => {
    const counts: number[] = [];
    for (const node of NODES) {
      const answer = await eventually(`the whole chain answering on ${node}`, async () => {
        const a = await call(node);
        return countOf(a) !== undefined ? a : undefined;
      }, 60_000);
      counts.push(countOf(answer)!);
    }
    // Every call went through the one store: its counter only grows.
    assert.deepEqual([...counts].sort((a, b) => a - b), counts, `counts ${counts.join(', ')}`);
  });

  test('the secret is in its task from memory, and nowhere on any node\'s disk', () => {
    const [api] = running(`${STACK}_api`);
    assert.ok(api);
    const [id] = lab.containers(api.node, `${STACK}_api`);
    assert.equal(lab.exec(api.node, 'docker', 'exec', id!, 'cat', '/run/secrets/api_token'), token);
    for (const node of NODES) {
      const r = lab.lab('exec', node, '--', 'grep', '-rlF', '--', token, '/var/lib');
      assert.equal(r.code, 1, `grep on ${node}: ${r.stdout}${r.stderr}`);
    }
  });

  test('the store\'s container killed: replaced on its node, its data kept', async () => {
    const before = countOf(await call('manager1'));
    assert.ok(before !== undefined);
    const [old] = lab.containers('worker1', `${STACK}_store`);
    assert.ok(old, 'the store runs on worker1');
    lab.exec('worker1', 'docker', 'kill', old);
    await eventually('a new store container', async () => {
      const [id] = lab.containers('worker1', `${STACK}_store`);
      return id && id !== old ? id : undefined;
    }, 120_000);
    const after = await eventually('the chain answering again', async () => countOf(await call('manager1')), 60_000);
    assert.ok(after > before, `the count went on from ${before} (now ${after}): the volume kept it`);
  });

  test('a host powered off: the stack is whole again on the others', async () => {
    lab.lab('stop', 'worker2');
    try {
      await eventually('the stack whole without worker2', async () => {
        const on2 = SERVICES.flatMap((s) => running(s)).filter((t) => t.node === 'worker2');
        return on2.length === 0 && whole(['x']) ? true : undefined;
      }, 240_000);
      const answer = await eventually('an answer on manager1', async () => {
        const a = await call('manager1');
        return countOf(a) !== undefined ? a : undefined;
      }, 60_000);
      assert.ok(answer);
    } finally {
      ok(lab.lab('start', 'worker2'));
    }
    await eventually('worker2 ready again', async () => (lab.nodeStatus()?.['worker2'] === 'ready' ? true : undefined), 180_000);
  });

  test('a redeploy with one change touches only that service', async () => {
    const before = taskIds();
    // The same file again: nothing changes.
    deploy();
    assert.deepEqual(taskIds(), before);
    deploy({ FRONT_COLOR: 'green' });
    await eventually('the front end rolled out', async () => {
      const fronts = running(`${STACK}_front`);
      return fronts.length === 2 && fronts.every((t) => !before[`${STACK}_front`]!.includes(t.id)) ? true : undefined;
    }, 180_000);
    const now = taskIds();
    assert.deepEqual(now[`${STACK}_api`], before[`${STACK}_api`]);
    assert.deepEqual(now[`${STACK}_store`], before[`${STACK}_store`]);
    const answer = await eventually('green answers', async () => {
      const a = await call('worker1');
      return a.includes('color=green') && countOf(a) !== undefined ? a : undefined;
    }, 60_000);
    assert.ok(answer);
  });

  test('autolock: the manager restarted serves nothing until unlocked, then everything is back', async () => {
    const out = ok(lab.shoal('swarm', 'update', '--autolock', 'true'));
    const key = /SWMKEY-1-\S+/.exec(out)?.[0];
    assert.ok(key, out);
    // The manager wraps its key-encryption key as its store sees the setting.
    const wrapped = 'grep -l \'"kdf"\' $(find /var/lib /root -name kek.json -path "*certificates*" 2>/dev/null) 2>/dev/null';
    await eventually('manager1 holding its key wrapped', async () => (lab.lab('exec', 'manager1', '--', 'sh', '-c', wrapped).code === 0 ? true : undefined), 60_000);
    lab.lab('stop', 'manager1');
    ok(lab.lab('start', 'manager1'));
    const local = (...args: string[]) => lab.lab('exec', 'manager1', '--', 'shoal', ...args);
    const refusal = await eventually('manager1 answering, locked', async () => {
      const r = local('service', 'ls');
      return r.code !== 0 && /this manager is locked/.test(r.stderr) ? r.stderr : undefined;
    }, 180_000);
    assert.equal(lines(refusal).length, 1, refusal);
    assert.notEqual(lab.shoal('stack', 'services', STACK).code, 0, 'no manager serves the cluster while it is locked');
    const wrong = lab.labWithInput('SWMKEY-1-notthekey\n', 'exec', '-i', 'manager1', '--', 'shoal', 'swarm', 'unlock');
    assert.notEqual(wrong.code, 0);
    assert.match(wrong.stderr, /invalid unlock key/);
    ok(lab.labWithInput(`${key}\n`, 'exec', '-i', 'manager1', '--', 'shoal', 'swarm', 'unlock'));
    await eventually('the stack served again, whole', async () => {
      const r = lab.shoal('stack', 'services', STACK, '--format', 'json');
      return r.code === 0 && (JSON.parse(r.stdout) as unknown[]).length === 3 && whole(['x']) ? true : undefined;
    }, 180_000);
    await eventually('the chain answering on manager1', async () => countOf(await call('manager1')), 120_000);
    ok(lab.shoal('swarm', 'update', '--autolock', 'false'));
  });

  test('stack rm: nothing of the stack is left on any node', async () => {
    ok(lab.shoal('stack', 'rm', STACK));
    await eventually('no container of the stack on any node', async () =>
      NODES.every((n) => lines(lab.exec(n, 'docker', 'ps', '-aq', '--filter', `label=com.docker.stack.namespace=${STACK}`)).length === 0) ? true : undefined, 180_000);
    assert.deepEqual(JSON.parse(ok(lab.shoal('stack', 'ls', '--format', 'json'))), []);
    const names = (kind: string) => (JSON.parse(ok(lab.shoal(kind, 'ls', '--format', 'json'))) as { name: string }[]).map((x) => x.name).filter((n) => n.startsWith(`${STACK}_`));
    assert.deepEqual(names('service'), []);
    assert.deepEqual(names('network'), []);
    assert.deepEqual(names('secret'), []);
    assert.deepEqual(names('config'), []);
  });
});
