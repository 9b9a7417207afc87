// The lab's registry: Debian's docker-registry (distribution 2.8) run from the lab node image (it
// is built on shoal/lab-base, which has it, with its configuration docker/lab-registry.yml), so a
// lab needs one image. It has a fixed address on the lab network (addresses.ts), which every
// node's engine trusts over plain HTTP (SHOAL_LAB_REGISTRY, docker/lab-node-entrypoint.sh), its
// images on a lab volume, and a port on the host's 127.0.0.1 through which the host's engine
// pushes (image-ref.ts says why both).

import type Docker from 'dockerode';
import { ShoalError } from '@shoal/api';
import { engine, engineMessage } from './engine.js';
import { REGISTRY_PORT } from './names.js';

/** Where the registry's configuration and storage are in the image (docker/lab-node.Dockerfile). */
const CONFIG = '/etc/shoal/lab-registry.yml';
const STORAGE = '/var/lib/docker-registry';
const PORT_KEY = `${REGISTRY_PORT}/tcp`;

/** The registry's container, on network `net` at `ip`, its storage on `volume`. */
export function registryContainer(opts: { name: string; image: string; net: string; ip: string; volume: string; labels: Record<string, string> }): Docker.ContainerCreateOptions {
  return {
    name: opts.name,
    Hostname: 'registry',
    Image: opts.image,
    Labels: opts.labels,
    Entrypoint: ['docker-registry'],
    Cmd: ['serve', CONFIG],
    // Debian's package runs it as its own user, which owns the storage directory (a new volume
    // takes the directory's owner from the image).
    User: 'docker-registry',
    ExposedPorts: { [PORT_KEY]: {} },
    HostConfig: {
      Binds: [`${opts.volume}:${STORAGE}`],
      // The node image's own volumes (a node's disks) are nothing to the registry: empty memory
      // there, rather than two anonymous volumes that carry no lab label.
      Tmpfs: { '/var/lib/docker': '', '/var/lib/shoal': '' },
      NetworkMode: opts.net,
      // A port the engine picks, on loopback only: several labs side by side, nothing exposed.
      PortBindings: { [PORT_KEY]: [{ HostIp: '127.0.0.1', HostPort: '' }] },
    },
    NetworkingConfig: { EndpointsConfig: { [opts.net]: { IPAMConfig: { IPv4Address: opts.ip }, Aliases: ['registry'] } } },
  };
}

/** `127.0.0.1:PORT`: the registry as the host's engine reaches it, read from its running container. */
export function hostRegistry(info: Docker.ContainerInspectInfo): string | undefined {
  const binding = info.NetworkSettings?.Ports?.[PORT_KEY]?.find((b) => b.HostPort);
  return binding ? `127.0.0.1:${binding.HostPort}` : undefined;
}

/** Whether the registry at `addr` (ADDR:PORT) answers its API's base endpoint. */
export async function registryAnswers(addr: string, timeoutMs = 2_000): Promise<boolean> {
  try {
    const r = await fetch(`http://${addr}/v2/`, { signal: AbortSignal.timeout(timeoutMs) });
    await r.arrayBuffer();
    return r.ok;
  } catch {
    return false;
  }
}

interface PushEvent {
  status?: string;
  error?: string;
  errorDetail?: { message?: string };
}

/**
 * Pushes the host engine's image `source` to `repo:tag` (a repository of the registry the host's
 * engine reaches) through a tag of that name, removed again afterwards.
 */
export async function pushImage(docker: Docker, source: string, repo: string, tag: string): Promise<void> {
  await engine(`tag ${source} as ${repo}:${tag}`, () => docker.getImage(source).tag({ repo, tag }));
  try {
    // The engine wants the X-Registry-Auth header even for a registry without authentication.
    const stream = await engine(`push ${repo}:${tag}`, () => docker.getImage(repo).push({ tag, authconfig: {} }));
    // A failed push is an event in the stream (the call itself succeeded).
    const failure = await new Promise<string | undefined>((resolve, reject) => {
      let error: string | undefined;
      docker.modem.followProgress(stream, (err: Error | null) => (err ? reject(err) : resolve(error)), (e: PushEvent) => {
        if (e.error) error = (e.errorDetail?.message || e.error).split('\n')[0];
      });
    });
    if (failure) throw new ShoalError('UNAVAILABLE', `push ${source} to the lab's registry: ${failure}`);
  } catch (err) {
    throw err instanceof ShoalError ? err : new ShoalError('UNAVAILABLE', `push ${source} to the lab's registry: ${engineMessage(err)}`, { cause: err });
  } finally {
    await docker.getImage(`${repo}:${tag}`).remove().catch(() => {});
  }
}
