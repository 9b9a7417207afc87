// The registry credentials `service create/update --with-registry-auth` sends, read from the
// Docker client's config as docker's CLI reads them (cli/config/configfile and credentials):
// `$DOCKER_CONFIG/config.json` (default ~/.docker/config.json); the registry's key is the image
// reference's domain, docker.io's being "https://index.docker.io/v1/"; a credential helper
// (`credHelpers[registry]`, else `credsStore`) is asked with the `docker-credential-NAME get`
// protocol, else `auths[registry]` gives `auth` (base64 of user:password) or an `identitytoken`.
// No credentials for the registry is not an error, as with docker: an empty login is sent and the
// nodes pull anonymously. Error messages name the file and the registry, never a secret.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CliError } from './errors.js';

/** Docker's AuthConfig as the X-Registry-Auth header carries it (empty fields left out). */
export interface DockerAuthConfig {
  username?: string;
  password?: string;
  serveraddress?: string;
  identitytoken?: string;
}

/** docker.io's key in the Docker config (registry.IndexServer). */
export const INDEX_SERVER = 'https://index.docker.io/v1/';

/**
 * The config key of an image's registry: the reference's domain by docker's rule (the part before
 * the first `/` when it has a `.` or a `:` or is `localhost` or has upper-case letters; else
 * docker.io), docker.io (and index.docker.io) being INDEX_SERVER.
 */
export function registryKeyOf(image: string): string {
  const i = image.indexOf('/');
  const first = i < 0 ? '' : image.slice(0, i);
  const hasDomain = i >= 0 && (/[.:]/.test(first) || first === 'localhost' || first.toLowerCase() !== first);
  const domain = hasDomain ? first : 'docker.io';
  return domain === 'docker.io' || domain === 'index.docker.io' ? INDEX_SERVER : domain;
}

/** docker's ConvertToHostname: an old config's `https://host/v1/` key stands for `host`. */
function hostnameOf(key: string): string {
  const rest = key.replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  return rest.split('/')[0] ?? '';
}

export interface ReadOptions {
  env?: NodeJS.ProcessEnv;
  /** How long a credential helper may take (default 30 s). */
  helperTimeoutMs?: number;
}

interface ConfigFile {
  auths?: Record<string, { auth?: unknown; username?: unknown; password?: unknown; identitytoken?: unknown }>;
  credsStore?: unknown;
  credHelpers?: Record<string, unknown>;
}

/** The Docker client's config file, as docker finds it. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return path.join(env['DOCKER_CONFIG'] || path.join(os.homedir(), '.docker'), 'config.json');
}

function readConfig(file: string): ConfigFile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new CliError(`cannot read the Docker config ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (text.trim() === '') return {};
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw new CliError(`the Docker config ${file} is not valid JSON`);
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw new CliError(`the Docker config ${file} is not a JSON object`);
  return v as ConfigFile;
}

/** docker's decodeAuth: base64 of `user:password` (StdEncoding; a username is required). */
function decodeAuth(auth: string, file: string, key: string): { username: string; password: string } {
  const malformed = () => new CliError(`the Docker config ${file} has a malformed auth for ${key} (want base64 of user:password: docker login again)`);
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(auth) || auth.length % 4 !== 0) throw malformed();
  const decoded = Buffer.from(auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw malformed();
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1).replace(/\0+$/, '') };
}

const str = (v: unknown): string => (typeof v === 'string' ? v : '');

/** `docker-credential-NAME get`: the registry's key on stdin; {ServerURL, Username, Secret} on stdout. */
function fromHelper(name: string, key: string, env: NodeJS.ProcessEnv, timeoutMs: number): DockerAuthConfig {
  const program = `docker-credential-${name}`;
  const r = spawnSync(program, ['get'], { input: key, encoding: 'utf8', timeout: timeoutMs, env });
  if (r.error) {
    const code = (r.error as NodeJS.ErrnoException).code;
    throw new CliError(`credential helper ${program}: ${code === 'ENOENT' ? 'not found in PATH' : code ?? r.error.message}`);
  }
  const out = (r.stdout ?? '').trim();
  if (r.status !== 0) {
    // The protocol's answer for a registry it has nothing for (docker then sends an empty login).
    if (/credentials not found/i.test(out) || /credentials not found/i.test(r.stderr ?? '')) return { serveraddress: key };
    const why = (out || (r.stderr ?? '').trim()).split('\n')[0]!.slice(0, 200);
    throw new CliError(`credential helper ${program} failed for ${key} (exit ${r.status ?? r.signal}): ${why}`);
  }
  let v: { Username?: unknown; Secret?: unknown };
  try {
    v = JSON.parse(out) as typeof v;
  } catch {
    throw new CliError(`credential helper ${program} answered for ${key} with something other than JSON`);
  }
  const username = str(v?.Username);
  const secret = str(v?.Secret);
  // A helper keeps an identity token under the username "<token>" (docker's tokenUsername).
  if (username === '<token>') return { serveraddress: key, identitytoken: secret };
  return { ...(username ? { username } : {}), ...(secret ? { password: secret } : {}), serveraddress: key };
}

/** From `auths`: the registry's entry, or an old config's entry whose URL names the same host. */
function fromFile(config: ConfigFile, key: string, file: string): DockerAuthConfig {
  const auths = config.auths && typeof config.auths === 'object' ? config.auths : {};
  let entryKey: string | undefined = Object.hasOwn(auths, key) ? key : undefined;
  entryKey ??= Object.keys(auths).find((k) => hostnameOf(k) === key);
  const e = entryKey === undefined ? undefined : auths[entryKey];
  if (!e || typeof e !== 'object') return { serveraddress: key };
  const auth = str(e.auth);
  const login = auth ? decodeAuth(auth, file, entryKey!) : { username: str(e.username), password: str(e.password) };
  const identitytoken = str(e.identitytoken);
  return {
    ...(login.username ? { username: login.username } : {}),
    ...(login.password ? { password: login.password } : {}),
    serveraddress: key,
    ...(identitytoken ? { identitytoken } : {}),
  };
}

/** The credentials the Docker client has for `image`'s registry (only `serveraddress` when none). */
export function registryAuthFor(image: string, opts: ReadOptions = {}): DockerAuthConfig {
  const env = opts.env ?? process.env;
  const file = dockerConfigPath(env);
  const config = readConfig(file);
  const key = registryKeyOf(image);
  const helpers = config.credHelpers && typeof config.credHelpers === 'object' ? config.credHelpers : {};
  const helper = str(Object.hasOwn(helpers, key) ? helpers[key] : undefined) || str(config.credsStore);
  if (helper) return fromHelper(helper, key, env, opts.helperTimeoutMs ?? 30_000);
  return fromFile(config, key, file);
}
