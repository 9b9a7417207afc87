// Where the Docker engine is and how to reach it: a DOCKER_HOST-style address (the daemon's
// --docker-host) plus docker's client environment (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH,
// SSH_AUTH_SOCK), turned into docker-modem's connection options.
//
// docker-modem reads DOCKER_HOST itself, but only from process.env, and exposes no parser for an
// address it is given: this is the small mapping onto the options it does take (socketPath;
// host/port/protocol http|https with ca/cert/key; protocol ssh, which runs `docker system
// dial-stdio` on the remote host, as docker does). Its constructor still merges the environment's
// DOCKER_HOST settings *under* the options it is given, so every connection option is given here
// explicitly: the address passed in is the one used, whatever the environment says.

import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type Docker from 'dockerode';
import { executorError } from './executor.js';

export const DEFAULT_DOCKER_SOCKET = '/var/run/docker.sock';

/** docker's client settings besides the address, as its CLI reads them from the environment. */
export interface DockerClientEnv {
  /** DOCKER_TLS_VERIFY set (to anything): TLS, the engine's certificate checked against ca.pem, ours (cert.pem, key.pem) presented. */
  tlsVerify: boolean;
  /** DOCKER_CERT_PATH: where ca.pem, cert.pem and key.pem are (default ~/.docker). */
  certPath: string;
  /** SSH_AUTH_SOCK: the ssh agent that holds the key for ssh:// addresses. */
  sshAuthSock?: string;
}

/** docker's client settings from an environment (the docker CLI's rules: any non-empty DOCKER_TLS_VERIFY means on). */
export function dockerClientEnv(env: NodeJS.ProcessEnv): DockerClientEnv {
  return {
    tlsVerify: (env['DOCKER_TLS_VERIFY'] ?? '') !== '',
    certPath: env['DOCKER_CERT_PATH'] || path.join(os.homedir(), '.docker'),
    ...(env['SSH_AUTH_SOCK'] ? { sshAuthSock: env['SSH_AUTH_SOCK'] } : {}),
  };
}

export interface DockerEndpoint {
  /** For messages: the address as the user would write it. */
  display: string;
  /** docker-modem's options, every connection field set (see above). */
  modem: Docker.DockerOptions & { pathPrefix?: string; username?: string; ca?: string; cert?: Buffer; key?: Buffer };
  /** Whether connections are TLS (the caller's keep-alive agent must then be an https one). */
  tls: boolean;
}

const USAGE = 'use unix:///path/to/docker.sock, tcp://host:port or ssh://user@host';

/**
 * Maps a DOCKER_HOST-style address (docker's rules: '' is the local socket, a bare path a unix
 * socket, a bare host:port tcp; tcp's default port is 2375, or 2376 with TLS) to docker-modem's
 * options. Throws a one-line invalid-spec error on an address it cannot use.
 */
export function dockerEndpoint(address: string, env: DockerClientEnv): DockerEndpoint {
  const raw = address.trim() || `unix://${DEFAULT_DOCKER_SOCKET}`;
  if (raw.startsWith('/')) return dockerEndpoint(`unix://${raw}`, env);
  if (!raw.includes('://')) return dockerEndpoint(`tcp://${raw}`, env);
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    throw executorError('invalid-spec', `invalid docker host "${raw}": ${USAGE}`);
  }
  // Every field docker-modem would otherwise take from the environment's DOCKER_HOST.
  const none = {
    socketPath: undefined,
    host: undefined,
    port: undefined,
    username: undefined,
    pathPrefix: '/',
    ca: undefined,
    cert: undefined,
    key: undefined,
    timeout: undefined,
  };
  const hostname = url.hostname.replace(/^\[|\]$/g, '');
  switch (url.protocol) {
    case 'unix:': {
      const socketPath = url.pathname || DEFAULT_DOCKER_SOCKET;
      return { display: `unix://${socketPath}`, modem: { ...none, socketPath, protocol: 'http' }, tls: false };
    }
    case 'tcp:':
    case 'http:':
    case 'https:': {
      if (!hostname) throw executorError('invalid-spec', `invalid docker host "${raw}": no host name (${USAGE})`);
      const tls = url.protocol === 'https:' || (url.protocol === 'tcp:' && env.tlsVerify);
      const port = url.port || (tls ? '2376' : '2375');
      const display = `${url.protocol}//${url.host.replace(/:\d+$/, '')}:${port}`;
      const certs = env.tlsVerify && tls ? tlsFiles(env.certPath) : {};
      return { display, modem: { ...none, host: hostname, port, protocol: tls ? 'https' : 'http', ...certs }, tls };
    }
    case 'ssh:': {
      if (!hostname) throw executorError('invalid-spec', `invalid docker host "${raw}": no host name (${USAGE})`);
      const username = decodeURIComponent(url.username) || os.userInfo().username;
      const port = url.port || '22';
      return {
        display: `ssh://${username}@${url.host.replace(/:\d+$/, '')}:${port}`,
        modem: {
          ...none,
          host: hostname,
          port,
          username,
          protocol: 'ssh',
          sshOptions: env.sshAuthSock ? { agent: env.sshAuthSock } : {},
        },
        tls: false,
      };
    }
    default:
      throw executorError('invalid-spec', `unsupported docker host "${raw}": ${USAGE}`);
  }
}

/** ca.pem, cert.pem and key.pem from DOCKER_CERT_PATH, as docker reads them for DOCKER_TLS_VERIFY. */
function tlsFiles(dir: string): { ca: string; cert: Buffer; key: Buffer } {
  const read = (name: string): Buffer => {
    const file = path.join(dir, name);
    try {
      return readFileSync(file);
    } catch (err) {
      const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
      throw executorError('invalid-spec', `DOCKER_TLS_VERIFY is set but ${file} cannot be read (${why}): set DOCKER_CERT_PATH to the directory of ca.pem, cert.pem and key.pem`);
    }
  };
  return { ca: read('ca.pem').toString('utf8'), cert: read('cert.pem'), key: read('key.pem') };
}
