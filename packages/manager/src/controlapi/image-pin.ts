// Docker's image pinning on `service create` (and `service update --image`): the image's tag is
// resolved to the digest the registry has for it now, `name:tag@sha256:...`, so every node runs
// the same image whatever the tag points at when it pulls. Asked of the Docker engine of the
// manager that serves the request (its distribution endpoint: that engine's registry settings,
// with the request's credentials), as docker's client asks its engine. An image that no registry
// has (one loaded by hand on each node) keeps its tag, with docker's warning; one given with a
// digest is left as it is. `--no-resolve-image` skips all this.

import { DIGEST_RE, withDefaultTag } from '@shoal/types';
import type { RegistryAuth } from '../registry-auth.js';

/** The digest (`sha256:...`) a registry has for `ref` (a tagged reference), with these credentials. */
export type ImageResolver = (ref: string, auth: RegistryAuth | null) => Promise<string>;

/** How long a registry may take to answer before the image is left unpinned. */
const RESOLVE_TIMEOUT_MS = 20_000;

/** docker's warning for an image it could not pin (moby's digestWarning, word for word). */
export function digestWarning(image: string): string {
  return `image ${image} could not be accessed on a registry to record\nits digest. Each node will access ${image} independently,\npossibly leading to different nodes running different\nversions of the image.\n`;
}

/** The image to store, pinned to its digest when a registry has it; else as given, with a warning. */
export async function pinImage(image: string, resolve: ImageResolver | undefined, auth: RegistryAuth | null): Promise<{ image: string; warning?: string }> {
  if (image.includes('@')) return { image };
  const tagged = withDefaultTag(image);
  if (!resolve) return { image, warning: digestWarning(tagged) };
  let timer: NodeJS.Timeout | undefined;
  try {
    const digest = await Promise.race([
      resolve(tagged, auth),
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('the registry did not answer in time')), RESOLVE_TIMEOUT_MS);
      }),
    ]);
    if (!DIGEST_RE.test(digest)) return { image, warning: digestWarning(tagged) };
    return { image: `${tagged}@${digest}` };
  } catch {
    return { image, warning: digestWarning(tagged) };
  } finally {
    clearTimeout(timer);
  }
}
