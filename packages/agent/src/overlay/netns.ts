// A container's network namespace under a name (`ip netns attach`), so that the overlay module,
// which works on named namespaces (`ip -n`, `ip netns exec`), can reach into it: a name is a bind
// mount of /proc/PID/ns/net under /run/netns, which also keeps the namespace alive until detached.

import { stat } from 'node:fs/promises';
import { ShoalError } from '@shoal/api';
import { Iproute } from './iproute.js';

const NETNS_DIR = '/run/netns';

/** Device and inode: a network namespace's identity (what `ip netns identify` compares). */
async function nsIdentity(path: string): Promise<string | undefined> {
  try {
    const s = await stat(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

function checkName(name: string): void {
  if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name) || name === '.' || name === '..') {
    throw new ShoalError('INVALID_ARGUMENT', `not a network namespace name: ${JSON.stringify(name)}`);
  }
}

/**
 * Names the network namespace of process `pid`. Idempotent: a name already naming that namespace
 * is kept; one naming another (a container that restarted with a new pid) is replaced.
 */
export async function attachNetns(name: string, pid: number, ip: Iproute = new Iproute()): Promise<void> {
  checkName(name);
  if (!Number.isInteger(pid) || pid <= 0) throw new ShoalError('INVALID_ARGUMENT', `not a process id: ${pid}`);
  const target = await nsIdentity(`/proc/${pid}/ns/net`);
  if (target === undefined) throw new ShoalError('NOT_FOUND', `process ${pid} has no network namespace (is it running?)`);
  const current = await nsIdentity(`${NETNS_DIR}/${name}`);
  if (current === target) return;
  if (current !== undefined) await ip.run('ip', ['netns', 'delete', name]);
  await ip.run('ip', ['netns', 'attach', name, String(pid)]);
}

/** Removes the name (the namespace lives on while its processes do); a missing name is fine. */
export async function detachNetns(name: string, ip: Iproute = new Iproute()): Promise<void> {
  checkName(name);
  if ((await nsIdentity(`${NETNS_DIR}/${name}`)) === undefined) return;
  await ip.run('ip', ['netns', 'delete', name]);
}

/** The named namespaces whose name starts with `prefix`, sorted. */
export async function listNetns(prefix: string, ip: Iproute = new Iproute()): Promise<string[]> {
  const rows = await ip.query<{ name: string }>('ip', ['netns', 'list']);
  return rows.map((r) => r.name).filter((n) => n.startsWith(prefix)).sort();
}
