// How a node gets a task's image: Docker's rules (a digest present is used, a tag is pulled, a
// failed pull falls back on the local copy), the pull's progress, and a failure's class, over the
// REAL Docker engine and a real registry (TestRegistry); the progress and error parsing alone too.

import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { ShoalError } from '@shoal/api';
import type { Task } from '@shoal/types';
import { DockerExecutor, executorErrorReason } from '../src/index.js';
import { isPinnedImageRef } from '@shoal/types';
import { PullProgress, classifyPullError } from '../src/image-pull.js';
import { assignedTask, taskSpec } from './fixtures.js';
import { TestRegistry, docker, unusedPort } from './registry.js';

const BASE = 'shoal/busybox:latest';
const RUN = `p${randomBytes(4).toString('hex')}`;
const NODE = `${RUN}-node`;

let seq = 0;
const mkTask = (image: string): Task =>
  assignedTask({ id: `${RUN}x${++seq}`, nodeId: NODE, spec: taskSpec(image), serviceId: `svc-${RUN}`, serviceName: `app${RUN}`, slot: seq });

async function rejection(p: Promise<unknown>): Promise<ShoalError> {
  try {
    await p;
  } catch (err) {
    assert.ok(ShoalError.is(err), `expected a ShoalError, got ${String(err)}`);
    return err;
  }
  return assert.fail('expected a rejection');
}

const imageId = (ref: string) => docker('image', 'inspect', '--format', '{{.Id}}', ref);
const present = (ref: string) => imageId(ref).then(() => true, () => false);

describe('pull progress and pull errors, parsed', () => {
  test('a pull progress stream becomes "N of M layers, bytes"', () => {
    const p = new PullProgress('reg:5000/app:1');
    assert.equal(p.text(), 'pulling reg:5000/app:1');
    p.add({ status: 'Pulling from app', id: '1' }); // the tag's line: no layer
    p.add({ status: 'Already exists', id: 'aaa' });
    p.add({ status: 'Pulling fs layer', id: 'bbb' });
    p.add({ status: 'Pulling fs layer', id: 'ccc' });
    p.add({ status: 'Downloading', id: 'bbb', progressDetail: { current: 1_000_000, total: 4_000_000 } });
    p.add({ status: 'Downloading', id: 'ccc', progressDetail: { current: 250_000, total: 1_000_000 } });
    assert.equal(p.text(), 'pulling reg:5000/app:1: 1 of 3 layers, 1.3 MB / 5.0 MB');
    p.add({ status: 'Download complete', id: 'bbb' });
    p.add({ status: 'Pull complete', id: 'bbb' });
    p.add({ status: 'Digest: sha256:abc' });
    assert.equal(p.text(), 'pulling reg:5000/app:1: 2 of 3 layers, 4.3 MB / 5.0 MB');
  });

  test('a failed pull is classified by what the engine said', () => {
    const cases: [string, string, string][] = [
      ['manifest for r:5000/app:2 not found: manifest unknown: manifest unknown', 'image-not-found', 'not found in the registry'],
      ['Get "http://127.0.0.1:1/v2/": dial tcp 127.0.0.1:1: connect: connection refused', 'registry-unreachable', 'registry unreachable'],
      ['Get "https://reg.example/v2/": dial tcp: lookup reg.example on 10.0.0.53:53: no such host', 'registry-unreachable', 'registry unreachable'],
      ['Get "https://r/v2/": net/http: request canceled while waiting for connection (Client.Timeout exceeded while awaiting headers)', 'registry-unreachable', 'registry unreachable'],
      ['Head "https://r/v2/app/manifests/1": no basic auth credentials', 'registry-unauthorized', 'unauthorized'],
      ['unauthorized: authentication required', 'registry-unauthorized', 'unauthorized'],
      ["pull access denied for nope, repository does not exist or may require 'docker login': denied: requested access to the resource is denied", 'image-not-found', 'not found in the registry, or access denied'],
      ['invalid reference format', 'image-pull-failed', 'invalid reference format'],
    ];
    for (const [msg, reason, why] of cases) assert.deepEqual(classifyPullError(msg), { reason, why }, msg);
  });

  test('an image id or a name with a digest pins its image; a tag does not', () => {
    const hex = 'a'.repeat(64);
    assert.equal(isPinnedImageRef(`sha256:${hex}`), true);
    assert.equal(isPinnedImageRef(`127.0.0.1:5000/app@sha256:${hex}`), true);
    assert.equal(isPinnedImageRef('127.0.0.1:5000/app:1'), false);
    assert.equal(isPinnedImageRef('app:sha256'), false);
  });
});

