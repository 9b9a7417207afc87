// prom-client gives a metric without labels a sample of 0 even when nothing was set: a worker
// would report a Raft term of 0. A metric read from a component shows no sample while that
// component does not run on the node (its name and help stay, as for a labelled one).

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
