// Compose files read, checked and converted as `docker stack deploy` does: substitution, the
// Compose schema's verdict in one line, merging of several files, and the specs a stack becomes.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadCompose, parseYaml } from '../src/stack/compose-load.js';
import { NAMESPACE_LABEL, convertStack, shellWords } from '../src/stack/convert.js';
import { castDoc, interpolateString, parseEnvFile } from '../src/stack/interpolate.js';

const FIXTURES = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../test/fixtures/compose');
const fixture = (name: string) => path.join(FIXTURES, name);

/** A scratch directory with these files (a Compose file and what it reads). */
const scratch: string[] = [];
function dirWith(files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'shoal-stack-'));
  scratch.push(dir);
  for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
  return dir;
}
after(() => {
  for (const d of scratch) fs.rmSync(d, { recursive: true, force: true });
});

/** Loads and converts one Compose text as stack `demo`. */
function stackOf(yaml: string, env: Record<string, string> = {}, extra: Record<string, string> = {}) {
  const dir = dirWith({ 'stack.yml': yaml, ...extra });
  return convertStack(loadCompose([path.join(dir, 'stack.yml')], { env }), 'demo');
}

function loadError(yaml: string, env: Record<string, string> = {}): string {
  const dir = dirWith({ 'stack.yml': yaml });
  try {
    convertStack(loadCompose([path.join(dir, 'stack.yml')], { env }), 'demo');
  } catch (err) {
    return (err as Error).message.replace(`${dir}/`, '');
  }
  assert.fail('expected the file to be refused');
}

describe('interpolation', () => {
  const env = { A: 'a', EMPTY: '', NESTED: 'n' };
  const where = { file: 'f.yml', path: 'services.x.image' };
  const run = (s: string) => {
    const unset: string[] = [];
    return { out: interpolateString(s, env, where, (n) => unset.push(n)), unset };
  };

  test('the forms docker reads', () => {
    assert.equal(run('$A-${A}').out, 'a-a');
    assert.equal(run('${MISSING:-def}|${EMPTY:-def}|${EMPTY-def}|${MISSING-def}').out, 'def|def||def');
    assert.equal(run('${A:+alt}|${EMPTY:+alt}|${EMPTY+alt}|${MISSING+alt}').out, 'alt||alt|');
    assert.equal(run('$$A costs $$5 and $').out, '$A costs $5 and $');
    assert.equal(run('${MISSING:-${NESTED}-x}').out, 'n-x');
  });

  test('an unset variable is blank and reported', () => {
    assert.deepEqual(run('x${MISSING}y$OTHER'), { out: 'xy', unset: ['MISSING', 'OTHER'] });
  });

  test('${VAR:?msg} refuses a missing or empty value, naming file and key', () => {
    assert.throws(() => run('${EMPTY:?set the tag}'), { message: 'f.yml: services.x.image: required variable EMPTY is missing a value: set the tag' });
    assert.throws(() => run('${MISSING?}'), { message: 'f.yml: services.x.image: required variable MISSING is missing a value' });
    assert.equal(run('${EMPTY?oops}').out, '');
  });

  test('an unclosed ${ is an error', () => {
    assert.throws(() => run('${A'), /f\.yml: services\.x\.image: invalid interpolation format/);
  });

  test('numbers and booleans a substitution spelled are cast; a wrong one names its key', () => {
    const doc = castDoc({ services: { web: { deploy: { replicas: '3' }, read_only: 'yes', ports: [{ target: '80' }] } } }, 's.yml') as never;
    assert.deepEqual(doc, { services: { web: { deploy: { replicas: 3 }, read_only: true, ports: [{ target: 80 }] } } });
    assert.throws(() => castDoc({ services: { web: { deploy: { replicas: 'three' } } } }, 's.yml'), { message: 's.yml: services.web.deploy.replicas must be integer' });
    assert.throws(() => castDoc({ services: { web: { init: 'maybe' } } }, 's.yml'), { message: 's.yml: services.web.init must be boolean' });
  });

  test('env files: comments, quotes, export, and names taken from the environment', () => {
    const text = '# c\nexport A=1\nB="two\\nlines"\nC=\'$raw\'\nD=x # note\nE\nF\n';
    assert.deepEqual(parseEnvFile(text, 'x.env', { E: 'from-shell' }), [
      ['A', '1'],
      ['B', 'two\nlines'],
      ['C', '$raw'],
      ['D', 'x'],
      ['E', 'from-shell'],
    ]);
    assert.throws(() => parseEnvFile('1BAD=x', 'x.env'), { message: 'x.env: line 1: invalid variable name "1BAD"' });
  });
});

