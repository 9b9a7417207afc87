// The two lists several commands print: services (`service ls`, `stack services`) and tasks
// (`service ps`, `node ps`, `stack ps`), each with `-q`, `--no-trunc` and every `--format`.

import type { Ctx } from '../context.js';
import { serviceLsJson, serviceLsTable, servicePsJson, servicePsTable } from '../format.js';
import { SERVICE_HEADERS, TASK_HEADERS, serviceRows, taskRows } from '../list-rows.js';
import type { Output } from '../output.js';
import type { ServiceSummary, TaskView } from '@shoal/types';
import { type Args, printList } from './common.js';

export function printServices(ctx: Ctx, a: Args, out: Output, services: readonly ServiceSummary[]): void {
  if (a['quiet'] === true) {
    for (const s of serviceLsJson(services)) ctx.print(s.id);
    return;
  }
  const noTrunc = a['noTrunc'] === true;
  printList(ctx, out, {
    table: () => serviceLsTable(services, noTrunc),
    json: () => serviceLsJson(services),
    rows: () => serviceRows(services, noTrunc),
    headers: SERVICE_HEADERS,
  });
}

export function printTasks(ctx: Ctx, a: Args, out: Output, tasks: readonly TaskView[]): void {
  if (a['quiet'] === true) {
    for (const t of servicePsJson(tasks)) ctx.print(t.id);
    return;
  }
  const noTrunc = a['noTrunc'] === true;
  printList(ctx, out, {
    table: () => servicePsTable(tasks, ctx.now(), noTrunc),
    json: () => servicePsJson(tasks),
    rows: () => taskRows(tasks, ctx.now(), noTrunc),
    headers: TASK_HEADERS,
  });
}
