// The replicated cluster store: Raft's state machine. Every member applies the same transactions in
// the same order and so holds the same objects; reads are served from the local copy (after a read
// barrier, see StoreClient, when they must be current).

import { ShoalError, type ShoalErrorCode } from '@shoal/api';
import type { SnapshotCapture, StateMachine } from '@shoal/raft';
import { captureState, encodeSnapshot, parseSnapshot, runSteps, runStepsAsync } from './snapshot-codec.js';
import { addressKey, heldAddresses } from './addresses.js';
import { allocateNetwork, networkConflict } from './networks.js';
import { fileInUse, fileNameConflict, missingFile } from './files.js';
import { shareServiceSpec } from './shared-specs.js';
import { addressProblem, attachmentAddr, candidateAddresses, parseCidr } from '@shoal/types';
import { State, slotKey } from './state.js';
import { type Op, type TxFailure, type TxResult, decodeTx, encodeTxResult } from './tx.js';
import {
  type Cluster,
  type Config,
  type FileKind,
  type Network,
  type Secret,
  type Node,
  type ObjectKind,
  type Service,
  type StoreObject,
  type Task,
  isLegacyCaKey,
  isTerminal,
  taskStateRank,
} from './types.js';
import { type KindMap, OBJECT_KINDS, ValidationError, isObjectKind, normalize } from './validate.js';

/** Events a changes() iterator holds for a consumer before dropping it (see changes()). */
export const WATCH_QUEUE_LIMIT = 50_000;

/** The `reason` detail of the error that ends a changes() iterator whose consumer fell behind. */
export const WATCH_FELL_BEHIND = 'watch-fell-behind';

/** Whether `err` ended a watch because its consumer fell behind (re-read the state, watch again). */
export function isWatchFellBehind(err: unknown): boolean {
  return ShoalError.is(err) && err.code === 'RESOURCE_EXHAUSTED' && err.details.reason === WATCH_FELL_BEHIND;
}

/** Terminated tasks kept per slot when there is no cluster object. */
export const DEFAULT_TASK_HISTORY_LIMIT = 5;

export { SNAPSHOT_FORMAT, SNAPSHOT_VERSION } from './snapshot-codec.js';

export type ChangeAction = 'create' | 'update' | 'delete';

export interface KindChangeEvent<K extends ObjectKind> {
  kind: K;
  action: ChangeAction;
  /** The object as created or updated, or as it was when deleted. Frozen. */
  object: KindMap[K];
  /** On update: the object before the change. */
  previous?: KindMap[K];
  /** The Raft index of the transaction. */
  index: number;
}

/** A change to one object; narrowing on `kind` narrows `object` and `previous`. */
export type ChangeEvent = { [K in ObjectKind]: KindChangeEvent<K> }[ObjectKind];

/** The whole state was replaced from a snapshot: listeners must resync from the store. */
export interface RestoreEvent {
  action: 'restore';
  index: number;
}

export type StoreEvent = ChangeEvent | RestoreEvent;

export interface WatchFilter {
  kinds?: readonly ObjectKind[];
  ids?: readonly string[];
}

/** Receives each successful transaction's events (filtered; never an empty list), in apply order. */
export type WatchListener = (events: readonly StoreEvent[]) => void;

export interface ClusterStoreOptions {
  /** Called when a watch listener throws (apply never fails because of a listener). Default: a process warning. */
  onListenerError?: (err: unknown) => void;
}

interface Watcher {
  fn: WatchListener;
  kinds: ReadonlySet<ObjectKind> | undefined;
  ids: ReadonlySet<string> | undefined;
}

/** A failed op: the whole transaction is rejected with this code and message. */
class Reject extends Error {
  constructor(
    readonly code: ShoalErrorCode,
    message: string,
    readonly details?: Record<string, string>,
  ) {
    super(message);
  }
}

const byId = (a: StoreObject, b: StoreObject) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/**
 * A transaction's pending changes over the committed state: ops see the effects of earlier ops of
 * the same transaction; nothing reaches the State unless every op passes.
 */
class Staging {
  readonly overlay: { [K in ObjectKind]: Map<string, KindMap[K] | null> } = {
    cluster: new Map(),
    node: new Map(),
    service: new Map(),
    task: new Map(),
    network: new Map(),
    secret: new Map(),
    config: new Map(),
  };
  /** Overlay addresses (addressKey) claimed (holder id) or released (null) by this transaction. */
  private readonly addrs = new Map<string, string | null>();
  /** Service names claimed (id) or released (null) by this transaction. */
  private readonly names = new Map<string, string | null>();
  /** The slots of the tasks this transaction wrote (a superset: tasksInSlot checks): no scan per slot. */
  private readonly slots = new Map<string, Set<string>>();
  readonly events: ChangeEvent[] = [];
  /** How many of `events` are the ops' own (the rest are pruning deletes). */
  opCount = 0;

