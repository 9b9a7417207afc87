// A task's secret and config files: written only to a tmpfs, with the reference's owner and mode,
// given to the container as read-only binds at /run/secrets/TARGET and TARGET; refused when the
// data did not come; removed with the task's container (remove, sweep). Runs as root (chown).
import { after, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NOOP_LOGGER } from '@shoal/api';
import type { Task } from '@shoal/types';
import { TaskFiles, fileKey } from '../src/task-files.js';

const log = NOOP_LOGGER;
const root = join('/dev/shm', `shoal-task-files-test-${process.pid}`);

function mkTask(id: string): Task {
  return {
    id,
    spec: {
      secrets: [{ secretId: 's1', secretName: 'db_pw', target: 'db_pw', uid: '1000', gid: '2000', mode: 0o400 }],
      configs: [{ configId: 'c1', configName: 'conf', target: '/etc/app/conf', uid: '0', gid: '0', mode: 0o444 }],
    },
  } as unknown as Task;
}

const data = new Map<string, Uint8Array>([
  [fileKey('secret', 's1'), Buffer.from('hunter2')],
  [fileKey('config', 'c1'), Buffer.from('a=1\n')],
]);

describe('TaskFiles', () => {
  after(() => rmSync(root, { recursive: true, force: true }));

  test('writes each file with its owner and mode and binds it read-only at its place', async () => {
    const files = new TaskFiles(root, log);
    const binds = await files.write(mkTask('t1'), data);
    const bind = (source: string, target: string) => ({ type: 'bind', source, target, readOnly: true, volumeOptions: null, tmpfsOptions: null, bindPropagation: '' });
    assert.deepEqual(binds, [bind(`${root}/t1/secret-0`, '/run/secrets/db_pw'), bind(`${root}/t1/config-1`, '/etc/app/conf')]);
    const st = statSync(`${root}/t1/secret-0`);
    assert.deepEqual([st.uid, st.gid, st.mode & 0o7777], [1000, 2000, 0o400]);
    assert.equal(readFileSync(`${root}/t1/secret-0`, 'utf8'), 'hunter2');
    assert.equal(statSync(`${root}/t1/config-1`).mode & 0o7777, 0o444);
    assert.equal(statSync(`${root}/t1`).mode & 0o7777, 0o700);
    // Written again (a retried create): the same, not an error.
    assert.deepEqual(await files.write(mkTask('t1'), data), binds);
  });

  test('a task without secrets or configs gets no binds; missing data is refused, naming the file only', async () => {
    const files = new TaskFiles(root, log);
    assert.deepEqual(await files.write({ id: 't0', spec: { secrets: [], configs: [] } } as unknown as Task, data), []);
    await assert.rejects(files.write(mkTask('t2'), new Map([[fileKey('config', 'c1'), Buffer.from('x')]])), /secret "db_pw" was not sent to this node/);
    assert.equal(existsSync(`${root}/t2`), false);
  });

  test('never anywhere but on a tmpfs', async () => {
    const disk = mkdtempSync(join(tmpdir(), 'shoal-not-tmpfs-'));
    try {
      await assert.rejects(new TaskFiles(join(disk, 'files'), log).write(mkTask('t3'), data), /is not on a tmpfs: secrets are only written to memory/);
      assert.equal(existsSync(join(disk, 'files', 't3')), false);
    } finally {
      rmSync(disk, { recursive: true, force: true });
    }
  });

  test('remove and sweep take the files of tasks whose container is gone', async () => {
    const files = new TaskFiles(root, log);
    await files.write(mkTask('a'), data);
    await files.write(mkTask('b'), data);
    await files.write(mkTask('c'), data);
    await files.remove('a');
    await files.sweep(new Set(['b']));
    assert.deepEqual(['a', 'b', 'c', 't1'].map((t) => existsSync(join(root, t))), [false, true, false, false]);
  });
});