describe('DockerExecutor.prepare: pulls from a real registry', { timeout: 180_000 }, () => {
  let reg: TestRegistry;
  let ex: DockerExecutor;
  /** Local tags and images this suite made, removed in after(). */
  const made: string[] = [];

  /** A new image: BASE plus a layer of `bytes` random bytes (so that a pull has something to download). */
  async function freshImage(bytes: number): Promise<string> {
    const name = `${RUN}-build-${++seq}`;
    await docker('run', '--name', name, BASE, 'sh', '-c', `head -c ${bytes} /dev/urandom > /blob`);
    const id = await docker('commit', name);
    await docker('rm', name);
    made.push(id);
    return id;
  }

  before(async () => {
    reg = await TestRegistry.start();
    ex = new DockerExecutor({ nodeId: NODE, pullStallTimeoutMs: 10_000 });
  });

  after(async () => {
    await ex?.close();
    await reg?.stop();
    for (const m of made.reverse()) await docker('rmi', '-f', m).catch(() => '');
  });

  test('an image absent here is pulled, its progress told (at most as often as asked)', async () => {
    const ref = await reg.push(await freshImage(3_000_000), `big:${RUN}`);
    made.push(ref);
    // Told at every chunk: the layers counted, the last word all of them.
    const told: string[] = [];
    const chatty = new DockerExecutor({ nodeId: NODE, progressIntervalMs: 0 });
    try {
      assert.deepEqual(await chatty.prepare(mkTask(ref), { onProgress: (m) => told.push(m) }), {});
    } finally {
      await chatty.close();
    }
    assert.ok(await present(ref), 'pulled');
    assert.ok(told.length > 1, `progress told: ${told.join(' | ')}`);
    assert.ok(told.every((m) => m.startsWith(`pulling ${ref}`)), told.join(' | '));
    assert.match(told.at(-1)!, new RegExp(`^pulling ${ref}: 2 of 2 layers, 3\\.0 MB / 3\\.0 MB$`));
    // Told at most once an hour: once.
    await docker('rmi', ref);
    const once: string[] = [];
    const calm = new DockerExecutor({ nodeId: NODE, progressIntervalMs: 3_600_000 });
    try {
      await calm.prepare(mkTask(ref), { onProgress: (m) => once.push(m) });
    } finally {
      await calm.close();
    }
    assert.ok(await present(ref), 'pulled again');
    assert.equal(once.length, 1, once.join(' | '));
  });

  test('a tag present here is pulled anyway: the registry\'s image replaces a stale local one', async () => {
    const ref = await reg.push(await freshImage(1000), `moved:${RUN}`);
    // The local copy of the tag is another image (the tag moved in the registry since).
    await docker('tag', BASE, ref);
    made.push(ref);
    const before = await imageId(ref);
    assert.equal(before, await imageId(BASE));
    assert.deepEqual(await ex.prepare(mkTask(ref)), {});
    assert.notEqual(await imageId(ref), before, 'the tag now names the registry\'s image');
  });

  test('a digest present here is used without a pull (its registry may be gone)', async () => {
    const id = await freshImage(1000);
    const ref = await reg.push(id, `pinned:${RUN}`);
    await docker('pull', '--quiet', ref);
    made.push(ref);
    const digest = await docker('image', 'inspect', '--format', '{{index .RepoDigests 0}}', ref);
    assert.match(digest, /@sha256:/);
    // The digest's registry is unreachable from here: a pull would fail (and say so in a note).
    const port = await unusedPort();
    const elsewhere = `127.0.0.1:${port}/pinned:${RUN}`;
    await docker('tag', ref, elsewhere);
    made.push(elsewhere);
    assert.deepEqual(await ex.prepare(mkTask(digest)), {});
    // An image id is never pulled either.
    assert.deepEqual(await ex.prepare(mkTask(id)), {});
    const missingId = `sha256:${'0'.repeat(64)}`;
    const err = await rejection(ex.prepare(mkTask(missingId)));
    assert.equal(executorErrorReason(err), 'image-not-found');
    assert.match(err.message, /an image id cannot be pulled/);
  });

  test('a failed pull of an image present here: the local copy is used, and the result says so', async () => {
    const port = await unusedPort();
    const ref = `127.0.0.1:${port}/local:${RUN}`;
    await docker('tag', BASE, ref);
    made.push(ref);
    const r = await ex.prepare(mkTask(ref));
    assert.match(r.note ?? '', new RegExp(`^pull of ${ref} failed \\(registry unreachable: .*connection refused\\): using the local copy$`));
  });

  test('an image absent here that its registry does not have: not found, saying so', async () => {
    const ref = `${reg.host}/nope:${RUN}`;
    const err = await rejection(ex.prepare(mkTask(ref)));
    assert.equal(executorErrorReason(err), 'image-not-found');
    assert.equal(err.code, 'NOT_FOUND');
    assert.equal(err.details['why'], 'not found in the registry');
    assert.match(err.message, new RegExp(`^image ${ref} not found locally and cannot be pulled: not found in the registry: .*manifest unknown`));
    assert.doesNotMatch(err.message, /\n/);
  });

  test('an image absent here whose registry is unreachable: registry unreachable, saying so', async () => {
    const ref = `127.0.0.1:${await unusedPort()}/nope:1`;
    const err = await rejection(ex.prepare(mkTask(ref)));
    assert.equal(executorErrorReason(err), 'registry-unreachable');
    assert.equal(err.code, 'UNAVAILABLE');
    assert.match(err.message, new RegExp(`^image ${ref} not found locally and cannot be pulled: registry unreachable: .*connection refused$`));
  });

  test('tasks waiting for one pull: one that stops waiting leaves the pull to the others', async () => {
    const ref = await reg.push(await freshImage(2_000_000), `shared:${RUN}`);
    made.push(ref);
    const ac = new AbortController();
    const gone = ex.prepare(mkTask(ref), { signal: ac.signal });
    const stays = ex.prepare(mkTask(ref));
    ac.abort(new Error('the task was shut down'));
    await assert.rejects(gone, /the task was shut down/);
    assert.deepEqual(await stays, {});
    assert.ok(await present(ref));
  });
});