  constructor(
    private readonly base: State,
    private readonly index: number,
  ) {}

  get<K extends ObjectKind>(kind: K, id: string): KindMap[K] | undefined {
    const o = this.overlay[kind];
    if (o.has(id)) return o.get(id) ?? undefined;
    return this.base.get(kind, id);
  }

  set<K extends ObjectKind>(kind: K, id: string, obj: KindMap[K] | null, event: ChangeEvent): void {
    if (kind === 'service') {
      const prev = this.get('service', id);
      if (prev) this.names.set(prev.spec.name, null);
      if (obj) this.names.set((obj as Service).spec.name, id);
    }
    if (kind === 'task' || kind === 'service') {
      const prev = this.get(kind, id);
      if (prev) {
        for (const a of heldAddresses(kind, prev)) {
          const key = addressKey(a.networkId, a.addr);
          if (this.addressHolder(key) === id) this.addrs.set(key, null);
        }
      }
      if (obj) for (const a of heldAddresses(kind, obj)) this.addrs.set(addressKey(a.networkId, a.addr), id);
    }
    if (kind === 'task' && obj) {
      const key = slotKey(obj as Task);
      let ids = this.slots.get(key);
      if (!ids) this.slots.set(key, (ids = new Set()));
      ids.add(id);
    }
    this.overlay[kind].set(id, obj);
    this.events.push(event);
  }

  /** The task or service holding an overlay address (addressKey), as staged. */
  addressHolder(key: string): string | undefined {
    if (this.addrs.has(key)) return this.addrs.get(key) ?? undefined;
    return this.base.addressHolders.get(key);
  }

  serviceIdByName(name: string): string | undefined {
    if (this.names.has(name)) return this.names.get(name) ?? undefined;
    return this.base.serviceByName.get(name);
  }

  cluster(): Cluster | undefined {
    for (const c of this.overlay.cluster.values()) if (c) return c;
    for (const id of this.base.objects.cluster.keys()) {
      const c = this.get('cluster', id);
      if (c) return c;
    }
    return undefined;
  }

  /** Every service as staged. */
  services(): Service[] {
    return this.all('service');
  }

  /** Every object of a kind as staged. */
  all<K extends ObjectKind>(kind: K): KindMap[K][] {
    const ids = new Set([...this.base.objects[kind].keys(), ...this.overlay[kind].keys()]);
    const out: KindMap[K][] = [];
    for (const id of ids) {
      const o = this.get(kind, id);
      if (o) out.push(o);
    }
    return out;
  }

  /** The staged tasks of one slot. */
  tasksInSlot(key: string): Task[] {
    const ids = new Set(this.base.tasksBySlot.get(key));
    for (const id of this.slots.get(key) ?? []) ids.add(id);
    const out: Task[] = [];
    for (const id of ids) {
      const t = this.get('task', id);
      if (t && slotKey(t) === key) out.push(t);
    }
    return out;
  }

  commit(): void {
    for (const kind of OBJECT_KINDS) {
      for (const [id, obj] of this.overlay[kind] as Map<string, StoreObject | null>) {
        if (obj) this.base.put(kind, obj);
        else this.base.remove(kind, id);
      }
    }
    this.base.index = this.index;
  }
}

export class ClusterStore implements StateMachine {
  private state: State = new State();
  private readonly watchers = new Set<Watcher>();
  /** The events waiting in each changes() iterator's queue (watchStats). */
  private readonly queues = new Set<() => number>();
  private readonly onListenerError: (err: unknown) => void;

  constructor(opts: ClusterStoreOptions = {}) {
    this.onListenerError =
      opts.onListenerError ??
      ((err) => process.emitWarning(`store watch listener threw: ${err instanceof Error ? err.stack : String(err)}`));
  }

  // ------------------------------------------------------------------ StateMachine

  /** Applies one transaction (all of its ops, or none) and returns its TxResult as JSON bytes. */
  apply(command: Uint8Array, index: number): Uint8Array {
    let result: TxResult;
    let events: ChangeEvent[] = [];
    try {
      const staging = this.execute(command, index);
      staging.commit();
      events = staging.events;
      // One event per op, in op order, then one per task deleted by pruning.
      result = { ok: true, index, ids: events.slice(0, staging.opCount).map((e) => e.object.id) };
      const pruned = events.slice(staging.opCount).map((e) => e.object.id);
      if (pruned.length > 0) result.pruned = pruned;
    } catch (err) {
      result = failure(err);
    }
    this.state.index = index;
    if (events.length > 0) this.notify(events);
    return encodeTxResult(result);
  }

