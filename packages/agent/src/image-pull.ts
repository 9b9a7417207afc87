// What the agent makes of an image pull, engine-independent (whether a name pins its image is
// @shoal/types' isPinnedImageRef): how far a pull has got (from the engine's
// JSON progress stream), and why one failed, in the classes a user acts on (no such image or tag,
// registry unreachable, access refused, anything else as the engine said it).

import type { ExecutorErrorReason } from './executor.js';

/** A pull failure's class: the executor's reason and a few words for status lines. */
export interface PullFailure {
  reason: Extract<ExecutorErrorReason, 'image-not-found' | 'registry-unreachable' | 'registry-unauthorized' | 'image-pull-failed'>;
  /** "not found in the registry", "registry unreachable", "unauthorized", or the engine's message. */
  why: string;
}

/** Classifies the engine's message of a failed pull (the words registries and the engine use). */
export function classifyPullError(message: string): PullFailure {
  const m = message.toLowerCase();
  const missing = /manifest unknown|not found|repository does not exist|name unknown/.test(m);
  const refused = /unauthorized|denied|no basic auth credentials|authentication required/.test(m);
  // Docker Hub answers both a missing repository and a private one with "pull access denied ...,
  // repository does not exist or may require 'docker login'": it cannot tell us which.
  if (missing && refused) return { reason: 'image-not-found', why: 'not found in the registry, or access denied' };
  if (missing) return { reason: 'image-not-found', why: 'not found in the registry' };
  if (refused) return { reason: 'registry-unauthorized', why: 'unauthorized' };
  if (/connection refused|no such host|timeout|timed out|network is unreachable|no route to host|connection reset|stalled|server misbehaving/.test(m)) {
    return { reason: 'registry-unreachable', why: 'registry unreachable' };
  }
  return { reason: 'image-pull-failed', why: message };
}

/** One line of the engine's pull progress stream (POST /images/create). */
export interface PullProgressLine {
  status?: string;
  id?: string;
  progressDetail?: { current?: number; total?: number };
  error?: string;
  errorDetail?: { message?: string };
}

interface Layer {
  done: boolean;
  current: number;
  total: number;
}

/** The statuses the engine gives a layer (the stream's other lines name the tag or the digest). */
const LAYER_STATUSES = /^(Pulling fs layer|Waiting|Downloading|Verifying Checksum|Download complete|Extracting|Pull complete|Already exists|Retrying in .*)$/;

/** A pull's progress, folded from its stream: layers done out of those known, bytes downloaded. */
export class PullProgress {
  private readonly layers = new Map<string, Layer>();

  constructor(private readonly ref: string) {}

  add(line: PullProgressLine): void {
    const { status = '', id } = line;
    if (!id || !LAYER_STATUSES.test(status)) return;
    let l = this.layers.get(id);
    if (!l) this.layers.set(id, (l = { done: false, current: 0, total: 0 }));
    const d = line.progressDetail;
    if (status === 'Downloading' && d?.total) {
      l.total = d.total;
      l.current = d.current ?? l.current;
    } else if (status === 'Download complete' || status === 'Verifying Checksum' || status === 'Extracting') {
      l.current = l.total;
    } else if (status === 'Pull complete' || status === 'Already exists') {
      l.current = l.total;
      l.done = true;
    }
  }

  /** "pulling REF: 3 of 5 layers, 12.3 MB / 40.1 MB" (the sizes once the engine has told them). */
  text(): string {
    if (this.layers.size === 0) return `pulling ${this.ref}`;
    let done = 0;
    let current = 0;
    let total = 0;
    for (const l of this.layers.values()) {
      if (l.done) done++;
      current += l.current;
      total += l.total;
    }
    const bytes = total > 0 ? `, ${megabytes(current)} / ${megabytes(total)}` : '';
    return `pulling ${this.ref}: ${done} of ${this.layers.size} layers${bytes}`;
  }
}

/** Bytes as Docker's progress shows them (decimal megabytes, one decimal). */
function megabytes(n: number): string {
  return `${(n / 1e6).toFixed(1)} MB`;
}
