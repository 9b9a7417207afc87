// What a manager pins a service's image with (docker's resolve-image): the digest its own Docker
// engine's registry client finds for a tag (GET /distribution/NAME/json), with that engine's
// registry settings (mirrors, insecure registries) and the request's credentials, as docker's
// client asks its engine.

import Docker from 'dockerode';
import { type DockerClientEnv, dockerClientEnv, dockerEndpoint } from './docker-endpoint.js';
import { engineAuthConfig } from './registry-auth.js';

/** Resolves `ref` (a tagged reference) to the digest a registry has for it; rejects when none does. */
export type ImageResolve = (ref: string, auth: Readonly<Record<string, string | undefined>> | null) => Promise<string>;

export function imageResolver(dockerHost: string, env: DockerClientEnv = dockerClientEnv(process.env)): ImageResolve {
  // Made at the first use: an engine address docker-modem cannot take fails a pinning (the image
  // then keeps its tag, with docker's warning), never the manager's start.
  let docker: Docker | undefined;
  return async (ref, auth) => {
    docker ??= new Docker(dockerEndpoint(dockerHost, env).modem as Docker.DockerOptions);
    const opts = auth ? { authconfig: engineAuthConfig(JSON.stringify(auth)) } : {};
    const answer = (await docker.getImage(ref).distribution(opts)) as { Descriptor?: { digest?: unknown } };
    const digest = answer?.Descriptor?.digest;
    if (typeof digest !== 'string' || digest === '') throw new Error(`the engine gave no digest for ${ref}`);
    return digest;
  };
}