  /** Validates and stages every op, then prunes task history; throws Reject on the first bad op. */
  private execute(command: Uint8Array, index: number): Staging {
    let ops: unknown[];
    try {
      ops = decodeTx(command).ops;
    } catch (err) {
      throw new Reject('INVALID_ARGUMENT', (err as Error).message);
    }
    if (ops.length === 0) throw new Reject('INVALID_ARGUMENT', 'a transaction needs at least one op');
    const st = new Staging(this.state, index);
    const createdSlots = new Set<string>();
    ops.forEach((raw, i) => {
      const created = this.stageOp(st, raw, i, index);
      if (created) createdSlots.add(slotKey(created));
    });
    st.opCount = ops.length;
    if (createdSlots.size > 0) this.prune(st, createdSlots, index);
    return st;
  }

  private stageOp(st: Staging, raw: unknown, i: number, index: number): Task | undefined {
    const at = `ops[${i}]`;
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      throw new Reject('INVALID_ARGUMENT', `${at} must be an object`);
    }
    let op = raw as Partial<Record<keyof Op | 'object' | 'expectVersion' | 'id' | 'status' | 'updatedAt', unknown>>;
    if (op.op === 'status') op = this.statusAsUpdate(st, op, at);
    if (op.op !== 'create' && op.op !== 'update' && op.op !== 'delete') {
      throw new Reject('INVALID_ARGUMENT', `${at}.op must be create, update, status or delete (got ${JSON.stringify(op.op)})`);
    }
    const kind = op.kind;
    if (!isObjectKind(kind)) {
      throw new Reject('INVALID_ARGUMENT', `${at}.kind must be one of ${OBJECT_KINDS.join(', ')} (got ${JSON.stringify(kind)})`);
    }
    const expect = op.expectVersion;
    if (expect !== undefined && (typeof expect !== 'number' || !Number.isSafeInteger(expect) || expect < 0)) {
      throw new Reject('INVALID_ARGUMENT', `${at}.expectVersion must be a non-negative integer`);
    }

    if (op.op === 'delete') {
      if (typeof op.id !== 'string' || op.id === '') throw new Reject('INVALID_ARGUMENT', `${at}.id must be a non-empty string`);
      const existing = st.get(kind, op.id);
      if (!existing) throw new Reject('NOT_FOUND', `${kind} ${op.id} not found (${at}: delete)`);
      checkVersion(kind, existing, expect, at);
      if (kind === 'network') this.checkUnused(st, existing as Network, at);
      if (kind === 'secret' || kind === 'config') {
        const used = fileInUse(kind, existing as Secret | Config, st.services());
        if (used) throw new Reject('FAILED_PRECONDITION', `${used} (${at})`);
      }
      st.set(kind, op.id, null, { kind, action: 'delete', object: existing, index } as ChangeEvent);
      return undefined;
    }

    let obj: StoreObject;
    try {
      obj = normalize(kind, op.object, index);
    } catch (err) {
      if (err instanceof ValidationError) throw new Reject('INVALID_ARGUMENT', `invalid ${kind} (${at}: ${op.op}): ${err.message}`);
      throw err;
    }
    if (kind === 'task') obj = shareServiceSpec(obj as Task, st.get('service', (obj as Task).serviceId));
    const existing = st.get(kind, obj.id);

    if (op.op === 'create') {
      if (existing) throw new Reject('ALREADY_EXISTS', `${kind} ${obj.id} already exists (${at}: create)`);
      if (expect !== undefined) throw new Reject('INVALID_ARGUMENT', `${at}: expectVersion makes no sense on create`);
      if (kind === 'cluster') {
        const c = st.cluster();
        if (c) throw new Reject('ALREADY_EXISTS', `the cluster object already exists (id ${c.id}) (${at}: create)`);
      }
      if (kind === 'service') {
        this.checkName(st, obj as Service, at);
        this.checkPorts(st, obj as Service, at);
        this.checkNetworks(st, obj as Service, at);
        this.checkFiles(st, obj as Service, at);
        obj = this.placeVirtualIps(st, obj as Service, at);
      }
      if (kind === 'network') obj = this.placeNetwork(st, obj as Network, at);
      if (kind === 'secret' || kind === 'config') this.checkFileName(st, kind, obj as Secret | Config, at);
      this.checkAddresses(st, kind, obj, undefined, at);
      st.set(kind, obj.id, obj, { kind, action: 'create', object: obj, index } as ChangeEvent);
      return kind === 'task' ? (obj as Task) : undefined;
    }

