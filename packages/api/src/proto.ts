// Loads every .proto file of the repository's top-level proto/ directory, once, lazily.
//
// Loader options (PROTO_LOADER_OPTIONS), which every consumer of these objects relies on:
// - keepCase: true   field names are the proto's snake_case names (`log_term`, `client_id`).
// - longs: Number    64-bit integers are JS numbers (Raft terms/indexes stay far below 2^53;
//                    codecs must reject values that are not safe integers).
// - enums: Number    enum fields are their numeric values (equal to the TypeScript enums).
// - defaults: true   absent scalar fields read as their proto3 default (0, '', false, empty
//                    Buffer), absent repeated fields as [], absent message fields as null.
// - oneofs: true     (no oneofs today; virtual oneof-name properties if some are added).
// - bytes: left as the default: decoded bytes fields are Buffers.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { loadProtosWithOptionsSync } from '@grpc/proto-loader/build/src/util.js';
import { ShoalError } from './errors.js';

export const PROTO_LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: true,
  longs: Number,
  enums: Number,
  defaults: true,
  oneofs: true,
});

/** Options for every .proto except those in KEEP_CASE_FILES: camelCase field names, string enums. */
export const CAMEL_LOADER_OPTIONS: Readonly<protoLoader.Options> = Object.freeze({
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
});

/** Files loaded with PROTO_LOADER_OPTIONS (snake_case names). */
export const KEEP_CASE_FILES: ReadonlySet<string> = new Set(['raft.proto']);

/** Environment variable that overrides where the .proto files are looked for. */
export const PROTO_DIR_ENV = 'SHOAL_PROTO_DIR';

function protoFilesIn(dir: string): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  return names.filter((n) => n.endsWith('.proto')).sort();
}

let cachedDir: string | undefined;

/**
 * The directory holding the .proto files: $SHOAL_PROTO_DIR if set, else the first `proto/`
 * directory containing .proto files found walking up from this module (from
 * packages/api/dist/src/ that is ../../../../proto, the repository's top-level proto/; walking up
 * also works when running from src/ or from another output layout).
 */
export function protoDir(): string {
  if (cachedDir !== undefined) return cachedDir;
  const env = process.env[PROTO_DIR_ENV];
  if (env) {
    const dir = path.resolve(env);
    if (protoFilesIn(dir).length === 0) {
      throw new ShoalError('INTERNAL', `${PROTO_DIR_ENV}=${env}: no .proto files there`);
    }
    return (cachedDir = dir);
  }
  const start = path.dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; ) {
    const candidate = path.join(dir, 'proto');
    if (protoFilesIn(candidate).length > 0) return (cachedDir = candidate);
    const parent = path.dirname(dir);
    if (parent === dir) break;
    dir = parent;
  }
  throw new ShoalError('INTERNAL', `cannot find the proto/ directory above ${start}; set ${PROTO_DIR_ENV}`);
}

let cachedDef: protoLoader.PackageDefinition | undefined;
let cachedObj: grpc.GrpcObject | undefined;

/**
 * The loader options of a .proto file: raft.proto keeps its snake_case names (its codec maps them
 * to the core's types); the others (types, control, ...) use camelCase names and string enums, so
 * store objects cross gRPC as they are.
 */
function loaderOptions(file: string): Readonly<protoLoader.Options> {
  return KEEP_CASE_FILES.has(path.basename(file)) ? PROTO_LOADER_OPTIONS : CAMEL_LOADER_OPTIONS;
}

/** These .proto files of `dir` (and what they import), each with its loader options. */
function loadFiles(dir: string, names: readonly string[]): protoLoader.PackageDefinition {
  const files = names.map((f) => path.join(dir, f));
  const snake = files.filter((f) => loaderOptions(f) === PROTO_LOADER_OPTIONS);
  const camel = files.filter((f) => loaderOptions(f) === CAMEL_LOADER_OPTIONS);
  return {
    ...(snake.length > 0 ? protoLoader.loadSync(snake, { ...PROTO_LOADER_OPTIONS, includeDirs: [dir] }) : {}),
    ...(camel.length > 0 ? protoLoader.loadSync(camel, { ...CAMEL_LOADER_OPTIONS, includeDirs: [dir] }) : {}),
  };
}

/** The package definition of all the .proto files (loaded on first use, then cached). */
export function packageDefinition(): protoLoader.PackageDefinition {
  if (!cachedDef) {
    const dir = protoDir();
    cachedDef = loadFiles(dir, protoFilesIn(dir));
  }
  return cachedDef;
}

