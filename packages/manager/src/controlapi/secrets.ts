// The control API's secret and config calls (`shoal secret ...`, `shoal config ...`), and how a
// service's references to them are named by id. A secret's data goes in once, sealed for that
// secret (SecretVault), and never comes back out of this API: answers carry its size alone. A
// config's data is no secret: stored as it is (base64) and shown by `config inspect`.

import { ShoalError } from '@shoal/api';
import { type ClusterStore, type Config, type Secret, type ServiceSpec, deleteOp, fileInUse, newId } from '@shoal/store';
import { type FileKind, SpecError, checkFileData, checkFileName, fileTargetPath } from '@shoal/types';
import { type ControlContext, commit, read, required } from './context.js';

function rule<T>(f: () => T): T {
  try {
    return f();
  } catch (err) {
    if (err instanceof SpecError) throw new ShoalError('INVALID_ARGUMENT', err.message);
    throw err;
  }
}

/** A request's name, labels and data, checked (the data never quoted). */
function checkRequest(kind: FileKind, spec: { name?: string; labels?: Record<string, string> } | null | undefined, data: Uint8Array | string | null | undefined) {
  if (!spec) throw new ShoalError('INVALID_ARGUMENT', `a ${kind} spec is required`);
  const name = rule(() => checkFileName(String(spec.name ?? ''), kind));
  const labels: Record<string, string> = {};
  for (const [k, v] of Object.entries(spec.labels ?? {})) {
    if (k === '') throw new ShoalError('INVALID_ARGUMENT', `a label of ${kind} "${name}" has an empty key`);
    labels[k] = String(v);
  }
  const bytes = typeof data === 'string' ? Buffer.from(data, 'base64') : Buffer.from(data ?? []);
  rule(() => checkFileData(bytes.length, kind, name));
  return { name, labels, bytes };
}

/** A secret as answers show it: never its data. */
function secretView(s: Secret): Omit<Secret, 'data'> {
  const { data: _sealed, ...view } = s;
  return view;
}

export async function createSecret(ctx: ControlContext, req: { spec?: { name?: string; labels?: Record<string, string> }; data?: Uint8Array }): Promise<{ secret: Omit<Secret, 'data'> }> {
  const { name, labels, bytes } = checkRequest('secret', req.spec, req.data);
  // The seal names the cluster: wait for its object (and a current view) first.
  await read(ctx);
  const now = ctx.now();
  const id = newId();
  const secret: Secret = { id, version: 0, createdAt: now, updatedAt: now, spec: { name, labels }, size: bytes.length, data: ctx.secrets.seal(id, bytes) };
  bytes.fill(0);
  await commit(ctx, [{ op: 'create', kind: 'secret', object: secret }]);
  return { secret: secretView(ctx.store.get('secret', id)!) };
}

export async function getSecret(ctx: ControlContext, req: { secret?: string }): Promise<{ secret: Omit<Secret, 'data'> }> {
  const store = await read(ctx);
  return { secret: secretView(store.resolveSecret(required(req.secret, 'secret'))) };
}

export async function listSecrets(ctx: ControlContext): Promise<{ secrets: Omit<Secret, 'data'>[] }> {
  const store = await read(ctx);
  return { secrets: store.list('secret').sort((a, b) => a.spec.name.localeCompare(b.spec.name)).map(secretView) };
}

export async function removeSecret(ctx: ControlContext, req: { secret?: string }): Promise<{ id: string }> {
  const store = await read(ctx);
  const s = store.resolveSecret(required(req.secret, 'secret'));
  // Said here without the store's op index (the store refuses it again as it applies).
  const used = fileInUse('secret', s, store.list('service'));
  if (used) throw new ShoalError('FAILED_PRECONDITION', used);
  await commit(ctx, [deleteOp('secret', s)]);
  return { id: s.id };
}

export async function createConfig(ctx: ControlContext, req: { spec?: { name?: string; labels?: Record<string, string>; data?: Uint8Array | string } }): Promise<{ config: Config }> {
  const { name, labels, bytes } = checkRequest('config', req.spec, req.spec?.data);
  const now = ctx.now();
  const config: Config = { id: newId(), version: 0, createdAt: now, updatedAt: now, spec: { name, labels, data: bytes.toString('base64') } };
  await commit(ctx, [{ op: 'create', kind: 'config', object: config }]);
  return { config: ctx.store.get('config', config.id)! };
}

export async function getConfig(ctx: ControlContext, req: { config?: string }): Promise<{ config: Config }> {
  const store = await read(ctx);
  return { config: store.resolveConfig(required(req.config, 'config')) };
}

export async function listConfigs(ctx: ControlContext): Promise<{ configs: Config[] }> {
  const store = await read(ctx);
  return { configs: store.list('config').sort((a, b) => a.spec.name.localeCompare(b.spec.name)) };
}

export async function removeConfig(ctx: ControlContext, req: { config?: string }): Promise<{ id: string }> {
  const store = await read(ctx);
  const c = store.resolveConfig(required(req.config, 'config'));
  const used = fileInUse('config', c, store.list('service'));
  if (used) throw new ShoalError('FAILED_PRECONDITION', used);
  await commit(ctx, [deleteOp('config', c)]);
  return { id: c.id };
}

/**
 * A service spec with its secrets and configs named by id (a client may give a name, an id or a
 * unique id prefix) and their current names; an unknown one is refused, naming it, and so are two
 * files at one path of the container. The store checks the ids again as it applies.
 */
export function attachFiles(store: ClusterStore, spec: ServiceSpec): ServiceSpec {
  if (spec.secrets.length === 0 && spec.configs.length === 0) return spec;
  const paths = new Map<string, string>();
  const place = (kind: FileKind, name: string, target: string) => {
    const path = rule(() => fileTargetPath(kind, target));
    const other = paths.get(path);
    if (other) throw new ShoalError('INVALID_ARGUMENT', `${kind} "${name}" and ${other} are both given the file ${path}`);
    paths.set(path, `${kind} "${name}"`);
  };
  const find = <T>(kind: FileKind, ref: string, resolve: (r: string) => T): T => {
    try {
      return resolve(ref);
    } catch (err) {
      if (err instanceof ShoalError && err.code === 'NOT_FOUND') {
        throw new ShoalError('INVALID_ARGUMENT', `unknown ${kind} "${ref}" (no ${kind} has this name or id: shoal ${kind} ls lists them)`);
      }
      throw err;
    }
  };
  const secrets = spec.secrets.map((r) => {
    const s = find('secret', r.secretId, (x) => store.resolveSecret(x));
    place('secret', s.spec.name, r.target);
    return { ...r, secretId: s.id, secretName: s.spec.name };
  });
  const configs = spec.configs.map((r) => {
    const c = find('config', r.configId, (x) => store.resolveConfig(x));
    place('config', c.spec.name, r.target);
    return { ...r, configId: c.id, configName: c.spec.name };
  });
  return { ...spec, secrets, configs };
}
