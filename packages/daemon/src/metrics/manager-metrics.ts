// A manager's metrics besides Raft's: its store, its dispatcher, and the orchestrator's and the
// scheduler's work, read from their state at scrape time; only the placement latency is told as
// it happens (OrchestratorMetrics).

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { type Manager, type OrchestratorMetrics, pendingReason } from '@shoal/manager';
import type { DispatcherStats } from '@shoal/manager';
import type { Node, Task } from '@shoal/store';
import { OBJECT_KINDS, TASK_STATES } from '@shoal/types';
import { scrapedCounter, scrapedGauge, whileRunning } from './while-running.js';

/** Registers the manager's metrics on `registry`, read from `manager()` (undefined: none runs here). */
export function managerMetrics(registry: Registry, manager: () => Manager | undefined): OrchestratorMetrics {
  const registers = [registry];
  const running = () => manager() !== undefined;
  new Gauge({
    name: 'shoal_store_objects',
    help: "Objects in this manager's copy of the cluster store, by kind.",
    labelNames: ['kind'],
    registers,
    collect() {
      this.reset();
      const m = manager();
      if (m) for (const kind of OBJECT_KINDS) this.set({ kind }, m.store.count(kind));
    },
  });
  const watch = (name: string, help: string, read: (s: ReturnType<Manager['store']['watchStats']>) => number) =>
    scrapedGauge(registers, running, name, help, () => {
      const m = manager();
      return m ? read(m.store.watchStats()) : undefined;
    });
  watch('shoal_store_watchers', 'Watches on the store (its components\' and the API\'s streams).', (s) => s.watchers);
  watch('shoal_store_watch_queued_events', 'Store events waiting for their watch streams to take them, all streams together.', (s) => s.queued);
  watch('shoal_store_watch_queue_max_events', 'Store events waiting in the fullest watch stream queue.', (s) => s.deepestQueue);

  new Gauge({
    name: 'shoal_tasks',
    help: 'Tasks in the store, by state (the state their node last reported).',
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      const m = manager();
      if (!m) return;
      const by = new Map<string, number>(TASK_STATES.map((s) => [s, 0]));
      for (const t of m.store.list('task') as Task[]) by.set(t.status.state, (by.get(t.status.state) ?? 0) + 1);
      for (const [state, n] of by) this.set({ state }, n);
    },
  });
  new Gauge({
    name: 'shoal_tasks_pending',
    help: 'Tasks meant to run that have no node yet, by why (see pendingReason).',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      const m = manager();
      if (!m) return;
      const by = new Map<string, number>();
      for (const t of m.store.list('task') as Task[]) {
        const why = pendingReason(t);
        if (why) by.set(why, (by.get(why) ?? 0) + 1);
      }
      for (const [reason, n] of by) this.set({ reason }, n);
    },
  });
  new Gauge({
    name: 'shoal_nodes',
    help: 'Nodes of the cluster, by status and availability.',
    labelNames: ['state', 'availability'],
    registers,
    collect() {
      this.reset();
      const m = manager();
      if (!m) return;
      for (const n of m.store.list('node') as Node[]) this.inc({ state: n.status.state, availability: n.spec.availability });
    },
  });

  const dispatcher = (name: string, help: string, read: (s: DispatcherStats) => number, type: 'gauge' | 'counter') => {
    const value = () => {
      const m = manager();
      return m ? read(m.dispatcher.stats()) : undefined;
    };
    (type === 'gauge' ? scrapedGauge : scrapedCounter)(registers, running, name, help, value);
  };
  dispatcher('shoal_dispatcher_sessions', 'Nodes with an open session on this manager\'s dispatcher (the leader\'s: all of them).', (s) => s.sessions, 'gauge');
  dispatcher('shoal_dispatcher_heartbeats_total', 'Heartbeats this manager\'s dispatcher received.', (s) => s.heartbeats, 'counter');
  dispatcher('shoal_dispatcher_nodes_marked_down_total', 'Nodes this manager\'s dispatcher marked down for missed heartbeats.', (s) => s.markedDown, 'counter');
  dispatcher('shoal_dispatcher_assignments_sent_total', 'Tasks sent to nodes in answers to their assignment polls.', (s) => s.assignmentsSent, 'counter');
  dispatcher('shoal_dispatcher_sessions_opened_total', 'Sessions nodes opened with this manager\'s dispatcher.', (s) => s.sessionsOpened, 'counter');
  dispatcher('shoal_dispatcher_sessions_refused_total', 'Session calls turned away (told to retry) while too many were handled at once.', (s) => s.sessionsRefused, 'counter');

  const placements = new Histogram({
    name: 'shoal_scheduler_placement_latency_seconds',
    help: 'Time from a task\'s creation to the commit of its placement on a node (this manager as leader).',
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers,
  });
  return { placed: (seconds) => placements.observe(seconds) };
}
