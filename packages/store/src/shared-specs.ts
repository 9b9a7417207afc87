// A task carries the service spec it runs: at 100,000 tasks those copies were some 40% of the
// store's heap (~1.8 KiB each of parsed objects), and as many objects for the garbage collector to
// trace. A task whose spec is the same as its service's (current or previous) spec holds that very
// object instead. Only when their JSON is identical: the encoded object (the snapshot's bytes, an
// answer) cannot tell the difference, and both are frozen.

import type { Service, Task } from './types.js';

/** The JSON of each spec object we compared against, computed once per object. */
const specJson = new WeakMap<object, string>();

function jsonOf(spec: object): string {
  let s = specJson.get(spec);
  if (s === undefined) specJson.set(spec, (s = JSON.stringify(spec)));
  return s;
}

/** `task` with its service's spec object in place of an equal copy (else `task` as it is). */
export function shareServiceSpec(task: Task, service: Service | undefined): Task {
  if (!service) return task;
  const candidates = service.previousSpec ? [service.spec, service.previousSpec] : [service.spec];
  if (candidates.includes(task.spec)) return task;
  const mine = JSON.stringify(task.spec);
  for (const spec of candidates) {
    if (jsonOf(spec) === mine) return Object.freeze({ ...task, spec }) as Task;
  }
  return task;
}
