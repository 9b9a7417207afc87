// The store's rules for secrets and configs: a name is one object's per kind, a service names only
// secrets and configs that exist, and one that a service uses (in its spec, or in the previous
// spec a rollback returns to) stays (as SwarmKit's RemoveSecret). Checked at apply time, so no
// interleaving of writes on any manager can leave a service naming one that is gone.

import type { Config, FileKind, Secret, Service } from './types.js';

/** The ids of the secrets (or configs) a service's specs name. */
export function fileIdsOf(kind: FileKind, s: Service): Set<string> {
  const ids = new Set<string>();
  for (const spec of s.previousSpec ? [s.spec, s.previousSpec] : [s.spec]) {
    if (kind === 'secret') for (const r of spec.secrets) ids.add(r.secretId);
    else for (const r of spec.configs) ids.add(r.configId);
  }
  return ids;
}

/** Why `obj` cannot be stored beside `others` (the other objects of its kind), or null. */
export function fileNameConflict(kind: FileKind, obj: Secret | Config, others: readonly (Secret | Config)[]): string | null {
  const taken = others.find((o) => o.id !== obj.id && o.spec.name === obj.spec.name);
  return taken ? `${kind} name "${obj.spec.name}" is already taken by ${kind} ${taken.id}` : null;
}

/** Why the secret (or config) may not go, or null: the services that use it, by name. */
export function fileInUse(kind: FileKind, obj: Secret | Config, services: readonly Service[]): string | null {
  const users = services.filter((s) => fileIdsOf(kind, s).has(obj.id)).map((s) => s.spec.name).sort();
  if (users.length === 0) return null;
  return `${kind} "${obj.spec.name}" is in use by service${users.length > 1 ? 's' : ''} ${users.join(', ')}`;
}

/** The first secret (or config) of the service's current spec that does not exist, or null. */
export function missingFile(kind: FileKind, s: Service, exists: (id: string) => boolean): string | null {
  const refs = kind === 'secret' ? s.spec.secrets.map((r) => [r.secretId, r.secretName]) : s.spec.configs.map((r) => [r.configId, r.configName]);
  for (const [id, name] of refs) if (!exists(id!)) return `${kind} ${name} (${id}) of service "${s.spec.name}" no longer exists`;
  return null;
}
