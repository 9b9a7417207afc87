// `shoal stack deploy|ls|services|ps|rm` through the real CLI on a one-manager cluster that runs
// its tasks on this machine's Docker engine: a stack's objects named STACK_NAME with the
// namespace label, the JSON shapes of ls/services/ps, a redeploy that touches only the service
// that changed (the others keep their tasks), --prune, `rm` leaving nothing (no task, no
// container, no network), and bad files refused in one line with the store unchanged.
// Needs root and a Docker engine; without them the suite fails, it does not skip.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';
import { CLI, type CliResult, shoalCli } from '../helpers/cli.js';

const NS_LABEL = 'com.docker.stack.namespace';

interface PsRow {
  id: string;
  name: string;
  desiredState: string;
  currentState: string;
  error: string;
  containerId: string;
}

interface ServiceRow {
  id: string;
  name: string;
  mode: string;
  replicas: { running: number; desired: number };
  image: string;
}

function ok(r: CliResult, what: string): string {
  assert.equal(r.code, 0, `${what}: exit ${r.code}, stderr: ${r.stderr}`);
  return r.stdout;
}

/** The stack file of each step: `api` and its environment are what a redeploy changes. */
function stackFile(opts: { apiMode: string; withStore: boolean }): string {
  return [
    'version: "3.8"',
    'x-sleeper: &sleeper',
    '  image: shoal/busybox:latest',
    '  command: ["sleep", "100000"]',
    '  stop_grace_period: 1s',
    'services:',
    '  web:',
    '    <<: *sleeper',
    '    labels: { tier: front }',
    '    deploy:',
    '      replicas: 2',
    '      labels: { owner: web-team }',
    '  api:',
    '    <<: *sleeper',
    '    environment:',
    `      MODE: ${opts.apiMode}`,
    '      REPLICAS: ${API_REPLICAS:-1}',
    '    networks: [default, backend]',
    '    secrets: [db_password]',
    '    configs: [{ source: api_conf, target: /etc/api.conf }]',
    '    deploy:',
    '      replicas: ${API_REPLICAS:-1}',
    '      update_config: { parallelism: 1, order: start-first }',
    ...(opts.withStore ? ['  store:', '    <<: *sleeper', '    networks: [backend]', '    volumes: ["store-data:/data"]'] : []),
    'networks:',
    '  backend:',
    '    labels: { purpose: data }',
    'volumes:',
    '  store-data: {}',
    'secrets:',
    '  db_password: { file: ./db_password.txt }',
    'configs:',
    '  api_conf: { file: ./api.conf }',
    '',
  ].join('\n');
}

