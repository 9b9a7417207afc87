// The control API's task listing (`shoal service ps`, `shoal node ps`): one page at a time.

import type { ListTasksRequest, ListTasksResponse, Node, Task } from '@shoal/store';
import { taskPage } from './task-pages.js';
import { type ControlContext, read } from './context.js';

/** One page of the tasks (task-pages.ts): callers follow nextPageToken to have them all. */
export async function listTasks(
  ctx: ControlContext,
  req: ListTasksRequest,
): Promise<ListTasksResponse> {
  const store = await read(ctx);
  let tasks: Task[];
  if (req.service) tasks = store.tasksByService(store.resolveService(req.service).id);
  else if (req.node) tasks = store.tasksByNode(store.resolveNode(req.node).id);
  else tasks = store.list('task') as Task[];
  if (req.node && req.service) {
    const nodeId = store.resolveNode(req.node).id;
    tasks = tasks.filter((t) => t.nodeId === nodeId);
  }
  if (req.desiredState) tasks = tasks.filter((t) => t.desiredState === req.desiredState);
  const page = taskPage(tasks, Number(req.pageSize ?? 0), req.pageToken ?? '');
  return {
    tasks: page.tasks.map((task) => {
      const node = task.nodeId ? (store.get('node', task.nodeId) as Node | undefined) : undefined;
      return { task, nodeHostname: node?.description.hostname ?? '' };
    }),
    nextPageToken: page.nextPageToken,
  };
}
