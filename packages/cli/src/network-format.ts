// How `shoal network ls` and `network inspect` show networks: docker's columns (NETWORK ID, NAME,
// DRIVER, SCOPE) and INTERFACE.md's JSON shape.

import type { Network } from '@shoal/types';
import { renderTable, shortId } from './format.js';

export interface NetworkLsEntry {
  id: string;
  name: string;
  driver: string;
  scope: 'swarm';
  subnet: string;
}

export function networkLsJson(networks: readonly Network[]): NetworkLsEntry[] {
  return [...networks]
    .sort((a, b) => a.spec.name.localeCompare(b.spec.name))
    .map((n) => ({ id: n.id, name: n.spec.name, driver: n.spec.driver, scope: 'swarm', subnet: n.subnet }));
}

export function networkLsTable(networks: readonly Network[]): string {
  const rows = networkLsJson(networks).map((n) => [shortId(n.id), n.name, n.driver, n.scope]);
  return renderTable(['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE'], rows);
}

/** `network inspect` without --format json. */
export function networkInspectText(n: Network): string {
  const lines: string[] = [];
  const kv = (k: string, v: string | number | boolean): void => void lines.push(`${`${k}:`.padEnd(14)}${v}`);
  kv('ID', n.id);
  kv('Name', n.spec.name);
  kv('Driver', n.spec.driver);
  kv('Scope', 'swarm');
  kv('Subnet', n.subnet);
  kv('Gateway', n.gateway);
  kv('VNI', n.vni);
  kv('Internal', n.spec.internal);
  kv('Attachable', n.spec.attachable);
  kv('Created', new Date(n.createdAt).toISOString());
  const labels = Object.entries(n.spec.labels ?? {});
  if (labels.length > 0) {
    lines.push('Labels:');
    for (const [k, v] of labels) lines.push(` ${k}=${v}`);
  }
  return lines.join('\n');
}
