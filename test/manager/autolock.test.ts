// Autolock on real managers: turned on, every manager's kek.json is wrapped (a manager that joins
// later too); all of them restarted, each serves nothing but the unlock (its store untouched on disk) until given the key;
// a wrong key is refused; the right one brings the cluster back with its services. Then the key
// is rotated (the old one no longer opens a manager) and autolock turned off (no lock at restart).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { KeyEncryptionKey, MANAGER_LOCKED, UnlockKey, certPaths, readKekFile } from '@shoal/pki';
import { TestCluster, type Daemon, eventually } from '../helpers/shoald.js';
import { CLI, type CliResult, shoalCli } from '../helpers/cli.js';

const spec = (name: string) => ({ name, image: 'busybox:latest', replicas: 0, mode: 'replicated' });

/** `shoal swarm unlock` against one daemon's socket, the key piped into its stdin. */
function unlockCli(d: Daemon, key: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, '--host', `unix://${d.socket}`, 'swarm', 'unlock'], { encoding: 'utf8', timeout: 60_000 }, (err, stdout, stderr) =>
      resolve({ code: err ? (typeof err.code === 'number' ? err.code : null) : 0, stdout, stderr }),
    );
    child.stdin!.end(`${key}\n`);
  });
}

/**
 * `shoal swarm unlock` at a terminal (util-linux `script` gives it a pty): the key is typed once
 * the prompt shows. The output is what the terminal showed.
 */
function unlockTty(d: Daemon, key: string): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn('script', ['-qfec', `${process.execPath} ${CLI} --host unix://${d.socket} swarm unlock`, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let typed = false;
    const t = setTimeout(() => child.kill(), 60_000);
    child.stdout!.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (!typed && stdout.includes('Enter unlock key: ')) {
        typed = true;
        child.stdin!.write(`${key}\r`);
      }
    });
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    child.on('exit', (code) => {
      clearTimeout(t);
      resolve({ code, stdout, stderr });
    });
  });
}

/** The key-encryption key a manager's kek.json holds, if `key` opens it (undefined: it does not). */
function opens(d: Daemon, key: string): KeyEncryptionKey | undefined {
  const f = readKekFile(d.dataDir);
  if (f.kind !== 'wrapped') return undefined;
  try {
    return UnlockKey.parse(key).unwrap(f.file, 'kek.json');
  } catch {
    return undefined;
  }
}

/** A digest of every file under DATA_DIR/raft (names, sizes, contents). */
function raftDigest(d: Daemon): string {
  const h = createHash('sha256');
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else h.update(`${p}\0`).update(readFileSync(p));
    }
  };
  walk(join(d.dataDir, 'raft'));
  return h.digest('hex');
}