    if (!existing) throw new Reject('NOT_FOUND', `${kind} ${obj.id} not found (${at}: update)`);
    checkVersion(kind, existing, expect, at);
    if (kind === 'cluster' && isLegacyCaKey((obj as Cluster).caKey) && (obj as Cluster).caKey !== (existing as Cluster).caKey) {
      // An old release's plaintext key is replayed and carried over until sealed, never written anew.
      throw new Reject('FAILED_PRECONDITION', `the cluster's CA key must be stored sealed, not as plaintext (${at}: update)`);
    }
    if (kind === 'service' && (existing as Service).spec.name !== (obj as Service).spec.name) {
      this.checkName(st, obj as Service, at);
    }
    if (kind === 'service') this.checkPorts(st, obj as Service, at);
    if (kind === 'service') {
      this.checkNetworks(st, obj as Service, at);
      this.checkFiles(st, obj as Service, at);
      obj = this.placeVirtualIps(st, obj as Service, at);
    }
    if (kind === 'network') obj = this.placeNetwork(st, obj as Network, at);
    if (kind === 'secret' || kind === 'config') this.checkFileName(st, kind, obj as Secret | Config, at);
    this.checkAddresses(st, kind, obj, existing, at);
    if (kind === 'task') {
      const from = (existing as Task).status.state;
      const to = (obj as Task).status.state;
      if (taskStateRank(to) < taskStateRank(from)) {
        throw new Reject('FAILED_PRECONDITION', `task ${obj.id}: observed state may only move forward, not ${from} -> ${to} (${at}: update)`);
      }
      // So does the desired state (SwarmKit's rule): a task told to stop is never told to run
      // again; its slot gets a new task instead.
      const wasDesired = (existing as Task).desiredState;
      const desired = (obj as Task).desiredState;
      if (taskStateRank(desired) < taskStateRank(wasDesired)) {
        throw new Reject('FAILED_PRECONDITION', `task ${obj.id}: desired state may only move forward, not ${wasDesired} -> ${desired} (${at}: update)`);
      }
    }
    st.set(kind, obj.id, obj, { kind, action: 'update', object: obj, previous: existing, index } as ChangeEvent);
    return undefined;
  }

  /** A status op as the update of its task it stands for (checked as one from there on). */
  private statusAsUpdate(st: Staging, op: Partial<Record<string, unknown>>, at: string): Partial<Record<string, unknown>> {
    if (op.kind !== 'task') throw new Reject('INVALID_ARGUMENT', `${at}.kind must be task for a status op (got ${JSON.stringify(op.kind)})`);
    if (typeof op.id !== 'string' || op.id === '') throw new Reject('INVALID_ARGUMENT', `${at}.id must be a non-empty string`);
    if (typeof op.status !== 'object' || op.status === null || Array.isArray(op.status)) throw new Reject('INVALID_ARGUMENT', `${at}.status must be an object`);
    if (typeof op.updatedAt !== 'number' || !Number.isFinite(op.updatedAt)) throw new Reject('INVALID_ARGUMENT', `${at}.updatedAt must be a number`);
    const existing = st.get('task', op.id);
    if (!existing) throw new Reject('NOT_FOUND', `task ${op.id} not found (${at}: status)`);
    return { op: 'update', kind: 'task', object: { ...existing, status: op.status, updatedAt: op.updatedAt }, expectVersion: op.expectVersion };
  }

  /** A network allocated (when it asks) and checked against every other network. */
  private placeNetwork(st: Staging, net: Network, at: string): Network {
    const others = st.all('network').filter((o) => o.id !== net.id);
    const ingress = net.spec.ingress ? others.find((o) => o.spec.ingress) : undefined;
    if (ingress) throw new Reject('ALREADY_EXISTS', `the cluster already has an ingress network ("${ingress.spec.name}") (${at})`);
    const placed = allocateNetwork(net, others);
    if ('code' in placed) throw new Reject(placed.code, `${placed.message} (${at})`);
    const conflict = networkConflict(placed, others);
    if (conflict) throw new Reject(conflict.code, `${conflict.message} (${at})`);
    return placed === net ? net : normalize('network', placed);
  }

  /** A service's networks exist (the control API named them by id an instant before). */
  private checkNetworks(st: Staging, s: Service, at: string): void {
    for (const n of s.spec.networks) {
      if (!st.get('network', n.target)) throw new Reject('FAILED_PRECONDITION', `network ${n.target} of service "${s.spec.name}" no longer exists (${at})`);
    }
  }

  /** A service's secrets and configs exist (the control API named them by id an instant before). */
  private checkFiles(st: Staging, s: Service, at: string): void {
    for (const kind of ['secret', 'config'] as const) {
      const missing = missingFile(kind, s, (id) => st.get(kind, id) !== undefined);
      if (missing) throw new Reject('FAILED_PRECONDITION', `${missing} (${at})`);
    }
  }

  private checkFileName(st: Staging, kind: FileKind, obj: Secret | Config, at: string): void {
    const conflict = fileNameConflict(kind, obj, st.all(kind));
    if (conflict) throw new Reject('ALREADY_EXISTS', `${conflict} (${at})`);
  }

  /**
   * A vip-mode service holds one virtual IP per network: those it has are kept, those of networks
   * it left (or of a change to dnsrr) released, a new network's given the lowest free address.
   */
  private placeVirtualIps(st: Staging, s: Service, at: string): Service {
    const want = s.spec.endpointMode === 'vip' ? s.spec.networks.map((n) => n.target) : [];
    const have = new Map(s.endpoint.virtualIps.map((v) => [v.networkId, v]));
    const virtualIps = want.map((networkId) => {
      const kept = have.get(networkId);
      if (kept) return kept;
      const net = st.get('network', networkId)!;
      const subnet = parseCidr(net.subnet)!;
      for (const ip of candidateAddresses(net)) {
        const addr = attachmentAddr(ip, subnet);
        if (st.addressHolder(addressKey(networkId, addr)) === undefined) return { networkId, addr };
      }
      throw new Reject('RESOURCE_EXHAUSTED', `network "${net.spec.name}" (${net.subnet}) has no free address left for the virtual IP of service "${s.spec.name}" (${at})`);
    });
    const same = virtualIps.length === s.endpoint.virtualIps.length && virtualIps.every((v, i) => v === s.endpoint.virtualIps[i]);
    return same ? s : normalize('service', { ...s, endpoint: { virtualIps } });
  }

  /**
   * The addresses an object newly holds are addresses of their networks, one per network, and
   * nobody else's (the allocator proposed them from a view that may be stale: a leader change, a
   * concurrent pass).
   */
  private checkAddresses(st: Staging, kind: ObjectKind, obj: StoreObject, existing: StoreObject | undefined, at: string): void {
    const held = heldAddresses(kind, obj);
    if (held.length === 0) return;
    const before = new Set(existing ? heldAddresses(kind, existing).map((a) => addressKey(a.networkId, a.addr)) : []);
    const networks = new Set<string>();
    for (const a of held) {
      if (networks.has(a.networkId)) throw new Reject('INVALID_ARGUMENT', `${kind} ${obj.id} has two addresses on network ${a.networkId} (${at})`);
      networks.add(a.networkId);
      const key = addressKey(a.networkId, a.addr);
      if (before.has(key)) continue;
      const net = st.get('network', a.networkId);
      if (!net) throw new Reject('FAILED_PRECONDITION', `${kind} ${obj.id}: network ${a.networkId} does not exist (${at})`);
      const problem = addressProblem(net, a.addr);
      if (problem) throw new Reject('INVALID_ARGUMENT', `${kind} ${obj.id} on network "${net.spec.name}": ${problem} (${at})`);
      const holder = st.addressHolder(key);
      if (holder !== undefined && holder !== obj.id) {
        throw new Reject('ALREADY_EXISTS', `address ${a.addr} of network "${net.spec.name}" is already held by ${st.get('task', holder) ? 'task' : st.get('node', holder) ? 'node' : 'service'} ${holder} (${at})`);
      }
    }
  }

  /** A network in use by a service stays (as SwarmKit's RemoveNetwork). */
  private checkUnused(st: Staging, net: Network, at: string): void {
    // Every node holds an address on it: the routing mesh's network goes only with the cluster.
    if (net.spec.ingress) throw new Reject('FAILED_PRECONDITION', `network "${net.spec.name}" is the routing mesh's ingress network: it cannot be removed (${at})`);
    const users = st.services().filter((s) => s.spec.networks.some((n) => n.target === net.id)).map((s) => s.spec.name).sort();
    if (users.length > 0) {
      throw new Reject('FAILED_PRECONDITION', `network "${net.spec.name}" is in use by service${users.length > 1 ? 's' : ''} ${users.join(', ')} (${at})`);
    }
  }

  private checkName(st: Staging, s: Service, at: string): void {
    const owner = st.serviceIdByName(s.spec.name);
    if (owner !== undefined && owner !== s.id) {
      throw new Reject('ALREADY_EXISTS', `service name "${s.spec.name}" is already taken by service ${owner} (${at})`);
    }
  }

  /**
   * An ingress published port is the whole cluster's (the mesh serves it on every node): no other
   * service may publish it, in either mode. Two host-mode services may (on different nodes).
   */
  private checkPorts(st: Staging, s: Service, at: string): void {
    if (s.spec.ports.length === 0) return;
    const mine = new Map(s.spec.ports.map((p) => [`${p.publishedPort}/${p.protocol}`, p.publishMode]));
    for (const other of st.services()) {
      if (other.id === s.id) continue;
      for (const p of other.spec.ports) {
        const key = `${p.publishedPort}/${p.protocol}`;
        const m = mine.get(key);
        if (m && (m === 'ingress' || p.publishMode === 'ingress')) {
          throw new Reject('ALREADY_EXISTS', `published port ${key} is already in use by service "${other.spec.name}" (${at})`);
        }
      }
    }
  }

  /** Task history retention: in each slot that got a new task, keep the newest `limit` dead tasks. */
  private prune(st: Staging, slots: Set<string>, index: number): void {
    const limit = st.cluster()?.spec.taskHistoryLimit ?? DEFAULT_TASK_HISTORY_LIMIT;
    for (const key of slots) {
      const dead = st.tasksInSlot(key).filter((t) => t.desiredState !== 'running' && isTerminal(t.status.state));
      if (dead.length <= limit) continue;
      dead.sort((a, b) => a.createdAt - b.createdAt || a.version - b.version || byId(a, b));
      for (const t of dead.slice(0, dead.length - limit)) {
        st.set('task', t.id, null, { kind: 'task', action: 'delete', object: t, index });
      }
    }
  }

  // ------------------------------------------------------------------ snapshots

  /** The whole state in the snapshot format (snapshot-codec.ts): equal states give equal bytes. */
  snapshot(): Uint8Array {
    return runSteps(encodeSnapshot(captureState(this.state)));
  }

  /**
   * The state as of now, encoded later in steps that yield to the event loop (the same bytes
   * snapshot() gives now), however many transactions apply meanwhile.
   */
  captureSnapshot(): SnapshotCapture {
    const captured = captureState(this.state);
    return { encode: () => runStepsAsync(encodeSnapshot(captured)) };
  }

  /**
   * Replaces the whole state with a snapshot's (the current version or version 1). Validates
   * everything first: on a corrupt snapshot it throws ShoalError CORRUPT_DATA and the current
   * state is untouched. Watchers then get one `restore` event.
   */
  restore(data: Uint8Array): void {
    this.swapIn(runSteps(parseSnapshot(data)));
  }

  /**
   * restore() in steps that yield to the event loop. The store keeps its current state until the
   * whole snapshot is validated, then switches at once; transactions applied meanwhile are
   * replaced with the rest of the state (Raft applies none while it installs a snapshot).
   */
  async restoreAsync(data: Uint8Array): Promise<void> {
    this.swapIn(await runStepsAsync(parseSnapshot(data)));
  }

  private swapIn(next: State): void {
    this.state = next;
    this.notify([{ action: 'restore', index: next.index }]);
  }

  // ------------------------------------------------------------------ reads

  /** The index of the last transaction applied (or of the restored snapshot). */
  get appliedIndex(): number {
    return this.state.index;
  }

  get<K extends ObjectKind>(kind: K, id: string): KindMap[K] | null {
    return this.state.get(kind, id) ?? null;
  }

  /** All objects of a kind, optionally filtered (order unspecified). Objects are frozen. */
  list<K extends ObjectKind>(kind: K, filter?: (obj: KindMap[K]) => boolean): KindMap[K][] {
    const all = [...this.state.objects[kind].values()] as KindMap[K][];
    return filter ? all.filter(filter) : all;
  }

  count(kind: ObjectKind): number {
    return this.state.objects[kind].size;
  }

  cluster(): Cluster | null {
    for (const c of this.state.objects.cluster.values()) return c;
    return null;
  }

  serviceByName(name: string): Service | null {
    const id = this.state.serviceByName.get(name);
    return id === undefined ? null : (this.state.get('service', id) ?? null);
  }

  tasksByService(serviceId: string): Task[] {
    return this.tasksOf(this.state.tasksByService.get(serviceId));
  }

  tasksByNode(nodeId: string): Task[] {
    return this.tasksOf(this.state.tasksByNode.get(nodeId));
  }

  /** The tasks of one slot: (service, slot) in replicated mode, (service, node) with slot 0 in global mode. */
  tasksBySlot(serviceId: string, slot: number, nodeId = ''): Task[] {
    return this.tasksOf(this.state.tasksBySlot.get(slotKey({ serviceId, slot, nodeId })));
  }

  nodesByHostname(hostname: string): Node[] {
    const ids = this.state.nodesByHostname.get(hostname);
    return ids ? [...ids].map((id) => this.state.get('node', id)!) : [];
  }

  private tasksOf(ids: Set<string> | undefined): Task[] {
    return ids ? [...ids].map((id) => this.state.get('task', id)!) : [];
  }

  /** A service by id, name or unique id prefix (in that order). */
  resolveService(ref: string): Service {
    return this.resolve('service', ref, () => {
      const s = this.serviceByName(ref);
      return s ? [s] : [];
    });
  }

  /** A node by id, hostname (if unique) or unique id prefix (in that order). */
  resolveNode(ref: string): Node {
    return this.resolve('node', ref, () => this.nodesByHostname(ref));
  }

  /** The task or service holding an address (A.B.C.D or A.B.C.D/N) of a network, if any. */
  addressHolder(networkId: string, addr: string): string | undefined {
    return this.state.addressHolders.get(addressKey(networkId, addr));
  }

  /** A network by id, name or unique id prefix (in that order). */
  resolveNetwork(ref: string): Network {
    return this.resolve('network', ref, () => this.list('network', (n) => n.spec.name === ref));
  }

  /** A secret by id, name or unique id prefix (in that order). */
  resolveSecret(ref: string): Secret {
    return this.resolve('secret', ref, () => this.list('secret', (o) => o.spec.name === ref));
  }

  /** A config by id, name or unique id prefix (in that order). */
  resolveConfig(ref: string): Config {
    return this.resolve('config', ref, () => this.list('config', (o) => o.spec.name === ref));
  }

  private resolve<K extends 'service' | 'node' | 'network' | 'secret' | 'config'>(kind: K, ref: string, byName: () => KindMap[K][]): KindMap[K] {
    if (typeof ref !== 'string' || ref === '') throw new ShoalError('INVALID_ARGUMENT', `a ${kind} reference must not be empty`);
    const exact = this.state.get(kind, ref);
    if (exact) return exact;
    const named = byName();
    if (named.length === 1) return named[0]!;
    const what = kind === 'node' ? 'hostname' : 'name';
    if (named.length > 1) {
      throw new ShoalError('INVALID_ARGUMENT', `ambiguous ${kind} ${what} "${ref}": ${named.map((o) => o.id).join(', ')}`);
    }
    const matches: KindMap[K][] = [];
    for (const [id, o] of this.state.objects[kind] as Map<string, KindMap[K]>) if (id.startsWith(ref)) matches.push(o);
    if (matches.length === 1) return matches[0]!;
    if (matches.length > 1) {
      throw new ShoalError('INVALID_ARGUMENT', `ambiguous ${kind} id prefix "${ref}" matches ${matches.length} ${kind}s`);
    }
    throw new ShoalError('NOT_FOUND', `${kind} ${ref} not found (no such id, ${what} or id prefix)`);
  }

  // ------------------------------------------------------------------ watches

  /**
   * Calls `listener` after every successful transaction with its events (those that pass the
   * filter; not at all if none do), and with one `restore` event (whatever the filter) after a
   * snapshot restore. Called synchronously inside apply, after the state changed: the listener
   * may read the store but must not block. Returns the unsubscribe function.
   */
  watch(listener: WatchListener, filter: WatchFilter = {}): () => void {
    const w: Watcher = {
      fn: listener,
      kinds: filter.kinds ? new Set(filter.kinds) : undefined,
      ids: filter.ids ? new Set(filter.ids) : undefined,
    };
    this.watchers.add(w);
    return () => {
      this.watchers.delete(w);
    };
  }

  /**
   * The watch as an async iterator of events (one at a time). Events wait in a queue of at most
   * `maxQueued` (default WATCH_QUEUE_LIMIT): a consumer that falls further behind is dropped, its
   * queue freed at once, and its next() rejects with ShoalError RESOURCE_EXHAUSTED (reason
   * WATCH_FELL_BEHIND, see isWatchFellBehind): it must re-read the state and watch again. Ends
   * when the loop breaks (or `return()` is called) or when `signal` aborts.
   */
  changes(filter: WatchFilter = {}, opts: { signal?: AbortSignal; maxQueued?: number } = {}): AsyncIterableIterator<StoreEvent> {
    const limit = opts.maxQueued ?? WATCH_QUEUE_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1) throw new ShoalError('INVALID_ARGUMENT', `maxQueued must be a positive integer (got ${limit})`);
    // A FIFO with a moving head: shift() on a queue of tens of thousands would copy it each time.
    let queue: StoreEvent[] = [];
    let head = 0;
    let wake: (() => void) | undefined;
    let done = false;
    let failed: ShoalError | undefined;
    const depth = () => queue.length - head;
    const finish = () => {
      done = true;
      this.queues.delete(depth);
      stop();
      opts.signal?.removeEventListener('abort', finish);
      wake?.();
    };
    const stop = this.watch((events) => {
      const queued = queue.length - head;
      if (queued + events.length > limit) {
        const behind = queued + events.length;
        failed = new ShoalError(
          'RESOURCE_EXHAUSTED',
          `watch fell behind by ${behind} events (at most ${limit} wait for a watcher): it was dropped at index ${events[events.length - 1]!.index}; re-read the state and watch again`,
          { details: { reason: WATCH_FELL_BEHIND, behind: String(behind), limit: String(limit) } },
        );
        queue = [];
        head = 0;
        finish();
        return;
      }
      for (const e of events) queue.push(e);
      wake?.();
    }, filter);
    this.queues.add(depth);
    opts.signal?.addEventListener('abort', finish, { once: true });
    if (opts.signal?.aborted) finish();
    const it: AsyncIterableIterator<StoreEvent> = {
      async next(): Promise<IteratorResult<StoreEvent>> {
        while (head === queue.length && !done) await new Promise<void>((r) => (wake = r));
        wake = undefined;
        if (failed) {
          const err = failed;
          failed = undefined;
          throw err;
        }
        if (head < queue.length && !done) {
          const value = queue[head]!;
          queue[head++] = undefined as unknown as StoreEvent;
          if (head === queue.length) {
            queue = [];
            head = 0;
          } else if (head >= 1024 && head * 2 >= queue.length) {
            queue = queue.slice(head);
            head = 0;
          }
          return { value, done: false };
        }
        return { value: undefined, done: true };
      },
      async return(): Promise<IteratorResult<StoreEvent>> {
        finish();
        return { value: undefined, done: true };
      },
      [Symbol.asyncIterator]() {
        return it;
      },
    };
    return it;
  }

  /**
   * The watches now: listeners (watch() and changes() alike), and the events waiting in the
   * changes() iterators' queues, all together and in the deepest one.
   */
  watchStats(): { watchers: number; queued: number; deepestQueue: number } {
    let queued = 0;
    let deepestQueue = 0;
    for (const q of this.queues) {
      const n = q();
      queued += n;
      if (n > deepestQueue) deepestQueue = n;
    }
    return { watchers: this.watchers.size, queued, deepestQueue };
  }

  private notify(events: readonly StoreEvent[]): void {
    const frozen = Object.freeze(events.map((e) => Object.freeze(e)));
    for (const w of [...this.watchers]) {
      if (!this.watchers.has(w)) continue;
      const mine = w.kinds || w.ids ? frozen.filter((e) => passes(w, e)) : frozen;
      if (mine.length === 0) continue;
      try {
        w.fn(mine === frozen ? frozen : Object.freeze(mine));
      } catch (err) {
        try {
          this.onListenerError(err);
        } catch {
          // nothing more to do
        }
      }
    }
  }
}

function passes(w: Watcher, e: StoreEvent): boolean {
  if (e.action === 'restore') return true;
  if (w.kinds && !w.kinds.has(e.kind)) return false;
  if (w.ids && !w.ids.has(e.object.id)) return false;
  return true;
}

function checkVersion(kind: ObjectKind, existing: StoreObject, expect: number | undefined, at: string): void {
  if (expect === undefined || expect === existing.version) return;
  throw new Reject(
    'FAILED_PRECONDITION',
    `version conflict on ${kind} ${existing.id}: expected version ${expect}, it is at ${existing.version} (${at})`,
    { reason: 'version-conflict', kind, id: existing.id, expected: String(expect), actual: String(existing.version) },
  );
}

function failure(err: unknown): TxFailure {
  if (err instanceof Reject) {
    const f: TxFailure = { ok: false, code: err.code, message: err.message };
    if (err.details) f.details = err.details;
    return f;
  }
  // A bug, not a bad transaction: still answered the same way on every member.
  return { ok: false, code: 'INTERNAL', message: `the store failed to apply the transaction: ${(err as Error)?.message ?? String(err)}` };
}