describe('stacks through the CLI', () => {
  const c = new TestCluster();
  let m: Daemon;
  let dir: string;
  const cli = (args: string[]) => shoalCli(m, args);
  const deploy = (file: string, ...extra: string[]) => cli(['stack', 'deploy', '--resolve-image', 'never', '-c', join(dir, file), ...extra, 'demo']);
  const write = (file: string, text: string) => writeFileSync(join(dir, file), text);

  async function ps(): Promise<PsRow[]> {
    return JSON.parse(ok(await cli(['stack', 'ps', '--format', 'json', 'demo']), 'stack ps')) as PsRow[];
  }

  /** The running tasks by service (name → sorted task ids), once `want` services × replicas run. */
  async function running(want: Record<string, number>): Promise<Record<string, string[]>> {
    let seen: PsRow[] = [];
    return eventually(
      `the stack's tasks running (${JSON.stringify(want)})`,
      async () => {
        const rows = (seen = await ps()).filter((r) => r.desiredState === 'running');
        const by: Record<string, string[]> = {};
        for (const r of rows) {
          if (r.currentState !== 'running') return undefined;
          (by[r.name.replace(/\.\d+$/, '')] ??= []).push(r.id);
        }
        const same = Object.keys(by).length === Object.keys(want).length && Object.entries(want).every(([s, n]) => by[s]?.length === n);
        return same ? Object.fromEntries(Object.entries(by).map(([s, ids]) => [s, ids.sort()])) : undefined;
      },
      90_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last seen: ${JSON.stringify(seen.map((r) => [r.name, r.desiredState, r.currentState, r.error]))}`);
    });
  }

  async function storeState(): Promise<string> {
    const services = ok(await cli(['service', 'ls', '--format', 'json']), 'service ls');
    const networks = JSON.parse(ok(await cli(['network', 'ls', '--format', 'json']), 'network ls')) as { name: string }[];
    return JSON.stringify({ services: JSON.parse(services).map((s: ServiceRow) => s.name), networks: networks.map((n) => n.name).sort() });
  }

  before(async () => {
    [m] = (await c.managers(1)) as [Daemon];
    dir = join(c.baseDir, 'stack');
    mkdirSync(dir);
    write('db_password.txt', 's3cret\n');
    write('api.conf', 'listen=8081\n');
    write('v1.yml', stackFile({ apiMode: 'one', withStore: true }));
    write('v2.yml', stackFile({ apiMode: 'two', withStore: true }));
    write('v3.yml', stackFile({ apiMode: 'two', withStore: false }));
  });
  after(async () => {
    const nodes = await m.call<{ nodes: { node: { id: string } }[] }>('ListNodes', {}).catch(() => ({ nodes: [] }));
    await c.stop();
    // The named volumes the node made stay after their containers (as in Swarm): the test's go.
    for (const { node } of nodes.nodes) {
      const volumes = execFileSync('docker', ['volume', 'ls', '-q', '--filter', `label=shoal.node.id=${node.id}`], { encoding: 'utf8' }).trim();
      if (volumes) execFileSync('docker', ['volume', 'rm', '-f', ...volumes.split('\n')], { stdio: 'ignore' });
    }
  });

  test('bad files are refused in one line, before anything is written', async () => {
    const before = await storeState();
    const cases: [string, string, RegExp][] = [
      ['bad-yaml.yml', 'services:\n  web:\n    image: [x\n', /^Error: .*bad-yaml\.yml: invalid YAML at line \d+, column \d+: .+\n$/],
      ['unknown.yml', 'services:\n  web:\n    image: x\n    deploy: { replicaz: 2 }\n', /^Error: .*unknown\.yml: services\.web\.deploy\.replicaz: unknown key\n$/],
      ['type.yml', 'services:\n  web:\n    image: x\n    deploy: { replicas: lots }\n', /^Error: .*type\.yml: services\.web\.deploy\.replicas must be integer\n$/],
      [
        'external.yml',
        'services:\n  web:\n    image: shoal/busybox:latest\n    networks: [shared]\n  api:\n    image: shoal/busybox:latest\nnetworks:\n  shared: { external: true, name: no-such-net }\n',
        /^Error: network "no-such-net" is declared as external, but could not be found: .*\n$/,
      ],
      ['secret.yml', 'services:\n  web:\n    image: x\n    secrets: [pw]\nsecrets:\n  pw: { file: ./missing.txt }\n', /^Error: secrets\.pw\.file: cannot read .*missing\.txt \(no such file\)\n$/],
    ];
    for (const [file, text, err] of cases) {
      write(file, text);
      const r = await deploy(file);
      assert.equal(r.code, 1, `${file}: exit ${r.code}`);
      assert.match(r.stderr, err, file);
      assert.equal(r.stdout, '', `${file}: nothing created`);
    }
    assert.equal(await storeState(), before);
  });

  test('deploy: STACK_NAME objects with the namespace label; ls, services and ps as JSON', async () => {
    const out = ok(await deploy('v1.yml'), 'deploy v1');
    assert.deepEqual(out.trim().split('\n'), [
      'Creating network demo_backend',
      'Creating network demo_default',
      'Creating secret demo_db_password',
      'Creating config demo_api_conf',
      'Creating service demo_web',
      'Creating service demo_api',
      'Creating service demo_store',
    ]);
    const tasks = await running({ demo_web: 2, demo_api: 1, demo_store: 1 });
    assert.equal(Object.values(tasks).flat().length, 4);

    assert.deepEqual(JSON.parse(ok(await cli(['stack', 'ls', '--format', 'json']), 'stack ls')), [{ name: 'demo', services: 3 }]);
    const services = JSON.parse(ok(await cli(['stack', 'services', '--format', 'json', 'demo']), 'stack services')) as ServiceRow[];
    assert.deepEqual(
      services.map((s) => [s.name, s.mode, s.replicas.desired, s.image]),
      [
        ['demo_api', 'replicated', 1, 'shoal/busybox:latest'],
        ['demo_store', 'replicated', 1, 'shoal/busybox:latest'],
        ['demo_web', 'replicated', 2, 'shoal/busybox:latest'],
      ],
    );
    const table = ok(await cli(['stack', 'ls']), 'stack ls table').split('\n');
    assert.match(table[0]!, /^NAME\s+SERVICES$/);
    assert.match(table[1]!, /^demo\s+3$/);

    const web = JSON.parse(ok(await cli(['service', 'inspect', '--format', 'json', 'demo_web']), 'inspect web'));
    assert.deepEqual(web.spec.labels, { owner: 'web-team', [NS_LABEL]: 'demo' });
    assert.deepEqual(web.spec.containerLabels, { tier: 'front', [NS_LABEL]: 'demo' });
    const networks = JSON.parse(ok(await cli(['network', 'ls', '--format', 'json']), 'network ls')) as { id: string; name: string }[];
    const net = (name: string) => networks.find((n) => n.name === name)!;
    assert.ok(net('demo_default') && net('demo_backend'), JSON.stringify(networks));
    assert.deepEqual(web.spec.networks, [{ target: net('demo_default').id, aliases: ['web'] }]);
    const api = JSON.parse(ok(await cli(['service', 'inspect', '--format', 'json', 'demo_api']), 'inspect api'));
    assert.deepEqual(api.spec.networks, [
      { target: net('demo_default').id, aliases: ['api'] },
      { target: net('demo_backend').id, aliases: ['api'] },
    ]);
    assert.deepEqual(api.spec.env, ['MODE=one', 'REPLICAS=1']);
    const store = JSON.parse(ok(await cli(['service', 'inspect', '--format', 'json', 'demo_store']), 'inspect store'));
    assert.deepEqual(
      store.spec.mounts.map((x: { type: string; source: string; target: string }) => [x.type, x.source, x.target]),
      [['volume', 'demo_store-data', '/data']],
    );
    const backend = JSON.parse(ok(await cli(['network', 'inspect', '--format', 'json', 'demo_backend']), 'inspect backend'));
    assert.deepEqual(backend.spec.labels, { purpose: 'data', [NS_LABEL]: 'demo' });

    // The stack's secret and config, made from their files, in the API's container.
    const secrets = JSON.parse(ok(await cli(['secret', 'ls', '--format', 'json']), 'secret ls')) as { name: string; labels: Record<string, string> }[];
    assert.deepEqual(secrets.map((x) => [x.name, x.labels[NS_LABEL]]), [['demo_db_password', 'demo']]);
    const configs = JSON.parse(ok(await cli(['config', 'ls', '--format', 'json']), 'config ls')) as { name: string; labels: Record<string, string> }[];
    assert.deepEqual(configs.map((x) => [x.name, x.labels[NS_LABEL]]), [['demo_api_conf', 'demo']]);
    const apiTask = (await ps()).find((r) => r.name.startsWith('demo_api.') && r.currentState === 'running')!;
    assert.equal(execFileSync('docker', ['exec', apiTask.containerId, 'cat', '/run/secrets/db_password', '/etc/api.conf'], { encoding: 'utf8' }), 's3cret\nlisten=8081\n');

    // Shell completion offers the stacks' names where a command takes one.
    const completions = execFileSync(process.execPath, [CLI, '--get-yargs-completions', 'shoal', '--host', `unix://${m.socket}`, 'stack', 'ps', 'd'], { encoding: 'utf8' });
    assert.deepEqual(completions.split('\n').filter((w) => w !== '' && !w.startsWith('-')), ['demo']);

    // Each service answers to its short name on the stack's networks: web finds api.
    let failed = '';
    const lookup = await eventually(
      'web resolving api',
      async () => {
        const webTask = (await ps()).find((r) => r.name.startsWith('demo_web.') && r.currentState === 'running');
        if (!webTask) return undefined;
        try {
          return execFileSync('docker', ['exec', webTask.containerId, 'nslookup', 'api'], { encoding: 'utf8', timeout: 10_000, stdio: 'pipe' });
        } catch (err) {
          const e = err as { stdout?: string; stderr?: string; message: string };
          failed = `${e.message} ${e.stdout ?? ''} ${e.stderr ?? ''}`;
          return undefined;
        }
      },
      60_000,
    ).catch((err: Error) => {
      throw new Error(`${err.message}; last: ${failed}`);
    });
    assert.match(lookup.slice(lookup.indexOf('Name:')), /Address:? *\d+\.\d+\.\d+\.\d+/);
  });

  test('a redeploy changes only what changed: the others keep their tasks', async () => {
    const before = await running({ demo_web: 2, demo_api: 1, demo_store: 1 });
    // The same file again: nothing to do.
    assert.equal(ok(await deploy('v1.yml'), 'deploy v1 again'), '');
    // One change (api's environment): api alone is updated.
    const out = ok(await deploy('v2.yml'), 'deploy v2');
    assert.match(out, /^Updating service demo_api \(id: [0-9a-z]+\)\n$/);
    const afterTasks = await eventually('api replaced', async () => {
      const t = await running({ demo_web: 2, demo_api: 1, demo_store: 1 });
      return t['demo_api']![0] !== before['demo_api']![0] ? t : undefined;
    }, 90_000);
    assert.deepEqual(afterTasks['demo_web'], before['demo_web']);
    assert.deepEqual(afterTasks['demo_store'], before['demo_store']);
    const api = JSON.parse(ok(await cli(['service', 'inspect', '--format', 'json', 'demo_api']), 'inspect api'));
    assert.deepEqual(api.spec.env, ['MODE=two', 'REPLICAS=1']);
  });

  test('a service left out stays unless --prune', async () => {
    assert.equal(ok(await deploy('v3.yml'), 'deploy v3'), '');
    assert.equal((JSON.parse(ok(await cli(['stack', 'services', '--format', 'json', 'demo']), 'services')) as ServiceRow[]).length, 3);
    assert.equal(ok(await deploy('v3.yml', '--prune'), 'deploy v3 --prune'), 'Removing service demo_store\n');
    const names = (JSON.parse(ok(await cli(['stack', 'services', '--format', 'json', 'demo']), 'services')) as ServiceRow[]).map((s) => s.name);
    assert.deepEqual(names, ['demo_api', 'demo_web']);
  });

  test('rm: services, then networks; no task and no container left', async () => {
    const ids = (JSON.parse(ok(await cli(['stack', 'services', '--format', 'json', 'demo']), 'services')) as ServiceRow[]).map((s) => s.id);
    const out = ok(await cli(['stack', 'rm', 'demo']), 'stack rm');
    assert.deepEqual(out.trim().split('\n'), [
      'Removing service demo_api',
      'Removing service demo_web',
      'Removing secret demo_db_password',
      'Removing config demo_api_conf',
      'Removing network demo_backend',
      'Removing network demo_default',
    ]);
    assert.deepEqual(JSON.parse(ok(await cli(['secret', 'ls', '--format', 'json']), 'secret ls')), []);
    assert.deepEqual(JSON.parse(ok(await cli(['config', 'ls', '--format', 'json']), 'config ls')), []);
    assert.deepEqual(JSON.parse(ok(await cli(['stack', 'ls', '--format', 'json']), 'stack ls')), []);
    assert.deepEqual(JSON.parse(ok(await cli(['stack', 'ps', '--format', 'json', 'demo']), 'stack ps')), []);
    const networks = JSON.parse(ok(await cli(['network', 'ls', '--format', 'json']), 'network ls')) as { name: string }[];
    assert.deepEqual(networks.filter((n) => n.name.startsWith('demo_')), []);
    await eventually(
      'no container of the stack',
      async () => ids.every((id) => execFileSync('docker', ['ps', '-aq', '--filter', `label=shoal.service.id=${id}`], { encoding: 'utf8' }).trim() === ''),
      60_000,
    );
    const again = await cli(['stack', 'rm', 'demo']);
    assert.equal(again.code, 0);
    assert.equal(again.stderr, 'Nothing found in stack: demo\n');
  });
});
