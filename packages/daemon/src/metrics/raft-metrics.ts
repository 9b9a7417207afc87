// Raft's metrics: what its status says (read at scrape time) and the latencies the driver tells
// as they happen (RaftObserver). The Raft package itself knows nothing of Prometheus.

import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { Role, type RaftDriver, type RaftObserver } from '@shoal/raft';
import { whileRunning } from './while-running.js';

/** Registers the Raft metrics on `registry`, read from `raft()` (undefined: no Raft member runs here). */
export function raftMetrics(registry: Registry, raft: () => RaftDriver | undefined): RaftObserver {
  const running = () => raft() !== undefined;
  const gauge = (name: string, help: string, read: (r: RaftDriver) => number) =>
    whileRunning(new Gauge({
      name,
      help,
      registers: [registry],
      collect() {
        this.reset();
        const r = raft();
        if (r) this.set(read(r));
      },
    }), running);
  gauge('shoal_raft_term', 'The current Raft term of this manager.', (r) => r.status().term);
  gauge('shoal_raft_commit_index', 'The highest log index this manager knows to be committed.', (r) => r.status().commit);
  gauge('shoal_raft_applied_index', 'The highest log index applied to this manager\'s store.', (r) => r.status().applied);
  gauge('shoal_raft_last_index', 'The index of the last entry in this manager\'s log.', (r) => r.status().lastIndex);
  gauge('shoal_raft_is_leader', '1 if this manager is the Raft leader, else 0.', (r) => (r.status().role === Role.Leader ? 1 : 0));
  gauge('shoal_raft_snapshot_size_bytes', 'The size of the Raft snapshot this manager holds (0: none yet).', (r) => r.status().stats.snapshotBytes);
  whileRunning(new Counter({
    name: 'shoal_raft_leader_changes_total',
    help: 'Times this manager saw a new Raft leader (since its Raft member started).',
    registers: [registry],
    collect() {
      this.reset();
      const r = raft();
      if (r) this.inc(r.status().stats.leaderChanges);
    },
  }), running);
  const proposals = new Histogram({
    name: 'shoal_raft_proposal_duration_seconds',
    help: 'Time from a proposal made through this manager to its being applied here (committed proposals only).',
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  const failed = new Counter({
    name: 'shoal_raft_proposals_failed_total',
    help: 'Proposals made through this manager that failed (timed out, refused, lost with a leader).',
    registers: [registry],
  });
  const writes = new Histogram({
    name: 'shoal_raft_storage_write_duration_seconds',
    help: 'Time to write a batch of Raft state to LevelDB; sync="true": with an fsync (entries, term or vote).',
    labelNames: ['sync'],
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1],
    registers: [registry],
  });
  return {
    proposal(seconds, ok) {
      if (ok) proposals.observe(seconds);
      else failed.inc();
    },
    save(seconds, synced) {
      writes.observe({ sync: String(synced) }, seconds);
    },
  };
}