/** The file that defines each service. */
const SERVICE_FILES: Readonly<Record<ServiceName, string>> = {
  'shoal.raft.Raft': 'raft.proto',
  'shoal.control.Control': 'control.proto',
  'shoal.ca.CA': 'ca.proto',
  'shoal.dispatcher.Dispatcher': 'dispatcher.proto',
};

/**
 * As getClientConstructor, loading only the service's own file and what it imports, not every
 * .proto: for a short-lived client (the CLI starts, makes a call or two, exits).
 */
export function getOnlyClientConstructor(name: ServiceName): grpc.ServiceClientConstructor {
  return clientConstructorIn(grpc.loadPackageDefinition(loadFiles(protoDir(), [SERVICE_FILES[name]])), name);
}

/** A service's file and what it imports, parsed as getOnlyClientConstructor parses them, and the files read. */
export interface ServiceDescriptor {
  /** protobufjs' JSON of the parsed files (`Root.toJSON()`): for protoLoader.fromJSON. */
  json: Parameters<typeof protoLoader.fromJSON>[0];
  /** The .proto files it was made from (absolute paths). */
  files: string[];
}

/**
 * The descriptor of a service, made once (at build time) so that a short-lived client need not
 * parse .proto text at each start: the CLI's bundle embeds it (scripts/bundle-cli.mjs) and makes
 * its client class with clientConstructorFromDescriptor. Parsed with the service file's loader
 * options (field names are decided while parsing: keepCase).
 */
export function serviceDescriptor(name: ServiceName): ServiceDescriptor {
  const dir = protoDir();
  const file = path.join(dir, SERVICE_FILES[name]);
  const root = loadProtosWithOptionsSync(file, { ...loaderOptions(file), includeDirs: [dir] });
  return { json: root.toJSON() as ServiceDescriptor['json'], files: [...root.files] };
}

/** As getOnlyClientConstructor, from serviceDescriptor's JSON instead of the .proto text. */
export function clientConstructorFromDescriptor(name: ServiceName, json: ServiceDescriptor['json']): grpc.ServiceClientConstructor {
  return clientConstructorIn(grpc.loadPackageDefinition(protoLoader.fromJSON(json, loaderOptions(SERVICE_FILES[name]))), name);
}

/** The same definitions as a grpc object tree (`grpcObject().shoal.raft.Raft` ...). */
export function grpcObject(): grpc.GrpcObject {
  return (cachedObj ??= grpc.loadPackageDefinition(packageDefinition()));
}

/** Fully-qualified names of the services defined in proto/. */
export type ServiceName = 'shoal.raft.Raft' | 'shoal.control.Control' | 'shoal.ca.CA' | 'shoal.dispatcher.Dispatcher';

/** A service's definition, e.g. for `server.addService(getServiceDefinition('shoal.raft.Raft'), impl)`. */
export function getServiceDefinition(name: ServiceName): grpc.ServiceDefinition {
  const def = packageDefinition()[name];
  if (!def || isMessageOrEnum(def)) {
    throw new ShoalError('NOT_FOUND', `no service ${name} in ${protoDir()}`);
  }
  return def as grpc.ServiceDefinition;
}

/** A service's generated client class: `new (getClientConstructor('shoal.raft.Raft'))(addr, creds, opts)`. */
export function getClientConstructor(name: ServiceName): grpc.ServiceClientConstructor {
  return clientConstructorIn(grpcObject(), name);
}

function clientConstructorIn(root: grpc.GrpcObject, name: ServiceName): grpc.ServiceClientConstructor {
  let node: unknown = root;
  for (const part of name.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function' || !('service' in node)) {
    throw new ShoalError('NOT_FOUND', `no service ${name} in ${protoDir()}`);
  }
  return node as grpc.ServiceClientConstructor;
}

/** One method of a service: its path ('/shoal.raft.Raft/Send') and (de)serializers. */
export function getMethodDefinition(service: ServiceName, method: string): grpc.MethodDefinition<unknown, unknown> {
  const m = getServiceDefinition(service)[method];
  if (!m) throw new ShoalError('NOT_FOUND', `no method ${method} in service ${service}`);
  return m;
}

function isMessageOrEnum(x: unknown): boolean {
  return typeof x === 'object' && x !== null && 'format' in x && typeof (x as { format: unknown }).format === 'string';
}