describe('loading Compose files', () => {
  test('the three-tier file: .env fills what the environment lacks, the environment wins', () => {
    const fromDotEnv = loadCompose([fixture('three-tier.yml')], { env: {} });
    assert.equal((fromDotEnv.doc['services'] as any).front.deploy.replicas, 3);
    assert.deepEqual(fromDotEnv.ignored, []);
    const fromEnv = loadCompose([fixture('three-tier.yml')], { env: { FRONT_REPLICAS: '5', IMAGE: 'shoal/busybox:1' } });
    assert.equal((fromEnv.doc['services'] as any).front.deploy.replicas, 5);
    assert.equal((fromEnv.doc['services'] as any).store.image, 'shoal/busybox:1');
  });

  test('a later file overrides: maps merge, scalars replace', () => {
    const s = convertStack(loadCompose([fixture('three-tier.yml'), fixture('override.yml')], { env: {} }), 'demo');
    const api = s.services.find((x) => x.short === 'api')!.spec;
    assert.ok(api.env.includes('MODE=staging'));
    assert.ok(api.env.includes('STORE_URL=http://store:6379'));
    assert.equal(s.services.find((x) => x.short === 'front')!.spec.replicas, 1);
  });

  test('merging: ports and volumes by their key, environment lists and maps alike', () => {
    const dir = dirWith({
      'a.yml': 'services:\n  web:\n    image: a\n    environment: [X=1, Y=2]\n    volumes: ["d:/data"]\nvolumes:\n  d: {}\n  e: {}\n',
      'b.yml': 'services:\n  web:\n    image: b\n    environment: { Y: "3" }\n    volumes: ["e:/data", "d:/more"]\n',
    });
    const s = convertStack(loadCompose([path.join(dir, 'a.yml'), path.join(dir, 'b.yml')], { env: {} }), 'demo');
    const web = s.services[0]!.spec;
    assert.equal(web.image, 'b');
    assert.deepEqual(web.env, ['X=1', 'Y=3']);
    assert.deepEqual(
      web.mounts.map((m) => `${m.source}:${m.target}`),
      ['demo_e:/data', 'demo_d:/more'],
    );
  });

  test('invalid YAML names the file and the line', () => {
    assert.throws(() => loadCompose([fixture('invalid-yaml.yml')], { env: {} }), (err: Error) => {
      assert.match(err.message, /invalid-yaml\.yml: invalid YAML at line 5, column 3: /);
      assert.doesNotMatch(err.message, /\n/);
      return true;
    });
    assert.throws(() => parseYaml('a: 1\na: 2\n', 'dup.yml'), { message: 'dup.yml: invalid YAML at line 2, column 1: Map keys must be unique' });
  });

  test('an unknown key: file, key path, problem', () => {
    assert.throws(() => loadCompose([fixture('unknown-key.yml')], { env: {} }), { message: `${fixture('unknown-key.yml')}: services.web.deploy.replicaz: unknown key` });
    assert.equal(loadError('services:\n  web:\n    image: x\n    imagee: y\n'), 'stack.yml: services.web.imagee: unknown key');
    assert.equal(loadError('services: {}\nservice: {}\n'), 'stack.yml: service: unknown key');
  });

  test('a wrong type: file, key path, the type wanted', () => {
    assert.throws(() => loadCompose([fixture('wrong-type.yml')], { env: {} }), { message: `${fixture('wrong-type.yml')}: services.web.deploy.replicas must be integer` });
    assert.equal(loadError('services:\n  web:\n    image: x\n    environment: 5\n'), 'stack.yml: services.web.environment must be object or array');
    assert.equal(loadError('services:\n  web:\n    image: [x]\n'), 'stack.yml: services.web.image must be string');
    assert.equal(loadError('services:\n  web:\n    image: x\n    deploy:\n      resources:\n        limits:\n          memory: [1]\n'), 'stack.yml: services.web.deploy.resources.limits.memory must be string');
    assert.equal(loadError('services:\n  web:\n    image: x\n    volumes:\n      - type: nfs\n        target: /x\n'), 'stack.yml: services.web.volumes[0].type must be one of "bind", "volume", "tmpfs", "cluster", "npipe", "image"');
  });

  test('keys Swarm ignores are reported, not refused', () => {
    const l = loadCompose([fixture('ignored-keys.yml')], { env: {} });
    assert.deepEqual(l.ignored, ['build', 'container_name', 'depends_on', 'links', 'restart']);
    assert.equal(convertStack(l, 'demo').services.length, 2);
  });

  test('file modes in octal, as compose reads them (YAML 1.1: 0440)', () => {
    assert.deepEqual(parseYaml('a: 0440\nb: 0o17\nc: 10\nd: yes\n', 'm.yml'), { a: 0o440, b: 0o17, c: 10, d: 'yes' });
  });

  test('extension fields and YAML anchors are the writer\'s own', () => {
    const s = stackOf('x-base: &base\n  image: shoal/busybox\nservices:\n  web:\n    <<: *base\n    x-note: hi\n');
    assert.equal(s.services[0]!.spec.image, 'shoal/busybox');
  });

  test('a missing file', () => {
    assert.throws(() => loadCompose(['/nonexistent/stack.yml'], { env: {} }), { message: '/nonexistent/stack.yml: cannot read it (no such file)' });
  });
});

