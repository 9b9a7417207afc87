// The name an image loaded into a lab's registry goes by. The registry lives at a fixed address on
// the lab network (addresses.ts), ADDR:5000, which the host reaches as well as every node: so one
// reference, ADDR:5000/PATH:TAG, works in `shoal service create` typed on the host and in every
// node's pull, with nothing to map (kind maps `localhost:5001` inside its nodes because its nodes
// cannot reach the host's localhost; a lab's nodes and host both reach the lab network). The host's
// engine pushes through the registry's port on the host's 127.0.0.1 instead, the one kind of
// address Docker trusts over plain HTTP without configuration.

import { ShoalError } from '@shoal/api';

/** An image reference taken apart: its registry (if it names one), its path and its tag. */
export interface ImageName {
  domain?: string;
  path: string;
  tag: string;
}

// Docker's reference grammar (distribution/reference): lowercase path components, a tag of word
// characters; the first component is a registry when it has a '.' or ':' or is `localhost`.
const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^\w[\w.-]{0,127}$/;
const DOMAIN = /^(?:[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(?::\d+)?$/;
const isDomain = (first: string) => first.includes('.') || first.includes(':') || first === 'localhost';

/** `IMAGE` as a user gives it to `lab load` (NAME[:TAG]), or an INVALID_ARGUMENT error saying why not. */
export function parseImageName(ref: string): ImageName {
  const invalid = (why: string) => new ShoalError('INVALID_ARGUMENT', `invalid image ${JSON.stringify(ref)}: ${why}`);
  if (ref.includes('@') || ref.startsWith('sha256:')) throw invalid('give it by name, NAME[:TAG] (a digest or image id names no repository to push to)');
  const slash = ref.lastIndexOf('/');
  const colon = ref.lastIndexOf(':');
  const hasTag = colon > slash;
  const name = hasTag ? ref.slice(0, colon) : ref;
  const tag = hasTag ? ref.slice(colon + 1) : 'latest';
  if (!TAG.test(tag)) throw invalid(`the tag ${JSON.stringify(tag)} is not one (letters, digits, '_', '.', '-', up to 128)`);
  const parts = name.split('/');
  const domain = parts.length > 1 && isDomain(parts[0]!) ? parts.shift() : undefined;
  if (domain !== undefined && !DOMAIN.test(domain)) throw invalid(`the registry ${JSON.stringify(domain)} is not a host[:port]`);
  if (parts.length === 0 || !parts.every((p) => COMPONENT.test(p))) throw invalid('a name is lowercase letters and digits, separated by \'/\', \'.\', \'_\' or \'-\'');
  return { ...(domain === undefined ? {} : { domain }), path: parts.join('/'), tag };
}

/**
 * The path an image has in the lab's registry: its own without the registry it came from (Docker
 * Hub's `library/` dropped too, so `busybox` and `docker.io/library/busybox` are one image).
 */
export function labPath(image: ImageName): string {
  const hub = image.domain === undefined || image.domain === 'docker.io' || image.domain === 'index.docker.io';
  return hub && image.path.startsWith('library/') ? image.path.slice('library/'.length) : image.path;
}

/** `REGISTRY/PATH`: the image's repository in the registry at `registry` (ADDR:PORT). */
export const labRepository = (registry: string, image: ImageName) => `${registry}/${labPath(image)}`;

/** `REGISTRY/PATH:TAG`: the image's reference in the registry at `registry` (ADDR:PORT). */
export const labReference = (registry: string, image: ImageName) => `${labRepository(registry, image)}:${image.tag}`;