/** Whether a TCP connection to HOST:PORT is refused (nothing listens). */
function tcpRefused(addr: string): Promise<boolean> {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  return new Promise((resolve) => {
    const s = connect({ host, port });
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

async function serviceNames(d: Daemon): Promise<string[]> {
  const r = await d.call<{ services: { service: { spec: { name: string } } }[] }>('ListServices');
  return r.services.map((s) => s.service.spec.name).sort();
}

/** A generous wait for a daemon's start (the machine may be busy). */
const START_MS = 90_000;

const locked = (err: unknown) => (err as { code?: string }).code === 'FAILED_PRECONDITION' && (err as Error).message.includes(MANAGER_LOCKED);

describe('autolock on three managers, then four', () => {
  const c = new TestCluster();
  let ms: Daemon[];
  let key = '';

  before(async () => {
    ms = await c.managers(3);
    await ms[0]!.call('CreateService', { spec: spec('kept-a') });
    await ms[1]!.call('CreateService', { spec: spec('kept-b') });
  });
  after(() => c.stop());

  test('bad input, and a cluster without autolock', async () => {
    const maybe = await shoalCli(ms[0]!, ['swarm', 'update', '--autolock', 'maybe']);
    assert.equal(maybe.code, 2);
    assert.equal(maybe.stderr.trim(), `Error: invalid argument "maybe" for --autolock: expected true or false (see 'shoal swarm update --help')`);
    const none = await shoalCli(ms[0]!, ['swarm', 'unlock-key']);
    assert.equal(none.code, 1);
    assert.equal(none.stderr.trim(), 'Error: no unlock key is set');
    const rotate = await shoalCli(ms[1]!, ['swarm', 'unlock-key', '--rotate']);
    assert.equal(rotate.code, 1);
    assert.match(rotate.stderr.trim(), /^Error: cannot rotate the unlock key: autolock is off/);
    const notLocked = await unlockCli(ms[2]!, UnlockKey.generate().toString());
    assert.equal(notLocked.code, 1);
    assert.equal(notLocked.stderr.trim(), 'Error: this manager is not locked');
    for (const d of ms) assert.equal(readKekFile(d.dataDir).kind, 'clear');
  });

  test('turned on: the key is shown once as docker does, and every manager wraps its kek.json', async () => {
    const r = await shoalCli(ms[1]!, ['swarm', 'update', '--autolock', 'true']);
    assert.equal(r.code, 0, r.stderr);
    const m = /^Swarm updated\.\nTo unlock a swarm manager after it restarts, run the `shoal swarm unlock`\ncommand and provide the following key:\n\n {4}(SWMKEY-1-\S+)\n\nPlease remember/.exec(r.stdout);
    assert.ok(m, r.stdout);
    key = m[1]!;
    const q = await shoalCli(ms[2]!, ['swarm', 'unlock-key', '-q']);
    assert.equal(q.stdout.trim(), key);
    // Again: the key in force stays (it is shown again).
    const again = await shoalCli(ms[0]!, ['swarm', 'update', '--autolock', 'true']);
    assert.ok(again.stdout.includes(key));
    for (const d of ms) {
      await eventually(`${d.name}'s kek.json wrapped with the key`, async () => opens(d, key) !== undefined, START_MS);
      const text = readFileSync(certPaths(d.dataDir).kek, 'utf8');
      assert.throws(() => KeyEncryptionKey.parse(text, 'kek.json'));
    }
  });

  test('a manager that joins an autolocked cluster wraps the key it is given', async () => {
    const m4 = await c.join('m4', ms[0]!, 'manager');
    await m4.ready(START_MS);
    ms.push(m4);
    await eventually("m4's kek.json wrapped with the key", async () => opens(m4, key) !== undefined, START_MS);
  });

  test('all of them restarted: locked, serving nothing but the unlock, their stores untouched', async () => {
    await Promise.all(ms.map((d) => d.kill('SIGTERM')));
    const before = ms.map(raftDigest);
    for (const d of ms) d.start(['run', '--data-dir', d.dataDir]);
    for (const d of ms) {
      await eventually(`${d.name} to answer as a locked manager`, async () => {
        if (!d.running) throw new Error(`${d.name} exited: ${d.stderr}`);
        try {
          await d.call('ListNodes', {}, 2_000);
          throw new Error(`${d.name} answered while locked`);
        } catch (err) {
          if ((err as Error).message.includes('answered while locked')) throw err;
          return locked(err);
        }
      }, START_MS);
    }
    for (const d of ms) {
      for (const method of ['ListServices', 'ClusterStatus', 'GetUnlockKey', 'CreateService']) {
        await assert.rejects(d.call(method, method === 'CreateService' ? { spec: spec('never') } : {}), locked, `${d.name} ${method}`);
      }
      const cli = await shoalCli(d, ['service', 'ls']);
      assert.equal(cli.code, 1);
      assert.equal(cli.stderr.trim(), `Error: ${MANAGER_LOCKED}`);
    }
    // No Raft ran: nothing under raft/ changed, and no manager port answers.
    assert.deepEqual(ms.map(raftDigest), before);
    for (const d of ms) assert.equal(await tcpRefused(d.addr), true, `${d.name} serves ${d.addr} while locked`);
  });

  test('a wrong key is refused and the manager stays locked; the right one starts it', async () => {
    for (const d of ms) {
      const wrong = await unlockCli(d, UnlockKey.generate().toString());
      assert.equal(wrong.code, 1);
      assert.equal(wrong.stderr.trim(), 'Error: invalid unlock key');
      const garbage = await unlockCli(d, 'not-a-key');
      assert.equal(garbage.stderr.trim(), 'Error: invalid unlock key');
      await assert.rejects(d.call('ListServices'), locked);
      if (d === ms[0]) {
        // At a terminal: the prompt, and the key typed is not echoed.
        const right = await unlockTty(d, key);
        assert.equal(right.code, 0, right.stdout + right.stderr);
        assert.equal(right.stdout, 'Enter unlock key: \r\n');
        continue;
      }
      const right = await unlockCli(d, key);
      assert.equal(right.code, 0, right.stderr);
      assert.equal(right.stdout, '');
    }
    for (const d of ms) await d.ready(START_MS);
    for (const d of ms) assert.deepEqual(await serviceNames(d), ['kept-a', 'kept-b']);
    const st = await ms[0]!.call<{ members: unknown[]; leader: string }>('ClusterStatus');
    assert.equal(st.members.length, 4);
    await ms[2]!.call('CreateService', { spec: spec('after-unlock') });
    // Still autolocked: the files stay wrapped.
    for (const d of ms) assert.ok(opens(d, key), d.name);
  });

  test('rotated: every manager re-wraps, the old key no longer opens one', async () => {
    const r = await shoalCli(ms[0]!, ['swarm', 'unlock-key', '--rotate']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Successfully rotated manager unlock key\.\n/);
    assert.match(r.stdout, /The previous key stops working on each manager as soon as it has re-encrypted its key/);
    const next = /\n {4}(SWMKEY-1-\S+)\n/.exec(r.stdout)![1]!;
    assert.notEqual(next, key);
    for (const d of ms) await eventually(`${d.name} re-wrapped with the new key`, async () => opens(d, next) !== undefined, START_MS);
    for (const d of ms) assert.equal(opens(d, key), undefined, d.name);
    const m3 = ms[2]!;
    await m3.kill('SIGTERM');
    m3.start(['run', '--data-dir', m3.dataDir]);
    await eventually('m3 locked again', async () => m3.call('ListNodes', {}, 2_000).then(() => false, locked), START_MS);
    assert.equal((await unlockCli(m3, key)).stderr.trim(), 'Error: invalid unlock key');
    assert.equal((await unlockCli(m3, next)).code, 0);
    await m3.ready(START_MS);
    key = next;
  });

  test('turned off: every kek.json in the clear again, and a restart is not locked', async () => {
    const r = await shoalCli(ms[1]!, ['swarm', 'update', '--autolock', 'false']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'Swarm updated.\n');
    for (const d of ms) await eventually(`${d.name}'s kek.json in the clear`, async () => readKekFile(d.dataDir).kind === 'clear', START_MS);
    const off = await shoalCli(ms[0]!, ['swarm', 'unlock-key']);
    assert.equal(off.stderr.trim(), 'Error: no unlock key is set');
    const m1 = ms[0]!;
    await m1.kill('SIGTERM');
    m1.start(['run', '--data-dir', m1.dataDir]);
    await m1.ready(START_MS);
    assert.deepEqual(await serviceNames(m1), ['after-unlock', 'kept-a', 'kept-b']);
  });
});
