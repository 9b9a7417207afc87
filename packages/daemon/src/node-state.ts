// What a node remembers about itself between runs: DATA_DIR/node.json (written atomically and
// durably), and the data directory's permissions.

import { accessSync, chmodSync, constants, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ShoalError } from '@shoal/api';
import { privateDir, writeFileAtomic } from '@shoal/pki';

export interface NodeState {
  format: 1;
  nodeId: string;
  clusterId: string;
  role: 'manager' | 'worker';
  listenAddr: string;
  advertiseAddr: string;
  hostname: string;
  dockerHost: string;
  availability: 'active' | 'pause' | 'drain';
  /** Manager addresses the node's agent reaches the dispatcher on (refreshed as it learns). */
  managers?: string[];
}

export const stateFile = (dir: string) => join(dir, 'node.json');

/** The node's own directories: its keys, its admin credentials, the cluster's Raft data. */
const PRIVATE_SUBDIRS = ['certificates', 'admin', 'raft'];

/**
 * Creates DIR if needed, checks it is a writable directory, and makes it and its subdirectories
 * 0700 even when they existed with a wider mode (a volume created by hand, an old install).
 */
export function prepareDataDir(dir: string): void {
  try {
    privateDir(dir);
    for (const sub of PRIVATE_SUBDIRS) if (existsSync(join(dir, sub))) chmodSync(join(dir, sub), 0o700);
    accessSync(dir, constants.W_OK | constants.R_OK);
  } catch (err) {
    throw new ShoalError('INVALID_ARGUMENT', `unusable data dir ${dir}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}

export function hasState(dir: string): boolean {
  try {
    readFileSync(stateFile(dir));
    return true;
  } catch {
    return false;
  }
}

export function readState(dir: string): NodeState {
  let raw: string;
  try {
    raw = readFileSync(stateFile(dir), 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new ShoalError('NOT_FOUND', `${dir} holds no node: run \`shoald init\` or \`shoald join\` first`);
    throw new ShoalError('INVALID_ARGUMENT', `cannot read ${stateFile(dir)}: ${code ?? (err as Error).message}`);
  }
  let s: NodeState;
  try {
    s = JSON.parse(raw) as NodeState;
  } catch {
    throw new ShoalError('CORRUPT_DATA', `${stateFile(dir)} is not valid JSON`);
  }
  const ok =
    s && s.format === 1 && typeof s.nodeId === 'string' && s.nodeId.length > 0 && (s.role === 'manager' || s.role === 'worker') &&
    typeof s.listenAddr === 'string' && typeof s.advertiseAddr === 'string' && typeof s.hostname === 'string';
  if (!ok) throw new ShoalError('CORRUPT_DATA', `${stateFile(dir)} is damaged (missing or invalid fields)`);
  return s;
}

export function writeState(dir: string, s: NodeState): void {
  writeFileAtomic(stateFile(dir), JSON.stringify(s, null, 2) + '\n', 0o600);
}
