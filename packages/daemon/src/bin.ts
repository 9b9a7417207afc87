#!/usr/bin/env node
// shoald: the Shoal node daemon. See INTERFACE.md.
import { readFileSync } from 'node:fs';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ShoalError } from '@shoal/api';
import { createLogger, type PinoLogger } from '@shoal/raft';
import { parseDuration } from '@shoal/types';
import { type Daemon, init, join_, run } from './daemon.js';
import { initBanner } from './init-banner.js';
import { LOG_FORMATS, LOG_LEVELS, setUpLogging } from './log-output.js';

/** Made once the logging flags are read (middleware below), before any command runs. */
let log: PinoLogger;

function fail(err: unknown): never {
  const e = err instanceof ShoalError ? err : ShoalError.from(err);
  const msg = e.code === 'INTERNAL' && err instanceof Error ? err.message : e.message;
  process.stderr.write(`shoald: ${msg}\n`);
  process.exit(1);
}

async function serve(start: () => Promise<Daemon>): Promise<void> {
  let d: Daemon;
  try {
    d = await start();
  } catch (err) {
    fail(err);
  }
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping');
    d.stop().then(
      () => process.exit(0),
      (err: Error) => {
        log.error({ err: err.message }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
  d.manager?.raft.on('fatal', () => process.exit(3));
  d.onManager = (m) => m.raft.on('fatal', () => process.exit(3));
}

const common = {
  'data-dir': { type: 'string', demandOption: true, describe: 'where the node keeps its identity, Raft log and store' },
} as const;
const listen = {
  'listen-addr': { type: 'string', demandOption: true, describe: 'HOST:PORT to serve the Raft and control APIs on' },
  'advertise-addr': { type: 'string', describe: 'HOST:PORT other nodes reach this one on (default: --listen-addr)' },
  hostname: { type: 'string', describe: 'node name (default: the machine hostname)' },
  'docker-host': { type: 'string', describe: 'Docker engine: unix:///PATH, tcp://HOST:PORT (TLS with DOCKER_TLS_VERIFY, DOCKER_CERT_PATH) or ssh://USER@HOST (default: DOCKER_HOST, else the local socket)' },
} as const;
const metrics = {
  'metrics-addr': { type: 'string', describe: 'HOST:PORT to serve Prometheus metrics on (GET /metrics; default: none). On a loopback address plain HTTP; elsewhere HTTPS that asks for an admin certificate of the cluster' },
  'metrics-insecure': { type: 'boolean', describe: 'serve --metrics-addr as plain HTTP to anyone, on a non-loopback address too (for a scraper on a network you trust)' },
} as const;
/** The metrics flags as daemon.ts takes them. */
const metricsFlags = (a: { 'metrics-addr'?: string; 'metrics-insecure'?: boolean }) => ({ metricsAddr: a['metrics-addr'], metricsInsecure: a['metrics-insecure'] });
const availability = {
  availability: {
    choices: ['active', 'pause', 'drain'] as const,
    default: 'active' as const,
    describe: 'whether this node takes tasks: active; pause (keeps its tasks, gets no new ones); drain (its tasks move elsewhere)',
  },
} as const;
const meshMode = {
  'mesh-mode': {
    choices: ['userland', 'kernel'] as const,
    describe: 'routing mesh: userland proxy, or kernel: iptables DNAT to local replicas and, over the ingress overlay, to other nodes\' (needs root; kept by `run`; or SHOAL_MESH_MODE). Default: kernel when shoald is root on a non-loopback IPv4 address, else userland',
  },
} as const;

await yargs(hideBin(process.argv))
  .scriptName('shoald')
  .usage('$0 <command> [options]')
  .options({
    'log-level': { choices: LOG_LEVELS, describe: 'the least severe lines to log (default: $SHOAL_LOG_LEVEL, else info)' },
    'log-format': { choices: LOG_FORMATS, describe: 'text: one readable line per event; json: JSON lines (default: text on a terminal, json otherwise)' },
  })
  .middleware(async (a) => {
    await setUpLogging(a['log-level'], a['log-format']);
    log = createLogger('shoald');
  })
  .command(
    'init',
    'create a cluster; this node becomes its first manager',
    (y) =>
      y.options({
        ...common,
        ...listen,
        ...meshMode,
        ...availability,
        ...metrics,
        'dispatcher-heartbeat': { type: 'string', describe: 'how often nodes heartbeat the managers, e.g. 1s (default); a silent node is down after 3 periods' },
        'cert-expiry': { type: 'string', describe: 'validity of node certificates, e.g. 2160h (90 days, the default); nodes renew at 50-80% of it' },
        'ca-cert': { type: 'string', describe: 'PEM file: a root CA certificate of your own for the cluster (with --ca-key; default: a new one)' },
        'ca-key': { type: 'string', describe: "PEM file: that CA's ECDSA P-256 private key (kept only sealed in the managers' store)" },
      }).example('$0 init --data-dir /var/lib/shoal --listen-addr 10.0.0.1:4242', 'a new cluster; prints the commands that join other nodes to it'),
    (a) =>
      serve(async () =>
        announce(await init({
          dispatcherHeartbeatMs: a['dispatcher-heartbeat'] === undefined ? undefined : parseDuration(a['dispatcher-heartbeat'], '--dispatcher-heartbeat'),
          certExpiryMs: a['cert-expiry'] === undefined ? undefined : parseDuration(a['cert-expiry'], '--cert-expiry'),
          dataDir: a['data-dir'],
          listenAddr: a['listen-addr'],
          advertiseAddr: a['advertise-addr'],
          hostname: a.hostname,
          dockerHost: a['docker-host'],
          availability: a.availability,
          meshMode: a['mesh-mode'],
          rootCA: rootCAFiles(a['ca-cert'], a['ca-key']),
          ...metricsFlags(a),
        }, log)),
      ),
  )
  .command(
    'join',
    'join a cluster as a worker or a manager (the token decides)',
    (y) =>
      y.options({
        ...common,
        ...listen,
        ...meshMode,
        'join-addr': { type: 'string', demandOption: true, describe: 'HOST:PORT of a manager' },
        token: { type: 'string', describe: 'join token (shoal swarm join-token worker|manager)' },
        'token-file': { type: 'string', describe: 'read the join token from this file (keeps it out of the process list)' },
        ...availability,
        ...metrics,
      }).example('$0 join --data-dir /var/lib/shoal --listen-addr 10.0.0.2:4242 --join-addr 10.0.0.1:4242 --token-file worker.token', 'join as a worker (or a manager: the token decides)'),
    (a) =>
      serve(() =>
        join_({
          dataDir: a['data-dir'],
          listenAddr: a['listen-addr'],
          advertiseAddr: a['advertise-addr'],
          hostname: a.hostname,
          dockerHost: a['docker-host'],
          availability: a.availability,
          meshMode: a['mesh-mode'],
          joinAddr: a['join-addr'],
          token: joinToken(a.token, a['token-file']),
          ...metricsFlags(a),
        }, log),
      ),
  )
  .command(
    'run',
    'restart a node that already did init or join (a manager of a cluster with autolock starts locked: `shoal swarm unlock`)',
    (y) =>
      y.options({
        ...common,
        ...meshMode,
        ...metrics,
        'force-new-cluster': { type: 'boolean', default: false, describe: 'disaster recovery: restart as the only manager; keeps every entry of its Raft log (even one never committed) and removes the other managers' },
      }).example('$0 run --data-dir /var/lib/shoal', 'restart this node after a reboot or a crash'),
    (a) => serve(() => run({ dataDir: a['data-dir'], forceNewCluster: a['force-new-cluster'], meshMode: a['mesh-mode'], ...metricsFlags(a) }, log)),
  )
  .example('$0 init --data-dir /var/lib/shoal --listen-addr 10.0.0.1:4242', 'start a new cluster')
  .example('$0 run --data-dir /var/lib/shoal --log-format json', 'restart a node, JSON log lines for a collector')
  .demandCommand(1, 'a command is required: init, join or run')
  .strict()
  .fail((msg, err) => {
    if (err) fail(err);
    process.stderr.write(`shoald: ${msg}\n`);
    process.exit(2);
  })
  .help()
  .version(daemonVersion())
  .parseAsync();

/** Prints what `docker swarm init` prints, once the cluster exists: the node's id and how to join it. */
function announce(d: Daemon): Daemon {
  const tokens = d.manager?.store.cluster()?.joinTokens;
  if (tokens) process.stdout.write(initBanner(d.state.nodeId, d.state.advertiseAddr, tokens));
  return d;
}

/** The version of this package, which shoald is. */
function daemonVersion(): string {
  return (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
}

/** The join token, from --token or --token-file (exactly one). */
function joinToken(token: string | undefined, file: string | undefined): string {
  if (token !== undefined && file !== undefined) throw new ShoalError('INVALID_ARGUMENT', 'give --token or --token-file, not both');
  if (file === undefined) {
    if (token === undefined) throw new ShoalError('INVALID_ARGUMENT', 'missing --token (or --token-file): get one with `shoal swarm join-token worker|manager`');
    return token;
  }
  const t = readFlagFile('token-file', file).trim();
  if (!t) throw new ShoalError('INVALID_ARGUMENT', `--token-file ${file} is empty`);
  return t;
}

/** An operator's root CA, from --ca-cert and --ca-key (both or neither); init checks the pair. */
function rootCAFiles(cert: string | undefined, key: string | undefined): { certPem: string; keyPem: string } | undefined {
  if (cert === undefined && key === undefined) return undefined;
  if (cert === undefined || key === undefined) throw new ShoalError('INVALID_ARGUMENT', '--ca-cert and --ca-key go together');
  return { certPem: readFlagFile('ca-cert', cert), keyPem: readFlagFile('ca-key', key) };
}

function readFlagFile(flag: string, file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    throw new ShoalError('INVALID_ARGUMENT', `cannot read --${flag} ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
