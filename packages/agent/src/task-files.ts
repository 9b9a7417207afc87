// The files of a task's secrets and configs: written, as the task's container is created, into a
// directory of the node's own on a memory-backed filesystem (a tmpfs: /dev/shm on every Linux
// host and in the lab's node containers), with the reference's owner and mode, and bind-mounted
// read-only into the container: a secret at /run/secrets/TARGET, a config at its TARGET. They go
// when the task's container goes. A secret is never written to a disk, nor into a log line: this
// module refuses to write anywhere but a tmpfs, and no message of it quotes a file's content.

import { chmod, chown, mkdir, readdir, rm, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Logger, ShoalError } from '@shoal/api';
import { type Mount, type Task, fileTargetPath } from '@shoal/types';

/** statfs(2)'s f_type of a tmpfs (linux/magic.h TMPFS_MAGIC). */
const TMPFS_MAGIC = 0x01021994;

/** The default root: a directory per node (several test nodes may share a host's /dev/shm). */
export function defaultTaskFilesRoot(nodeId: string): string {
  return join('/dev/shm', 'shoal-task-files', nodeId);
}

/** The key of a secret's or config's data in the map the dispatcher's pages fill. */
export const fileKey = (kind: 'secret' | 'config', id: string): string => `${kind}/${id}`;

export class TaskFiles {
  private checked = false;

  constructor(
    private readonly root: string,
    private readonly log: Logger,
  ) {}

  /**
   * Writes the task's files (data from `data`, by fileKey) and returns their read-only bind
   * mounts (the executor's CreateOptions.mounts); none when it has no secrets or configs. Throws FAILED_PRECONDITION
   * when a file's data did not come with the assignments (the secret was removed, say).
   */
  async write(task: Task, data: ReadonlyMap<string, Uint8Array>): Promise<Mount[]> {
    const { secrets, configs } = task.spec;
    if (secrets.length === 0 && configs.length === 0) return [];
    const files = [
      ...secrets.map((r) => ({ kind: 'secret' as const, id: r.secretId, name: r.secretName, target: r.target, uid: r.uid, gid: r.gid, mode: r.mode })),
      ...configs.map((r) => ({ kind: 'config' as const, id: r.configId, name: r.configName, target: r.target, uid: r.uid, gid: r.gid, mode: r.mode })),
    ];
    for (const f of files) {
      if (!data.has(fileKey(f.kind, f.id))) throw new ShoalError('FAILED_PRECONDITION', `${f.kind} "${f.name}" was not sent to this node (removed?)`);
    }
    await this.checkTmpfs();
    const dir = join(this.root, task.id);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const mounts: Mount[] = [];
    const asRoot = process.getuid?.() === 0;
    for (const [i, f] of files.entries()) {
      const file = join(dir, `${f.kind}-${i}`);
      // Owner-only while it is written; then the reference's owner and mode.
      await writeFile(file, data.get(fileKey(f.kind, f.id))!, { mode: 0o600, flag: 'wx' });
      if (asRoot) await chown(file, Number(f.uid) || 0, Number(f.gid) || 0);
      await chmod(file, f.mode);
      mounts.push({ type: 'bind', source: file, target: fileTargetPath(f.kind, f.target), readOnly: true, volumeOptions: null, tmpfsOptions: null, bindPropagation: '' });
    }
    return mounts;
  }

  /** The task's files go (its container was removed). */
  async remove(taskId: string): Promise<void> {
    await rm(join(this.root, taskId), { recursive: true, force: true }).catch((err: Error) => this.log.warn({ task: taskId, err: err.message }, "could not remove a task's secret files"));
  }

  /** Removes the files of every task but those of `keep` (the tasks that have a container). */
  async sweep(keep: ReadonlySet<string>): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch {
      return; // none written yet
    }
    for (const n of names) if (!keep.has(n)) await this.remove(n);
  }

  /** Refuses any root that is not memory-backed: a secret must never reach a disk. */
  private async checkTmpfs(): Promise<void> {
    if (this.checked) return;
    await mkdir(this.root, { recursive: true, mode: 0o700 });
    const st = await statfs(this.root);
    if (st.type !== TMPFS_MAGIC) {
      throw new ShoalError('FAILED_PRECONDITION', `${this.root} is not on a tmpfs: secrets are only written to memory`);
    }
    this.checked = true;
  }
}
