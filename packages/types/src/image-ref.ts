// Docker's image references as every side reads them: the default tag (the manager pins a tagged
// name, the agent pulls one), a digest's form, and whether a reference pins its image (the agent
// then uses a present copy without a pull). One copy of each rule for the CLI, manager and agent.

/** A digest as distribution/digest writes it: `algorithm:hex` (e.g. `sha256:` + 64 hex digits). */
export const DIGEST_RE = /^[a-z0-9]+(?:[.+_-][a-z0-9]+)*:[a-zA-Z0-9=_-]{32,}$/;

/** Whether a name (without a digest) carries a tag: a ':' in its last path component (a registry's port is not one). */
export function hasTag(name: string): boolean {
  return name.slice(name.lastIndexOf('/') + 1).includes(':');
}

/** Docker's TagNameOnly: `image` with `:latest` added when it has neither a tag nor a digest. */
export function withDefaultTag(image: string): string {
  if (image.includes('@')) return image;
  return hasTag(image) ? image : `${image}:latest`;
}

/** An image id (`sha256:<hex>`, as digest.Parse takes it) or a name pinned by digest (`name@sha256:...`). */
export function isPinnedImageRef(ref: string): boolean {
  if (/^sha256:[a-f0-9]{64}$/.test(ref)) return true;
  const at = ref.lastIndexOf('@');
  return at >= 0 && DIGEST_RE.test(ref.slice(at + 1));
}
