// The dashboard's live feed: what every open page is sent over Server-Sent Events. A page first
// gets the whole picture (`snapshot`), then the store's changes as they apply on this manager,
// coalesced per object and sent a few times a second (`changes`), the Raft members when they
// change (`raft`) and the manager's cluster events (its journal, which `shoal events` follows too)
// for the event panel (`events`). The manager's local store is read (a follower's replica too): a
// page is as fresh as this manager.

import type { Manager } from '@shoal/manager';
import type { StoreEvent } from '@shoal/store';
import { eventLine } from './event-lines.js';
import type { EventLine, RaftView, Snapshot, ViewChange } from './view-types.js';
import { viewChange, viewsOf } from './views.js';

/** How often buffered changes go out: a converging service changes thousands of tasks a second. */
const FLUSH_MS = 250;
/** How often the Raft members' reachability is asked (each ask is a call to every member). */
const RAFT_POLL_MS = 2_000;
/** A page this far behind (bytes waiting on its socket) is cut off: its reconnect resyncs it. */
const MAX_BEHIND_BYTES = 16 << 20;
/** Lines of the event panel a new page is given. */
const RECENT_EVENTS = 200;

export interface FeedClient {
  /** Writes one SSE message; returns the bytes still waiting on the socket. */
  send(event: string, data: unknown): number;
  close(): void;
}

export class Feed {
  private readonly clients = new Set<FeedClient>();
  private pending = new Map<string, ViewChange>();
  private pendingEvents: EventLine[] = [];
  private readonly stopped = new AbortController();
  private unwatch: (() => void) | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private raftTimer: NodeJS.Timeout | undefined;
  private raft: RaftView | undefined;
  private raftJson = '';
  private resync = false;
  private polling = false;

  constructor(private readonly manager: Manager) {
    this.unwatch = manager.store.watch((events) => this.onChanges(events));
    void this.followEvents();
  }

  private readonly hostOf = (nodeId: string) => this.manager.store.get('node', nodeId)?.description.hostname;

  /** The journal's live events, into the next flush. */
  private async followEvents(): Promise<void> {
    while (!this.stopped.signal.aborted) {
      try {
        for await (const e of this.manager.events.subscribe({ signal: this.stopped.signal })) {
          if (this.clients.size === 0) continue;
          this.pendingEvents.push(eventLine(e, this.hostOf));
          this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
        }
      } catch {
        // A snapshot installed here (the pages resync from the store's restore), or the manager
        // stopping: listen again, after a pause (a stopped journal ends every new listener too).
        await new Promise((r) => setTimeout(r, 1_000).unref());
      }
    }
  }

  add(c: FeedClient): void {
    this.clients.add(c);
    c.send('snapshot', this.snapshot());
    if (this.raft) c.send('raft', this.raft);
    if (!this.polling) {
      this.polling = true;
      this.pollRaft();
    }
  }

  remove(c: FeedClient): void {
    this.clients.delete(c);
  }

  /** The whole picture as of now, with the recent event lines. */
  snapshot(): Snapshot {
    const st = this.manager.raft.status();
    return {
      index: st.applied,
      self: this.manager.opts.nodeId,
      clusterId: this.manager.store.cluster()?.id ?? '',
      ...viewsOf(this.manager.store),
      events: this.manager.events.events().slice(-RECENT_EVENTS).map((e) => eventLine(e, this.hostOf)),
    };
  }

  stop(): void {
    this.unwatch?.();
    this.unwatch = undefined;
    this.stopped.abort();
    clearTimeout(this.flushTimer);
    clearTimeout(this.raftTimer);
    for (const c of this.clients) c.close();
    this.clients.clear();
  }

  private onChanges(events: readonly StoreEvent[]): void {
    if (this.clients.size === 0) return;
    for (const e of events) {
      if (e.action === 'restore') {
        this.resync = true;
        continue;
      }
      const c = viewChange(e);
      if (c) this.pending.set(`${c.kind}:${c.id}`, c);
    }
    this.flushTimer ??= setTimeout(() => this.flush(), FLUSH_MS);
  }

  private flush(): void {
    this.flushTimer = undefined;
    const changes = [...this.pending.values()];
    const lines = this.pendingEvents;
    this.pending = new Map();
    this.pendingEvents = [];
    // A snapshot installed under this manager replaced the store: every page starts again.
    const snapshot = this.resync ? this.snapshot() : undefined;
    this.resync = false;
    for (const c of [...this.clients]) {
      if (snapshot) this.deliver(c, 'snapshot', snapshot);
      else if (changes.length > 0) this.deliver(c, 'changes', { index: this.manager.raft.status().applied, changes });
      if (lines.length > 0) this.deliver(c, 'events', lines);
    }
  }

  private deliver(c: FeedClient, event: string, data: unknown): void {
    if (!this.clients.has(c)) return;
    if (c.send(event, data) > MAX_BEHIND_BYTES) {
      this.clients.delete(c);
      c.close();
    }
  }

  /** Asks the members' state while a page is open, and sends it when it changed. */
  private pollRaft(): void {
    this.raftTimer = undefined;
    if (this.clients.size === 0 || !this.unwatch) {
      this.polling = false;
      return;
    }
    const cluster = this.manager.store.cluster();
    this.manager.membership
      .clusterStatus(cluster?.id ?? '')
      .then((s) => {
        const view: RaftView = {
          leader: s.leader,
          term: Number(s.term),
          self: s.self,
          members: s.members.map((m) => ({ nodeId: m.nodeId, addr: m.addr, raftRole: m.raftRole, reachable: m.reachable })),
        };
        const json = JSON.stringify(view);
        if (json === this.raftJson) return;
        this.raftJson = json;
        this.raft = view;
        for (const c of [...this.clients]) this.deliver(c, 'raft', view);
      })
      .catch(() => undefined)
      .finally(() => {
        this.raftTimer = setTimeout(() => this.pollRaft(), RAFT_POLL_MS);
      });
  }
}
