// prom-client gives a metric without labels a sample of 0 even when nothing was set: a worker
// would report a Raft term of 0. A metric read from a component shows no sample while that
// component does not run on the node (its name and help stay, as for a labelled one).

import { Counter, Gauge, type Registry } from 'prom-client';

interface Collected {
  get(): Promise<{ values: unknown[] }>;
}

/** `metric`, with no sample while `running()` is false. Returns `metric`. */
export function whileRunning<M extends Collected>(metric: M, running: () => boolean): M {
  const get = metric.get.bind(metric);
  metric.get = async () => {
    const r = await get();
    return running() ? r : { ...r, values: [] };
  };
  return metric;
}

/** A gauge set from `read()` at each scrape: no sample while `running()` is false or read gives undefined. */
export function scrapedGauge(registers: Registry[], running: () => boolean, name: string, help: string, read: () => number | undefined): Gauge {
  return whileRunning(
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.reset();
        const v = read();
        if (v !== undefined) this.set(v);
      },
    }),
    running,
  );
}

/** A counter whose total a component keeps, read at each scrape (as scrapedGauge). */
export function scrapedCounter(registers: Registry[], running: () => boolean, name: string, help: string, read: () => number | undefined): Counter {
  return whileRunning(
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        const v = read();
        if (v !== undefined) this.inc(v);
      },
    }),
    running,
  );
}
