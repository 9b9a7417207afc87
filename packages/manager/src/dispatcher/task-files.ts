// The secrets and configs a page of a node's assignments carries: those named by the page's tasks
// that are to run, read from the store, secrets opened for this node alone (its assignments, over
// its mutual-TLS session). A node that runs no task using a secret is never sent it. Nothing of
// the data goes into a log line.

import type { Logger } from '@shoal/api';
import type { ClusterStore, Task } from '@shoal/store';
import type { SecretVault } from '../secret-vault.js';

export interface TaskFile {
  id: string;
  name: string;
  data: Buffer;
}

export function taskFilesOf(store: ClusterStore, tasks: readonly Task[], vault: SecretVault | undefined, log: Logger): { secrets: TaskFile[]; configs: TaskFile[] } {
  const secretIds = new Set<string>();
  const configIds = new Set<string>();
  for (const t of tasks) {
    if (t.desiredState !== 'running') continue;
    for (const r of t.spec.secrets) secretIds.add(r.secretId);
    for (const r of t.spec.configs) configIds.add(r.configId);
  }
  const secrets: TaskFile[] = [];
  for (const id of secretIds) {
    const s = store.get('secret', id);
    // Gone (removed once no service named it, an old task's): that task fails to start, saying so.
    if (!s || !vault) continue;
    try {
      secrets.push({ id, name: s.spec.name, data: vault.open(id, s.data) });
    } catch (err) {
      log.warn({ secret: id, err: (err as Error).message }, 'cannot open a secret');
    }
  }
  const configs: TaskFile[] = [];
  for (const id of configIds) {
    const c = store.get('config', id);
    if (c) configs.push({ id, name: c.spec.name, data: Buffer.from(c.spec.data, 'base64') });
  }
  return { secrets, configs };
}