describe('conversion to specs', () => {
  const s = convertStack(loadCompose([fixture('three-tier.yml')], { env: {} }), 'demo');
  const svc = (short: string) => s.services.find((x) => x.short === short)!.spec;

  test('names STACK_NAME; the namespace on services, containers and everything created', () => {
    assert.deepEqual(s.services.map((x) => x.spec.name), ['demo_front', 'demo_api', 'demo_store']);
    assert.deepEqual(svc('front').labels, { owner: 'web-team', [NAMESPACE_LABEL]: 'demo' });
    assert.deepEqual(svc('front').containerLabels, { tier: 'front', [NAMESPACE_LABEL]: 'demo' });
    assert.deepEqual(
      s.networks.map((n) => [n.name, n.spec!.labels[NAMESPACE_LABEL], n.spec!.internal]),
      [
        ['demo_backend', 'demo', true],
        ['demo_frontend', 'demo', false],
      ],
    );
    assert.deepEqual(s.secrets.map((x) => [x.name, x.labels[NAMESPACE_LABEL], x.data!.toString()]), [
      ['demo_api_token', 'demo', 'tok-123\n'],
      ['demo_db_password', 'demo', 's3cret-db\n'],
    ]);
    assert.deepEqual(s.configs.map((x) => [x.name, x.data!.toString()]), [['demo_api_conf', 'listen=8081\n']]);
  });

  test('every service answers to its short name on each of its networks, plus its aliases', () => {
    assert.deepEqual(svc('api').networks, [
      { target: 'demo_frontend', aliases: ['api', 'backend-api'] },
      { target: 'demo_backend', aliases: ['api'] },
    ]);
  });

  test('command, entrypoint, environment and env_file', () => {
    assert.deepEqual(svc('api').args, ['sh', '-c', 'echo api up; sleep 100000']);
    assert.deepEqual(svc('api').env, ['LOG_LEVEL=debug', 'EMPTY=', 'STORE_URL=http://store:6379', 'MODE=production']);
    const t = stackOf('services:\n  web:\n    image: x\n    env_file: [a.env, { path: nope.env, required: false }]\n    environment: [A=2, FROM_SHELL, NOT_SET]\n', { FROM_SHELL: 's' }, { 'a.env': 'A=1\nB=1\n' });
    assert.deepEqual(t.services[0]!.spec.env, ['A=2', 'B=1', 'FROM_SHELL=s']);
    assert.match(loadError('services:\n  web:\n    image: x\n    env_file: nope.env\n'), /^services\.web\.env_file: cannot read .*nope\.env \(no such file\)$/);
    assert.deepEqual(shellWords(`a "b c" 'd $e' f\\ g`, 'x'), ['a', 'b c', 'd $e', 'f g']);
  });

  test('ports, deploy settings, health check, resources, logging', () => {
    const front = svc('front');
    assert.deepEqual(front.ports, [{ protocol: 'tcp', targetPort: 8080, publishedPort: 18080, publishMode: 'ingress', proxyProtocol: false }]);
    assert.equal(front.replicas, 3);
    assert.deepEqual(front.updateConfig, { parallelism: 1, delayMs: 1000, failureAction: 'pause', order: 'start-first', monitorMs: 5000, maxFailureRatio: 0 });
    assert.deepEqual(front.restartPolicy, { condition: 'on-failure', delayMs: 2000, maxAttempts: 0, windowMs: 0 });
    assert.equal(front.stopGracePeriodMs, 2000);
    assert.equal(front.init, true);
    const api = svc('api');
    assert.deepEqual(api.healthcheck, { test: ['CMD', 'true'], intervalMs: 5000, timeoutMs: 2000, retries: 3, startPeriodMs: 1000 });
    assert.deepEqual(api.resources, { limits: { nanoCpus: 500_000_000, memoryBytes: 64 << 20 }, reservations: { nanoCpus: 0, memoryBytes: 16 << 20 } });
    assert.deepEqual(api.logDriver, { name: 'json-file', options: { 'max-size': '1m' } });
    assert.equal(api.user, '0:0');
    assert.equal(api.workdir, '/srv');
    assert.equal(api.hostname, 'api-host');
  });

  test('secrets and configs: default targets are the short names', () => {
    assert.deepEqual(svc('api').secrets, [
      { secretId: 'demo_db_password', secretName: 'demo_db_password', target: 'db_password', uid: '0', gid: '0', mode: 0o444 },
      { secretId: 'demo_api_token', secretName: 'demo_api_token', target: 'token', uid: '0', gid: '0', mode: 0o400 },
    ]);
    assert.deepEqual(svc('api').configs, [{ configId: 'demo_api_conf', configName: 'demo_api_conf', target: '/etc/api.conf', uid: '0', gid: '0', mode: 0o444 }]);
  });

  test('volumes: named ones of the stack, tmpfs; the container settings', () => {
    const store = svc('store');
    assert.deepEqual(store.mounts, [
      {
        type: 'volume',
        source: 'demo_store-data',
        target: '/data',
        readOnly: false,
        volumeOptions: { noCopy: false, labels: { keep: 'yes', [NAMESPACE_LABEL]: 'demo' }, driver: '', driverOptions: {} },
        tmpfsOptions: null,
        bindPropagation: '',
      },
      { type: 'tmpfs', source: '', target: '/scratch', readOnly: false, volumeOptions: null, tmpfsOptions: { sizeBytes: 1 << 20, mode: 0 }, bindPropagation: '' },
    ]);
    assert.equal(store.readOnly, true);
    assert.deepEqual(store.capDrop, ['CAP_NET_RAW']);
    assert.deepEqual(store.ulimits, [{ name: 'nofile', soft: 1024, hard: 2048 }]);
    assert.deepEqual(store.sysctls, { 'net.core.somaxconn': '1024' });
    assert.deepEqual(store.dnsConfig, { nameservers: ['10.0.0.2'], search: [], options: [] });
    assert.deepEqual(store.constraints, ['node.role==manager']);
    assert.equal(store.maxReplicasPerNode, 1);
    assert.equal(store.endpointMode, 'dnsrr');
  });

  test('no networks: the stack\'s default network; short and long syntax; bind mounts from the file\'s directory', () => {
    const t = stackOf(
      [
        'services:',
        '  web:',
        '    image: x',
        '    ports: ["8000-8001:80-81/udp", {target: 443, published: 8443, mode: host}]',
        '    volumes: ["./site:/site:ro", "/var/run:/run/host", "/anon"]',
        '    healthcheck: { disable: true }',
        '    deploy: { mode: global, placement: { preferences: [{ spread: node.labels.zone }] } }',
        '    entrypoint: /bin/sh -c',
        '    command: ["echo", "hi"]',
      ].join('\n'),
    );
    const web = t.services[0]!.spec;
    assert.deepEqual(t.networks.map((n) => n.name), ['demo_default']);
    assert.deepEqual(web.networks, [{ target: 'demo_default', aliases: ['web'] }]);
    assert.deepEqual(web.ports.map((p) => [p.publishedPort, p.targetPort, p.protocol, p.publishMode]), [
      [8000, 80, 'udp', 'ingress'],
      [8001, 81, 'udp', 'ingress'],
      [8443, 443, 'tcp', 'host'],
    ]);
    assert.deepEqual(web.mounts.map((m) => [m.type, m.source.replace(/^\/tmp\/shoal-stack-[^/]+/, 'DIR'), m.target, m.readOnly]), [
      ['bind', 'DIR/site', '/site', true],
      ['bind', '/var/run', '/run/host', false],
      ['volume', '', '/anon', false],
    ]);
    assert.deepEqual(web.healthcheck, { test: ['NONE'], intervalMs: 0, timeoutMs: 0, retries: 0, startPeriodMs: 0 });
    assert.equal(web.mode, 'global');
    assert.equal(web.replicas, 0);
    assert.deepEqual(web.placementPrefs, ['spread=node.labels.zone']);
    assert.deepEqual(web.entrypoint, ['/bin/sh', '-c']);
    assert.deepEqual(web.args, ['echo', 'hi']);
  });

  test('jobs: deploy.mode replicated-job and global-job', () => {
    const t = stackOf('services:\n  once:\n    image: x\n    deploy: { mode: replicated-job, replicas: 3 }\n  each:\n    image: x\n    deploy: { mode: global-job }\n');
    assert.deepEqual(
      t.services.map((x) => [x.spec.mode, x.spec.replicas, x.spec.maxConcurrent, x.spec.restartPolicy.condition]),
      [
        ['replicated-job', 3, 3, 'on-failure'],
        ['global-job', 0, 0, 'on-failure'],
      ],
    );
  });

  test('external objects keep their names and are not created', () => {
    const t = stackOf(
      'services:\n  web:\n    image: x\n    networks: [shared]\n    secrets: [pw]\n    volumes: ["data:/d"]\nnetworks:\n  shared: { external: true, name: proxy-net }\nsecrets:\n  pw: { external: true }\nvolumes:\n  data: { external: true }\n',
    );
    assert.deepEqual(t.networks, [{ key: 'shared', name: 'proxy-net', external: true }]);
    assert.deepEqual(t.secrets, [{ key: 'pw', name: 'pw', external: true, labels: {} }]);
    assert.deepEqual(t.services[0]!.spec.mounts.map((m) => [m.source, m.volumeOptions]), [['data', null]]);
    // The older form names the object in `external` itself.
    const old = stackOf('services:\n  web:\n    image: x\n    networks: [shared]\nnetworks:\n  shared:\n    external: { name: proxy-net }\n');
    assert.deepEqual(old.networks, [{ key: 'shared', name: 'proxy-net', external: true }]);
  });

  test('mistakes the schema lets through: one line each, naming the key', () => {
    assert.equal(loadError('services:\n  web:\n    build: .\n'), "services.web.image is required (a stack's services run an image; build: is not supported)");
    assert.equal(loadError('services:\n  web:\n    image: x\n    networks: [nope]\n'), 'a service uses network "nope", which is not declared in the top-level networks');
    assert.equal(loadError('services:\n  web:\n    image: x\n    volumes: ["data:/d"]\n'), 'services.web.volumes[0]: undefined volume "data" (declare it in the top-level volumes)');
    assert.equal(loadError('services:\n  web:\n    image: x\n    secrets: [pw]\nsecrets:\n  pw: { file: ./nope.txt }\n'), 'secrets.pw.file: cannot read nope.txt (no such file)');
    assert.equal(loadError('services:\n  web:\n    image: x\n    ports: ["80"]\n'), 'services.web.ports[0]: "80": a published port is required (PUBLISHED:TARGET)');
    assert.equal(loadError('services:\n  web:\n    image: x\n    deploy: { placement: { constraints: ["node.colour==red"] } }\n'), 'services.web.deploy.placement.constraints: invalid constraint "node.colour==red": unknown key "node.colour" (expected node.id, node.hostname, node.role, node.platform.os, node.platform.arch or node.labels.NAME)');
    assert.equal(loadError('services:\n  web:\n    image: x\n    stop_grace_period: soon\n'), 'services.web.stop_grace_period: invalid duration "soon": expected a number with a unit (ms, s, m, h), like 500ms, 5s or 1m30s');
    assert.equal(loadError('services:\n  web:\n    image: x\n    deploy: { restart_policy: { condition: sometimes } }\n'), loadError('services:\n  web:\n    image: x\n    deploy: { restart_policy: { condition: sometimes } }\n'));
    assert.match(loadError('services:\n  web:\n    image: x\n    deploy: { restart_policy: { condition: sometimes } }\n'), /^services\.web: .*restart condition/);
    assert.equal(loadError('services:\n  web:\n    image: ${TAG:?the image tag}\n'), 'stack.yml: services.web.image: required variable TAG is missing a value: the image tag');
    assert.equal(loadError('services: {}\n'), 'the Compose file has no services');
  });

  test('the stack name is checked', () => {
    assert.throws(() => convertStack(loadCompose([fixture('ignored-keys.yml')], { env: {} }), 'bad name'), /invalid stack name "bad name"/);
  });
});
