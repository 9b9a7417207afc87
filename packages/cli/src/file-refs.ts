// `--secret` and `--config` of `service create`, and `--secret-add/--secret-rm`,
// `--config-add/--config-rm` of `service update`: docker's syntax (NAME, or
// source=NAME,target=T,uid=U,gid=G,mode=0400), parsed here so that bad input is a usage error
// before anything is sent. The manager names each source by id.

import { type ConfigReference, type FileKind, type SecretReference, type ServiceSpec, completeServiceSpec, fileTargetPath } from '@shoal/types';
import { UsageError } from './errors.js';

type Ref = { name: string; target?: string; uid?: string; gid?: string; mode?: number };

const KEYS = ['source', 'src', 'target', 'uid', 'gid', 'mode'];

/** One `--secret`/`--config` value. */
export function parseFileRef(kind: FileKind, value: string): Ref {
  const flag = `--${kind}`;
  if (value === '') throw new UsageError(`${flag} is empty`);
  if (!value.includes('=')) return { name: value };
  const ref: Partial<Ref> = {};
  for (const part of value.split(',')) {
    const i = part.indexOf('=');
    const key = i < 0 ? part : part.slice(0, i).trim().toLowerCase();
    const v = i < 0 ? '' : part.slice(i + 1).trim();
    if (!KEYS.includes(key)) throw new UsageError(`${flag} ${JSON.stringify(value)}: unknown field ${JSON.stringify(key)} (known: source, target, uid, gid, mode)`);
    if (v === '') throw new UsageError(`${flag} ${JSON.stringify(value)}: ${key} has no value`);
    if (key === 'source' || key === 'src') ref.name = v;
    else if (key === 'target') ref.target = v;
    else if (key === 'uid' || key === 'gid') {
      if (!/^\d{1,10}$/.test(v)) throw new UsageError(`${flag} ${JSON.stringify(value)}: ${key} must be a number`);
      ref[key] = v;
    } else {
      if (!/^0?[0-7]{1,4}$/.test(v)) throw new UsageError(`${flag} ${JSON.stringify(value)}: mode must be octal, e.g. 0400`);
      ref.mode = parseInt(v, 8);
    }
  }
  if (!ref.name) throw new UsageError(`${flag} ${JSON.stringify(value)}: source=NAME is missing`);
  if (ref.target !== undefined) {
    try {
      fileTargetPath(kind, ref.target);
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  }
  return ref as Ref;
}

function secretRef(r: Ref): Partial<SecretReference> {
  return { secretName: r.name, secretId: r.name, ...(r.target ? { target: r.target } : {}), ...(r.uid ? { uid: r.uid } : {}), ...(r.gid ? { gid: r.gid } : {}), ...(r.mode ? { mode: r.mode } : {}) };
}

function configRef(r: Ref): Partial<ConfigReference> {
  return { configName: r.name, configId: r.name, ...(r.target ? { target: r.target } : {}), ...(r.uid ? { uid: r.uid } : {}), ...(r.gid ? { gid: r.gid } : {}), ...(r.mode ? { mode: r.mode } : {}) };
}

export interface FileFlags {
  secretAdd?: readonly string[];
  secretRm?: readonly string[];
  configAdd?: readonly string[];
  configRm?: readonly string[];
}

/** Parses every value (a usage error on the first bad one) without a spec at hand. */
export function validateFileFlags(f: FileFlags): void {
  for (const v of f.secretAdd ?? []) parseFileRef('secret', v);
  for (const v of f.configAdd ?? []) parseFileRef('config', v);
}

/**
 * The spec with the flags' references: those `*Rm` names (by name or id) removed first, then
 * those `*Add` gives added (replacing one of the same source and target), completed with the
 * defaults (a secret's target: its name; a config's: /NAME; mode 0444).
 */
export function applyFileFlags(spec: ServiceSpec, f: FileFlags): ServiceSpec {
  const secretRm = new Set(f.secretRm ?? []);
  const configRm = new Set(f.configRm ?? []);
  const secrets: Partial<SecretReference>[] = spec.secrets.filter((r) => !secretRm.has(r.secretName) && !secretRm.has(r.secretId));
  const configs: Partial<ConfigReference>[] = spec.configs.filter((r) => !configRm.has(r.configName) && !configRm.has(r.configId));
  const unknown = (kind: FileKind, rm: Set<string>, refs: { name: string; id: string }[]) => {
    for (const x of rm) if (!refs.some((r) => r.name === x || r.id === x)) throw new UsageError(`--${kind}-rm ${x}: the service has no such ${kind}`);
  };
  unknown('secret', secretRm, spec.secrets.map((r) => ({ name: r.secretName, id: r.secretId })));
  unknown('config', configRm, spec.configs.map((r) => ({ name: r.configName, id: r.configId })));
  secrets.push(...(f.secretAdd ?? []).map((v) => secretRef(parseFileRef('secret', v))));
  configs.push(...(f.configAdd ?? []).map((v) => configRef(parseFileRef('config', v))));
  try {
    return completeServiceSpec({ ...spec, secrets, configs } as Parameters<typeof completeServiceSpec>[0], { currentName: spec.name });
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
}
