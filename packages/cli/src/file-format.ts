// How `shoal secret ls|inspect` and `shoal config ls|inspect` show them: docker's columns (ID, NAME,
// CREATED, UPDATED) and INTERFACE.md's JSON shape. A secret's data is never shown (the manager
// never sends it); a config's is, as docker's `config inspect --pretty`.

import type { Config, Secret } from '@shoal/types';
import { renderTable, timeAgo } from './format.js';

type Shown = Pick<Secret, 'id' | 'version' | 'createdAt' | 'updatedAt' | 'spec'> | Config;

export interface FileLsEntry {
  id: string;
  name: string;
  createdAt: string;
  labels: Record<string, string>;
}

const iso = (ms: number) => new Date(Number(ms)).toISOString();

export function fileLsJson(xs: readonly Shown[]): FileLsEntry[] {
  return [...xs].sort((a, b) => a.spec.name.localeCompare(b.spec.name)).map((x) => ({ id: x.id, name: x.spec.name, createdAt: iso(x.createdAt), labels: { ...(x.spec.labels ?? {}) } }));
}

export function fileLsTable(xs: readonly Shown[], nowMs: number): string {
  const rows = [...xs].sort((a, b) => a.spec.name.localeCompare(b.spec.name)).map((x) => [x.id, x.spec.name, timeAgo(Number(x.createdAt), nowMs), timeAgo(Number(x.updatedAt), nowMs)]);
  return renderTable(['ID', 'NAME', 'CREATED', 'UPDATED'], rows);
}

/** A config's data as the manager sent it (bytes on the wire; base64 as the store holds it). */
export function configData(c: Config): Buffer {
  const d = c.spec.data as unknown;
  return typeof d === 'string' ? Buffer.from(d, 'base64') : Buffer.from((d ?? []) as Uint8Array);
}

/** `secret inspect` / `config inspect --format json`: the object, a config's data as text when it is UTF-8. */
export function fileInspectJson(kind: 'secret' | 'config', x: Shown & { size?: number }): object {
  const base = { id: x.id, version: Number(x.version), createdAt: iso(x.createdAt), updatedAt: iso(x.updatedAt), spec: { name: x.spec.name, labels: { ...(x.spec.labels ?? {}) } } };
  if (kind === 'secret') return { ...base, size: Number(x.size ?? 0) };
  return { ...base, spec: { ...base.spec, data: configData(x as Config).toString('base64') } };
}

/** `inspect` without --format json (docker's --pretty). */
export function fileInspectText(kind: 'secret' | 'config', x: Shown & { size?: number }): string {
  const lines: string[] = [];
  const kv = (k: string, v: string | number): void => void lines.push(`${`${k}:`.padEnd(14)}${v}`);
  kv('ID', x.id);
  kv('Name', x.spec.name);
  const labels = Object.entries(x.spec.labels ?? {});
  if (labels.length > 0) {
    lines.push('Labels:');
    for (const [k, v] of labels) lines.push(` - ${k}=${v}`);
  }
  kv('Created at', iso(x.createdAt));
  kv('Updated at', iso(x.updatedAt));
  if (kind === 'secret') kv('Size', `${Number(x.size ?? 0)} bytes`);
  else {
    lines.push('Data:');
    lines.push(configData(x as Config).toString('utf8').replace(/\n$/, ''));
  }
  return lines.join('\n');
}
