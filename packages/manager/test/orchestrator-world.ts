// A leader's orchestrator alone, for the suites that drive its loop: no Raft, no manager. Its store
// client commits straight into a ClusterStore (the same encode, size check and apply a Raft commit
// runs), its monotonic clock is a variable the test moves.

import { silentLogger } from '@shoal/raft';
import { ClusterStore, StoreClient, type Op, type Task } from '@shoal/store';
import { Orchestrator } from '../src/orchestrator/orchestrator.js';

export async function waitFor<T>(what: string, f: () => T | undefined, ms = 5_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/**
 * A store, a client committing into it at once, a clock the test moves, and what was committed when.
 * `afterCommit`: runs once each of the orchestrator's transactions is applied, before its commit returns.
 */
export function world(afterCommit?: (ops: Op[]) => Promise<void>) {
  const store = new ClusterStore();
  let index = 0;
  let clock = 0;
  let clockReads = 0;
  const committed: { at: number; ops: Op[] }[] = [];
  const client = new StoreClient(
    {
      propose: async (payload) => ({ index: ++index, result: store.apply(payload, index) }),
      readBarrier: async () => index,
    },
    store,
  );
  const orchestrator = new Orchestrator(
    store,
    {
      commit: async (ops, opts) => {
        committed.push({ at: clock, ops });
        const r = await client.commit(ops, opts);
        await afterCommit?.(ops);
        return r;
      },
    },
    silentLogger(),
    Date.now,
    () => {
      clockReads++;
      return clock;
    },
  );
  return {
    store,
    client,
    orchestrator,
    committed,
    advance: (ms: number) => (clock += ms),
    get clockReads() {
      return clockReads;
    },
    tasks: (name: string) => store.list('task').filter((t: Task) => t.serviceName === name),
  };
}

