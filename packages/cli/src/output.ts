// What `--format` asks of an ls/ps/inspect/status command, in one place for every command:
// `table` (the default) and `json` as INTERFACE.md promises them, `docker` (inspect: the Engine
// API's shape, as `docker X inspect` prints it), or a Go template as docker's `--format` takes it:
// `{{.Name}}` once per row, `table {{.ID}}\t{{.Name}}` with a header row and aligned columns.

import { toJson } from './format.js';
import { Template, goMap } from './template/exec.js';
import { tabwrite } from './template/tabwriter.js';
import { UsageError } from './errors.js';

export type Output =
  | { kind: 'table' }
  | { kind: 'json' }
  | { kind: 'docker' }
  | { kind: 'template'; template: Template; table: boolean };

/**
 * The `--format` value's meaning (a template is parsed here, so a bad one is a usage error
 * before any call). As docker: `\t` and `\n` written out in the flag are a tab and a newline.
 */
export function parseOutput(format: string | undefined, opts: { docker?: boolean } = {}): Output {
  const f = (format ?? 'table').trim();
  if (f === 'table' || f === '') return { kind: 'table' };
  if (f === 'json') return { kind: 'json' };
  if (f === 'docker') {
    if (!opts.docker) throw new UsageError('--format docker is for inspect commands: use table, json or a template');
    return { kind: 'docker' };
  }
  // Docker would print a template without placeholders as it is, once per row: here that is a
  // typo (`--format yaml`), refused on one line.
  if (!f.includes('{{')) {
    throw new UsageError(`invalid --format ${JSON.stringify(f)}: expected table, json${opts.docker ? ', docker' : ''} or a Go template ('{{.Name}}', 'table {{.ID}}\\t{{.Name}}')`);
  }
  const table = f.startsWith('table');
  const body = (table ? f.slice('table'.length) : f).trim().replaceAll('\\t', '\t').replaceAll('\\n', '\n');
  return { kind: 'template', template: new Template(body), table };
}

/** What a list command hands printList: its table and JSON (INTERFACE.md) and its template rows. */
export interface ListView {
  table(): string;
  json(): unknown;
  /** One object per row, as docker's formatter contexts: `{{.Name}}` reads `Name`. */
  rows(): object[];
  /** The header of each placeholder of a `table` template (`ID` → `ID`, `DesiredState` → `DESIRED STATE`). */
  headers: Readonly<Record<string, string>>;
}

/** The text a list prints (with its final newline; empty for a template over no rows, as docker). */
export function renderList(out: Output, view: ListView): string {
  switch (out.kind) {
    case 'table':
      return `${view.table()}\n`;
    case 'json':
    case 'docker':
      return `${toJson(view.json())}\n`;
    case 'template': {
      const body = view.rows().map((r) => `${out.template.execute(r)}\n`).join('');
      if (!out.table) return body;
      let header = '';
      try {
        header = `${out.template.execute(goMap(view.headers))}\n`;
      } catch {
        // A placeholder with no header (a function of a field, say): the rows alone, as docker.
      }
      return tabwrite(header + body);
    }
  }
}

/** What an inspect or status command hands printObject. */
export interface ObjectView {
  text(): string;
  json(): unknown;
  /** The Engine API's shape (`--format docker` prints it in a list, as `docker inspect`); templates see it. */
  docker?(): unknown;
  /** What a template sees when there is no Docker shape (default: json()). */
  template?(): unknown;
}

export function renderObject(out: Output, view: ObjectView): string {
  switch (out.kind) {
    case 'table':
      return `${view.text()}\n`;
    case 'json':
      return `${toJson(view.json())}\n`;
    case 'docker':
      // As `docker service inspect`: a list, four spaces deep.
      return `${JSON.stringify([view.docker!()], null, 4)}\n`;
    case 'template': {
      const data = view.docker ? view.docker() : view.template ? view.template() : view.json();
      return `${out.template.execute(data)}\n`;
    }
  }
}
