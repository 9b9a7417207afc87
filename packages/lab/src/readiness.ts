// When a lab is up: every node it made is Ready in the cluster's own view (`shoal node ls` on the
// first manager), and, when it is not, which nodes to name.

/** The fields of `shoal node ls --format json` that readiness reads. */
export interface ListedNode {
  hostname: string;
  status: string;
}

/** The nodes of `expected` not listed as ready (in `expected`'s order); [] when all are. */
export function notReady(expected: readonly string[], listed: readonly ListedNode[]): string[] {
  const ready = new Set(listed.filter((n) => n.status === 'ready').map((n) => n.hostname));
  return expected.filter((name) => !ready.has(name));
}

/** `shoal node ls --format json`'s output, or undefined when it is not that (a manager still starting). */
export function parseNodeList(stdout: string): ListedNode[] | undefined {
  try {
    const v: unknown = JSON.parse(stdout);
    if (!Array.isArray(v)) return undefined;
    return v.filter((x): x is ListedNode => typeof x?.hostname === 'string' && typeof x?.status === 'string');
  } catch {
    return undefined;
  }
}
