// The rules of secrets and configs (`shoal secret ...`, `shoal config ...`), shared by the CLI, the
// control API and the store: Swarm's name rule, the size bound, and where a reference's file goes
// in the container (a secret under /run/secrets, a config at its absolute target).

import { invalid } from './spec-error.js';

export type FileKind = 'secret' | 'config';

/** A secret's or config's data at most (Swarm's MaxSecretSize and MaxConfigSize). */
export const MAX_FILE_DATA_BYTES = 500 * 1024;

/** Where secrets go in a task's container (a relative target is a name under it). */
export const SECRETS_DIR = '/run/secrets';

/** Swarm's rule for secret and config names (validateSecretSpec: at most 64, [a-zA-Z0-9][a-zA-Z0-9-_.]*[a-zA-Z0-9]). */
const NAME_RE = /^[a-zA-Z0-9]+(?:[a-zA-Z0-9-_.]*[a-zA-Z0-9])?$/;

export function checkFileName(name: string, kind: FileKind): string {
  if (name === '') invalid(`the ${kind} name is empty`);
  if (name.length > 64) invalid(`invalid ${kind} name "${name.slice(0, 70)}": at most 64 characters`);
  if (!NAME_RE.test(name)) invalid(`invalid ${kind} name ${JSON.stringify(name)}: use letters, digits, '-', '_' and '.' (starting and ending with a letter or digit)`);
  return name;
}

export function checkFileData(bytes: number, kind: FileKind, name: string): void {
  if (bytes === 0) invalid(`${kind} "${name}" has no data`);
  if (bytes > MAX_FILE_DATA_BYTES) invalid(`${kind} "${name}" is ${bytes} bytes: a ${kind} may hold at most ${MAX_FILE_DATA_BYTES} bytes (500 KiB)`);
}

/**
 * The path in the container of a reference's file: a secret's relative target under /run/secrets,
 * a config's (or a secret's) absolute target as it is. Refuses what could land outside the place
 * meant for it or cannot be bind-mounted: empty, `..`, `:` (the engine's mount syntax), a NUL.
 */
export function fileTargetPath(kind: FileKind, target: string): string {
  const bad = (why: string) => invalid(`invalid ${kind} target ${JSON.stringify(target)}: ${why}`);
  if (target === '' || target === '/') bad('empty');
  if (/[:\0\n,]/.test(target)) bad("it may not hold ':', ',' or a control character");
  const parts = target.split('/').filter((p) => p !== '');
  if (parts.some((p) => p === '..' || p === '.')) bad("it may not hold '.' or '..' components");
  if (target.startsWith('/')) return '/' + parts.join('/');
  return kind === 'secret' ? `${SECRETS_DIR}/${parts.join('/')}` : '/' + parts.join('/');
}
